"""The ICS-02 adapter of the LCP client: created from a client state and the enclave's
create-client message, keys registered and states updated through ``update``, proofs verified
through the :class:`~kakehashi.ibc.client.LightClient` protocol, persisted byte for byte."""

from __future__ import annotations

import base64

import pytest

from kakehashi.errors import SerializationError, SignatureError, VerificationError
from kakehashi.ibc.client import ClientStatus, LightClient
from kakehashi.ibc.clients.lcp import (
    CLIENT_TYPE,
    LcpIbcClient,
    encode_register_enclave_key,
    encode_update_client,
)
from kakehashi.ibc.handler import IbcHandler
from kakehashi.ibc.router import Router
from kakehashi.ibc.store import MemoryStore
from kakehashi.ibc.types import Height
from kakehashi.lcp.messages import (
    EmptyValidationContext,
    MisbehaviourProxyMessage,
    PrevState,
    UpdateStateProxyMessage,
    decode,
    encode,
    sign_message,
)
from kakehashi.lcp.messages import Height as LcpHeight
from kakehashi.ledgers.evm.qbft import validator_address
from kakehashi.lightclients.lcp import EnclaveKey, LcpClient
from tests.lightclients.test_lcp_client import (
    FLOWS,
    NS,
    _step,
    client_state,
    evidence,
    membership_args,
    now_of,
)

SEQUENCE = (
    "003-update_client",
    "004-verify_channel",
    "005-update_client",
    "006-verify_packet",
    "007-verify_packet_receipt_absence",
)


def ibc_height(height: LcpHeight) -> Height:
    return Height(height.revision_number, height.revision_height)


def new_client(flow: str) -> LcpIbcClient:
    now = now_of(flow)
    return LcpIbcClient.create(
        client_state(flow), _step(flow, "002-init_client").message, now, clock=lambda: now
    )


def register_message(flow: str) -> bytes:
    ev = evidence(flow)
    return encode_register_enclave_key(ev.avr, ev.signature, ev.signing_cert)


def run_flow(client: LcpIbcClient, flow: str) -> None:
    now = now_of(flow)
    for prefix in SEQUENCE:
        step = _step(flow, prefix)
        if "update" in prefix:
            height = client.update(encode_update_client(step.message, [step.signature]), now)
            message = decode(step.message)
            assert isinstance(message, UpdateStateProxyMessage)
            assert height == ibc_height(message.post_height) == client.latest_height()
            assert client.timestamp_at(height) == message.timestamp
            continue
        lcp_height, proof, prefix_bytes, path = membership_args(step)
        if "absence" in prefix:
            client.verify_non_membership(ibc_height(lcp_height), proof, prefix_bytes, path)
        else:
            value = base64.b64decode(step.input["value"])
            client.verify_membership(ibc_height(lcp_height), proof, prefix_bytes, path, value)


@pytest.mark.parametrize("flow", FLOWS)
def test_recorded_flow_through_the_light_client_protocol(flow: str) -> None:
    client: LightClient = new_client(flow)
    assert client.client_type == CLIENT_TYPE
    assert client.status(now_of(flow)) is ClientStatus.ACTIVE
    init = decode(_step(flow, "002-init_client").message)
    assert isinstance(init, UpdateStateProxyMessage)
    assert client.latest_height() == ibc_height(init.post_height)
    assert client.timestamp_at(client.latest_height()) == init.timestamp

    assert isinstance(client, LcpIbcClient)
    assert client.update(register_message(flow), now_of(flow)) == client.latest_height()
    run_flow(client, flow)


def test_persistence_round_trips_and_keeps_working() -> None:
    flow = "client-02"
    client = new_client(flow)
    client.update(register_message(flow), now_of(flow))
    step = _step(flow, "003-update_client")
    client.update(encode_update_client(step.message, [step.signature]), now_of(flow))
    data = client.to_bytes()
    restored = LcpIbcClient.from_bytes(data, clock=lambda: now_of(flow))
    assert restored.client == client.client
    assert restored.to_bytes() == data
    assert restored.client_state() == client.client_state()
    # the restored client carries on with the recorded flow
    packet = _step(flow, "005-update_client")
    restored.update(encode_update_client(packet.message, [packet.signature]), now_of(flow))
    with pytest.raises(SerializationError):
        LcpIbcClient.from_bytes(data[:-3])


def test_client_state_bytes_change_with_the_state() -> None:
    flow = "client-02"
    client = new_client(flow)
    before = client.client_state()
    client.update(register_message(flow), now_of(flow))
    assert client.client_state() == before  # keys are not part of the client state
    step = _step(flow, "003-update_client")
    client.update(encode_update_client(step.message, [step.signature]), now_of(flow))
    assert client.client_state() != before  # the latest height moved


def test_membership_reads_the_client_clock_for_key_expiry() -> None:
    flow = "client-02"
    client = new_client(flow)
    client.update(register_message(flow), now_of(flow))
    step = _step(flow, "003-update_client")
    client.update(encode_update_client(step.message, [step.signature]), now_of(flow))
    expiry = next(iter(client.client.enclave_keys.values())).expires_at_ns
    channel = _step(flow, "004-verify_channel")
    lcp_height, proof, prefix, path = membership_args(channel)
    value = base64.b64decode(channel.input["value"])
    client.clock = lambda: expiry - 1
    client.verify_membership(ibc_height(lcp_height), proof, prefix, path, value)
    client.clock = lambda: expiry
    with pytest.raises(SignatureError, match="expired"):
        client.verify_membership(ibc_height(lcp_height), proof, prefix, path, value)
    # an expired key leaves the client Active: a fresh key can still be registered by update
    assert client.status(expiry) is ClientStatus.ACTIVE


def test_refused_messages_change_nothing() -> None:
    flow = "client-02"
    client = new_client(flow)
    before = client.to_bytes()
    step = _step(flow, "003-update_client")
    with pytest.raises(SignatureError, match="not an enclave key registered"):
        client.update(encode_update_client(step.message, [step.signature]), now_of(flow))
    with pytest.raises(VerificationError, match="unknown LCP client message tag"):
        client.update(b"\x07" + step.message, now_of(flow))
    with pytest.raises(VerificationError, match="empty"):
        client.update(b"", now_of(flow))
    with pytest.raises(VerificationError, match="malformed"):
        client.update(b"\x02" + b"\x00" * 5, now_of(flow))
    altered = bytearray(register_message(flow))
    altered[-40] ^= 0x01
    with pytest.raises(VerificationError):
        client.update(bytes(altered), now_of(flow))
    assert client.to_bytes() == before


def test_misbehaviour_through_update_freezes_and_is_persisted() -> None:
    flow = "client-02"
    now = now_of(flow)
    client = new_client(flow)
    key = b"\x42" * 32
    client.client = LcpClient.with_test_keys(
        client.client.state,
        [EnclaveKey(validator_address(key), now + 3600 * NS, None)],
        client.client.consensus_states,
    )
    init = decode(_step(flow, "002-init_client").message)
    assert isinstance(init, UpdateStateProxyMessage)
    message = encode(
        MisbehaviourProxyMessage(
            (PrevState(init.post_height, init.post_state_id),), EmptyValidationContext(), b"x"
        )
    )
    height = client.update(encode_update_client(message, [sign_message(message, key)]), now)
    assert height == client.latest_height()
    assert client.status(now) is ClientStatus.FROZEN
    restored = LcpIbcClient.from_bytes(client.to_bytes())
    assert restored.status(now) is ClientStatus.FROZEN
    with pytest.raises(VerificationError, match="frozen"):
        client.update(register_message(flow), now)


def test_an_ibc_handler_creates_and_updates_the_client_on_its_own_clock() -> None:
    """Through the ICS-02 handler: created Active, key registered and state updated with the
    host's time; a replayed update is a no-op and a forged one leaves the stored client alone."""
    flow = "client-02"
    now = now_of(flow)
    handler = IbcHandler(
        MemoryStore(),
        prefix=b"host",
        host_height=lambda: Height(0, 1),
        host_timestamp_ns=lambda: now,
        router=Router(),
    )
    client_id = handler.create_client(new_client(flow))
    assert client_id == f"{CLIENT_TYPE}-0"
    handler.update_client(client_id, register_message(flow))
    step = _step(flow, "003-update_client")
    update = encode_update_client(step.message, [step.signature])
    height = handler.update_client(client_id, update)
    assert handler.client(client_id).latest_height() == height
    assert handler.update_client(client_id, update) == height  # resubmission
    forged = encode_update_client(
        step.message, [bytes([step.signature[0] ^ 1]) + step.signature[1:]]
    )
    before = handler.client(client_id)
    assert isinstance(before, LcpIbcClient)
    snapshot = before.to_bytes()
    with pytest.raises(VerificationError):
        handler.update_client(client_id, forged)
    assert before.to_bytes() == snapshot
