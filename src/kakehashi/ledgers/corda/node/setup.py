"""Building networks: key files, node directories, the network map, the embedded network.

A network directory holds ``network-map.toml`` and one folder per party with its key
(``identity.key``) and database (``node.sqlite``)::

    NET/
      network-map.toml
      notary/identity.key  notary/node.sqlite
      bank-a/identity.key  bank-a/node.sqlite

The embedded network runs every party in one process over :class:`InProcessTransport`; the same
directory can be served by separate processes over HTTP (``kakehashi corda serve``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from kakehashi.errors import ConfigurationError, UnknownPartyError
from kakehashi.ledgers.corda.model.crypto import KeyPair
from kakehashi.ledgers.corda.model.identity import Party, X500Name
from kakehashi.ledgers.corda.node.network import NetworkMap, NodeInfo
from kakehashi.ledgers.corda.node.node import Node, NotaryNode, SignCheck
from kakehashi.ledgers.corda.node.notary import UniquenessProvider
from kakehashi.ledgers.corda.node.storage import make_engine, sqlite_url
from kakehashi.ledgers.corda.node.transport import InProcessTransport, Transport
from kakehashi.ledgers.corda.node.vault import NodeDatabase

NETWORK_MAP = "network-map.toml"


def slug(name: X500Name) -> str:
    """A folder name for a party: its organisation, lower-case, dashes for anything else."""
    return re.sub(r"[^a-z0-9]+", "-", name.organisation.lower()).strip("-") or "node"


def load_key(path: Path) -> KeyPair:
    try:
        return KeyPair.from_text(path.read_text())
    except FileNotFoundError:
        raise ConfigurationError(f"key file {path} does not exist") from None
    except (ValueError, KeyError) as exc:
        raise ConfigurationError(f"key file {path} is not a valid key: {exc}") from None


def write_key(path: Path, key: KeyPair) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key.to_text() + "\n")


def init_network(
    directory: Path,
    notary: str,
    nodes: Sequence[str],
    *,
    validating: bool = False,
    base_port: int | None = None,
) -> NetworkMap:
    """Create keys and a network map for a notary and nodes; refuses to overwrite one."""
    map_path = directory / NETWORK_MAP
    if map_path.exists():
        raise ConfigurationError(f"{map_path} already exists; choose an empty directory")
    names = [X500Name.parse(notary), *(X500Name.parse(n) for n in nodes)]
    if len({slug(n) for n in names}) != len(names):
        raise ConfigurationError("two parties would share a folder; give distinct organisations")
    infos = []
    for i, name in enumerate(names):
        key = KeyPair.generate()
        write_key(directory / slug(name) / "identity.key", key)
        url = f"http://127.0.0.1:{base_port + i}" if base_port else None
        infos.append(NodeInfo(Party(name, key.public), url, notary=i == 0, validating=validating))
    network = NetworkMap(infos)
    map_path.write_text(network.to_toml())
    return network


def open_node(
    directory: Path,
    network: NetworkMap,
    name: X500Name,
    transport: Transport,
    *,
    db_url: str | None = None,
    sign_check: SignCheck | None = None,
) -> Node:
    info = network.info(name)
    if info.notary:
        raise ConfigurationError(f"{name} is a notary; open it with open_notary")
    key = load_key(directory / slug(name) / "identity.key")
    if key.public != info.party.owning_key:
        raise ConfigurationError(f"the key in {directory / slug(name)} is not {name}'s")
    engine = make_engine(db_url or sqlite_url(directory / slug(name) / "node.sqlite"))
    db = NodeDatabase(engine, [key.public])
    return Node(info.party, key, db, network, transport, sign_check)


def open_notary(
    directory: Path,
    network: NetworkMap,
    name: X500Name,
    transport: Transport,
    *,
    db_url: str | None = None,
) -> NotaryNode:
    info = network.info(name)
    if not info.notary:
        raise ConfigurationError(f"{name} is not a notary on the network map")
    key = load_key(directory / slug(name) / "identity.key")
    engine = make_engine(db_url or sqlite_url(directory / slug(name) / "node.sqlite"))
    db = NodeDatabase(engine, [])
    return NotaryNode(
        info.party, key, db, UniquenessProvider(engine), network, transport, info.validating
    )


class EmbeddedNetwork:
    """Every party of a network in one process, on SQLite files, talking in-process.

    Stopping a party takes it off the transport and closes its database; starting it again
    opens the same database, as a process restart would.
    """

    def __init__(self, directory: Path, network: NetworkMap | None = None) -> None:
        self.directory = directory
        self.map = network or NetworkMap.load(directory / NETWORK_MAP)
        self.transport = InProcessTransport()
        self.nodes: dict[X500Name, Node] = {}
        self.notaries: dict[X500Name, NotaryNode] = {}
        for info in self.map.nodes:
            self.start(info.party.name)

    @classmethod
    def create(
        cls,
        directory: Path,
        notary: str = "O=Notary, L=Zurich, C=CH",
        nodes: Sequence[str] = ("O=Bank A, L=London, C=GB", "O=Bank B, L=Tokyo, C=JP"),
        *,
        validating: bool = False,
    ) -> EmbeddedNetwork:
        return cls(directory, init_network(directory, notary, nodes, validating=validating))

    def start(self, name: X500Name | str) -> Node | NotaryNode:
        name = X500Name.parse(name) if isinstance(name, str) else name
        info = self.map.info(name)
        peer: Node | NotaryNode
        if info.notary:
            peer = open_notary(self.directory, self.map, name, self.transport)
            self.notaries[name] = peer
        else:
            peer = open_node(self.directory, self.map, name, self.transport)
            self.nodes[name] = peer
        self.transport.register(name, peer.handle)
        return peer

    def stop(self, name: X500Name | str) -> None:
        name = X500Name.parse(name) if isinstance(name, str) else name
        self.transport.unregister(name)
        peer = self.nodes.pop(name, None) or self.notaries.pop(name, None)
        if peer is not None:
            peer.db.engine.dispose()

    def restart(self, name: X500Name | str) -> Node | NotaryNode:
        self.stop(name)
        return self.start(name)

    def node(self, name: X500Name | str) -> Node:
        name = X500Name.parse(name) if isinstance(name, str) else name
        try:
            return self.nodes[name]
        except KeyError:
            raise UnknownPartyError(f"{name} is not a running node of this network") from None

    @property
    def notary(self) -> NotaryNode:
        return next(iter(self.notaries.values()))

    def close(self) -> None:
        for name in list(self.nodes) + list(self.notaries):
            self.stop(name)
