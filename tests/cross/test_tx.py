"""The cross-ledger transaction model: canonical encoding, id, rules, initiation, statuses — and
the same encoding and id computed by Vyper on the embedded EVM chain
(``contracts/cross/tx_id.vy``). Views and salted part commitments: tests/cross/test_views.py."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kakehashi.cross.status import AuthStatus, Decision, PartStatus, advance_part, decide
from kakehashi.cross.tx import (
    MAX_CALL_INFO,
    Account,
    ChannelInfo,
    CommitProtocol,
    ContractTransaction,
    CrossTxError,
    InitiateTx,
    Link,
    SignerKind,
    check_initiation,
)
from kakehashi.errors import SerializationError
from kakehashi.ibc.types import Height
from kakehashi.ledgers.evm import toolchain
from kakehashi.ledgers.evm.chain import EmbeddedChain, dev_accounts
from kakehashi.ledgers.evm.provider import embedded_web3

EVM_BUYER = Account(SignerKind.LOCAL, bytes.fromhex("f39fd6e51aad88f6f4ce6ab8827279cfffb92266"))
CORDA_SELLER = Account(SignerKind.CHANNEL, b"O=Bank B, L=Tokyo, C=JP")


def dvp(**changes: Any) -> InitiateTx:
    """A two-ledger Simple Commit: pay on one ledger, deliver on the other (returns b"ok")."""
    tx = InitiateTx(
        chain_id="kakehashi-evm-1337",
        nonce=7,
        commit_protocol=CommitProtocol.SIMPLE,
        contract_transactions=(
            ContractTransaction(
                ChannelInfo("cross", "channel-0"), (EVM_BUYER,), b"pay 100 JPYS", b"ok"
            ),
            ContractTransaction(
                ChannelInfo("cross", "channel-1"),
                (CORDA_SELLER,),
                b"deliver NFT 42",
                None,
                (Link(0),),
            ),
        ),
        timeout_height=Height(0, 1_000),
        timeout_timestamp=0,
    )
    return replace(tx, **changes)


# ----------------------------------------------------------------------------- encoding


def test_the_id_commits_to_the_parts_digests_and_decode_inverts_the_encoding() -> None:
    tx = dvp()
    digests = [hashlib.sha256(ct.encode()).digest() for ct in tx.contract_transactions]
    assert tx.digests == tuple(digests)  # the salted parts' commitments (tests/cross/test_views)
    assert InitiateTx.decode(tx.encode()) == tx
    assert dvp(nonce=8).tx_id != tx.tx_id
    assert tx.signers() == (EVM_BUYER, CORDA_SELLER)


def test_anything_but_canonical_bytes_is_refused() -> None:
    data = dvp().encode()
    for bad in (data + b"\0", data[:-1], b"", b"\x01" * 64):
        with pytest.raises(SerializationError):
            InitiateTx.decode(bad)
    # a well-formed encoding of a transaction breaking a rule is a CrossTxError
    three = dvp(
        commit_protocol=CommitProtocol.TPC,
        contract_transactions=dvp().contract_transactions * 2,
    )
    encoded = bytearray(three.encode())
    protocol_word = 2 * 32  # (offset, chain id offset, nonce, protocol...): find it by value
    assert encoded[32 + protocol_word + 31] == CommitProtocol.TPC
    encoded[32 + protocol_word + 31] = CommitProtocol.SIMPLE
    with pytest.raises(CrossTxError, match="exactly two"):
        InitiateTx.decode(bytes(encoded))
    encoded[32 + protocol_word + 31] = 9
    with pytest.raises(SerializationError, match="commit protocol"):
        InitiateTx.decode(bytes(encoded))


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"timeout_height": Height()}, "needs a timeout"),
        ({"chain_id": ""}, "chain id"),
        ({"nonce": 2**64}, "64-bit"),
        ({"contract_transactions": ()}, "2 to 4"),
    ],
)
def test_malformed_transactions_are_refused(changes: dict[str, Any], match: str) -> None:
    with pytest.raises(CrossTxError, match=match):
        dvp(**changes)


def test_contract_transaction_rules() -> None:
    first, second = dvp().contract_transactions
    cases = [
        (replace(second, links=(Link(1),)), "not another part"),
        (replace(second, links=(Link(5),)), "not another part"),
        (replace(second, signers=()), "1 to 3 signers"),
        (replace(second, signers=(CORDA_SELLER, CORDA_SELLER)), "twice"),
        (replace(second, call_info=b"x" * (MAX_CALL_INFO + 1)), "call info"),
        (replace(second, salt=b"\x01" * 31), "salt is 32 bytes"),
        (replace(second, cross_chain_channel=ChannelInfo("cross", "bad id!")), "identifier"),
    ]
    for part, match in cases:
        with pytest.raises(CrossTxError, match=match):
            dvp(contract_transactions=(first, part))
    with pytest.raises(CrossTxError, match="declares no return value"):
        dvp(contract_transactions=(replace(first, return_value=None), second))


def test_initiation_refuses_a_known_id_or_a_passed_timeout() -> None:
    tx = dvp(timeout_timestamp=5_000)
    assert check_initiation(tx, known_ids=set(), height=Height(0, 10), timestamp_ns=0) == tx.tx_id
    with pytest.raises(CrossTxError, match="already initiated"):
        check_initiation(tx, known_ids={tx.tx_id}, height=Height(0, 10), timestamp_ns=0)
    with pytest.raises(CrossTxError, match="timed out at height"):
        check_initiation(tx, known_ids=set(), height=Height(0, 1_000), timestamp_ns=0)
    with pytest.raises(CrossTxError, match="timed out at 5000"):
        check_initiation(tx, known_ids=set(), height=Height(0, 10), timestamp_ns=5_000)


def test_status_moves_are_one_way_and_idempotent() -> None:
    assert advance_part(PartStatus.NONE, PartStatus.PREPARE) is PartStatus.PREPARE
    assert advance_part(PartStatus.PREPARE, PartStatus.COMMIT) is PartStatus.COMMIT
    assert advance_part(PartStatus.COMMIT, PartStatus.COMMIT) is PartStatus.COMMIT
    assert advance_part(PartStatus.NONE, PartStatus.ABORT) is PartStatus.ABORT
    for current, new in [
        (PartStatus.COMMIT, PartStatus.ABORT),
        (PartStatus.ABORT, PartStatus.COMMIT),
        (PartStatus.NONE, PartStatus.COMMIT),
        (PartStatus.ABORT, PartStatus.PREPARE),
    ]:
        with pytest.raises(CrossTxError):
            advance_part(current, new)
    assert decide(Decision.UNKNOWN, Decision.ABORT) is Decision.ABORT
    assert decide(Decision.ABORT, Decision.ABORT) is Decision.ABORT
    with pytest.raises(CrossTxError, match="decided ABORT"):
        decide(Decision.ABORT, Decision.COMMIT)
    with pytest.raises(CrossTxError):
        decide(Decision.UNKNOWN, Decision.UNKNOWN)
    assert [s.name for s in AuthStatus] == ["PENDING", "VERIFIED", "EXPIRED"]


# ----------------------------------------------------------------------------- properties

_port = st.from_regex(r"[a-z][a-z0-9.\-]{1,20}", fullmatch=True)
_channel = st.integers(0, 10_000).map(lambda n: f"channel-{n}")
_account = st.builds(Account, st.sampled_from(list(SignerKind)), st.binary(min_size=1, max_size=64))


@st.composite
def transactions(draw: st.DrawFn) -> InitiateTx:
    count = draw(st.integers(2, 4))
    protocol = CommitProtocol.SIMPLE if count == 2 and draw(st.booleans()) else CommitProtocol.TPC
    values = [draw(st.none() | st.binary(max_size=64)) for _ in range(count)]
    parts = []
    for index in range(count):
        sources = [i for i in range(count) if i != index and values[i] is not None]
        links = draw(st.lists(st.sampled_from(sources), max_size=3)) if sources else []
        parts.append(
            ContractTransaction(
                ChannelInfo(draw(_port), draw(_channel)),
                tuple(draw(st.lists(_account, min_size=1, max_size=3, unique=True))),
                draw(st.binary(max_size=200)),
                values[index],
                tuple(Link(s) for s in links),
                draw(st.binary(min_size=32, max_size=32)),
            )
        )
    return InitiateTx(
        draw(
            st.text(st.characters(codec="utf-8"), min_size=1, max_size=16).filter(
                lambda s: 0 < len(s.encode()) <= 64
            )
        ),
        draw(st.integers(0, 2**64 - 1)),
        protocol,
        tuple(parts),
        Height(draw(st.integers(0, 5)), draw(st.integers(1, 2**64 - 1))),
        draw(st.integers(0, 2**64 - 1)),
    )


@given(transactions())
def test_every_transaction_round_trips_and_keeps_its_id(tx: InitiateTx) -> None:
    again = InitiateTx.decode(tx.encode())
    assert again == tx and again.tx_id == tx.tx_id


# ----------------------------------------------------------------------------- Vyper agrees


@pytest.fixture(scope="module")
def tx_id_contract() -> Iterator[Any]:
    with EmbeddedChain() as chain:
        w3 = embedded_web3(chain)
        compiled = toolchain.compile_contract("cross/tx_id")
        yield toolchain.deploy(w3, compiled, sender=dev_accounts()[0])


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(transactions())
def test_vyper_computes_the_same_encoding_and_id(tx_id_contract: Any, tx: InitiateTx) -> None:
    abi_value = tx.abi_tuple()
    assert bytes(tx_id_contract.functions.encode(abi_value).call()) == tx.encode()
    assert bytes(tx_id_contract.functions.tx_id(abi_value).call()) == tx.tx_id


def test_vyper_agrees_on_the_dvp_example(tx_id_contract: Any) -> None:
    tx = dvp()
    assert bytes(tx_id_contract.functions.tx_id(tx.abi_tuple()).call()) == tx.tx_id
