# pragma version 0.4.3
"""
@title LCP light client: trusts proxy messages signed by attested LCP enclave keys
@notice The EVM half of Datachain's Light Client Proxy client (lcp-solidity's LCPClientBase),
        behind the IBC handler's ILightClient interface. See contracts/lightclients/README.md.

        Client state   = abi_encode((bytes32 mrenclave, uint64 key_expiration_seconds,
                          address[] operators, uint8 registration_threshold,
                          uint8 message_threshold, bool development))
        Consensus state= abi_encode(((uint64,uint64) height, bytes32 state_id, uint64 timestamp_ns))
        Client message = abi_encode(bytes proxy_message, bytes[] signatures)   (update_client)
        Proof          = abi_encode(bytes proxy_message, bytes[] signatures)   (verify_*)

        Enclave keys are registered from their IAS Attestation Verification Report, checked
        on-chain by the AVR verifier contract (RSA over the modexp precompile, chained to its
        root: Intel's, or the simulation root for a development client only). Optionally (a
        non-zero registration_threshold) also by k-of-n operator signatures, which makes the
        operators trusted for registration. A key expires at attestation time + key_expiration.
        Proxy messages need signatures from message_threshold distinct registered, unexpired
        enclave keys.
"""

from ibc import types

implements: types.ILightClient

MAX_OPERATORS: constant(uint256) = 8
MAX_SIGNATURES: constant(uint256) = 8
MAX_MESSAGE: constant(uint256) = 12288
MAX_PREV_STATES: constant(uint256) = 8
MAX_VALUE: constant(uint256) = 4096

MESSAGE_VERSION: constant(uint256) = 1
TYPE_UPDATE_STATE: constant(uint256) = 1
TYPE_STATE: constant(uint256) = 2
TYPE_MISBEHAVIOUR: constant(uint256) = 3
CONTEXT_EMPTY: constant(uint256) = 0
CONTEXT_TRUSTING_PERIOD: constant(uint256) = 1
CLIENT_FROZEN: constant(uint8) = 1
NS: constant(uint256) = 1000000000
# secp256k1 order / 2: a higher s is the malleable twin of a valid signature (OpenZeppelin ECDSA)
HALF_N: constant(uint256) = 57896044618658097711785492504343953926418782139537452191302581570759080747168
REGISTRATION_DOMAIN: constant(String[40]) = "kakehashi/lcp/register-enclave-key"
# keccak256 of the RSA modulus of Intel's SGX Attestation Report Signing CA (3072 bits)
INTEL_ROOT_HASH: constant(bytes32) = 0xaf6d38bcf2256f9b3346c2ec63a4f2e1bf6b76bb30375c26500df9cf5ee2878d
MAX_AVR: constant(uint256) = 2048
MAX_CERT: constant(uint256) = 2048
MAX_RSA: constant(uint256) = 512


struct Report:
    attestation_time: uint64
    quote_status_ok: bool
    mrenclave: bytes32
    debug: bool
    enclave_key: address
    operator: address


interface IAvrVerifier:
    def verify(avr: Bytes[MAX_AVR], signature: Bytes[MAX_RSA], signing_cert: Bytes[MAX_CERT]) -> Report: view
    def root_hash() -> bytes32: view


struct ClientState:
    mrenclave: bytes32
    key_expiration: uint64
    operators: DynArray[address, MAX_OPERATORS]
    registration_threshold: uint8
    message_threshold: uint8
    development: bool


struct ConsensusState:
    height: types.Height
    state_id: bytes32
    timestamp: uint64


struct EnclaveKey:
    expires_at: uint64
    operator: address


event EnclaveKeyRegistered:
    client_id: String[types.MAX_ID]
    enclave_key: indexed(address)
    operator: address
    expires_at: uint64
    avr_hash: bytes32


event ClientFrozen:
    client_id: String[types.MAX_ID]


handler: public(immutable(address))
avr_verifier: public(immutable(address))

client_states: HashMap[String[types.MAX_ID], ClientState]
latest: HashMap[String[types.MAX_ID], types.Height]
# client id -> (revision_number << 64 | revision_height) -> state
states: HashMap[String[types.MAX_ID], HashMap[uint256, ConsensusState]]
enclave_keys: public(HashMap[String[types.MAX_ID], HashMap[address, EnclaveKey]])
frozen: public(HashMap[String[types.MAX_ID], bool])


@deploy
def __init__(ibc_handler: address, verifier: address):
    handler = ibc_handler
    avr_verifier = verifier


# ----------------------------------------------------------------------------- helpers
@internal
@pure
def _key(h: types.Height) -> uint256:
    return convert(h.revision_number, uint256) << 64 | convert(h.revision_height, uint256)


@internal
@pure
def _word(data: Bytes[MAX_MESSAGE], at: uint256) -> uint256:
    return convert(extract32(data, at), uint256)


@internal
@pure
def _u64(data: Bytes[MAX_MESSAGE], at: uint256) -> uint64:
    # An ABI uint64 word; a larger value is a malformed message, not a truncation.
    w: uint256 = self._word(data, at)
    assert w < 2**64, "LCP: uint64 out of range"
    return convert(w, uint64)


@internal
@pure
def _height_at(data: Bytes[MAX_MESSAGE], at: uint256) -> types.Height:
    return types.Height(revision_number=self._u64(data, at), revision_height=self._u64(data, at + 32))


@internal
@pure
def _dynamic(data: Bytes[MAX_MESSAGE], tuple_start: uint256, head_word: uint256) -> uint256:
    # Start of the payload of a dynamic `bytes` member: past its length word. Bounds are checked
    # by every later extract32 / slice, which revert beyond the data.
    offset: uint256 = self._word(data, tuple_start + head_word * 32)
    return tuple_start + offset


@internal
@pure
def _bytes_at(data: Bytes[MAX_MESSAGE], length_at: uint256) -> Bytes[MAX_MESSAGE]:
    n: uint256 = self._word(data, length_at)
    return slice(data, length_at + 32, n)


@internal
@pure
def _body(message: Bytes[MAX_MESSAGE], expected_type: uint256) -> uint256:
    """Envelope rule: abi.encode((bytes32 header, bytes body)); returns where the body's
    abi.encode(tuple) starts (its first word is the 0x20 offset of the tuple)."""
    assert self._word(message, 0) == 32, "LCP: malformed envelope"
    header: uint256 = self._word(message, 32)
    assert header >> 240 == MESSAGE_VERSION, "LCP: unsupported message version"
    assert (header >> 224) & 65535 == expected_type, "LCP: unexpected message type"
    assert header & (2**224 - 1) == 0, "LCP: reserved header bytes are not zero"
    body_len_at: uint256 = self._dynamic(message, 32, 1)
    body_len: uint256 = self._word(message, body_len_at)
    assert body_len_at + 32 + body_len <= len(message), "LCP: body out of bounds"
    body: uint256 = body_len_at + 32
    assert self._word(message, body) == 32, "LCP: malformed body"
    return body + 32


@internal
@pure
def _recover(digest: bytes32, signature: Bytes[65]) -> address:
    assert len(signature) == 65, "LCP: signature is not 65 bytes"
    v: uint256 = convert(slice(signature, 64, 1), uint256)
    if v < 27:
        v += 27
    assert v == 27 or v == 28, "LCP: bad signature v"
    s: uint256 = convert(extract32(signature, 32), uint256)
    assert s <= HALF_N, "LCP: high-s signature"
    signer: address = ecrecover(digest, v, convert(extract32(signature, 0), uint256), s)
    assert signer != empty(address), "LCP: invalid signature"
    return signer


@internal
@view
def _check_signers(
    client_id: String[types.MAX_ID],
    message: Bytes[MAX_MESSAGE],
    signatures: DynArray[Bytes[65], MAX_SIGNATURES],
):
    """k-of-n rule: registered, unexpired enclave keys of message_threshold distinct operators
    signed keccak256(message) (a key whose report names no operator stands for itself; two keys
    of one operator count once)."""
    digest: bytes32 = keccak256(message)
    seen: DynArray[address, MAX_SIGNATURES] = []
    principals: DynArray[address, MAX_SIGNATURES] = []
    for signature: Bytes[65] in signatures:
        signer: address = self._recover(digest, signature)
        assert signer not in seen, "LCP: duplicate signer"
        key: EnclaveKey = self.enclave_keys[client_id][signer]
        assert key.expires_at != 0, "LCP: signer is not a registered enclave key"
        assert convert(block.timestamp, uint64) < key.expires_at, "LCP: enclave key expired"
        seen.append(signer)
        principal: address = key.operator
        if principal == empty(address):
            principal = signer
        if principal not in principals:
            principals.append(principal)
    threshold: uint8 = self.client_states[client_id].message_threshold
    assert threshold != 0, "LCP: unknown client"
    assert len(principals) >= convert(threshold, uint256), "LCP: too few operators signed"


@internal
@view
def _check_context(message: Bytes[MAX_MESSAGE], context_len_at: uint256):
    """Validation context rule (lcp-solidity's validationContextEval) at the host's clock."""
    ctx: Bytes[MAX_MESSAGE] = self._bytes_at(message, context_len_at)
    assert self._word(ctx, 0) == 32, "LCP: malformed validation context"
    header: uint256 = self._word(ctx, 32)
    assert header & (2**240 - 1) == 0, "LCP: reserved context header bytes are not zero"
    kind: uint256 = header >> 240
    if kind == CONTEXT_EMPTY:
        return
    assert kind == CONTEXT_TRUSTING_PERIOD, "LCP: unknown validation context type"
    data_len_at: uint256 = self._dynamic(ctx, 32, 1)
    assert self._word(ctx, data_len_at) == 64, "LCP: malformed trusting-period context"
    timestamps: uint256 = self._word(ctx, data_len_at + 32)
    params: uint256 = self._word(ctx, data_len_at + 64)
    untrusted: uint256 = timestamps >> 128
    trusted: uint256 = timestamps & (2**128 - 1)
    trusting_period: uint256 = params >> 128
    clock_drift: uint256 = params & (2**128 - 1)
    now: uint256 = block.timestamp * NS
    assert now < trusted + trusting_period, "LCP: trusted state out of its trusting period"
    assert now + clock_drift > untrusted, "LCP: header from the future"


@internal
@view
def _state(client_id: String[types.MAX_ID], height: types.Height) -> ConsensusState:
    return self.states[client_id][self._key(height)]


# ----------------------------------------------------------------------------- ILightClient
@external
def create_client(
    client_id: String[types.MAX_ID],
    client_state: Bytes[types.MAX_CLIENT_STATE],
    consensus_state: Bytes[types.MAX_CLIENT_STATE],
) -> types.Height:
    assert msg.sender == handler, "LCP: only the IBC handler creates clients"
    assert self.client_states[client_id].message_threshold == 0, "LCP: client exists"
    cs: ClientState = abi_decode(client_state, ClientState)
    assert cs.mrenclave != empty(bytes32), "LCP: mrenclave is zero"
    assert cs.key_expiration != 0, "LCP: key expiration is zero"
    n: uint256 = len(cs.operators)
    for i: uint256 in range(MAX_OPERATORS):
        if i >= n:
            break
        assert cs.operators[i] != empty(address), "LCP: operator is zero"
        for j: uint256 in range(MAX_OPERATORS):
            if j >= i:
                break
            assert cs.operators[j] != cs.operators[i], "LCP: duplicate operator"
    k: uint256 = convert(cs.registration_threshold, uint256)
    assert k <= n, "LCP: registration threshold above the number of operators"
    assert cs.message_threshold != 0, "LCP: message threshold is zero"
    assert convert(cs.message_threshold, uint256) <= MAX_SIGNATURES, "LCP: message threshold too high"
    cons: ConsensusState = abi_decode(consensus_state, ConsensusState)
    assert not types.height_is_zero(cons.height), "LCP: height is zero"
    assert cons.state_id != empty(bytes32), "LCP: state id is zero"
    assert cons.timestamp != 0, "LCP: timestamp is zero"
    self.client_states[client_id] = cs
    self.states[client_id][self._key(cons.height)] = cons
    self.latest[client_id] = cons.height
    return cons.height


@internal
def _register(
    client_id: String[types.MAX_ID],
    cs: ClientState,
    enclave_key: address,
    operator: address,
    avr_hash: bytes32,
    attestation_time: uint64,
):
    assert not self.frozen[client_id], "LCP: client is frozen"
    assert enclave_key != empty(address), "LCP: enclave key is zero"
    assert operator == empty(address) or operator in cs.operators, "LCP: unknown key operator"
    assert convert(attestation_time, uint256) <= block.timestamp, "LCP: attestation from the future"
    expires_at: uint64 = attestation_time + cs.key_expiration
    assert convert(block.timestamp, uint64) < expires_at, "LCP: attestation already expired"
    current: EnclaveKey = self.enclave_keys[client_id][enclave_key]
    assert current.expires_at == 0 or current.operator == operator, "LCP: key bound to another operator"
    if expires_at > current.expires_at:
        self.enclave_keys[client_id][enclave_key] = EnclaveKey(expires_at=expires_at, operator=operator)
    log EnclaveKeyRegistered(
        client_id=client_id, enclave_key=enclave_key, operator=operator, expires_at=expires_at,
        avr_hash=avr_hash
    )


@external
def register_enclave_key(
    client_id: String[types.MAX_ID],
    avr: Bytes[MAX_AVR],
    signature: Bytes[MAX_RSA],
    signing_cert: Bytes[MAX_CERT],
):
    """Register the enclave key an IAS Attestation Verification Report names, checked on-chain:
    RSA signatures (report by the signing certificate, certificate by the verifier's root),
    quote status OK, this client's MRENCLAVE, no debug enclave unless in development; Intel's
    root unless in development. Anyone may submit it: the report is the authority."""
    cs: ClientState = self.client_states[client_id]
    assert cs.message_threshold != 0, "LCP: unknown client"
    assert avr_verifier != empty(address), "LCP: no AVR verifier configured"
    if not cs.development:
        assert staticcall IAvrVerifier(avr_verifier).root_hash() == INTEL_ROOT_HASH, "LCP: AVR root is not Intel's (development clients only)"
    report: Report = staticcall IAvrVerifier(avr_verifier).verify(avr, signature, signing_cert)
    assert report.quote_status_ok, "LCP: quote status is not OK"
    assert report.mrenclave == cs.mrenclave, "LCP: MRENCLAVE mismatch"
    assert cs.development or not report.debug, "LCP: debug enclave (development clients only)"
    self._register(
        client_id, cs, report.enclave_key, report.operator, sha256(avr), report.attestation_time
    )


@external
def register_enclave_key_by_operators(
    client_id: String[types.MAX_ID],
    enclave_key: address,
    operator: address,
    avr_hash: bytes32,
    attestation_time: uint64,
    signatures: DynArray[Bytes[65], MAX_OPERATORS],
):
    """Register `enclave_key` (from the report data of the AVR hashed `avr_hash`, attested at
    `attestation_time`, Unix seconds) on the word of registration_threshold operators; only for
    a client created with a non-zero registration_threshold (it trusts its operators)."""
    cs: ClientState = self.client_states[client_id]
    assert cs.message_threshold != 0, "LCP: unknown client"
    assert cs.registration_threshold != 0, "LCP: operator registration disabled for this client"
    digest: bytes32 = keccak256(
        abi_encode(
            REGISTRATION_DOMAIN,
            chain.id,
            self,
            client_id,
            cs.mrenclave,
            enclave_key,
            operator,
            avr_hash,
            attestation_time,
        )
    )
    approved: DynArray[address, MAX_OPERATORS] = []
    for signature: Bytes[65] in signatures:
        signer: address = self._recover(digest, signature)
        assert signer in cs.operators, "LCP: registration not signed by an operator"
        assert signer not in approved, "LCP: duplicate operator signature"
        approved.append(signer)
    assert len(approved) >= convert(cs.registration_threshold, uint256), "LCP: too few operator signatures"
    self._register(client_id, cs, enclave_key, operator, avr_hash, attestation_time)


@external
def update_client(
    client_id: String[types.MAX_ID], client_message: Bytes[types.MAX_CLIENT_MESSAGE]
) -> types.Height:
    assert msg.sender == handler, "LCP: only the IBC handler updates clients"
    assert not self.frozen[client_id], "LCP: client is frozen"
    message: Bytes[MAX_MESSAGE] = b""
    signatures: DynArray[Bytes[65], MAX_SIGNATURES] = []
    message, signatures = abi_decode(client_message, (Bytes[MAX_MESSAGE], DynArray[Bytes[65], MAX_SIGNATURES]))
    self._check_signers(client_id, message, signatures)
    header: uint256 = self._word(message, 32)
    if (header >> 224) & 65535 == TYPE_MISBEHAVIOUR:
        self._misbehaviour(client_id, message)
        return self.latest[client_id]
    b: uint256 = self._body(message, TYPE_UPDATE_STATE)
    # UpdateState rule: prev_height(2) prev_state_id post_height(2) post_state_id timestamp
    # context(offset) emitted_states(offset)
    prev: ConsensusState = self._state(client_id, self._height_at(message, b))
    prev_state_id: bytes32 = extract32(message, b + 64)
    assert prev.state_id != empty(bytes32), "LCP: unknown previous height"
    assert prev.state_id == prev_state_id, "LCP: prev_state_id does not match the stored state"
    post: ConsensusState = ConsensusState(
        height=self._height_at(message, b + 96),
        state_id=extract32(message, b + 160),
        timestamp=self._u64(message, b + 192),
    )
    assert not types.height_is_zero(post.height), "LCP: post height is zero"
    assert post.state_id != empty(bytes32), "LCP: post state id is zero"
    assert post.timestamp != 0, "LCP: timestamp is zero"
    self._check_context(message, self._dynamic(message, b, 7))
    stored: ConsensusState = self._state(client_id, post.height)
    if stored.state_id != empty(bytes32):
        assert stored.state_id == post.state_id and stored.timestamp == post.timestamp, "LCP: conflicting state for this height"
        return post.height  # resubmission: nothing changes
    self.states[client_id][self._key(post.height)] = post
    if types.height_gte(post.height, self.latest[client_id]):
        self.latest[client_id] = post.height
    return post.height


@internal
def _misbehaviour(client_id: String[types.MAX_ID], message: Bytes[MAX_MESSAGE]):
    """Misbehaviour rule: the enclave found evidence against states this client holds."""
    b: uint256 = self._body(message, TYPE_MISBEHAVIOUR)
    prev_len_at: uint256 = self._dynamic(message, b, 0)
    n: uint256 = self._word(message, prev_len_at)
    assert n != 0 and n <= MAX_PREV_STATES, "LCP: misbehaviour names no previous states"
    for i: uint256 in range(MAX_PREV_STATES):
        if i >= n:
            break
        at: uint256 = prev_len_at + 32 + i * 96
        stored: ConsensusState = self._state(client_id, self._height_at(message, at))
        assert stored.state_id != empty(bytes32), "LCP: misbehaviour names an unknown height"
        assert stored.state_id == extract32(message, at + 64), "LCP: misbehaviour names another state"
    self._check_context(message, self._dynamic(message, b, 1))
    self.frozen[client_id] = True
    log ClientFrozen(client_id=client_id)


@internal
@view
def _verify(
    client_id: String[types.MAX_ID],
    height: types.Height,
    proof: Bytes[types.MAX_PROOF],
    prefix: Bytes[types.MAX_PREFIX],
    path: Bytes[types.MAX_PATH],
    value_hash: bytes32,
) -> bool:
    """VerifyMembership rule: the signed statement names this prefix, path, value hash (zero:
    absence), height and the state id this client stored at that height."""
    assert not self.frozen[client_id], "LCP: client is frozen"
    message: Bytes[MAX_MESSAGE] = b""
    signatures: DynArray[Bytes[65], MAX_SIGNATURES] = []
    message, signatures = abi_decode(proof, (Bytes[MAX_MESSAGE], DynArray[Bytes[65], MAX_SIGNATURES]))
    self._check_signers(client_id, message, signatures)
    b: uint256 = self._body(message, TYPE_STATE)
    assert keccak256(self._bytes_at(message, self._dynamic(message, b, 0))) == keccak256(prefix), "LCP: prefix mismatch"
    assert keccak256(self._bytes_at(message, self._dynamic(message, b, 1))) == keccak256(path), "LCP: path mismatch"
    assert extract32(message, b + 64) == value_hash, "LCP: value mismatch"
    signed_height: types.Height = self._height_at(message, b + 96)
    assert signed_height.revision_number == height.revision_number and signed_height.revision_height == height.revision_height, "LCP: height mismatch"
    stored: bytes32 = self._state(client_id, height).state_id
    assert stored != empty(bytes32), "LCP: unknown height"
    assert extract32(message, b + 160) == stored, "LCP: state id mismatch"
    return True


@external
@view
def verify_membership(
    client_id: String[types.MAX_ID],
    height: types.Height,
    proof: Bytes[types.MAX_PROOF],
    prefix: Bytes[types.MAX_PREFIX],
    path: Bytes[types.MAX_PATH],
    commitment: bytes32,
) -> bool:
    # Kakehashi hosts store 32-byte commitments: the signed value is keccak256 of those 32 bytes.
    assert commitment != empty(bytes32), "LCP: zero commitment is absence"
    return self._verify(client_id, height, proof, prefix, path, keccak256(commitment))


@external
@view
def verify_membership_value(
    client_id: String[types.MAX_ID],
    height: types.Height,
    proof: Bytes[types.MAX_PROOF],
    prefix: Bytes[types.MAX_PREFIX],
    path: Bytes[types.MAX_PATH],
    stored_value: Bytes[MAX_VALUE],
) -> bool:
    """Membership of an arbitrary value (a counterparty such as ibc-go stores protobuf bytes)."""
    return self._verify(client_id, height, proof, prefix, path, keccak256(stored_value))


@external
@view
def verify_non_membership(
    client_id: String[types.MAX_ID],
    height: types.Height,
    proof: Bytes[types.MAX_PROOF],
    prefix: Bytes[types.MAX_PREFIX],
    path: Bytes[types.MAX_PATH],
) -> bool:
    return self._verify(client_id, height, proof, prefix, path, empty(bytes32))


@external
@view
def latest_height(client_id: String[types.MAX_ID]) -> types.Height:
    return self.latest[client_id]


@external
@view
def timestamp_at(client_id: String[types.MAX_ID], height: types.Height) -> uint64:
    timestamp: uint64 = self._state(client_id, height).timestamp
    assert timestamp != 0, "LCP: unknown height"
    return timestamp


@external
@view
def status(client_id: String[types.MAX_ID]) -> uint8:
    assert self.client_states[client_id].message_threshold != 0, "LCP: unknown client"
    if self.frozen[client_id]:
        return CLIENT_FROZEN
    return types.CLIENT_ACTIVE


@external
@view
def client_state(client_id: String[types.MAX_ID]) -> ClientState:
    return self.client_states[client_id]


@external
@view
def consensus_state(client_id: String[types.MAX_ID], height: types.Height) -> ConsensusState:
    return self._state(client_id, height)
