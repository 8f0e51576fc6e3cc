"""ICS-02 client of a Corda-model IBC host, over :mod:`kakehashi.lightclients.corda`.

State: the trusted notary and host operator keys, the host state's linear id (also the host's
commitment prefix: a proof from another host never verifies), and one consensus state
(timestamp, sparse-Merkle root, transaction id) per verified host version. Heights are
``(revision_number, host version)``.

An update is a host state attestation (notary + operator signatures and a tear-off of the
transaction producing that version). Membership / non-membership proofs are commitment proofs
(attestation + sparse-Merkle proof of ``SHA256(path)``); they must be of a host version this
client has verified, and of the very host state it verified there.

The client never expires (a notary-signed state stays valid: the notary does not rotate keys
under the model); it freezes on misbehaviour (two host states for one version, or versions that
do not chain).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cbor2

from kakehashi.errors import SerializationError, VerificationError
from kakehashi.ibc.client import ClientStatus
from kakehashi.ibc.types import Height
from kakehashi.ledgers.corda.model.serialization import deserialize, serialize
from kakehashi.lightclients.corda import (
    CordaClientState,
    CordaConsensusState,
    update_client,
    verify_host_state,
    verify_membership,
    verify_non_membership,
)

__all__ = ["CLIENT_TYPE", "CordaClient"]

CLIENT_TYPE = "corda-host"


@dataclass
class CordaClient:
    """:class:`kakehashi.ibc.client.LightClient` of a Corda-model host."""

    state: CordaClientState
    consensus: dict[int, CordaConsensusState] = field(default_factory=dict)
    client_type: str = CLIENT_TYPE

    @classmethod
    def from_attestation(cls, state: CordaClientState, attestation: bytes) -> CordaClient:
        """Start from a host state attestation the operator of this client trusts."""
        client = cls(state)
        client.update(attestation, 0)
        return client

    @property
    def prefix(self) -> bytes:
        """The tracked host's commitment prefix: its host state's linear id."""
        return self.state.linear_id.id

    def latest_height(self) -> Height:
        return Height(self.state.revision_number, self.state.latest_version)

    def status(self, now_ns: int) -> ClientStatus:
        return ClientStatus.FROZEN if self.state.frozen else ClientStatus.ACTIVE

    def update(self, message: bytes, now_ns: int) -> Height:
        """Verify an attestation and remember its version.

        Raises :class:`VerificationError` (changing nothing) when it does not verify. Evidence
        of misbehaviour — a verified attestation conflicting with what the client holds — is
        not an error (ICS-02 ``CheckForMisbehaviour``): the client freezes, keeps no consensus
        state for it and returns its height, so that a host persisting the client after a
        successful update persists the freeze; every later verification then fails.
        """
        new_state, version, consensus = update_client(self.state, self.consensus, message)
        self.state = new_state
        if not new_state.frozen:
            self.consensus[version] = consensus
        return Height(self.state.revision_number, version)

    def timestamp_at(self, height: Height) -> int:
        return self._consensus_at(height).timestamp_ns

    def verify_membership(
        self, height: Height, proof: bytes, prefix: bytes, path: bytes, value: bytes
    ) -> None:
        trusted = self._check(height, prefix)
        verify_membership(
            self.state, proof, path, value, version=height.revision_height, trusted=trusted
        )

    def verify_non_membership(
        self, height: Height, proof: bytes, prefix: bytes, path: bytes
    ) -> None:
        trusted = self._check(height, prefix)
        verify_non_membership(
            self.state, proof, path, version=height.revision_height, trusted=trusted
        )

    def verify_host_state(self, proof: bytes) -> int:
        """The host version an attestation or proof proves (no state change)."""
        return verify_host_state(self.state, proof).version

    def client_state(self) -> bytes:
        return serialize(self.state)

    # -- persistence --------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """Canonical bytes of the whole client (state + consensus states), for a host's store."""
        consensus = {version: serialize(c) for version, c in sorted(self.consensus.items())}
        return bytes(cbor2.dumps([serialize(self.state), consensus], canonical=True))

    @classmethod
    def from_bytes(cls, data: bytes) -> CordaClient:
        try:
            raw_state, raw_consensus = cbor2.loads(data)
            state = deserialize(raw_state, CordaClientState)
            consensus = {
                int(v): deserialize(c, CordaConsensusState) for v, c in raw_consensus.items()
            }
        except SerializationError:
            raise
        except Exception as exc:
            raise SerializationError(f"malformed Corda client: {exc}") from None
        return cls(state, consensus)

    # -- internals ----------------------------------------------------------------------------

    def _check(self, height: Height, prefix: bytes) -> CordaConsensusState:
        if self.state.frozen:
            raise VerificationError("the Corda client is frozen")
        if prefix != self.prefix:
            raise VerificationError(
                f"prefix {prefix.hex()} is not the tracked host's {self.prefix.hex()}"
            )
        return self._consensus_at(height)

    def _consensus_at(self, height: Height) -> CordaConsensusState:
        if height.revision_number != self.state.revision_number:
            raise VerificationError(
                f"height {height} is not of revision {self.state.revision_number}"
            )
        consensus = self.consensus.get(height.revision_height)
        if consensus is None:
            raise VerificationError(
                f"height {height} has not been verified by this client "
                f"(latest {self.latest_height()}): update the client first"
            )
        return consensus
