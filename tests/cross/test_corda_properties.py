"""Cross transactions between two Corda-model hosts under random workloads (hypothesis): several
transactions in flight, Simple Commit and TPC, keys shared between them (lock conflicts), and
packets the relayer never delivers (their timeouts proven instead). Whatever happens, each
transaction ends decided and done, its parts end all committed or all aborted on both hosts, a
key's value always comes from a committed transaction, and no lock is left."""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kakehashi.cross.auth import corda_key_id
from kakehashi.cross.corda_module import CROSS_PORT, CROSS_VERSION, CrossModule
from kakehashi.cross.kv import kv_call
from kakehashi.cross.status import Decision, PartStatus
from kakehashi.cross.tx import (
    Account,
    ChannelInfo,
    CommitProtocol,
    ContractTransaction,
    InitiateTx,
    SignerKind,
)
from kakehashi.ibc import host as paths
from kakehashi.ibc.types import Height
from kakehashi.ledgers.corda.node.setup import EmbeddedNetwork
from tests.ibc.test_corda_host import TwoHosts, open_channel


def relay_randomly(hosts: TwoHosts, rng: random.Random, loss: float) -> None:
    """Deliver A's packets in random order; each is lost with probability ``loss`` (then timed
    out on A once B passed its timeout height); acknowledgements come back."""
    a, b = hosts.a, hosts.b
    for _ in range(60):
        sent = a.sent_packets(CROSS_PORT, hosts.chan_a)
        if not sent:
            return
        packet = rng.choice(sent)
        receipt = paths.packet_receipt_path(CROSS_PORT, hosts.chan_b, packet.sequence)
        if b.value_at(receipt) is None:
            h = hosts.update(b, a)  # (a host version on B when A moved on)
            # B moved on while it waited: a receive now would run at B's next version
            expired = Height(b.revision_number, b.version + 1) >= packet.timeout_height
            if expired or rng.random() < loss:
                while b.version < packet.timeout_height.revision_height:
                    b.execute(lambda s: s.set(b"padding/x", rng.randbytes(32)))
                h = hosts.update(a, b)
                a.ibc.timeout_packet(packet, b.prove(receipt, h), h, 0)
                continue
            commitment = paths.packet_commitment_path(CROSS_PORT, hosts.chan_a, packet.sequence)
            b.ibc.recv_packet(packet, a.prove(commitment, h), h)
        (ack,) = [
            x
            for p, x in b.written_acks(CROSS_PORT, hosts.chan_b, packet.sequence)
            if p.sequence == packet.sequence
        ]
        h = hosts.update(a, b)
        a.ibc.acknowledge_packet(
            packet, ack, b.prove(paths.ack_path(CROSS_PORT, hosts.chan_b, packet.sequence), h), h
        )
    raise AssertionError("relaying does not finish")


workloads = st.lists(
    st.tuples(
        st.sampled_from([CommitProtocol.SIMPLE, CommitProtocol.TPC]),
        st.sampled_from([b"a", b"b"]),  # key on A
        st.sampled_from([b"a", b"b"]),  # key on B
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workloads, st.sampled_from([0.0, 0.3]), st.integers(0, 2**32))
def test_random_workloads_end_atomic_with_no_lock(
    workload: list[tuple[CommitProtocol, bytes, bytes]], loss: float, seed: int
) -> None:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        net = EmbeddedNetwork.create(Path(tmp) / "net")
        try:
            a, b = CrossModule(timeout_span=12), CrossModule()
            hosts = open_channel(net, CROSS_PORT, (a, b), CROSS_VERSION)
            a.attach(hosts.a)
            b.attach(hosts.b)
            channel = ChannelInfo(CROSS_PORT, hosts.chan_a)
            signer = Account(SignerKind.LOCAL, corda_key_id(hosts.a.node.party.owning_key))
            txs = []
            for nonce, (protocol, key_a, key_b) in enumerate(workload, start=1):
                value = f"v{nonce}".encode()
                tx = InitiateTx(
                    "bank-a",
                    nonce,
                    protocol,
                    (
                        ContractTransaction(channel, (signer,), kv_call(key_a, value), b"ok"),
                        ContractTransaction(channel, (signer,), kv_call(key_b, value), b"ok"),
                    ),
                    Height(0, 10**6),
                )
                a.initiate(tx)
                txs.append(tx)
            relay_randomly(hosts, rng, loss)
            committed = set()
            for tx in txs:
                c = a.coordinator(tx.tx_id)
                assert c is not None and c.decision is not Decision.UNKNOWN and c.done
                remote_status = b.participant(tx.tx_id).get(1, PartStatus.NONE)
                if c.decision is Decision.COMMIT:
                    committed.add(tx.nonce)
                    assert c.parts == {0: PartStatus.COMMIT, 1: PartStatus.COMMIT}
                    assert remote_status is PartStatus.COMMIT
                else:
                    assert PartStatus.COMMIT not in c.parts.values()
                    assert remote_status in (PartStatus.NONE, PartStatus.ABORT)
            for module in (a, b):
                assert not module.app.locks()
                for key in (b"a", b"b"):
                    value = module.app.value(key)
                    assert value is None or int(value[1:]) in committed
        finally:
            net.close()
