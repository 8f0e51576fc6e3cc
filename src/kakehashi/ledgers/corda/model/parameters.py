"""Network parameters: what every node of one Corda-model network agrees on."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

from kakehashi.ledgers.corda.model.identity import Party
from kakehashi.ledgers.corda.model.serialization import serializable, serialize


@serializable("corda.NotaryInfo")
@dataclass(frozen=True, slots=True)
class NotaryInfo:
    """A notary the network trusts, and whether it validates transactions."""

    party: Party
    validating: bool


@serializable("corda.NetworkParameters")
@dataclass(frozen=True, slots=True)
class NetworkParameters:
    """The network's rules; their hash goes into every transaction's PARAMETERS group."""

    min_platform_version: int
    notaries: tuple[NotaryInfo, ...]
    epoch: int = 1
    max_transaction_size: int = 10 * 1024 * 1024

    def hash(self) -> bytes:
        return _parameters_hash(self)

    def notary(self, party: Party) -> NotaryInfo | None:
        for info in self.notaries:
            if info.party == party:
                return info
        return None


@functools.lru_cache(maxsize=16)
def _parameters_hash(parameters: NetworkParameters) -> bytes:
    return hashlib.sha256(serialize(parameters)).digest()
