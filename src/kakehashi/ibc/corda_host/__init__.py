"""The Corda-model ledger as an IBC host (DESIGN.md §3): notarised host versions over a sparse
Merkle tree of the provable store, proofs that :mod:`kakehashi.lightclients.corda` verifies.

``host`` (:class:`CordaIbcHost`: storage, atomic calls, proofs), ``contract`` (the host state's
rules), ``codecs`` (how the light clients the handler keeps are persisted).
"""

from kakehashi.ibc.corda_host.codecs import register_client_codec
from kakehashi.ibc.corda_host.contract import CordaHostContract, HostAdvance, HostGenesis
from kakehashi.ibc.corda_host.host import CordaIbcHost, HostStore, TransactionalHandler
from kakehashi.lightclients.corda import HOST_CONTRACT, IbcHostState

__all__ = [
    "HOST_CONTRACT",
    "CordaHostContract",
    "CordaIbcHost",
    "HostAdvance",
    "HostGenesis",
    "HostStore",
    "IbcHostState",
    "TransactionalHandler",
    "register_client_codec",
]
