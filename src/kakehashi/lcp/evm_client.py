"""Python bindings of the EVM LCP light client (``contracts/lightclients/lcp_client.vy``).

The contract trusts proxy messages (:mod:`kakehashi.lcp.messages`) signed by LCP enclave keys
that its operators registered. This module builds the bytes the contract takes:

* **Client state** ``abi.encode((bytes32 mrenclave, uint64 key_expiration, address[] operators,
  uint8 registration_threshold, uint8 message_threshold))``; key expiration in seconds.
* **Consensus state** ``abi.encode(((uint64,uint64) height, bytes32 state_id, uint64
  timestamp_ns))``, taken from the post state of the enclave's ``init_client`` UpdateState.
* **Registration rule.** An operator verifies the key's IAS Attestation Verification Report
  off-chain (:func:`kakehashi.lcp.attestation.verify_avr`) and signs
  ``keccak256(abi.encode("kakehashi/lcp/register-enclave-key", chain_id, client_contract,
  client_id, mrenclave, enclave_key, operator, sha256(avr), attestation_time))``; the contract
  registers the key when ``registration_threshold`` distinct operators signed it, until
  ``attestation_time + key_expiration``.
* **Client message / proof** ``abi.encode(bytes proxy_message, bytes[] signatures)``: what
  ``update_client`` and ``verify_(non_)membership`` take.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from eth_abi import encode
from eth_keys import keys
from eth_utils import keccak, to_checksum_address
from web3 import Web3
from web3.contract import Contract

from kakehashi.errors import ConfigurationError
from kakehashi.lcp import attestation
from kakehashi.lcp.messages import Height, UpdateStateProxyMessage
from kakehashi.ledgers.evm import client, toolchain
from kakehashi.ledgers.evm.client import Sender

__all__ = [
    "LCP_CLIENT_CONTRACT",
    "LCP_CLIENT_TYPE",
    "REGISTRATION_DOMAIN",
    "LcpClientState",
    "Registration",
    "attest_enclave_key",
    "client_message",
    "consensus_state",
    "deploy_lcp_client",
    "initial_consensus_state",
    "register_enclave_key",
    "registration_digest",
    "sign_registration",
]

LCP_CLIENT_CONTRACT = "lightclients/lcp_client"
LCP_CLIENT_TYPE = "lcp"
REGISTRATION_DOMAIN = "kakehashi/lcp/register-enclave-key"
_MAX_OPERATORS = 8
_MAX_SIGNATURES = 8


@dataclass(frozen=True, slots=True)
class LcpClientState:
    """What the contract is configured with at creation."""

    mrenclave: bytes
    key_expiration: int  # seconds a key stays registered after its attestation time
    operators: tuple[str, ...]
    registration_threshold: int = 1
    message_threshold: int = 1

    def __post_init__(self) -> None:
        if len(self.mrenclave) != 32:
            raise ConfigurationError("mrenclave must be 32 bytes")
        if not 0 < self.key_expiration < 2**64:
            raise ConfigurationError("key expiration must be a positive uint64 of seconds")
        if not 0 < len(self.operators) <= _MAX_OPERATORS:
            raise ConfigurationError(f"between 1 and {_MAX_OPERATORS} operators are needed")
        if not 0 < self.registration_threshold <= len(self.operators):
            raise ConfigurationError("registration threshold must be within 1..len(operators)")
        if not 0 < self.message_threshold <= _MAX_SIGNATURES:
            raise ConfigurationError(f"message threshold must be within 1..{_MAX_SIGNATURES}")

    def encode(self) -> bytes:
        return encode(
            ["(bytes32,uint64,address[],uint8,uint8)"],
            [
                (
                    self.mrenclave,
                    self.key_expiration,
                    [to_checksum_address(op) for op in self.operators],
                    self.registration_threshold,
                    self.message_threshold,
                )
            ],
        )


def consensus_state(height: Height, state_id: bytes, timestamp_ns: int) -> bytes:
    """The consensus state bytes ``create_client`` takes."""
    return encode(
        ["((uint64,uint64),bytes32,uint64)"],
        [((height.revision_number, height.revision_height), state_id, timestamp_ns)],
    )


def initial_consensus_state(init: UpdateStateProxyMessage) -> bytes:
    """The consensus state of the post state of an enclave's ``init_client`` result."""
    return consensus_state(init.post_height, init.post_state_id, init.timestamp)


def client_message(message: bytes, signatures: Sequence[bytes]) -> bytes:
    """``update_client``'s message and ``verify_*``'s proof: a proxy message + signatures."""
    if not 0 < len(signatures) <= _MAX_SIGNATURES:
        raise ConfigurationError(f"between 1 and {_MAX_SIGNATURES} signatures are needed")
    return encode(["bytes", "bytes[]"], [message, list(signatures)])


@dataclass(frozen=True, slots=True)
class Registration:
    """An enclave key registration, as operators approve it."""

    client_id: str
    enclave_key: bytes  # 20-byte address
    operator: bytes  # 20-byte address, zero for none
    avr_hash: bytes  # sha256 of the AVR string
    attestation_time: int  # Unix seconds (the AVR's timestamp)


def registration_digest(
    chain_id: int, client_contract: str, mrenclave: bytes, registration: Registration
) -> bytes:
    """Registration rule: the digest each operator signs."""
    return keccak(
        encode(
            [
                "string",
                "uint256",
                "address",
                "string",
                "bytes32",
                "address",
                "address",
                "bytes32",
                "uint64",
            ],
            [
                REGISTRATION_DOMAIN,
                chain_id,
                to_checksum_address(client_contract),
                registration.client_id,
                mrenclave,
                to_checksum_address(registration.enclave_key),
                to_checksum_address(registration.operator),
                registration.avr_hash,
                registration.attestation_time,
            ],
        )
    )


def sign_registration(
    operator_key: bytes,
    chain_id: int,
    client_contract: str,
    mrenclave: bytes,
    registration: Registration,
) -> bytes:
    """An operator's 65-byte signature (r ‖ s ‖ v, v in {0, 1}) of a registration."""
    digest = registration_digest(chain_id, client_contract, mrenclave, registration)
    return bytes(keys.PrivateKey(operator_key).sign_msg_hash(digest).to_bytes())


def attest_enclave_key(
    evidence: attestation.AvrEvidence,
    policy: attestation.AttestationPolicy,
    client_id: str,
    *,
    now: datetime | None = None,
) -> Registration:
    """What an operator does before signing: verify the AVR (signature, chain to the policy's
    root, status, MRENCLAVE, report data) and name the key it attests. The attestation time is
    the report's timestamp, in whole seconds."""
    report = attestation.verify_avr(
        evidence.avr, evidence.signature, evidence.signing_cert, policy, now=now
    )
    return Registration(
        client_id=client_id,
        enclave_key=report.enclave_key_address,
        operator=report.operator_address or bytes(20),
        avr_hash=hashlib.sha256(evidence.avr.encode()).digest(),
        attestation_time=report.timestamp_ns // 10**9,
    )


def deploy_lcp_client(w3: Web3, handler: str, *, sender: Sender) -> Contract:
    """Deploy ``lightclients/lcp_client.vy`` serving the IBC handler at ``handler``."""
    compiled = toolchain.compile_contract(LCP_CLIENT_CONTRACT)
    return toolchain.deploy(w3, compiled, to_checksum_address(handler), sender=sender)


def register_enclave_key(
    contract: Contract,
    registration: Registration,
    signatures: Sequence[bytes],
    *,
    sender: Sender,
    gas: int | None = None,
) -> int:
    """Submit a registration with its operator signatures; returns the gas used."""
    fn = contract.functions.register_enclave_key(
        registration.client_id,
        to_checksum_address(registration.enclave_key),
        to_checksum_address(registration.operator),
        registration.avr_hash,
        registration.attestation_time,
        list(signatures),
    )
    receipt = client.transact(
        contract.w3, fn, sender=sender, description="register_enclave_key", gas=gas
    )
    return int(receipt["gasUsed"])
