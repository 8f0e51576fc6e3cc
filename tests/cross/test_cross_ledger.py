"""A cross transaction across the two ledgers, relayed through the real LCP path: the Corda
host coordinates (its CrossModule on port ``cross``, running part 0), the EVM chain participates
(``contracts/cross/kv_participant.vy``, part 1). Every packet crosses with an enclave-signed
proof that the receiving ledger's LCP client checks (:mod:`tests.relayer.support`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kakehashi.cross.corda_module import CROSS_PORT, kv_call
from kakehashi.cross.status import Decision
from kakehashi.cross.tx import (
    Account,
    ChannelInfo,
    CommitProtocol,
    ContractTransaction,
    InitiateTx,
    SignerKind,
)
from kakehashi.ibc.types import Height
from kakehashi.relayer.path import PathRelayer
from tests.relayer.support import World, world

SIGNER = Account(SignerKind.LOCAL, b"\x01" * 20)


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
            ContractTransaction(channel, (SIGNER,), kv_call(key, value), b"ok"),
            ContractTransaction(channel, (SIGNER,), kv_call(evm_key or key, value), b"ok"),
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
    assert bytes(w.kv.functions.value(b"invoice-9").call()) == b"settled"
    assert bytes(w.kv.functions.locked_by(b"invoice-9").call()) == bytes(32)
    assert not w.cross.app.locks()


def test_a_key_locked_on_the_evm_chain_aborts_the_transaction_on_both(w: World) -> None:
    """The first transaction's PREPARE locks k on the EVM chain; a second one writing k there
    (and another key on the Corda host) fails its EVM prepare: it aborts on both ledgers, its
    Corda lock is released, and the first still commits."""
    relayer = w.link()
    first = transaction(w, CommitProtocol.TPC, b"a", b"one", nonce=1, evm_key=b"k")
    second = transaction(w, CommitProtocol.TPC, b"b", b"two", nonce=2, evm_key=b"k")
    w.cross.initiate(first)
    relayer.relay_direction(relayer.directions()[1])  # first's PREPARE reaches the EVM chain
    assert bytes(w.kv.functions.locked_by(b"k").call()) == first.tx_id
    w.cross.initiate(second)
    run(relayer)
    one, two = w.cross.coordinator(first.tx_id), w.cross.coordinator(second.tx_id)
    assert one is not None and one.decision is Decision.COMMIT and one.done
    assert two is not None and two.decision is Decision.ABORT and two.done
    assert "locked by another" in two.failures[1]
    assert bytes(w.kv.functions.value(b"k").call()) == b"one"
    assert w.cross.app.value(b"a") == b"one" and w.cross.app.value(b"b") is None
    assert not w.cross.app.locks()
    assert bytes(w.kv.functions.locked_by(b"k").call()) == bytes(32)
