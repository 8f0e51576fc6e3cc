# pragma version 0.4.3
"""
@title Cross Framework authentication on the EVM chain: every signer signs before anything runs
@notice The cross module (`cross_kv.vy`) registers each transaction it coordinates here; the
        commit protocol starts (`module.start`) when the last signer named by any part has
        signed, and no signature is taken after the transaction's timeout:
        - LOCAL signers sign here with their address: `initiate` on the module (its caller), or
          `sign(payload)`;
        - EXTENSION signers (scheme 0x01 ‖ address) by anyone submitting their secp256k1
          signature over the tx id (`sign_extension`);
        - CHANNEL signers on the ledger at the other end of their part's channel, which proves
          it with a SIGN packet (the module hands it to `on_sign_packet`); a CHANNEL signer of
          a part coordinated elsewhere signs from here with `sign_remote`.
        A signer position is bit 3i+s: signer s of part i.
"""

from ibc import types
from cross import transaction

module: public(immutable(address))

VERIFIED: constant(uint256) = 1 << 255  # auth: every signer signed
MAX_TX: constant(uint256) = 7800  # as the module's

interface ICrossModule:
    def start(payload: Bytes[MAX_TX]): nonpayable
    def send_sign(source_channel: String[types.MAX_ID], tx_id: bytes32, index: uint8, data: Bytes[transaction.MAX_PAYLOAD]): nonpayable

registered: HashMap[bytes32, bool]
auth: HashMap[bytes32, uint256]  # signer positions signed; VERIFIED once all did

event CrossSigned:
    tx_id: indexed(bytes32)
    kind: uint8  # SIGNER_*
    signer: Bytes[transaction.MAX_ACCOUNT_ID]
    positions: uint256  # the signer positions this signature covers

event CrossAuthenticated:
    tx_id: indexed(bytes32)


@deploy
def __init__(cross_module: address):
    module = cross_module


@external
@view
def authentication(tx_id: bytes32) -> (bool, uint256):
    """(every signer signed, the signer positions signed)."""
    a: uint256 = self.auth[tx_id]
    return a & VERIFIED != 0, a & (VERIFIED - 1)


@internal
@pure
def _positions(
    t: transaction.InitiateTx,
    kind: uint8,
    signer: Bytes[transaction.MAX_ACCOUNT_ID],
    port: String[types.MAX_PORT],
    channel: String[types.MAX_ID],
) -> uint256:
    """The positions naming account (kind, signer); a CHANNEL account only in the parts reached
    over (port, channel)."""
    positions: uint256 = 0
    for i: uint256 in range(transaction.MAX_CONTRACT_TRANSACTIONS):
        if i >= len(t.contract_transactions):
            break
        if kind == transaction.SIGNER_CHANNEL:
            if t.contract_transactions[i].cross_chain_channel.port != port:
                continue
            if t.contract_transactions[i].cross_chain_channel.channel != channel:
                continue
        for s: uint256 in range(transaction.MAX_SIGNERS):
            if s >= len(t.contract_transactions[i].signers):
                break
            if t.contract_transactions[i].signers[s].kind != kind:
                continue
            if t.contract_transactions[i].signers[s].id == signer:
                positions |= 1 << (3 * i + s)
    return positions


@internal
@pure
def _required(t: transaction.InitiateTx) -> uint256:
    required: uint256 = 0
    for i: uint256 in range(transaction.MAX_CONTRACT_TRANSACTIONS):
        if i >= len(t.contract_transactions):
            break
        required |= ((1 << len(t.contract_transactions[i].signers)) - 1) << (3 * i)
    return required


@internal
def _sign_as(
    payload: Bytes[MAX_TX],
    kind: uint8,
    signer: Bytes[transaction.MAX_ACCOUNT_ID],
    port: String[types.MAX_PORT],
    channel: String[types.MAX_ID],
) -> (String[transaction.MAX_REASON], bool):
    """Account (kind, signer) signs: (the reason it cannot or "", whether that signature
    completed the authentication). Signing twice is a no-op."""
    tx_id: bytes32 = sha256(payload)
    if not self.registered[tx_id]:
        return "no such cross transaction is coordinated here", False
    a: uint256 = self.auth[tx_id]
    if a & VERIFIED != 0:
        return "", False  # every signer signed already
    t: transaction.InitiateTx = abi_decode(payload, transaction.InitiateTx)
    if transaction.expired(t):
        return "the transaction timed out: no more signatures", False
    positions: uint256 = self._positions(t, kind, signer, port, channel)
    if positions == 0:
        return "not a signer of the transaction (of this kind, over this channel)", False
    if a | positions == a:
        return "", False
    a |= positions
    log CrossSigned(tx_id=tx_id, kind=kind, signer=signer, positions=positions)
    required: uint256 = self._required(t)
    if a & required != required:
        self.auth[tx_id] = a
        return "", False
    self.auth[tx_id] = a | VERIFIED
    log CrossAuthenticated(tx_id=tx_id)
    return "", True


@external
def register(payload: Bytes[MAX_TX], initiator: address) -> bool:
    """The module initiated this transaction; its caller signs if it is a LOCAL signer.
    Whether every signer has signed (the module then starts at once)."""
    assert msg.sender == module, "CROSS: only the cross module registers transactions"
    tx_id: bytes32 = sha256(payload)
    assert not self.registered[tx_id], "CROSS: cross transaction already initiated"
    self.registered[tx_id] = True
    reason: String[transaction.MAX_REASON] = ""
    done: bool = False
    reason, done = self._sign_as(
        payload, transaction.SIGNER_LOCAL, concat(convert(initiator, bytes20), b""), "", ""
    )
    return done


@internal
def _signed(payload: Bytes[MAX_TX], reason: String[transaction.MAX_REASON], done: bool):
    if len(reason) > 0:
        raise reason
    if done:
        extcall ICrossModule(module).start(payload)


@external
def sign(payload: Bytes[MAX_TX]):
    """The caller signs a transaction coordinated here as its LOCAL signer (its address)."""
    reason: String[transaction.MAX_REASON] = ""
    done: bool = False
    reason, done = self._sign_as(
        payload, transaction.SIGNER_LOCAL, concat(convert(msg.sender, bytes20), b""), "", ""
    )
    self._signed(payload, reason, done)


@external
def sign_extension(payload: Bytes[MAX_TX], signature: Bytes[65]):
    """Anyone submits an EXTENSION signer's secp256k1 signature (r, s, v over the tx id)."""
    assert len(signature) == 65, "CROSS: a signature is 65 bytes: r, s, v"
    v: uint256 = convert(slice(signature, 64, 1), uint256)
    if v < 27:
        v += 27
    recovered: address = ecrecover(
        sha256(payload),
        v,
        extract32(signature, 0, output_type=uint256),
        extract32(signature, 32, output_type=uint256),
    )
    assert recovered != empty(address), "CROSS: the signature does not recover a key"
    reason: String[transaction.MAX_REASON] = ""
    done: bool = False
    reason, done = self._sign_as(
        payload,
        transaction.SIGNER_EXTENSION,
        concat(b"\x01", convert(recovered, bytes20)),
        "",
        "",
    )
    self._signed(payload, reason, done)


@external
def on_sign_packet(
    payload: Bytes[MAX_TX],
    signer: Bytes[transaction.MAX_ACCOUNT_ID],
    port: String[types.MAX_PORT],
    channel: String[types.MAX_ID],
) -> String[transaction.MAX_REASON]:
    """A CHANNEL signer's signature, proven over IBC (the module received its SIGN packet on
    (port, channel)): the reason it is refused, "" when taken."""
    assert msg.sender == module, "CROSS: only the cross module hands over SIGN packets"
    reason: String[transaction.MAX_REASON] = ""
    done: bool = False
    reason, done = self._sign_as(payload, transaction.SIGNER_CHANNEL, signer, port, channel)
    if done:
        extcall ICrossModule(module).start(payload)
    return reason


@external
def sign_remote(payload: Bytes[MAX_TX], index: uint8, source_channel: String[types.MAX_ID]):
    """The caller, a CHANNEL signer of part ``index`` (its address), signs a transaction
    coordinated on the ledger reached over this chain's ``source_channel`` (port ``cross``):
    the module sends it a SIGN packet."""
    t: transaction.InitiateTx = abi_decode(payload, transaction.InitiateTx)
    assert convert(index, uint256) < len(t.contract_transactions), "CROSS: the transaction has no such part"
    assert not transaction.expired(t), "CROSS: cross transaction timed out: no more signatures"
    signer: Bytes[transaction.MAX_ACCOUNT_ID] = concat(convert(msg.sender, bytes20), b"")
    named: bool = False
    for s: uint256 in range(transaction.MAX_SIGNERS):
        if s >= len(t.contract_transactions[index].signers):
            break
        if t.contract_transactions[index].signers[s].kind == transaction.SIGNER_CHANNEL:
            if t.contract_transactions[index].signers[s].id == signer:
                named = True
    assert named, "CROSS: the sender is not a CHANNEL signer of that part"
    extcall ICrossModule(module).send_sign(
        source_channel, sha256(payload), index, abi_encode(signer, payload)
    )
