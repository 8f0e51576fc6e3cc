"""Cross transactions between two Corda-model hosts over a real IBC channel (notarised host
versions, the Corda light client on both sides, proofs relayed by the test): the coordinator on
Bank A, a participant on Bank B, each step in the same host version as its packet."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from nacl.bindings import crypto_sign_seed_keypair

from kakehashi.cross.auth import corda_key_id, ed25519_account, sign_ed25519, sign_party
from kakehashi.cross.corda_module import CROSS_PORT, CROSS_VERSION, CrossModule
from kakehashi.cross.kv import kv_call
from kakehashi.cross.participant import PartCall
from kakehashi.cross.status import AuthStatus, Decision, PartStatus
from kakehashi.cross.tx import (
    Account,
    ChannelInfo,
    CommitProtocol,
    ContractTransaction,
    CrossTxError,
    InitiateTx,
    SignerKind,
)
from kakehashi.errors import SignatureError
from kakehashi.ibc import host as paths
from kakehashi.ibc.corda_host import CordaIbcHost
from kakehashi.ibc.types import Height
from kakehashi.ledgers.corda.node.setup import EmbeddedNetwork
from tests.ibc.test_corda_host import TwoHosts, open_channel


def operator(host: CordaIbcHost, kind: SignerKind = SignerKind.LOCAL) -> Account:
    """The account of the party running ``host`` (it signs what it initiates)."""
    return Account(kind, corda_key_id(host.node.party.owning_key))


@pytest.fixture
def linked(tmp_path: Path) -> Iterator[tuple[TwoHosts, CrossModule, CrossModule]]:
    net = EmbeddedNetwork.create(tmp_path / "net")
    try:
        a, b = CrossModule(), CrossModule()
        hosts = open_channel(net, CROSS_PORT, (a, b), CROSS_VERSION)
        a.attach(hosts.a)
        b.attach(hosts.b)
        yield hosts, a, b
    finally:
        net.close()


def relay(hosts: TwoHosts, *, drop: set[int] | None = None, back: bool = False) -> None:
    """Deliver every packet A sent that B has not received, and bring the acknowledgements back,
    until nothing is pending; packets whose sequence is in ``drop`` are not delivered: they are
    timed out on A once B has passed their timeout height. ``back``: B's packets to A."""
    if back:
        hosts = TwoHosts(
            hosts.b, hosts.a, hosts.app_b, hosts.app_a, hosts.cb, hosts.ca,
            hosts.chan_b, hosts.chan_a, hosts.now,
        )  # fmt: skip
    a, b = hosts.a, hosts.b
    for _ in range(20):
        sent = a.sent_packets(CROSS_PORT, hosts.chan_a)
        if not sent:
            return
        for packet in sent:
            receipt = paths.packet_receipt_path(CROSS_PORT, hosts.chan_b, packet.sequence)
            if b.value_at(receipt) is None:
                if drop and packet.sequence in drop:
                    while b.version < packet.timeout_height.revision_height:
                        b.execute(lambda s: s.set(b"padding/x", b"\x01" * 32))  # time passes
                        b.execute(lambda s: s.set(b"padding/x", b"\x02" * 32))
                    h = hosts.update(a, b)
                    a.ibc.timeout_packet(packet, b.prove(receipt, h), h, 0)
                    continue
                h = hosts.update(b, a)
                commitment = paths.packet_commitment_path(CROSS_PORT, hosts.chan_a, packet.sequence)
                b.ibc.recv_packet(packet, a.prove(commitment, h), h)
            (ack,) = [
                x
                for p, x in b.written_acks(CROSS_PORT, hosts.chan_b, packet.sequence)
                if p.sequence == packet.sequence
            ]
            h = hosts.update(a, b)
            ack_path = paths.ack_path(CROSS_PORT, hosts.chan_b, packet.sequence)
            a.ibc.acknowledge_packet(packet, ack, b.prove(ack_path, h), h)
    raise AssertionError("relaying does not finish")


def transaction(
    hosts: TwoHosts,
    protocol: CommitProtocol,
    key: bytes,
    value: bytes,
    nonce: int = 1,
    signers: tuple[Account, ...] | None = None,
    timeout: Height = Height(0, 10**6),
) -> InitiateTx:
    """Set ``key`` to ``value`` on A (part 0) and B (part 1); both parts signed by ``signers``
    (default: A's operator, who initiates)."""
    channel = ChannelInfo(CROSS_PORT, hosts.chan_a)
    named = signers or (operator(hosts.a),)
    local = ContractTransaction(channel, named, kv_call(key, value), b"ok")
    remote = ContractTransaction(channel, named, kv_call(key, value), b"ok")
    return InitiateTx("bank-a", nonce, protocol, (local, remote), timeout)


@pytest.mark.parametrize("protocol", [CommitProtocol.SIMPLE, CommitProtocol.TPC])
def test_a_cross_transaction_commits_on_both_hosts(
    linked: tuple[TwoHosts, CrossModule, CrossModule], protocol: CommitProtocol
) -> None:
    hosts, a, b = linked
    tx = transaction(hosts, protocol, b"invoice-7", b"paid")
    a.initiate(tx)
    assert a.app.locked_by(b"invoice-7") == tx.tx_id  # prepared locally: locked
    relay(hosts)
    c = a.coordinator(tx.tx_id)
    assert c is not None and c.decision is Decision.COMMIT and c.done
    assert a.app.value(b"invoice-7") == b"paid" and b.app.value(b"invoice-7") == b"paid"
    assert not a.app.locks() and not b.app.locks()
    with pytest.raises(CrossTxError, match="already initiated"):
        a.initiate(tx)


def test_a_lock_conflict_on_the_participant_aborts_everywhere(
    linked: tuple[TwoHosts, CrossModule, CrossModule],
) -> None:
    hosts, a, b = linked
    blocker = transaction(hosts, CommitProtocol.TPC, b"k", b"first", nonce=1)
    b.host.execute(
        lambda _s: b.app.prepare(PartCall(blocker.tx_id, 0, kv_call(b"k", b"first")))
    )  # k locked on B
    tx = transaction(hosts, CommitProtocol.TPC, b"k", b"second", nonce=2)
    a.initiate(tx)
    relay(hosts)
    c = a.coordinator(tx.tx_id)
    assert c is not None and c.decision is Decision.ABORT and c.done
    assert "locked by" in c.failures[1]
    assert a.app.value(b"k") is None and b.app.value(b"k") is None
    assert not a.app.locks()  # A's prepared part was released by the abort
    assert b.app.locked_by(b"k") == blocker.tx_id  # B's other transaction keeps its own lock


def test_a_prepare_that_times_out_aborts_and_leaves_no_lock(
    linked: tuple[TwoHosts, CrossModule, CrossModule],
) -> None:
    hosts, a, b = linked
    a.timeout_span = 2
    tx = transaction(hosts, CommitProtocol.TPC, b"k", b"v")
    a.initiate(tx)
    (prepare,) = a.host.sent_packets(CROSS_PORT, hosts.chan_a)
    relay(hosts, drop={prepare.sequence})
    c = a.coordinator(tx.tx_id)
    assert c is not None and c.decision is Decision.ABORT and c.done
    assert c.parts[0] is PartStatus.ABORT
    assert not a.app.locks() and not b.app.locks()
    assert b.app.value(b"k") is None


# ---------------------------------------------------------------------------- authentication


def ed25519_public(seed: bytes) -> bytes:
    return bytes(crypto_sign_seed_keypair(seed)[0])


def test_nothing_runs_until_every_signer_has_signed(
    linked: tuple[TwoHosts, CrossModule, CrossModule],
) -> None:
    hosts, a, b = linked
    seed = b"\x07" * 32
    partner = operator(hosts.b)  # Bank B's party signs with its key, on A, as a LOCAL signer
    extension = ed25519_account(ed25519_public(seed))
    tx = transaction(
        hosts, CommitProtocol.TPC, b"deal", b"done", signers=(operator(hosts.a), partner, extension)
    )
    a.initiate(tx)
    auth = a.authentication(tx.tx_id)
    assert auth is not None and set(auth.missing()) == {partner, extension}
    assert a.app.locked_by(b"deal") is None and not hosts.a.sent_packets(CROSS_PORT, hosts.chan_a)
    with pytest.raises(SignatureError):  # A's key is not B's
        a.sign(tx.tx_id, partner, sign_party(hosts.a.node.key, tx.tx_id))
    assert a.sign(tx.tx_id, partner, sign_party(hosts.b.node.key, tx.tx_id)) is AuthStatus.PENDING
    assert a.sign(tx.tx_id, extension, sign_ed25519(seed, tx.tx_id)) is AuthStatus.VERIFIED
    assert a.app.locked_by(b"deal") == tx.tx_id  # prepared in the version of the last signature
    relay(hosts)
    assert a.app.value(b"deal") == b"done" and b.app.value(b"deal") == b"done"
    assert any("authenticated" in e for _, e in a.timeline(tx.tx_id))


def test_a_channel_signer_signs_on_its_own_ledger_and_ibc_proves_it(
    linked: tuple[TwoHosts, CrossModule, CrossModule],
) -> None:
    hosts, a, b = linked
    remote = operator(hosts.b, SignerKind.CHANNEL)
    tx = transaction(hosts, CommitProtocol.SIMPLE, b"k", b"v", signers=(operator(hosts.a), remote))
    a.initiate(tx)
    with pytest.raises(CrossTxError, match="CHANNEL signer signs on the ledger across"):
        a.sign(tx.tx_id, remote, sign_party(hosts.b.node.key, tx.tx_id))
    with pytest.raises(SignatureError):
        b.sign_remote(tx, 1, hosts.chan_b, remote, sign_party(hosts.a.node.key, tx.tx_id))
    b.sign_remote(tx, 1, hosts.chan_b, remote, sign_party(hosts.b.node.key, tx.tx_id))
    assert a.app.locked_by(b"k") is None
    relay(hosts, back=True)  # the SIGN packet reaches A with its proof: A starts
    assert a.app.locked_by(b"k") == tx.tx_id
    relay(hosts)
    c = a.coordinator(tx.tx_id)
    assert c is not None and c.decision is Decision.COMMIT
    assert b.app.value(b"k") == b"v" and not a.app.locks() and not b.app.locks()


def test_pending_authentication_expires_at_the_timeout(
    linked: tuple[TwoHosts, CrossModule, CrossModule],
) -> None:
    hosts, a, _ = linked
    partner = operator(hosts.b)
    deadline = Height(hosts.a.height.revision_number, hosts.a.version + 3)
    signers = (operator(hosts.a), partner)
    tx = transaction(hosts, CommitProtocol.TPC, b"k", b"v", signers=signers, timeout=deadline)
    a.initiate(tx)
    while hosts.a.version < deadline.revision_height:
        hosts.a.execute(lambda s: s.set(b"padding/x", hosts.a.version.to_bytes(32, "big")))
    with pytest.raises(CrossTxError, match="timed out"):
        a.sign(tx.tx_id, partner, sign_party(hosts.b.node.key, tx.tx_id))
    auth = a.authentication(tx.tx_id)
    assert auth is not None
    assert auth.status(hosts.a.height, hosts.a.timestamp_ns) is AuthStatus.EXPIRED
    assert not a.app.locks() and not hosts.a.sent_packets(CROSS_PORT, hosts.chan_a)
