"""The EVM LCP client (``contracts/lightclients/lcp_client.vy``) fed Datachain's recorded flow.

client-02 (simulation root, development mode) is replayed through the IBC handler on the
embedded chain: the client is created from the enclave's ``init_client`` result, its enclave key
is registered from the AVR (checked on-chain by ``avr_verifier.vy``: RSA over modexp, chained to
the simulation root), it is updated with 003 and 005 and proves 004 (channel), 006 (packet) and
007 (receipt absence) with the recorded signatures. Extra enclave keys for the negative cases
are registered through the opt-in operator-signed path.

The recorded messages carry a 14-day trusting-period context from June 2024, so the chain's
clock is set to just after the recording (``CHAIN_START``): the contract checks the context and
key expiry against ``block.timestamp``, and a test moves that clock forward to expire a key.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from eth_keys import keys
from eth_utils import keccak, to_checksum_address

from kakehashi.errors import KakehashiError
from kakehashi.ibc.evm_host import EvmIbcHost
from kakehashi.lcp import messages
from kakehashi.lcp.attestation import AttestationPolicy, parse_avr_file, verify_avr
from kakehashi.lcp.evm_client import (
    AVR_VERIFIER_CONTRACT,
    LCP_CLIENT_CONTRACT,
    LCP_CLIENT_TYPE,
    LcpClientState,
    Registration,
    attest_enclave_key,
    client_message,
    deploy_avr_verifier,
    deploy_lcp_client,
    initial_consensus_state,
    register_enclave_key,
    register_enclave_key_by_operators,
    sign_registration,
)
from kakehashi.lcp.messages import (
    EmptyValidationContext,
    Height,
    MisbehaviourProxyMessage,
    PrevState,
    UpdateStateProxyMessage,
    VerifyMembershipProxyMessage,
)
from kakehashi.ledgers.evm import chain as chain_module
from kakehashi.ledgers.evm import toolchain
from kakehashi.ledgers.evm.chain import EmbeddedChain, dev_accounts
from kakehashi.ledgers.evm.provider import embedded_web3

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "lcp"
FLOW = VECTORS / "client-02"
SIMULATION_ROOT = (VECTORS / "certs" / "simulation_rootca.der").read_bytes()
INTEL_ROOT = (VECTORS / "certs" / "Intel_SGX_Attestation_RootCA.der").read_bytes()
EVIDENCE = parse_avr_file((FLOW / "001-avr").read_text())
INTEL_EVIDENCE = parse_avr_file((VECTORS / "client-01" / "001-avr").read_text())
MRENCLAVE = bytes.fromhex("3280c08e19b54d15ca925e0a6c13fedaff2aff6c097f93841abd8d9e1a3072b8")
ENCLAVE_KEY = bytes.fromhex("ffc9bdf025ec63065572f86d8f3ee49fbc0dfb66")
CHAIN_START = 1718461100  # the recording ended at 1718461093 (005's input)
YEAR = 365 * 24 * 3600
GAS = 3_000_000
EIP170_LIMIT = 24_576
OPERATOR_KEYS = (keccak(b"kakehashi lcp operator 1"), keccak(b"kakehashi lcp operator 2"))
OPERATORS = tuple(keys.PrivateKey(k).public_key.to_checksum_address() for k in OPERATOR_KEYS)
OTHER_ENCLAVE_KEY = keccak(b"kakehashi test enclave key")
OTHER_ENCLAVE = keys.PrivateKey(OTHER_ENCLAVE_KEY).public_key.to_canonical_address()
DEV_POLICY = AttestationPolicy(
    root_certificates=(SIMULATION_ROOT,), mrenclave=MRENCLAVE, development=True
)
GAS_FIGURES: dict[str, int] = {}


def _result(name: str) -> tuple[bytes, bytes]:
    data = json.loads((FLOW / name).read_text())
    proof = data.get("proof", data)
    return base64.b64decode(proof["message"]), base64.b64decode(proof["signature"])


def _input(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FLOW / name).read_text())
    return data


INIT, _ = _result("002-init_client_result")
UPDATE_1, UPDATE_1_SIG = _result("003-update_client_result")
CHANNEL, CHANNEL_SIG = _result("004-verify_channel_result")
UPDATE_2, UPDATE_2_SIG = _result("005-update_client_result")
PACKET, PACKET_SIG = _result("006-verify_packet_result")
ABSENCE, ABSENCE_SIG = _result("007-verify_packet_receipt_absence_result")


class Clock:
    """The embedded chain's wall clock, set to the recording's time and moved by tests."""

    def __init__(self, start: int) -> None:
        self.offset = start - time.time()

    def time(self) -> float:
        return time.time() + self.offset

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


@dataclass
class Env:
    chain: EmbeddedChain
    clock: Clock
    host: EvmIbcHost
    lcp: Any  # web3 Contract of lightclients/lcp_client.vy
    sender: Any

    def tick(self, seconds: int) -> None:
        """Move the chain's clock and seal a block at the new time."""
        self.clock.offset += seconds
        w3 = self.host.w3
        tx = {
            "to": self.sender.address,
            "value": 0,
            "gas": 21_000,
            "maxFeePerGas": 10**10,
            "maxPriorityFeePerGas": 1,
            "nonce": w3.eth.get_transaction_count(self.sender.address, "pending"),
            "chainId": w3.eth.chain_id,
        }
        w3.eth.send_raw_transaction(self.sender.sign_transaction(tx).raw_transaction)

    def create(
        self, state: LcpClientState | None = None, client_type: str = LCP_CLIENT_TYPE
    ) -> str:
        state = state or LcpClientState(MRENCLAVE, 10 * YEAR, OPERATORS, 2, 1, development=True)
        init = messages.decode(INIT)
        assert isinstance(init, UpdateStateProxyMessage)
        outcome = self.host.create_client(
            client_type, state.encode(), initial_consensus_state(init)
        )
        GAS_FIGURES.setdefault("create_client", outcome.gas_used)
        return outcome.value

    def registration(self, client_id: str) -> Registration:
        return attest_enclave_key(EVIDENCE, DEV_POLICY, client_id)

    def sign(
        self, registration: Registration, keys_: tuple[bytes, ...] = OPERATOR_KEYS
    ) -> list[bytes]:
        chain_id = self.host.w3.eth.chain_id
        return [
            sign_registration(k, chain_id, self.lcp.address, MRENCLAVE, registration) for k in keys_
        ]

    def register(self, registration: Registration, signatures: list[bytes] | None = None) -> int:
        sigs = self.sign(registration) if signatures is None else signatures
        return register_enclave_key_by_operators(
            self.lcp, registration, sigs, sender=self.sender, gas=GAS
        )

    def register_avr(self, client_id: str, evidence: Any = EVIDENCE, lcp: Any = None) -> int:
        """Register the key an AVR names; the contract verifies the AVR."""
        contract = lcp or self.lcp
        return register_enclave_key(contract, client_id, evidence, sender=self.sender, gas=GAS)

    def update(self, client_id: str, message: bytes, *signatures: bytes) -> Height:
        outcome = self.host.update_client(client_id, client_message(message, list(signatures)))
        h = outcome.value
        return Height(h.revision_number, h.revision_height)

    def verify(
        self, client_id: str, message: bytes, *signatures: bytes, value: bytes | None
    ) -> bool:
        decoded = messages.decode(message)
        assert isinstance(decoded, VerifyMembershipProxyMessage)
        height = (decoded.height.revision_number, decoded.height.revision_height)
        proof = client_message(message, list(signatures))
        fns = self.lcp.functions
        if value is None:
            fn = fns.verify_non_membership(client_id, height, proof, decoded.prefix, decoded.path)
        else:
            fn = fns.verify_membership_value(
                client_id, height, proof, decoded.prefix, decoded.path, value
            )
        return bool(fn.call())

    def status(self, client_id: str) -> int:
        return int(self.lcp.functions.status(client_id).call())

    def latest(self, client_id: str) -> Height:
        rn, rh = self.lcp.functions.latest_height(client_id).call()
        return Height(rn, rh)


@contextmanager
def _environment(monkeypatch: pytest.MonkeyPatch, start: int) -> Iterator[Env]:
    clock = Clock(start)
    monkeypatch.setattr(chain_module, "time", clock)
    with EmbeddedChain() as chain:
        w3 = embedded_web3(chain)
        sender = dev_accounts()[0]
        host = EvmIbcHost.deploy(w3, sender=sender, gas=GAS)
        verifier = deploy_avr_verifier(w3, SIMULATION_ROOT, sender=sender)
        lcp = deploy_lcp_client(w3, host.address, verifier.address, sender=sender)
        host.register_client(LCP_CLIENT_TYPE, lcp.address)
        yield Env(chain, clock, host, lcp, sender)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    with _environment(monkeypatch, CHAIN_START) as environment:
        yield environment


@pytest.fixture
def registered(env: Env) -> tuple[Env, str]:
    client_id = env.create()
    GAS_FIGURES.setdefault("register_enclave_key (AVR on-chain)", env.register_avr(client_id))
    return env, client_id


def _reverts(fn: Any, reason: str) -> None:
    with pytest.raises(KakehashiError, match=reason):
        fn()


def _view_reverts(fn: Any, reason: str) -> None:
    with pytest.raises(Exception, match=reason):
        fn()


# ----------------------------------------------------------------------------- the recorded flow


@pytest.mark.parametrize("name", [LCP_CLIENT_CONTRACT, AVR_VERIFIER_CONTRACT])
def test_contract_fits_eip170(name: str) -> None:
    size = len(toolchain.compile_contract(name).runtime_bytecode)
    print(f"{name}.vy runtime: {size} bytes")
    assert size < EIP170_LIMIT


def test_recorded_flow(registered: tuple[Env, str]) -> None:
    env, client_id = registered
    key = env.lcp.functions.enclave_keys(client_id, to_checksum_address(ENCLAVE_KEY)).call()
    assert key[0] == EVIDENCE_TIME + 10 * YEAR and int(key[1], 16) == 0
    assert env.latest(client_id) == Height(1, 49)

    update = env.host.update_client(client_id, client_message(UPDATE_1, [UPDATE_1_SIG]))
    GAS_FIGURES["update_client"] = update.gas_used
    assert update.value.revision_height == 51
    assert env.verify(client_id, CHANNEL, CHANNEL_SIG, value=_value("004-verify_channel_input"))
    assert env.update(client_id, UPDATE_2, UPDATE_2_SIG) == Height(1, 52)
    assert env.verify(client_id, PACKET, PACKET_SIG, value=_value("006-verify_packet_input"))
    assert env.verify(client_id, ABSENCE, ABSENCE_SIG, value=None)
    assert env.latest(client_id) == Height(1, 52)
    assert env.status(client_id) == 0
    ts = env.lcp.functions.timestamp_at(client_id, (1, 52)).call()
    assert ts == messages.decode(UPDATE_2).timestamp  # type: ignore[union-attr]

    # Gas of a proof check inside a transaction (what a handler's recv_packet pays for it).
    decoded = messages.decode(PACKET)
    assert isinstance(decoded, VerifyMembershipProxyMessage)
    GAS_FIGURES["verify_membership"] = env.lcp.functions.verify_membership_value(
        client_id,
        (1, 52),
        client_message(PACKET, [PACKET_SIG]),
        decoded.prefix,
        decoded.path,
        _value("006-verify_packet_input"),
    ).estimate_gas()
    print("gas:", GAS_FIGURES)


def _value(name: str) -> bytes:
    return base64.b64decode(_input(name)["value"])


EVIDENCE_TIME = 1718461090  # 2024-06-15T14:18:10.991000 UTC, in whole seconds


# ----------------------------------------------------------------------------- registration


def test_unattested_key_is_refused(env: Env) -> None:
    client_id = env.create()
    good = env.registration(client_id)
    # No operator signature, one of two (threshold 2), a stranger's, and one operator twice.
    stranger = keccak(b"not an operator")
    _reverts(lambda: env.register(good, []), "too few operator signatures")
    _reverts(lambda: env.register(good, env.sign(good)[:1]), "too few operator signatures")
    _reverts(
        lambda: env.register(good, env.sign(good, (OPERATOR_KEYS[0], stranger))),
        "not signed by an operator",
    )
    _reverts(
        lambda: env.register(good, env.sign(good, (OPERATOR_KEYS[0],) * 2)),
        "duplicate operator signature",
    )
    # Operators' signatures over one key do not register another (the signed digest names it).
    _reverts(
        lambda: env.register(replace(good, enclave_key=OTHER_ENCLAVE), env.sign(good)),
        "not signed by an operator",
    )
    # No key was registered: the recorded update is refused.
    _reverts(
        lambda: env.update(client_id, UPDATE_1, UPDATE_1_SIG),
        "signer is not a registered enclave key",
    )
    # A client without operator registration (the default) refuses even a full quorum.
    avr_only = env.create(LcpClientState(MRENCLAVE, 10 * YEAR, OPERATORS, development=True))
    registration = env.registration(avr_only)
    _reverts(lambda: env.register(registration), "operator registration disabled")


def test_forged_avr_is_refused_on_chain(env: Env) -> None:
    client_id = env.create()
    avr = bytearray(EVIDENCE.avr.encode())
    avr[EVIDENCE.avr.index("isvEnclaveQuoteBody") + 300] ^= 1  # one byte of the quote
    forged = replace(EVIDENCE, avr=avr.decode())
    _reverts(lambda: env.register_avr(client_id, forged), "report signature invalid")
    signature = bytearray(EVIDENCE.signature)
    signature[-1] ^= 1
    _reverts(
        lambda: env.register_avr(client_id, replace(EVIDENCE, signature=bytes(signature))),
        "report signature invalid",
    )
    cert = bytearray(EVIDENCE.signing_cert)
    cert[200] ^= 1  # inside tbsCertificate (subject)
    _reverts(
        lambda: env.register_avr(client_id, replace(EVIDENCE, signing_cert=bytes(cert))),
        "not signed by the root",
    )
    # Intel's signing certificate does not chain to the simulation root.
    _reverts(
        lambda: env.register_avr(
            client_id, replace(EVIDENCE, signing_cert=INTEL_EVIDENCE.signing_cert)
        ),
        "not signed by the root",
    )
    # The genuine AVR, but for a client of another enclave, or a production client.
    other = env.create(LcpClientState(b"\x01" * 32, YEAR, development=True))
    _reverts(lambda: env.register_avr(other, EVIDENCE), "MRENCLAVE mismatch")
    production = env.create(LcpClientState(MRENCLAVE, YEAR))
    _reverts(lambda: env.register_avr(production, EVIDENCE), "root is not Intel's")
    for cid in (client_id, other, production):
        _reverts(lambda cid=cid: env.update(cid, UPDATE_1, UPDATE_1_SIG), "not a registered")


@pytest.mark.parametrize("flow", ["client-01", "client-02"])
def test_verifier_agrees_with_the_python_check(env: Env, flow: str) -> None:
    """avr_verifier.vy reads the same facts from each recorded AVR as kakehashi.lcp.attestation."""
    evidence = parse_avr_file((VECTORS / flow / "001-avr").read_text())
    root = INTEL_ROOT if flow == "client-01" else SIMULATION_ROOT
    policy = AttestationPolicy(
        root_certificates=(root,),
        development=True,
        allowed_quote_statuses=frozenset({"OK", "GROUP_OUT_OF_DATE"}),
        allowed_advisories=frozenset(json.loads(evidence.avr).get("advisoryIDs", [])),
    )
    expected = verify_avr(evidence.avr, evidence.signature, evidence.signing_cert, policy)
    verifier = deploy_avr_verifier(env.host.w3, root, sender=env.sender)
    fn = verifier.functions.verify(evidence.avr.encode(), evidence.signature, evidence.signing_cert)
    report = fn.call()
    GAS_FIGURES[f"avr_verifier.verify ({flow})"] = fn.estimate_gas()
    assert report[0] == expected.timestamp_ns // 10**9
    assert report[1] is (expected.quote_status == "OK")
    assert report[2] == expected.mrenclave
    assert report[3] is expected.debug
    assert bytes.fromhex(report[4][2:]) == expected.enclave_key_address
    assert bytes.fromhex(report[5][2:]) == (expected.operator_address or bytes(20))


def _certificate(
    subject: str, key: Any, issuer: str, issuer_key: Any, not_before: datetime, not_after: datetime
) -> bytes:
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    return builder.sign(issuer_key, hashes.SHA256()).public_bytes(Encoding.DER)


def test_signing_certificate_validity_at_the_report_time(env: Env) -> None:
    """A root of our own: the signing certificate (X.509 v3, GeneralizedTime after 2049) must be
    valid at the AVR's timestamp (2024-06-15), whatever the chain's clock says."""
    root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signing_key = rsa.generate_private_key(public_exponent=3, key_size=2048)
    root = _certificate(
        "root",
        root_key,
        "root",
        root_key,
        datetime(2020, 1, 1, tzinfo=UTC),
        datetime(2060, 1, 1, tzinfo=UTC),
    )
    verifier = deploy_avr_verifier(env.host.w3, root, sender=env.sender)
    report = EVIDENCE.avr.encode()
    signature = signing_key.sign(report, padding.PKCS1v15(), hashes.SHA256())
    for not_before, not_after, accepted in [
        (datetime(2024, 6, 15, 14, 18, 10, tzinfo=UTC), datetime(2051, 1, 1, tzinfo=UTC), True),
        (datetime(2020, 1, 1, tzinfo=UTC), datetime(2024, 6, 15, 14, 18, 9, tzinfo=UTC), False),
        (datetime(2024, 6, 15, 14, 18, 11, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC), False),
    ]:
        cert = _certificate("signer", signing_key, "root", root_key, not_before, not_after)
        call = verifier.functions.verify(report, signature, cert)
        if accepted:
            assert call.call()[4].lower() == "0x" + ENCLAVE_KEY.hex()
        else:
            _view_reverts(call.call, "signing certificate (expired|not yet valid)")
    # Signed by another root: refused.
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = _certificate(
        "signer",
        signing_key,
        "root",
        stranger,
        datetime(2020, 1, 1, tzinfo=UTC),
        datetime(2030, 1, 1, tzinfo=UTC),
    )
    _view_reverts(verifier.functions.verify(report, signature, cert).call, "not signed by the root")


def test_intel_root_in_production(env: Env) -> None:
    """A production client behind a verifier of Intel's root: the real Intel-signed AVR of
    client-01 verifies on-chain (RSA chain), and is refused for its GROUP_OUT_OF_DATE status."""
    w3 = env.host.w3
    verifier = deploy_avr_verifier(w3, INTEL_ROOT, sender=env.sender)
    lcp = deploy_lcp_client(w3, env.host.address, verifier.address, sender=env.sender)
    env.host.register_client("lcp-intel", lcp.address)
    report = verifier.functions.verify(
        INTEL_EVIDENCE.avr.encode(), INTEL_EVIDENCE.signature, INTEL_EVIDENCE.signing_cert
    ).call()
    assert report[0] == 1718463245 and report[1] is False  # 2024-06-15T14:54:05, not OK
    assert report[4].lower() == "0x836fec0cc99ed0242ed02fbaab648652b2372e41"
    mrenclave = bytes.fromhex("d5097b7629c003c1ff46581a46401d43f441dab919340172896ce9d50a35f0ad")
    assert report[2] == mrenclave
    client_id = env.create(LcpClientState(mrenclave, YEAR), client_type="lcp-intel")
    _reverts(lambda: env.register_avr(client_id, INTEL_EVIDENCE, lcp), "quote status is not OK")


def test_forged_avr_is_refused_by_operators(env: Env) -> None:
    client_id = env.create()
    avr = EVIDENCE.avr.replace('"isvEnclaveQuoteStatus":"OK"', '"isvEnclaveQuoteStatus":"OK "')
    assert avr != EVIDENCE.avr
    with pytest.raises(KakehashiError):
        attest_enclave_key(replace(EVIDENCE, avr=avr), DEV_POLICY, client_id)
    signature = bytearray(EVIDENCE.signature)
    signature[10] ^= 1
    with pytest.raises(KakehashiError):
        attest_enclave_key(replace(EVIDENCE, signature=bytes(signature)), DEV_POLICY, client_id)
    # A production policy (Intel's root only) refuses the simulation AVR.
    with pytest.raises(KakehashiError):
        attest_enclave_key(EVIDENCE, AttestationPolicy(mrenclave=MRENCLAVE), client_id)


def test_expired_key_is_refused(env: Env) -> None:
    client_id = env.create(LcpClientState(MRENCLAVE, 3600, development=True))
    env.register_avr(client_id)
    assert env.update(client_id, UPDATE_1, UPDATE_1_SIG) == Height(1, 51)
    env.tick(3600)  # past attestation time + 1 hour
    _reverts(lambda: env.update(client_id, UPDATE_2, UPDATE_2_SIG), "enclave key expired")
    _view_reverts(
        lambda: env.verify(
            client_id, CHANNEL, CHANNEL_SIG, value=_value("004-verify_channel_input")
        ),
        "enclave key expired",
    )
    # Re-registering the same, now stale, attestation is refused too.
    _reverts(lambda: env.register_avr(client_id), "attestation already expired")


# ----------------------------------------------------------------------------- updates


def test_update_refusals(registered: tuple[Env, str]) -> None:
    env, client_id = registered
    # 005 follows 003's state: before 003 its prev_state_id names no state this client has.
    _reverts(lambda: env.update(client_id, UPDATE_2, UPDATE_2_SIG), "unknown previous height")
    # Altered message (one byte of the post state id) or signature.
    altered = bytearray(UPDATE_1)
    altered[32 * 10] ^= 1
    _reverts(lambda: env.update(client_id, bytes(altered), UPDATE_1_SIG), "not a registered")
    sig = bytearray(UPDATE_1_SIG)
    sig[5] ^= 1
    _reverts(lambda: env.update(client_id, UPDATE_1, bytes(sig)), "not a registered|invalid")
    # A signature by an unregistered key over the genuine message.
    stranger = messages.sign_message(UPDATE_1, OTHER_ENCLAVE_KEY)
    _reverts(lambda: env.update(client_id, UPDATE_1, stranger), "not a registered enclave key")
    # A VerifyMembership message is not an update.
    _reverts(lambda: env.update(client_id, CHANNEL, CHANNEL_SIG), "unexpected message type")

    assert env.update(client_id, UPDATE_1, UPDATE_1_SIG) == Height(1, 51)
    # Resubmission changes nothing and is accepted.
    before = env.lcp.functions.consensus_state(client_id, (1, 51)).call()
    assert env.update(client_id, UPDATE_1, UPDATE_1_SIG) == Height(1, 51)
    assert env.lcp.functions.consensus_state(client_id, (1, 51)).call() == before


def test_wrong_prev_state_and_conflicting_state(registered: tuple[Env, str]) -> None:
    env, client_id = registered
    env.register(_other_registration(env, client_id))
    recorded = messages.decode(UPDATE_1)
    assert isinstance(recorded, UpdateStateProxyMessage)
    wrong_prev = replace(recorded, prev_state_id=b"\x01" * 32)
    message = messages.encode(wrong_prev)
    _reverts(
        lambda: env.update(client_id, message, messages.sign_message(message, OTHER_ENCLAVE_KEY)),
        "prev_state_id does not match",
    )
    env.update(client_id, UPDATE_1, UPDATE_1_SIG)
    conflicting = messages.encode(replace(recorded, post_state_id=b"\x02" * 32))
    _reverts(
        lambda: env.update(
            client_id, conflicting, messages.sign_message(conflicting, OTHER_ENCLAVE_KEY)
        ),
        "conflicting state",
    )


def test_trusting_period_is_checked_against_the_chain_clock(registered: tuple[Env, str]) -> None:
    env, client_id = registered
    env.tick(15 * 24 * 3600)  # the 14-day trusting period of the recorded context has passed
    _reverts(lambda: env.update(client_id, UPDATE_1, UPDATE_1_SIG), "trusting period")


def test_header_from_the_future_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # A chain clock a minute behind the recorded header (whose context allows 5 s of drift).
    with _environment(monkeypatch, CHAIN_START - 60) as env:
        client_id = env.create()
        env.register(replace(env.registration(client_id), attestation_time=CHAIN_START - 120))
        _reverts(lambda: env.update(client_id, UPDATE_1, UPDATE_1_SIG), "from the future")


def _other_registration(env: Env, client_id: str) -> Registration:
    return Registration(client_id, OTHER_ENCLAVE, bytes(20), b"\x07" * 32, CHAIN_START)


def test_k_of_n_enclave_signatures(env: Env) -> None:
    client_id = env.create(LcpClientState(MRENCLAVE, 10 * YEAR, OPERATORS, 2, 2, True))
    env.register_avr(client_id)
    env.register(_other_registration(env, client_id))
    other = messages.sign_message(UPDATE_1, OTHER_ENCLAVE_KEY)
    _reverts(lambda: env.update(client_id, UPDATE_1, UPDATE_1_SIG), "too few operators signed")
    _reverts(
        lambda: env.update(client_id, UPDATE_1, UPDATE_1_SIG, UPDATE_1_SIG), "duplicate signer"
    )
    assert env.update(client_id, UPDATE_1, UPDATE_1_SIG, other) == Height(1, 51)
    _view_reverts(
        lambda: env.verify(
            client_id, CHANNEL, CHANNEL_SIG, value=_value("004-verify_channel_input")
        ),
        "too few operators signed",
    )
    both = (CHANNEL_SIG, messages.sign_message(CHANNEL, OTHER_ENCLAVE_KEY))
    assert env.verify(client_id, CHANNEL, *both, value=_value("004-verify_channel_input"))


def test_keys_of_one_operator_count_once(env: Env) -> None:
    client_id = env.create(LcpClientState(MRENCLAVE, 10 * YEAR, OPERATORS, 2, 2, True))
    operator = bytes.fromhex(OPERATORS[0][2:])
    enclaves = [keccak(b"operator-1 enclave a"), keccak(b"operator-1 enclave b")]
    for k in enclaves:
        address = keys.PrivateKey(k).public_key.to_canonical_address()
        env.register(Registration(client_id, address, operator, b"\x07" * 32, CHAIN_START))
    signatures = [messages.sign_message(UPDATE_1, k) for k in enclaves]
    _reverts(lambda: env.update(client_id, UPDATE_1, *signatures), "too few operators signed")
    # A report-data operator that is not one of the client's is refused at registration.
    stranger = Registration(client_id, OTHER_ENCLAVE, b"\x09" * 20, b"\x07" * 32, CHAIN_START)
    _reverts(lambda: env.register(stranger), "unknown key operator")


# ----------------------------------------------------------------------------- membership


def test_membership_refusals(registered: tuple[Env, str]) -> None:
    env, client_id = registered
    env.update(client_id, UPDATE_1, UPDATE_1_SIG)
    value = _value("004-verify_channel_input")
    _view_reverts(
        lambda: env.verify(client_id, CHANNEL, CHANNEL_SIG, value=value + b"x"), "value mismatch"
    )
    _view_reverts(lambda: env.verify(client_id, CHANNEL, CHANNEL_SIG, value=None), "value mismatch")
    altered = bytearray(CHANNEL)
    altered[CHANNEL.index(messages.decode(CHANNEL).state_id)] ^= 1  # type: ignore[union-attr]
    _view_reverts(
        lambda: env.verify(client_id, bytes(altered), CHANNEL_SIG, value=value), "not a registered"
    )
    # 006 is at height 52, which this client does not have yet.
    _view_reverts(
        lambda: env.verify(client_id, PACKET, PACKET_SIG, value=_value("006-verify_packet_input")),
        "unknown height",
    )
    decoded = messages.decode(CHANNEL)
    assert isinstance(decoded, VerifyMembershipProxyMessage)
    proof = client_message(CHANNEL, [CHANNEL_SIG])
    fns = env.lcp.functions
    _view_reverts(
        lambda: fns.verify_membership_value(
            client_id, (1, 51), proof, decoded.prefix, decoded.path + b"x", value
        ).call(),
        "path mismatch",
    )
    _view_reverts(
        lambda: fns.verify_membership_value(
            client_id, (1, 49), proof, decoded.prefix, decoded.path, value
        ).call(),
        "height mismatch",
    )


def test_kakehashi_32_byte_commitments(registered: tuple[Env, str]) -> None:
    """The handler's verify_membership: the signed value is keccak256 of the 32-byte commitment."""
    env, client_id = registered
    env.register(_other_registration(env, client_id))
    env.update(client_id, UPDATE_1, UPDATE_1_SIG)
    state_id = messages.decode(UPDATE_1).post_state_id  # type: ignore[union-attr]
    commitment = b"\x05" * 32
    path = b"commitments/ports/echo/channels/channel-0/sequences/1"
    statement = VerifyMembershipProxyMessage(
        b"pfx", path, keccak(commitment), Height(1, 51), state_id
    )
    message = messages.encode(statement)
    proof = client_message(message, [messages.sign_message(message, OTHER_ENCLAVE_KEY)])
    fns = env.lcp.functions
    assert fns.verify_membership(client_id, (1, 51), proof, b"pfx", path, commitment).call()
    _view_reverts(
        lambda: fns.verify_membership(client_id, (1, 51), proof, b"pfx", path, b"\x06" * 32).call(),
        "value mismatch",
    )


# ----------------------------------------------------------------------------- misbehaviour


def test_misbehaviour_freezes(registered: tuple[Env, str]) -> None:
    env, client_id = registered
    env.register(_other_registration(env, client_id))
    env.update(client_id, UPDATE_1, UPDATE_1_SIG)
    init = messages.decode(INIT)
    assert isinstance(init, UpdateStateProxyMessage)
    wrong = MisbehaviourProxyMessage(
        (PrevState(Height(1, 49), b"\x09" * 32),), EmptyValidationContext(), b"evidence"
    )
    wrong_msg = messages.encode(wrong)
    _reverts(
        lambda: env.update(
            client_id, wrong_msg, messages.sign_message(wrong_msg, OTHER_ENCLAVE_KEY)
        ),
        "misbehaviour names another state",
    )
    evidence = replace(wrong, prev_states=(PrevState(Height(1, 49), init.post_state_id),))
    message = messages.encode(evidence)
    outcome = env.host.update_client(
        client_id, client_message(message, [messages.sign_message(message, OTHER_ENCLAVE_KEY)])
    )
    GAS_FIGURES["misbehaviour"] = outcome.gas_used
    assert env.status(client_id) == 1
    assert env.lcp.functions.frozen(client_id).call()
    _reverts(lambda: env.update(client_id, UPDATE_2, UPDATE_2_SIG), "frozen|not active")
    _view_reverts(
        lambda: env.verify(
            client_id, CHANNEL, CHANNEL_SIG, value=_value("004-verify_channel_input")
        ),
        "frozen",
    )


def test_only_the_handler_creates_and_updates(registered: tuple[Env, str]) -> None:
    env, client_id = registered
    from kakehashi.ledgers.evm.client import transact

    fn = env.lcp.functions.update_client(client_id, client_message(UPDATE_1, [UPDATE_1_SIG]))
    with pytest.raises(KakehashiError, match="only the IBC handler"):
        transact(env.host.w3, fn, sender=env.sender, gas=GAS)
