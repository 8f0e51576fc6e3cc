"""The network map: who is on the network, their keys, addresses and the network parameters.

It is read from a TOML file that every node and notary of a network shares::

    [parameters]
    min_platform_version = 1
    epoch = 1

    [[nodes]]
    name = "O=Notary, L=Zurich, C=CH"
    key = "ed25519:..."
    url = "http://127.0.0.1:10000"
    notary = true
    validating = false

    [[nodes]]
    name = "O=Bank A, L=London, C=GB"
    key = "ed25519:..."
    url = "http://127.0.0.1:10001"
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from kakehashi.errors import ConfigurationError, KakehashiError, UnknownPartyError
from kakehashi.ledgers.corda.model.crypto import PublicKey
from kakehashi.ledgers.corda.model.identity import Party, X500Name
from kakehashi.ledgers.corda.model.parameters import NetworkParameters, NotaryInfo


@dataclass(frozen=True)
class NodeInfo:
    """One entry of the network map."""

    party: Party
    url: str | None = None
    notary: bool = False
    validating: bool = False


class NetworkMap:
    """Every party of one network, looked up by name or key."""

    def __init__(self, nodes: Iterable[NodeInfo], min_platform_version: int = 1, epoch: int = 1):
        self._by_name: dict[X500Name, NodeInfo] = {}
        self._by_key: dict[PublicKey, NodeInfo] = {}
        for info in nodes:
            if info.party.name in self._by_name:
                raise ConfigurationError(f"the network map lists {info.party.name} twice")
            if info.party.owning_key in self._by_key:
                raise ConfigurationError(f"{info.party.name} reuses another party's key")
            self._by_name[info.party.name] = info
            self._by_key[info.party.owning_key] = info
        notaries = tuple(
            NotaryInfo(i.party, i.validating) for i in self._by_name.values() if i.notary
        )
        self.parameters = NetworkParameters(min_platform_version, notaries, epoch)

    @property
    def nodes(self) -> list[NodeInfo]:
        return list(self._by_name.values())

    def info(self, name: X500Name | str) -> NodeInfo:
        if isinstance(name, str):
            name = X500Name.parse(name)
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownPartyError(
                f"{name} is not on the network map; add it to the network map file"
            ) from None

    def party(self, name: X500Name | str) -> Party:
        return self.info(name).party

    def party_from_key(self, key: PublicKey) -> Party | None:
        info = self._by_key.get(key)
        return info.party if info else None

    def notaries(self) -> list[Party]:
        return [info.party for info in self._by_name.values() if info.notary]

    def default_notary(self) -> Party:
        notaries = self.notaries()
        if not notaries:
            raise ConfigurationError("the network map has no notary")
        return notaries[0]

    def with_node(self, info: NodeInfo) -> NetworkMap:
        """A copy with ``info`` added (used when building a network)."""
        params = self.parameters
        return NetworkMap([*self.nodes, info], params.min_platform_version, params.epoch)

    @classmethod
    def load(cls, path: Path) -> NetworkMap:
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigurationError(f"network map file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"network map file {path} is not valid TOML: {exc}") from None
        params = data.get("parameters", {})
        nodes = []
        for entry in data.get("nodes", []):
            try:
                party = Party(X500Name.parse(entry["name"]), PublicKey.from_text(entry["key"]))
            except KeyError as exc:
                raise ConfigurationError(f"a node in {path} lacks the field {exc}") from None
            except KakehashiError as exc:
                raise ConfigurationError(f"bad node entry in {path}: {exc}") from None
            nodes.append(
                NodeInfo(
                    party,
                    entry.get("url"),
                    bool(entry.get("notary", False)),
                    bool(entry.get("validating", False)),
                )
            )
        return cls(nodes, int(params.get("min_platform_version", 1)), int(params.get("epoch", 1)))

    def to_toml(self) -> str:
        lines = [
            "[parameters]",
            f"min_platform_version = {self.parameters.min_platform_version}",
            f"epoch = {self.parameters.epoch}",
        ]
        for info in self._by_name.values():
            lines += ["", "[[nodes]]", f'name = "{info.party.name}"']
            lines.append(f'key = "{info.party.owning_key.to_text()}"')
            if info.url:
                lines.append(f'url = "{info.url}"')
            if info.notary:
                lines += ["notary = true", f"validating = {str(info.validating).lower()}"]
        return "\n".join(lines) + "\n"
