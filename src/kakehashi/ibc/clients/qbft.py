"""ICS-02 client of an EVM chain with QBFT finality, as the Corda-model host keeps it.

State: the chain id, the IBC handler contract's address and the storage slot of its
``commitments`` mapping, the trusted validator set, and one consensus state (timestamp, state
root, validators) per verified height. An update is a block header (RLP) verified by
:func:`kakehashi.lightclients.qbft.verify_header` against the validators trusted at the latest
height (a changed set needs > 1/3 of them among its signers). Membership of ``value`` under an
ICS-24 path at a height is the ``eth_getProof`` proof of the handler's storage slot
``keccak256(slot ‖ keccak256(path))`` against that height's state root.

The EVM host's commitment prefix is its handler contract's address: a proof for another
contract (or another chain's contract) never verifies.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import rlp

from kakehashi.errors import VerificationError
from kakehashi.ibc.client import ClientStatus
from kakehashi.ibc.types import Height
from kakehashi.ledgers.evm.proofs import encode_slot_proof, mapping_entry_slot, verify_slot_proof
from kakehashi.lightclients.qbft import parse_header, verify_header

__all__ = ["CLIENT_TYPE", "ConsensusState", "QbftClient", "encode_proof", "storage_key"]

# ICS-24 client ids are at least 9 characters: the handler names clients "{type}-{n}".
CLIENT_TYPE = "qbft-evm"
_NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class ConsensusState:
    timestamp: int  # seconds, as the header carries it
    state_root: bytes
    validators: tuple[bytes, ...]


def storage_key(commitments_slot: int, path: bytes) -> int:
    """The storage slot holding ``path``'s commitment (Vyper: ``keccak256(slot ‖ key)``)."""
    return mapping_entry_slot(commitments_slot, path)


#: The proof bytes this client reads: ``RLP([account proof nodes, storage proof nodes])``.
encode_proof = encode_slot_proof


@dataclass
class QbftClient:
    """The client; :meth:`kakehashi.ibc.client.LightClient` implemented over QBFT + MPT proofs."""

    chain_id: int
    ibc_handler: bytes  # 20-byte address: the counterparty's commitment prefix
    commitments_slot: int
    trusting_period_s: int = 14 * 24 * 3600
    max_clock_drift_s: int = 30
    consensus: dict[Height, ConsensusState] = field(default_factory=dict)
    frozen: bool = False
    client_type: str = CLIENT_TYPE

    @classmethod
    def from_trusted_header(
        cls,
        header_rlp: bytes,
        validators: list[bytes],
        *,
        chain_id: int,
        ibc_handler: bytes,
        commitments_slot: int,
        trusting_period_s: int = 14 * 24 * 3600,
        max_clock_drift_s: int = 30,
    ) -> QbftClient:
        """Start from a header the host operator trusts (checked against ``validators``)."""
        header = verify_header(header_rlp, validators)
        client = cls(chain_id, ibc_handler, commitments_slot, trusting_period_s, max_clock_drift_s)
        client.consensus[Height(0, header.number)] = ConsensusState(
            header.timestamp, header.state_root, header.validators
        )
        return client

    def latest_height(self) -> Height:
        return max(self.consensus) if self.consensus else Height()

    def status(self, now_ns: int) -> ClientStatus:
        if self.frozen:
            return ClientStatus.FROZEN
        latest = self.consensus.get(self.latest_height())
        if latest is None or now_ns // _NS >= latest.timestamp + self.trusting_period_s:
            return ClientStatus.EXPIRED
        return ClientStatus.ACTIVE

    def update(self, message: bytes, now_ns: int) -> Height:
        """Verify a header against the latest trusted state and remember its consensus state.

        A valid header that conflicts with one already verified for the same height proves the
        validators equivocated: the client freezes (every later call fails) instead of raising.
        """
        self._require_active(now_ns)
        number = parse_header(message).number
        # Verified from the highest trusted height below it: normally the latest; for a header
        # at a height already known, the one before (that is how equivocation is caught).
        below = [h for h in self.consensus if h.revision_height < number]
        if not below:
            raise VerificationError(
                f"header {number} is not above any trusted height (earliest "
                f"{min(self.consensus)}): it cannot be verified"
            )
        trusted_height = max(below)
        trusted = self.consensus[trusted_height]
        header = verify_header(
            message,
            list(trusted.validators),
            trusted_height=trusted_height.revision_height,
            trusted_timestamp=trusted.timestamp,
            now=now_ns // _NS,
            trusting_period=self.trusting_period_s,
            max_clock_drift=self.max_clock_drift_s,
        )
        height = Height(0, header.number)
        known = self.consensus.get(height)
        state = ConsensusState(header.timestamp, header.state_root, header.validators)
        if known is not None and known != state:
            # Two valid headers for one height: the validators equivocated. Freeze (ICS-02) —
            # and return normally, so that the host records the frozen client.
            self.frozen = True
            return height
        self.consensus[height] = state
        return height

    def timestamp_at(self, height: Height) -> int:
        return self._consensus_at(height).timestamp * _NS

    def verify_membership(
        self, height: Height, proof: bytes, prefix: bytes, path: bytes, value: bytes
    ) -> None:
        if len(value) != 32 or value == bytes(32):
            raise VerificationError("a committed value is 32 non-zero bytes")
        if self._proven_value(height, proof, prefix, path) != value:
            raise VerificationError(f"the chain does not commit that value under {path!r}")

    def verify_non_membership(
        self, height: Height, proof: bytes, prefix: bytes, path: bytes
    ) -> None:
        if self._proven_value(height, proof, prefix, path) != bytes(32):
            raise VerificationError(f"the chain commits a value under {path!r}")

    def client_state(self) -> bytes:
        latest = self.latest_height()
        return bytes(
            rlp.encode(
                [
                    self.chain_id,
                    self.ibc_handler,
                    self.commitments_slot,
                    latest.revision_height,
                    int(self.frozen),
                ]
            )
        )

    def _proven_value(self, height: Height, proof: bytes, prefix: bytes, path: bytes) -> bytes:
        if self.frozen:
            raise VerificationError("the QBFT client is frozen")
        if prefix != self.ibc_handler:
            raise VerificationError(
                f"prefix {prefix.hex()} is not the tracked IBC handler {self.ibc_handler.hex()}"
            )
        consensus = self._consensus_at(height)
        slot = storage_key(self.commitments_slot, path)
        value = verify_slot_proof(consensus.state_root, self.ibc_handler, slot, proof)
        return value.to_bytes(32, "big")

    def _consensus_at(self, height: Height) -> ConsensusState:
        consensus = self.consensus.get(height)
        if consensus is None:
            raise VerificationError(
                f"height {height} has not been verified by this client "
                f"(latest {self.latest_height()}): update the client first"
            )
        return consensus

    def _require_active(self, now_ns: int) -> None:
        status = self.status(now_ns)
        if status is not ClientStatus.ACTIVE:
            raise VerificationError(f"the QBFT client is {status.value}")
