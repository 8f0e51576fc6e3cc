"""A cross transaction across the two ledgers, relayed through the real LCP path: the Corda
host coordinates (its CrossModule on port ``cross``, running part 0), the EVM chain participates
(``contracts/cross/cross_kv.vy``, part 1). Every packet crosses with an enclave-signed
proof that the receiving ledger's LCP client checks (:mod:`tests.relayer.support`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kakehashi.cli.tx import evm_view
from kakehashi.cross.auth import corda_key_id
from kakehashi.cross.corda_module import CROSS_PORT
from kakehashi.cross.kv import kv_call
from kakehashi.cross.participant import PartCall
from kakehashi.cross.status import Decision
from kakehashi.cross.tx import (
    Account,
    ChannelInfo,
    CommitProtocol,
    ContractTransaction,
    InitiateTx,
    SignerKind,
)
from kakehashi.errors import TransactionRevertedError
from kakehashi.ibc.types import Height
from kakehashi.ledgers.evm.chain import dev_accounts
from kakehashi.ledgers.evm.client import transact
from kakehashi.relayer.path import PathRelayer
from tests.relayer.support import World, world

EVM_SIGNER = Account(SignerKind.LOCAL, bytes.fromhex(dev_accounts()[0].address[2:]))


def corda_signer(w: World) -> Account:
    """The Corda host's operator, who initiates there (signing as it does)."""
    return Account(SignerKind.LOCAL, corda_key_id(w.host.node.party.owning_key))


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path, cross=True) as built:
        yield built


def transaction(
    w: World,
    protocol: CommitProtocol,
    key: bytes,
    value: bytes,
    nonce: int = 1,
    evm_key: bytes | None = None,
) -> InitiateTx:
    """Set ``key`` on the Corda host (part 0) and ``evm_key`` (default: the same) on the EVM
    chain (part 1) to ``value``."""
    assert w.record is not None
    channel = ChannelInfo(CROSS_PORT, w.record.b_channel_id)  # the Corda host's end
    return InitiateTx(
        "kakehashi-corda",
        nonce,
        protocol,
        (
            ContractTransaction(channel, (corda_signer(w),), kv_call(key, value), b"ok"),
            ContractTransaction(channel, (corda_signer(w),), kv_call(evm_key or key, value), b"ok"),
        ),
        Height(0, 10**6),
    )


def run(relayer: PathRelayer, rounds: int = 4) -> None:
    for _ in range(rounds):
        report = relayer.relay_once()
        assert not report.failed, report.failed


@pytest.mark.parametrize("protocol", [CommitProtocol.SIMPLE, CommitProtocol.TPC])
def test_corda_coordinates_and_the_evm_chain_commits_with_it(
    w: World, protocol: CommitProtocol
) -> None:
    relayer = w.link()
    tx = transaction(w, protocol, b"invoice-9", b"settled")
    w.cross.initiate(tx)
    run(relayer)
    c = w.cross.coordinator(tx.tx_id)
    assert c is not None and c.decision is Decision.COMMIT and c.done
    assert w.cross.app.value(b"invoice-9") == b"settled"
    assert bytes(w.app.functions.value(b"invoice-9").call()) == b"settled"
    assert bytes(w.app.functions.writer(b"invoice-9").call()) == bytes(32)
    assert not w.cross.app.locks()
    # what the EVM chain was shown (kakehashi tx status): its part, and part 0's digest only
    shown = evm_view(w.evm_host().handler, tx.tx_id)
    assert shown == tx.view(1) and shown.parts[0] == tx.contract_transactions[0].digest
    assert shown.shown()["0"] == {
        "part": "hidden",
        "digest": tx.contract_transactions[0].digest.hex(),
    }


def test_a_key_locked_on_the_evm_chain_aborts_the_transaction_on_both(w: World) -> None:
    """The first transaction's PREPARE locks k on the EVM chain; a second one writing k there
    (and another key on the Corda host) fails its EVM prepare: it aborts on both ledgers, its
    Corda lock is released, and the first still commits."""
    relayer = w.link()
    first = transaction(w, CommitProtocol.TPC, b"a", b"one", nonce=1, evm_key=b"k")
    second = transaction(w, CommitProtocol.TPC, b"b", b"two", nonce=2, evm_key=b"k")
    w.cross.initiate(first)
    relayer.relay_direction(relayer.directions()[1])  # first's PREPARE reaches the EVM chain
    assert bytes(w.app.functions.writer(b"k").call()) == first.tx_id
    w.cross.initiate(second)
    run(relayer)
    one, two = w.cross.coordinator(first.tx_id), w.cross.coordinator(second.tx_id)
    assert one is not None and one.decision is Decision.COMMIT and one.done
    assert two is not None and two.decision is Decision.ABORT and two.done
    assert "locked by another" in two.failures[1]
    assert bytes(w.app.functions.value(b"k").call()) == b"one"
    assert w.cross.app.value(b"a") == b"one" and w.cross.app.value(b"b") is None
    assert not w.cross.app.locks()
    assert bytes(w.app.functions.writer(b"k").call()) == bytes(32)


def evm_initiate(w: World, tx: InitiateTx, local: int = 0) -> None:
    transact(w.w3, w.kv.functions.initiate(tx.encode(), local), sender=dev_accounts()[0])


@pytest.mark.parametrize("protocol", [CommitProtocol.SIMPLE, CommitProtocol.TPC])
def test_the_evm_chain_coordinates_and_the_corda_host_commits_with_it(
    w: World, protocol: CommitProtocol
) -> None:
    relayer = w.link()
    assert w.record is not None
    channel = ChannelInfo(CROSS_PORT, w.record.a_channel_id)  # the EVM chain's end
    tx = InitiateTx(
        "kakehashi-evm",
        5,
        protocol,
        (
            ContractTransaction(channel, (EVM_SIGNER,), kv_call(b"order-3", b"shipped"), b"ok"),
            ContractTransaction(channel, (EVM_SIGNER,), kv_call(b"order-3", b"shipped"), b"ok"),
        ),
        Height(0, 10**6),
    )
    evm_initiate(w, tx)
    assert bytes(w.app.functions.writer(b"order-3").call()) == tx.tx_id  # prepared
    run(relayer)
    coordinated = w.kv.functions.coordination(tx.tx_id).call()  # (protocol, local, count, decision)
    assert tuple(coordinated) == (protocol, 0, 2, Decision.COMMIT)
    assert bytes(w.app.functions.value(b"order-3").call()) == b"shipped"
    assert w.cross.app.value(b"order-3") == b"shipped"
    assert not w.cross.app.locks()
    assert bytes(w.app.functions.writer(b"order-3").call()) == bytes(32)
    if protocol is CommitProtocol.TPC:  # the decision was acknowledged
        assert w.kv.functions.coordination_part(tx.tx_id, 1).call()[3] is True
    with pytest.raises(TransactionRevertedError, match="already initiated"):
        evm_initiate(w, tx)


def test_the_evm_coordinator_aborts_when_the_corda_part_fails(w: World) -> None:
    relayer = w.link()
    assert w.record is not None
    channel = ChannelInfo(CROSS_PORT, w.record.a_channel_id)
    blocker = transaction(w, CommitProtocol.TPC, b"x", b"held", nonce=1)
    held = PartCall(blocker.tx_id, 0, kv_call(b"x", b"held"))
    w.cross.host.execute(lambda _s: w.cross.app.prepare(held))
    tx = InitiateTx(
        "kakehashi-evm",
        6,
        CommitProtocol.TPC,
        (
            ContractTransaction(channel, (EVM_SIGNER,), kv_call(b"y", b"1"), b"ok"),
            ContractTransaction(channel, (EVM_SIGNER,), kv_call(b"x", b"1"), b"ok"),
        ),
        Height(0, 10**6),
    )
    evm_initiate(w, tx)
    run(relayer)
    _, _, _, decision = w.kv.functions.coordination(tx.tx_id).call()
    assert decision == Decision.ABORT
    assert bytes(w.app.functions.value(b"y").call()) == b""  # never applied
    assert bytes(w.app.functions.writer(b"y").call()) == bytes(32)  # released
    assert w.cross.app.locked_by(b"x") == blocker.tx_id  # the other transaction's lock stays
