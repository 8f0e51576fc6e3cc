"""Salted part commitments: the tx id from the parts' digests, the view of a transaction each
ledger is sent (its part and the parts it links to; digests of the rest), canonical decoding,
tampering, a view that hides what a part needs — and Vyper computing the same digests, ids and
views (``contracts/cross/tx_id.vy``)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from hypothesis import HealthCheck, given, settings

from kakehashi.cross.packets import AckStatus, CrossPacket, PacketKind
from kakehashi.cross.participant import PartCall, Participant
from kakehashi.cross.status import PartStatus
from kakehashi.cross.tx import (
    HEADER_ABI,
    MAX_CALL_INFO,
    MAX_CONTRACT_TRANSACTIONS,
    MAX_RETURN_VALUE,
    MAX_SIGNERS,
    MAX_TX,
    MAX_VIEW,
    VIEW_ABI,
    ZERO_SALT,
    Account,
    ChannelInfo,
    CommitProtocol,
    ContractTransaction,
    CrossTxError,
    InitiateTx,
    Link,
    SignerKind,
    TxView,
)
from kakehashi.errors import SerializationError
from kakehashi.ibc.types import Height
from kakehashi.ledgers.evm import toolchain
from kakehashi.ledgers.evm.chain import EmbeddedChain, dev_accounts
from kakehashi.ledgers.evm.provider import embedded_web3
from tests.cross.test_tx import dvp, transactions

SALTS = [bytes([i]) * 32 for i in range(1, 5)]


def salted(tx: InitiateTx) -> InitiateTx:
    parts = tuple(replace(ct, salt=SALTS[i]) for i, ct in enumerate(tx.contract_transactions))
    return replace(tx, contract_transactions=parts)


def three_parts() -> InitiateTx:
    """Part 2 takes part 0's declared result; part 1 stands alone."""
    signer = Account(SignerKind.CHANNEL, b"\x01" * 20)
    part = ContractTransaction(ChannelInfo("cross", "channel-0"), (signer,), b"a", b"ok")
    return salted(
        InitiateTx(
            "kakehashi-corda",
            9,
            CommitProtocol.TPC,
            (
                part,
                replace(
                    part, call_info=b"b", cross_chain_channel=ChannelInfo("cross", "channel-1")
                ),
                replace(part, call_info=b"c", return_value=None, links=(Link(0),)),
            ),
            Height(0, 500),
        )
    )


class Recorder:
    """A CrossApp that records what it was asked to run."""

    def __init__(self) -> None:
        self.calls: list[PartCall] = []

    def prepare(self, call: PartCall) -> bytes:
        self.calls.append(call)
        return b"ok"

    def commit(self, tx_id: bytes, index: int) -> None:
        pass

    def abort(self, tx_id: bytes, index: int) -> None:
        pass


# ----------------------------------------------------------------------------- the id


def test_the_id_commits_to_the_header_and_each_salted_part_digest() -> None:
    tx = three_parts()
    digests = [hashlib.sha256(ct.encode()).digest() for ct in tx.contract_transactions]
    assert list(tx.digests) == digests
    header = (tx.chain_id, tx.nonce, 2, digests, (0, 500), 0)
    assert tx.tx_id == hashlib.sha256(abi_encode([HEADER_ABI], [header])).digest()
    assert tx.tx_id != hashlib.sha256(tx.encode()).digest()  # not the full encoding's hash
    # the salt is part of the commitment: the same part with another salt is another part
    other = replace(tx.contract_transactions[1], salt=ZERO_SALT)
    assert other.digest != tx.contract_transactions[1].digest
    assert (
        replace(
            tx,
            contract_transactions=(
                *tx.contract_transactions[:1],
                other,
                *tx.contract_transactions[2:],
            ),
        ).tx_id
        != tx.tx_id
    )
    assert (
        ContractTransaction.decode(tx.contract_transactions[2].encode())
        == (tx.contract_transactions[2])
    )
    with pytest.raises(CrossTxError, match="salt is 32 bytes"):
        replace(
            tx, contract_transactions=(replace(other, salt=b"\x01"), *tx.contract_transactions[1:])
        )


def test_a_view_reveals_its_part_and_the_parts_it_links_to_and_keeps_the_id() -> None:
    tx = three_parts()
    parts = tx.contract_transactions
    assert tx.view(0).parts == (parts[0], parts[1].digest, parts[2].digest)
    assert tx.view(1).parts == (parts[0].digest, parts[1], parts[2].digest)
    assert tx.view(2).parts == (parts[0], parts[1].digest, parts[2])  # part 2 links to part 0
    for index in range(3):
        view = tx.view(index)
        assert view.tx_id == tx.tx_id and view.digests == tx.digests
        assert TxView.decode(view.encode()) == view
        assert view.part(index) == parts[index]
    assert tx.view(2).linked(2) == (b"ok",)
    assert PartCall.of(tx.view(2), 2) == PartCall(tx.tx_id, 2, b"c", parts[2].signers, (b"ok",))
    assert PartCall.of(tx, 2) == PartCall.of(tx.view(2), 2)
    with pytest.raises(CrossTxError, match="no part 3"):
        tx.view(3)


def test_views_of_one_transaction_merge_and_say_what_they_show() -> None:
    tx = three_parts()
    both = tx.view(0).merged(tx.view(1))  # a ledger running parts 0 and 1
    assert both == tx.revealing({0, 1}) and both.tx_id == tx.tx_id
    assert both.shown() == {
        "0": {"part": "revealed", "digest": tx.contract_transactions[0].digest.hex()},
        "1": {"part": "revealed", "digest": tx.contract_transactions[1].digest.hex()},
        "2": {"part": "hidden", "digest": tx.contract_transactions[2].digest.hex()},
    }
    with pytest.raises(CrossTxError, match="two different transactions"):
        both.merged(replace(tx, nonce=1).view(1))


def test_a_view_that_hides_what_a_part_needs_is_refused() -> None:
    tx = three_parts()
    with pytest.raises(CrossTxError, match="hides part 1, its own"):
        tx.view(0).part(1)
    with pytest.raises(CrossTxError, match="hides part 0, whose declared return value"):
        tx.revealing({2}).part(2)
    # a participant sent such a view runs nothing, answers why, and will never run the part
    app = Recorder()
    participant = Participant(app)
    for index, view in ((1, tx.view(0)), (2, tx.revealing({2}))):
        packet = CrossPacket(PacketKind.PREPARE, tx.tx_id, index, view.encode())
        ack = participant.on_packet(packet, Height(0, 1), 0)
        assert ack.status is AckStatus.FAILED and "hides part" in ack.reason
        assert participant.status(tx.tx_id, index) is PartStatus.ABORT
    assert app.calls == []
    again = participant.on_packet(CrossPacket.prepare(tx, 2), Height(0, 1), 0)
    assert again.status is AckStatus.FAILED and app.calls == []  # its first answer stands
    ack = Participant(app).on_packet(CrossPacket.prepare(tx, 2), Height(0, 1), 0)
    assert ack.status is AckStatus.OK and app.calls[0].linked == (b"ok",)


# ----------------------------------------------------------------------------- tampering


def test_a_changed_digest_or_revealed_part_changes_the_id_and_is_refused() -> None:
    tx = three_parts()
    view = tx.view(1)
    parts = list(view.parts)
    parts[0] = hashlib.sha256(b"another part 0").digest()
    forged_digest = replace(view, parts=tuple(parts))
    parts = list(view.parts)
    parts[1] = replace(tx.contract_transactions[1], call_info=b"pay 1000000")
    forged_part = replace(view, parts=tuple(parts))
    forged_header = replace(view, nonce=10)
    for forged in (forged_digest, forged_part, forged_header):
        assert forged.tx_id != tx.tx_id
        with pytest.raises(SerializationError, match="not of the transaction it names"):
            CrossPacket(PacketKind.CALL, tx.tx_id, 1, forged.encode())
        with pytest.raises(SerializationError, match="not of the transaction it names"):
            payload = abi_encode(["bytes", "bytes"], [b"\x01" * 20, forged.encode()])
            CrossPacket(PacketKind.SIGN, tx.tx_id, 1, payload)


def test_only_canonical_views_decode() -> None:
    tx = three_parts()
    data = tx.view(2).encode()
    for bad in (data + b"\0", data[:-1], b"", tx.encode()):
        with pytest.raises(SerializationError):
            TxView.decode(bad)
    (raw,) = abi_decode([VIEW_ABI], data)
    chain_id, nonce, protocol, entries, height, timestamp = raw

    def rebuilt(entries: list[tuple[bytes, bytes]]) -> bytes:
        value = (chain_id, nonce, protocol, entries, height, timestamp)
        return bytes(abi_encode([VIEW_ABI], [value]))

    digest0 = tx.contract_transactions[0].digest
    both = [(digest0, entries[0][1]), *entries[1:]]  # a revealed part carrying its digest too
    with pytest.raises(SerializationError, match="carries no digest"):
        TxView.decode(rebuilt(both))
    padded = [(entries[0][0], entries[0][1] + bytes(32)), *entries[1:]]  # a part not canonical
    with pytest.raises(SerializationError, match="not canonically encoded"):
        TxView.decode(rebuilt(padded))
    empty = [entries[0], (bytes(32), b""), entries[2]]  # neither digest nor part
    with pytest.raises(CrossTxError, match="non-zero"):
        TxView.decode(rebuilt(empty))


# ----------------------------------------------------------------------------- bounds


def test_every_view_of_the_largest_transaction_fits_a_packet() -> None:
    signers = tuple(Account(SignerKind.EXTENSION, bytes([k]) * 64) for k in range(MAX_SIGNERS))
    part = ContractTransaction(
        ChannelInfo("cross", "channel-0"),
        signers,
        b"c" * MAX_CALL_INFO,
        b"r" * MAX_RETURN_VALUE,
        (),
        SALTS[0],
    )
    four = (part, *(replace(part, links=(Link(0),), salt=s) for s in SALTS[1:]))
    largest = InitiateTx("c" * 64, 1, CommitProtocol.TPC, four, Height(0, 1))
    assert len(largest.encode()) <= MAX_TX
    for index in range(4):  # each view reveals its part and part 0
        assert len(largest.view(index).encode()) <= MAX_VIEW
        assert len(CrossPacket.sign(largest.view(index), index, b"\x01" * 64).encode()) <= 8192
    far = ChannelInfo("p" * 128, "channel-" + "9" * 56)  # the longest identifiers: too big
    with pytest.raises(CrossTxError, match="views would not fit"):
        replace(
            largest, contract_transactions=tuple(replace(p, cross_chain_channel=far) for p in four)
        )


@given(transactions())
def test_every_view_of_any_transaction_round_trips_fits_and_keeps_the_id(tx: InitiateTx) -> None:
    assert len(tx.contract_transactions) <= MAX_CONTRACT_TRANSACTIONS
    for index in range(len(tx.contract_transactions)):
        view = tx.view(index)
        encoded = view.encode()
        assert len(encoded) <= MAX_VIEW
        assert TxView.decode(encoded) == view and view.tx_id == tx.tx_id


# ----------------------------------------------------------------------------- Vyper agrees


@pytest.fixture(scope="module")
def chain_w3() -> Iterator[Any]:
    with EmbeddedChain() as chain:
        yield embedded_web3(chain)


@pytest.fixture(scope="module")
def tx_id_contract(chain_w3: Any) -> Any:
    compiled = toolchain.compile_contract("cross/tx_id")
    return toolchain.deploy(chain_w3, compiled, sender=dev_accounts()[0])


def test_the_evm_participant_opens_only_a_view_of_its_transaction_revealing_its_part(
    chain_w3: Any,
) -> None:
    """``cross_auth.open_view``: what the EVM module checks before it runs a part."""
    deployer = dev_accounts()[0]
    auth = toolchain.deploy(chain_w3, "cross/cross_auth", deployer.address, sender=deployer)
    tx = replace(three_parts(), timeout_height=Height(0, 10**9))
    opened = auth.functions.open_view(tx.tx_id, tx.view(2).encode(), 2).call()
    reason, part, linked = opened
    assert reason == "" and tuple(part) == tx.contract_transactions[2].abi_tuple()
    assert [bytes(v) for v in linked] == [b"ok"]
    refusals = [
        (tx.tx_id, tx.view(0).encode(), 1, "hides this part"),
        (tx.tx_id, tx.revealing({2}).encode(), 2, "hides this part or a part it links to"),
        (replace(tx, nonce=1).tx_id, tx.view(2).encode(), 2, "not of the transaction"),
    ]
    for tx_id, view, index, why in refusals:
        assert why in auth.functions.open_view(tx_id, view, index).call()[0]
    late = replace(tx, timeout_height=Height(0, 1))
    assert "timed out" in auth.functions.open_view(late.tx_id, late.view(2).encode(), 2).call()[0]


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(transactions())
def test_vyper_computes_the_same_digests_views_and_ids(tx_id_contract: Any, tx: InitiateTx) -> None:
    functions = tx_id_contract.functions
    for index, ct in enumerate(tx.contract_transactions):
        assert bytes(functions.part_digest(ct.abi_tuple()).call()) == ct.digest
        view = tx.view(index)
        assert bytes(functions.view_of(tx.abi_tuple(), index).call()) == view.encode()
        assert bytes(functions.view_id(view.abi_tuple()).call()) == tx.tx_id


def test_vyper_gives_a_tampered_view_another_id(tx_id_contract: Any) -> None:
    tx = three_parts()
    view = tx.view(1)
    forged = replace(view, parts=(hashlib.sha256(b"x").digest(), *view.parts[1:]))
    assert bytes(tx_id_contract.functions.view_id(forged.abi_tuple()).call()) == forged.tx_id
    assert forged.tx_id != tx.tx_id
    chain_id, nonce, protocol, entries, height, timestamp = view.abi_tuple()
    both = [
        (tx.contract_transactions[1].digest, entries[1][1]) if i == 1 else e
        for i, e in enumerate(entries)
    ]
    malformed = (chain_id, nonce, protocol, both, height, timestamp)
    assert bytes(tx_id_contract.functions.view_id(malformed).call()) == bytes(32)


def test_the_dvp_example_agrees_too(tx_id_contract: Any) -> None:
    tx = salted(dvp())
    assert bytes(tx_id_contract.functions.tx_id(tx.abi_tuple()).call()) == tx.tx_id
