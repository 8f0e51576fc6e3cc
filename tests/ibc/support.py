"""Test-only IBC plumbing: two in-memory hosts, a signed-root light client and a relayer.

TEST ONLY — never used outside ``tests/``. Each :class:`TestChain` runs an
:class:`~kakehashi.ibc.handler.IbcHandler` over a :class:`~kakehashi.ibc.store.MemoryStore` and
"commits blocks": at every commit it records a Merkle root over its provable store. Its
counterparty trusts it through a :class:`SignedRootClient`, which accepts statements
``(height, timestamp, root)`` signed by the chain's Ed25519 test key and verifies real Merkle
membership / non-membership proofs against those roots — so a tampered proof, a proof for
another height, path or value genuinely fails. The :class:`Relayer` carries bytes only.

Merkle commitment (sorted-leaf tree): leaves are ``(sha256(prefix ‖ path), value)`` sorted by
key; ``leaf = sha256(0x00 ‖ key ‖ value)``, ``node = sha256(0x01 ‖ left ‖ right)``, the leaf level
padded with zero hashes to a power of two; ``root = sha256(0x02 ‖ u64be(n) ‖ tree root)`` so the
number of leaves is committed too. Absence of a key is proven by its two adjacent leaves (or the
one edge leaf, or n = 0).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kakehashi.errors import KakehashiError, VerificationError
from kakehashi.ibc import host
from kakehashi.ibc.client import ClientStatus
from kakehashi.ibc.handler import IbcHandler
from kakehashi.ibc.router import Router
from kakehashi.ibc.store import MemorySnapshot, MemoryStore
from kakehashi.ibc.types import (
    ChannelCounterparty,
    ConnectionCounterparty,
    Height,
    Order,
    Packet,
)

REVISION = 1
GENESIS_TIME_NS = 1_700_000_000_000_000_000
BLOCK_TIME_NS = 1_000_000_000

# ---------------------------------------------------------------------------- Merkle tree


def _h(*parts: bytes) -> bytes:
    return hashlib.sha256(b"".join(parts)).digest()


def tree_key(prefix: bytes, path: bytes) -> bytes:
    return _h(prefix, path)


def _leaf(key: bytes, value: bytes) -> bytes:
    return _h(b"\x00", key, value)


def _depth(n: int) -> int:
    return max(0, (n - 1).bit_length())


def _levels(leaves: list[bytes]) -> list[list[bytes]]:
    level = leaves + [bytes(32)] * ((1 << _depth(len(leaves))) - len(leaves))
    levels = [level]
    while len(level) > 1:
        level = [_h(b"\x01", level[i], level[i + 1]) for i in range(0, len(level), 2)]
        levels.append(level)
    return levels


def _root(n: int, tree_root: bytes) -> bytes:
    return _h(b"\x02", struct.pack(">Q", n), tree_root)


@dataclass(frozen=True)
class MerkleTree:
    """A sorted-leaf tree over ``(key, value)`` pairs (keys 32 bytes, distinct)."""

    entries: tuple[tuple[bytes, bytes], ...]
    levels: list[list[bytes]] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        leaves = [_leaf(k, v) for k, v in self.entries]
        object.__setattr__(self, "levels", _levels(leaves) if leaves else [[bytes(32)]])

    @classmethod
    def of(cls, items: dict[bytes, bytes]) -> MerkleTree:
        return cls(tuple(sorted(items.items())))

    @property
    def root(self) -> bytes:
        return _root(len(self.entries), self.levels[-1][0])

    def _siblings(self, index: int) -> bytes:
        out = []
        for level in self.levels[:-1]:
            out.append(level[index ^ 1])
            index >>= 1
        return b"".join(out)

    def _entry(self, index: int) -> bytes:
        key, value = self.entries[index]
        return struct.pack(">Q", index) + key + value + self._siblings(index)

    def prove(self, key: bytes) -> bytes:
        """Membership proof of ``key``: 0x01 ‖ n ‖ index ‖ key ‖ value ‖ siblings."""
        for index, (k, _) in enumerate(self.entries):
            if k == key:
                return b"\x01" + struct.pack(">Q", len(self.entries)) + self._entry(index)
        raise KeyError(key)

    def prove_absence(self, key: bytes) -> bytes:
        """Non-membership proof: 0x02 ‖ n ‖ (flag ‖ left entry) ‖ (flag ‖ right entry)."""
        keys = [k for k, _ in self.entries]
        if key in keys:
            raise KeyError(key)
        right = next((i for i, k in enumerate(keys) if k > key), len(keys))
        out = b"\x02" + struct.pack(">Q", len(keys))
        for index in (right - 1, right):
            if 0 <= index < len(keys):
                out += b"\x01" + self._entry(index)
            else:
                out += b"\x00"
        return out


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, n: int) -> bytes:
        if self.at + n > len(self.data):
            raise VerificationError("malformed Merkle proof: truncated")
        chunk = self.data[self.at : self.at + n]
        self.at += n
        return chunk

    def u64(self) -> int:
        return int(struct.unpack(">Q", self.take(8))[0])

    def done(self) -> None:
        if self.at != len(self.data):
            raise VerificationError("malformed Merkle proof: trailing bytes")


def _entry_root(reader: _Reader, n: int) -> tuple[int, bytes, bytes, bytes]:
    """Read one proven entry; returns (index, key, value, the root it implies)."""
    index, key, value = reader.u64(), reader.take(32), reader.take(32)
    if index >= n:
        raise VerificationError("Merkle proof: leaf index out of range")
    node, i = _leaf(key, value), index
    for _ in range(_depth(n)):
        sibling = reader.take(32)
        node = _h(b"\x01", node, sibling) if i % 2 == 0 else _h(b"\x01", sibling, node)
        i >>= 1
    return index, key, value, _root(n, node)


def verify_member(root: bytes, proof: bytes, key: bytes, value: bytes) -> None:
    reader = _Reader(proof)
    if reader.take(1) != b"\x01":
        raise VerificationError("not a membership proof")
    n = reader.u64()
    _, k, v, implied = _entry_root(reader, n)
    reader.done()
    if implied != root:
        raise VerificationError("membership proof does not lead to the trusted root")
    if k != key:
        raise VerificationError("membership proof is for another path")
    if v != value:
        raise VerificationError("the proven value differs from the expected one")


def verify_non_member(root: bytes, proof: bytes, key: bytes) -> None:
    reader = _Reader(proof)
    if reader.take(1) != b"\x02":
        raise VerificationError("not a non-membership proof")
    n = reader.u64()
    sides: list[tuple[int, bytes] | None] = []
    for _ in range(2):
        flag = reader.take(1)
        if flag == b"\x00":
            sides.append(None)
            continue
        if flag != b"\x01":
            raise VerificationError("malformed non-membership proof")
        index, k, _, implied = _entry_root(reader, n)
        if implied != root:
            raise VerificationError("non-membership proof does not lead to the trusted root")
        sides.append((index, k))
    reader.done()
    left, right = sides
    if left is None and right is None:
        if n != 0 or _root(0, bytes(32)) != root:
            raise VerificationError("non-membership proof: the tree is not empty")
        return
    if left is not None and not left[1] < key:
        raise VerificationError("non-membership proof: left neighbour is not below the key")
    if right is not None and not key < right[1]:
        raise VerificationError("non-membership proof: right neighbour is not above the key")
    if left is None and right is not None and right[0] != 0:
        raise VerificationError("non-membership proof: right neighbour is not the first leaf")
    if right is None and left is not None and left[0] != n - 1:
        raise VerificationError("non-membership proof: left neighbour is not the last leaf")
    if left is not None and right is not None and right[0] != left[0] + 1:
        raise VerificationError("non-membership proof: neighbours are not adjacent")


# ---------------------------------------------------------------------------- light client

STATEMENT = struct.Struct(">QQQ32s")  # revision number, revision height, timestamp ns, root


def sign_statement(key: Ed25519PrivateKey, height: Height, timestamp_ns: int, root: bytes) -> bytes:
    body = STATEMENT.pack(height.revision_number, height.revision_height, timestamp_ns, root)
    return body + key.sign(b"kakehashi-test-statement" + body)


class SignedRootClient:
    """TEST-ONLY light client: trusts one Ed25519 key's signed (height, time, root) statements."""

    client_type = "99-signed-root"

    def __init__(self, public_key: Ed25519PublicKey, initial_statement: bytes) -> None:
        self.public_key = public_key
        self.consensus: dict[Height, tuple[int, bytes]] = {}
        self.frozen = False
        self.update(initial_statement, 0)

    def latest_height(self) -> Height:
        return max(self.consensus)

    def status(self, now_ns: int) -> ClientStatus:
        return ClientStatus.FROZEN if self.frozen else ClientStatus.ACTIVE

    def update(self, message: bytes, now_ns: int) -> Height:
        if len(message) != STATEMENT.size + 64:
            raise VerificationError("a statement is 88 bytes and a 64-byte signature")
        body, signature = message[: STATEMENT.size], message[STATEMENT.size :]
        try:
            self.public_key.verify(signature, b"kakehashi-test-statement" + body)
        except InvalidSignature:
            raise VerificationError("the statement is not signed by the trusted key") from None
        rev, height_, timestamp, root = STATEMENT.unpack(body)
        height = Height(rev, height_)
        known = self.consensus.get(height)
        if known is not None and known != (timestamp, root):
            raise VerificationError(f"a conflicting statement for height {height}")
        self.consensus[height] = (timestamp, root)
        return height

    def _consensus(self, height: Height) -> tuple[int, bytes]:
        try:
            return self.consensus[height]
        except KeyError:
            raise VerificationError(f"no verified statement for height {height}") from None

    def timestamp_at(self, height: Height) -> int:
        return self._consensus(height)[0]

    def verify_membership(
        self, height: Height, proof: bytes, prefix: bytes, path: bytes, value: bytes
    ) -> None:
        verify_member(self._consensus(height)[1], proof, tree_key(prefix, path), value)

    def verify_non_membership(
        self, height: Height, proof: bytes, prefix: bytes, path: bytes
    ) -> None:
        verify_non_member(self._consensus(height)[1], proof, tree_key(prefix, path))

    def client_state(self) -> bytes:
        return self.public_key.public_bytes_raw() + STATEMENT.pack(
            self.latest_height().revision_number, self.latest_height().revision_height, 0, bytes(32)
        )


# ---------------------------------------------------------------------------- application


class RecordingApp:
    """An IbcModule that records every callback; acknowledges ``b"ok:" + data`` by default."""

    def __init__(self, ack_mode: str = "sync") -> None:
        self.ack_mode = ack_mode  # "sync" | "async" | "refuse" | "empty"
        self.received: list[Packet] = []
        self.acknowledged: list[tuple[Packet, bytes]] = []
        self.timed_out: list[Packet] = []
        self.events: list[tuple[str, Any]] = []
        self.refuse_close = False

    def on_chan_open_init(
        self,
        order: Order,
        connection_hops: Any,
        port_id: str,
        channel_id: str,
        counterparty: ChannelCounterparty,
        version: str,
    ) -> str:
        self.events.append(("open_init", channel_id))
        return version or "app-1"

    def on_chan_open_try(
        self,
        order: Order,
        connection_hops: Any,
        port_id: str,
        channel_id: str,
        counterparty: ChannelCounterparty,
        counterparty_version: str,
    ) -> str:
        self.events.append(("open_try", channel_id))
        return counterparty_version

    def on_chan_open_ack(
        self, port_id: str, channel_id: str, counterparty_channel_id: str, counterparty_version: str
    ) -> None:
        self.events.append(("open_ack", channel_id))

    def on_chan_open_confirm(self, port_id: str, channel_id: str) -> None:
        self.events.append(("open_confirm", channel_id))

    def on_chan_close_init(self, port_id: str, channel_id: str) -> None:
        if self.refuse_close:
            raise KakehashiError("this application refuses to close its channel")
        self.events.append(("close_init", channel_id))

    def on_chan_close_confirm(self, port_id: str, channel_id: str) -> None:
        self.events.append(("close_confirm", channel_id))

    def on_recv_packet(self, packet: Packet) -> bytes | None:
        if self.ack_mode == "refuse":
            raise KakehashiError("this application refuses the packet")
        self.received.append(packet)
        if self.ack_mode == "async":
            return None
        if self.ack_mode == "empty":
            return b""
        return b"ok:" + packet.data

    def on_acknowledgement_packet(self, packet: Packet, acknowledgement: bytes) -> None:
        self.acknowledged.append((packet, acknowledgement))

    def on_timeout_packet(self, packet: Packet) -> None:
        self.timed_out.append(packet)


# ---------------------------------------------------------------------------- chains


class TestChain:
    """A host whose 'blocks' are explicit commits; height h's state includes every write made
    while ``host_height()`` returned h."""

    __test__ = False  # not a pytest class

    def __init__(self, name: str, port: str = "transfer", ack_mode: str = "sync") -> None:
        self.name = name
        self.prefix = f"ibc-{name}".encode()
        self.key = Ed25519PrivateKey.generate()
        self.store = MemoryStore()
        self.app = RecordingApp(ack_mode)
        self.port = port
        router = Router()
        router.bind(port, self.app)
        self.height = 0  # last committed height
        self.time_ns = GENESIS_TIME_NS  # time of the block being built
        self.roots: dict[int, tuple[int, MerkleTree]] = {}
        self.handler = IbcHandler(
            self.store,
            prefix=self.prefix,
            host_height=lambda: Height(REVISION, self.height + 1),
            host_timestamp_ns=lambda: self.time_ns,
            router=router,
        )
        self.commit()

    def commit(self, blocks: int = 1) -> int:
        """Seal ``blocks`` blocks; returns the new height."""
        for _ in range(blocks):
            self.height += 1
            items = {tree_key(self.prefix, p): v for p, v in self.store.provable_items()}
            self.roots[self.height] = (self.time_ns, MerkleTree.of(items))
            self.time_ns += BLOCK_TIME_NS
        return self.height

    def statement(self, height: int | None = None) -> bytes:
        h = self.height if height is None else height
        timestamp, tree = self.roots[h]
        return sign_statement(self.key, Height(REVISION, h), timestamp, tree.root)

    def prove(self, path: bytes, height: int | None = None) -> bytes:
        tree = self.roots[self.height if height is None else height][1]
        return tree.prove(tree_key(self.prefix, path))

    def prove_absence(self, path: bytes, height: int | None = None) -> bytes:
        tree = self.roots[self.height if height is None else height][1]
        return tree.prove_absence(tree_key(self.prefix, path))

    def value_at(self, path: bytes, height: int) -> bytes | None:
        """What this chain had committed under ``path`` at ``height`` (None when nothing)."""
        tree = self.roots[height][1]
        return dict(tree.entries).get(tree_key(self.prefix, path))

    def snapshot(self) -> tuple[MemorySnapshot, list[bytes]]:
        """Everything a failed call must leave alone (the store and its clients' states)."""
        snap = self.store.snapshot()
        return snap, [client.client_state() for _, client in snap.clients]

    @contextmanager
    def unchanged(self) -> Iterator[None]:
        """Assert the block under the ``with`` leaves the store exactly as it was."""
        before = self.snapshot()
        events = (
            len(self.app.received),
            len(self.app.acknowledged),
            len(self.app.timed_out),
            len(self.app.events),
        )
        try:
            yield
        finally:
            assert self.snapshot() == before, f"{self.name}'s store changed"
            after = (
                len(self.app.received),
                len(self.app.acknowledged),
                len(self.app.timed_out),
                len(self.app.events),
            )
            assert after == events, f"{self.name}'s application was called"

    def run(self, call: Callable[[IbcHandler], Any]) -> Any:
        """Run one handler call in the block being built, then seal the block."""
        result = call(self.handler)
        self.commit()
        return result


@dataclass
class Path:
    """Identifiers of a connection and channel between chains ``a`` and ``b``."""

    a_client: str = ""
    b_client: str = ""
    a_connection: str = ""
    b_connection: str = ""
    a_channel: str = ""
    b_channel: str = ""


class Relayer:
    """Plays the relayer between ``a`` and ``b``: it reads one chain and submits bytes (headers,
    encoded packets, proofs) to the other. Trusted by nobody."""

    def __init__(self, a: TestChain, b: TestChain) -> None:
        self.a, self.b = a, b
        self.path = Path()
        self.path.a_client = a.run(
            lambda h: h.create_client(SignedRootClient(b.key.public_key(), b.statement()))
        )
        self.path.b_client = b.run(
            lambda h: h.create_client(SignedRootClient(a.key.public_key(), a.statement()))
        )

    def other(self, chain: TestChain) -> TestChain:
        return self.b if chain is self.a else self.a

    def client_on(self, chain: TestChain) -> str:
        return self.path.a_client if chain is self.a else self.path.b_client

    def connection_on(self, chain: TestChain) -> str:
        return self.path.a_connection if chain is self.a else self.path.b_connection

    def channel_on(self, chain: TestChain) -> str:
        return self.path.a_channel if chain is self.a else self.path.b_channel

    def update(self, dst: TestChain) -> Height:
        """Bring ``dst``'s client of the other chain to the other chain's latest height."""
        src = self.other(dst)
        stmt = src.statement()
        client_id = self.client_on(dst)
        return dst.run(lambda h: h.update_client(client_id, stmt, dst.time_ns))  # type: ignore[no-any-return]

    # -- handshakes --------------------------------------------------------------------------

    def open_connection(self) -> None:
        a, b, p = self.a, self.b, self.path
        p.a_connection = a.run(
            lambda h: h.conn_open_init(p.a_client, ConnectionCounterparty(p.b_client, "", b.prefix))
        )
        proof_height = self.update(b)
        end = a.handler.connection(p.a_connection)
        proof = a.prove(host.connection_path(p.a_connection))
        p.b_connection = b.run(
            lambda h: h.conn_open_try(
                p.b_client,
                ConnectionCounterparty(p.a_client, p.a_connection, a.prefix),
                end.versions,
                end.delay_period,
                proof,
                proof_height,
            )
        )
        proof_height = self.update(a)
        b_end = b.handler.connection(p.b_connection)
        proof = b.prove(host.connection_path(p.b_connection))
        a.run(
            lambda h: h.conn_open_ack(
                p.a_connection, p.b_connection, b_end.versions[0], proof, proof_height
            )
        )
        proof_height = self.update(b)
        proof = a.prove(host.connection_path(p.a_connection))
        b.run(lambda h: h.conn_open_confirm(p.b_connection, proof, proof_height))

    def open_channel(self, order: Order, version: str = "app-1") -> None:
        a, b, p = self.a, self.b, self.path
        p.a_channel = a.run(
            lambda h: h.chan_open_init(
                a.port, order, [p.a_connection], ChannelCounterparty(b.port, ""), version
            )
        )
        proof_height = self.update(b)
        a_end = a.handler.channel(a.port, p.a_channel)
        proof = a.prove(host.channel_path(a.port, p.a_channel))
        p.b_channel = b.run(
            lambda h: h.chan_open_try(
                b.port,
                order,
                [p.b_connection],
                ChannelCounterparty(a.port, p.a_channel),
                a_end.version,
                proof,
                proof_height,
            )
        )
        proof_height = self.update(a)
        b_end = b.handler.channel(b.port, p.b_channel)
        proof = b.prove(host.channel_path(b.port, p.b_channel))
        a.run(
            lambda h: h.chan_open_ack(
                a.port, p.a_channel, p.b_channel, b_end.version, proof, proof_height
            )
        )
        proof_height = self.update(b)
        proof = a.prove(host.channel_path(a.port, p.a_channel))
        b.run(lambda h: h.chan_open_confirm(b.port, p.b_channel, proof, proof_height))

    def close_channel(self, initiator: TestChain) -> None:
        other = self.other(initiator)
        initiator.run(lambda h: h.chan_close_init(initiator.port, self.channel_on(initiator)))
        proof_height = self.update(other)
        proof = initiator.prove(host.channel_path(initiator.port, self.channel_on(initiator)))
        other.run(
            lambda h: h.chan_close_confirm(other.port, self.channel_on(other), proof, proof_height)
        )

    # -- packets -----------------------------------------------------------------------------

    def send(
        self,
        src: TestChain,
        data: bytes,
        timeout_height: Height | None = None,
        timeout_timestamp: int = 0,
    ) -> bytes:
        """The source application sends; returns the encoded packet a relayer would carry."""
        if timeout_height is None and timeout_timestamp == 0:
            timeout_height = Height(REVISION, 10**9)
        packet: Packet = src.run(
            lambda h: h.send_packet(
                src.port, self.channel_on(src), timeout_height or Height(), timeout_timestamp, data
            )
        )
        return packet.encode()

    def deliver(self, src: TestChain, packet_bytes: bytes) -> bytes | None:
        """Relay a packet from ``src``: update the destination's client, prove, receive."""
        dst = self.other(src)
        packet = Packet.decode(packet_bytes)
        proof_height = self.update(dst)
        proof = src.prove(
            host.packet_commitment_path(packet.source_port, packet.source_channel, packet.sequence)
        )
        return dst.run(lambda h: h.recv_packet(packet, proof, proof_height))  # type: ignore[no-any-return]

    def acknowledge(self, src: TestChain, packet_bytes: bytes, ack: bytes) -> None:
        """Relay the acknowledgement of a packet ``src`` sent back to ``src``."""
        dst = self.other(src)
        packet = Packet.decode(packet_bytes)
        proof_height = self.update(src)
        proof = dst.prove(
            host.ack_path(packet.destination_port, packet.destination_channel, packet.sequence)
        )
        src.run(lambda h: h.acknowledge_packet(packet, ack, proof, proof_height))

    def timeout_proof(self, src: TestChain, packet: Packet) -> tuple[bytes, Height, int]:
        """Update ``src``'s client of the destination and prove the packet unreceived there."""
        dst = self.other(src)
        proof_height = self.update(src)
        end = src.handler.channel(packet.source_port, packet.source_channel)
        if end.ordering is Order.ORDERED:
            path = host.next_sequence_recv_path(packet.destination_port, packet.destination_channel)
            value = dst.store.get(path)
            assert value is not None
            return dst.prove(path), proof_height, int.from_bytes(value, "big")
        receipt = host.packet_receipt_path(
            packet.destination_port, packet.destination_channel, packet.sequence
        )
        return dst.prove_absence(receipt), proof_height, 0

    def timeout(self, src: TestChain, packet_bytes: bytes) -> None:
        packet = Packet.decode(packet_bytes)
        proof, proof_height, next_recv = self.timeout_proof(src, packet)
        src.run(lambda h: h.timeout_packet(packet, proof, proof_height, next_recv))


def connected(order: Order = Order.UNORDERED, ack_mode: str = "sync") -> Relayer:
    """Two fresh chains with an OPEN connection and an OPEN channel of ``order`` between them."""
    relayer = Relayer(TestChain("a", ack_mode=ack_mode), TestChain("b", ack_mode=ack_mode))
    relayer.open_connection()
    relayer.open_channel(order)
    return relayer
