"""Python bindings of the EVM LCP light client (``contracts/lightclients/lcp_client.vy``).

The contract trusts proxy messages (:mod:`kakehashi.lcp.messages`) signed by registered LCP
enclave keys. A key is registered from its IAS Attestation Verification Report, which the
contract checks on-chain with ``contracts/lightclients/avr_verifier.vy`` (RSA over the modexp
precompile, chained to Intel's root, or to a simulation root for a development client). This
module deploys both and builds the bytes the client takes:

* **Client state** ``abi.encode((bytes32 mrenclave, uint64 key_expiration, address[] operators,
  uint8 registration_threshold, uint8 message_threshold, bool development))``; key expiration in
  seconds; ``registration_threshold`` 0 disables operator-signed registration.
* **Consensus state** ``abi.encode(((uint64,uint64) height, bytes32 state_id, uint64
  timestamp_ns))``, taken from the post state of the enclave's ``init_client`` UpdateState.
* **AVR registration rule.** ``register_enclave_key(client_id, avr, signature, signing_cert)``:
  the key the report data names, until the AVR's timestamp + ``key_expiration``.
* **Operator registration rule** (opt-in; it makes the operators trusted). An operator verifies
  the key's AVR off-chain (:func:`kakehashi.lcp.attestation.verify_avr`) and signs
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

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
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
    "AVR_VERIFIER_CONTRACT",
    "LCP_CLIENT_CONTRACT",
    "LCP_CLIENT_TYPE",
    "REGISTRATION_DOMAIN",
    "LcpClientState",
    "Registration",
    "attest_enclave_key",
    "client_message",
    "consensus_state",
    "deploy_avr_verifier",
    "deploy_lcp_client",
    "initial_consensus_state",
    "register_enclave_key",
    "register_enclave_key_by_operators",
    "registration_digest",
    "root_public_key",
    "sign_registration",
]

LCP_CLIENT_CONTRACT = "lightclients/lcp_client"
AVR_VERIFIER_CONTRACT = "lightclients/avr_verifier"
# lcp-go's ClientTypeLCP; the handler names clients "lcp-client-<n>", valid ICS-24 client
# identifiers (9 to 64 characters: a counterparty refuses "lcp-<n>")
LCP_CLIENT_TYPE = "lcp-client"
REGISTRATION_DOMAIN = "kakehashi/lcp/register-enclave-key"
_MAX_OPERATORS = 8
_MAX_SIGNATURES = 8


@dataclass(frozen=True, slots=True)
class LcpClientState:
    """What the contract is configured with at creation."""

    mrenclave: bytes
    key_expiration: int  # seconds a key stays registered after its attestation time
    operators: tuple[str, ...] = ()
    registration_threshold: int = 0  # 0: keys are registered only from on-chain checked AVRs
    message_threshold: int = 1
    development: bool = False  # accept a simulation root and debug enclaves

    def __post_init__(self) -> None:
        if len(self.mrenclave) != 32:
            raise ConfigurationError("mrenclave must be 32 bytes")
        if not 0 < self.key_expiration < 2**64:
            raise ConfigurationError("key expiration must be a positive uint64 of seconds")
        if len(self.operators) > _MAX_OPERATORS:
            raise ConfigurationError(f"at most {_MAX_OPERATORS} operators")
        if not 0 <= self.registration_threshold <= len(self.operators):
            raise ConfigurationError("registration threshold must be within 0..len(operators)")
        if not 0 < self.message_threshold <= _MAX_SIGNATURES:
            raise ConfigurationError(f"message threshold must be within 1..{_MAX_SIGNATURES}")

    def encode(self) -> bytes:
        return encode(
            ["(bytes32,uint64,address[],uint8,uint8,bool)"],
            [
                (
                    self.mrenclave,
                    self.key_expiration,
                    [to_checksum_address(op) for op in self.operators],
                    self.registration_threshold,
                    self.message_threshold,
                    self.development,
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


def root_public_key(root_der: bytes) -> tuple[bytes, int]:
    """The RSA modulus (big-endian, no leading zero) and exponent of a root certificate."""
    key = x509.load_der_x509_certificate(root_der).public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise ConfigurationError("the attestation root must hold an RSA key")
    numbers = key.public_numbers()
    return numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big"), numbers.e


def deploy_avr_verifier(
    w3: Web3,
    root_der: bytes = attestation.INTEL_SGX_ATTESTATION_ROOT_CA_DER,
    *,
    sender: Sender,
) -> Contract:
    """Deploy ``lightclients/avr_verifier.vy`` trusting ``root_der`` (Intel's root by default;
    a client not in development refuses any other)."""
    modulus, exponent = root_public_key(root_der)
    compiled = toolchain.compile_contract(AVR_VERIFIER_CONTRACT)
    return toolchain.deploy(w3, compiled, modulus, exponent, sender=sender)


def deploy_lcp_client(
    w3: Web3, handler: str, avr_verifier: str | None = None, *, sender: Sender
) -> Contract:
    """Deploy ``lightclients/lcp_client.vy`` serving the IBC handler at ``handler``, checking
    AVRs with the verifier at ``avr_verifier`` (None: operator-signed registration only)."""
    compiled = toolchain.compile_contract(LCP_CLIENT_CONTRACT)
    verifier = to_checksum_address(avr_verifier or "0x" + "00" * 20)
    return toolchain.deploy(w3, compiled, to_checksum_address(handler), verifier, sender=sender)


def register_enclave_key(
    contract: Contract,
    client_id: str,
    evidence: attestation.AvrEvidence,
    *,
    sender: Sender,
    gas: int | None = None,
) -> int:
    """Register the key an AVR attests; the contract checks the AVR. Returns the gas used."""
    fn = contract.functions.register_enclave_key(
        client_id, evidence.avr.encode(), evidence.signature, evidence.signing_cert
    )
    receipt = client.transact(
        contract.w3, fn, sender=sender, description="register_enclave_key", gas=gas
    )
    return int(receipt["gasUsed"])


def register_enclave_key_by_operators(
    contract: Contract,
    registration: Registration,
    signatures: Sequence[bytes],
    *,
    sender: Sender,
    gas: int | None = None,
) -> int:
    """Submit a registration with its operator signatures; returns the gas used."""
    fn = contract.functions.register_enclave_key_by_operators(
        registration.client_id,
        to_checksum_address(registration.enclave_key),
        to_checksum_address(registration.operator),
        registration.avr_hash,
        registration.attestation_time,
        list(signatures),
    )
    receipt = client.transact(
        contract.w3, fn, sender=sender, description="register_enclave_key_by_operators", gas=gas
    )
    return int(receipt["gasUsed"])
