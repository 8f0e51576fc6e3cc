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
        LOCAL and EXTENSION signers sign with the full transaction (this chain coordinates it,
        and was given it whole); a SIGN packet and `sign_remote` carry only the view revealing
        the signer's part and the parts it links to — this chain, where every node sees every
        transaction, is never given a remote transaction's other parts.
        A signer position is bit 3i+s: signer s of part i.
        It also serves the module the transaction's views (`view_of`, `open_view`): their code
        keeps the module within the contract size limit (EIP-170).
"""

from ibc import types
from cross import transaction

module: public(immutable(address))

VERIFIED: constant(uint256) = 1 << 255  # auth: every signer signed

interface ICrossModule:
    def start(tx_id: bytes32): nonpayable
    def send_sign(source_channel: String[types.MAX_ID], tx_id: bytes32, index: uint8, data: Bytes[transaction.MAX_PAYLOAD]): nonpayable

required: HashMap[bytes32, uint256]  # registered: the signer positions that must sign
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
def _part_positions(
    part: transaction.ContractTransaction,
    i: uint256,
    kind: uint8,
    signer: Bytes[transaction.MAX_ACCOUNT_ID],
) -> uint256:
    """The positions of part ``i`` naming account (kind, signer)."""
    positions: uint256 = 0
    for s: uint256 in range(transaction.MAX_SIGNERS):
        if s >= len(part.signers):
            break
        if part.signers[s].kind == kind and part.signers[s].id == signer:
            positions |= 1 << (3 * i + s)
    return positions


@internal
@pure
def _positions(
    t: transaction.InitiateTx, kind: uint8, signer: Bytes[transaction.MAX_ACCOUNT_ID]
) -> uint256:
    """The positions naming account (kind, signer) in any part."""
    positions: uint256 = 0
    for i: uint256 in range(transaction.MAX_CONTRACT_TRANSACTIONS):
        if i >= len(t.contract_transactions):
            break
        positions |= self._part_positions(t.contract_transactions[i], i, kind, signer)
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
    tx_id: bytes32,
    expired: bool,
    positions: uint256,
    kind: uint8,
    signer: Bytes[transaction.MAX_ACCOUNT_ID],
) -> (String[transaction.MAX_REASON], bool):
    """Account (kind, signer), named at ``positions``, signs: (the reason it cannot or "",
    whether that signature completed the authentication). Signing twice is a no-op."""
    required: uint256 = self.required[tx_id]
    if required == 0:
        return "no such cross transaction is coordinated here", False
    a: uint256 = self.auth[tx_id]
    if a & VERIFIED != 0:
        return "", False  # every signer signed already
    if expired:
        return "the transaction timed out: no more signatures", False
    if positions == 0:
        return "not a signer of the transaction (of this kind, over this channel)", False
    if a | positions == a:
        return "", False
    a |= positions
    log CrossSigned(tx_id=tx_id, kind=kind, signer=signer, positions=positions)
    if a & required != required:
        self.auth[tx_id] = a
        return "", False
    self.auth[tx_id] = a | VERIFIED
    log CrossAuthenticated(tx_id=tx_id)
    return "", True


@internal
@pure
def _tx(payload: Bytes[transaction.MAX_TX]) -> transaction.InitiateTx:
    return abi_decode(payload, transaction.InitiateTx)


@internal
def _sign_full(
    payload: Bytes[transaction.MAX_TX], kind: uint8, signer: Bytes[transaction.MAX_ACCOUNT_ID]
) -> bytes32:
    """A LOCAL or EXTENSION signer signs the full transaction; the commit protocol starts if
    that was the last signature. Reverts with the reason it cannot."""
    t: transaction.InitiateTx = self._tx(payload)
    tx_id: bytes32 = transaction.tx_id(t)
    reason: String[transaction.MAX_REASON] = ""
    done: bool = False
    reason, done = self._sign_as(
        tx_id,
        transaction.expired(t.timeout_height, t.timeout_timestamp),
        self._positions(t, kind, signer),
        kind,
        signer,
    )
    if len(reason) > 0:
        raise reason
    if done:
        extcall ICrossModule(module).start(tx_id)
    return tx_id


@external
def register(tx_id: bytes32, payload: Bytes[transaction.MAX_TX], initiator: address) -> bool:
    """The module initiated this transaction (its id, its full encoding); its caller signs if
    it is a LOCAL signer. Whether every signer has signed (the module then starts at once)."""
    assert msg.sender == module, "CROSS: only the cross module registers transactions"
    t: transaction.InitiateTx = self._tx(payload)
    assert self.required[tx_id] == 0, "CROSS: cross transaction already initiated"
    self.required[tx_id] = self._required(t)
    signer: Bytes[transaction.MAX_ACCOUNT_ID] = concat(convert(initiator, bytes20), b"")
    reason: String[transaction.MAX_REASON] = ""
    done: bool = False
    reason, done = self._sign_as(
        tx_id, False, self._positions(t, transaction.SIGNER_LOCAL, signer), transaction.SIGNER_LOCAL, signer
    )
    return done


@external
@pure
def view_of(payload: Bytes[transaction.MAX_TX], index: uint8) -> Bytes[transaction.MAX_VIEW]:
    """The view of a transaction (its full encoding) sent to part ``index``'s ledger: that part
    and the parts it links to revealed, the others' digests."""
    t: transaction.InitiateTx = self._tx(payload)
    return transaction.view_of(t, transaction.digests(t), index)


struct Opened:
    reason: String[transaction.MAX_REASON]  # "": the part may run
    part: transaction.ContractTransaction
    linked: DynArray[Bytes[transaction.MAX_RETURN_VALUE], transaction.MAX_LINKS]


@external
@view
def open_view(tx_id: bytes32, view: Bytes[transaction.MAX_PAYLOAD], index: uint8) -> Opened:
    """A participant's check of the view a PREPARE / CALL for part ``index`` carries: it has
    the packet's tx id, reveals the part and the parts it links to, and the transaction has not
    timed out. The part and its links' declared return values, or the reason it may not run."""
    opened: Opened = empty(Opened)
    v: transaction.TxView = transaction.decode_view(view)
    if transaction.view_id(v) != tx_id:
        opened.reason = "the packet's view is not of the transaction it names"
    elif not transaction.reveals(v, index):
        opened.reason = "the view hides this part or a part it links to"
    elif transaction.expired(v.timeout_height, v.timeout_timestamp):
        opened.reason = "the transaction timed out before this part ran"
    else:
        opened.part = transaction.view_part(v, index)
        opened.linked = transaction.view_linked(v, opened.part)
    return opened


@external
def sign(payload: Bytes[transaction.MAX_TX]):
    """The caller signs a transaction coordinated here (its full encoding) as its LOCAL signer
    (its address)."""
    self._sign_full(payload, transaction.SIGNER_LOCAL, concat(convert(msg.sender, bytes20), b""))


@external
def sign_extension(payload: Bytes[transaction.MAX_TX], signature: Bytes[65]):
    """Anyone submits an EXTENSION signer's secp256k1 signature (r, s, v over the tx id) of a
    transaction coordinated here (its full encoding)."""
    assert len(signature) == 65, "CROSS: a signature is 65 bytes: r, s, v"
    v: uint256 = convert(slice(signature, 64, 1), uint256)
    if v < 27:
        v += 27
    recovered: address = ecrecover(
        transaction.tx_id(self._tx(payload)),
        v,
        extract32(signature, 0, output_type=uint256),
        extract32(signature, 32, output_type=uint256),
    )
    assert recovered != empty(address), "CROSS: the signature does not recover a key"
    self._sign_full(
        payload, transaction.SIGNER_EXTENSION, concat(b"\x01", convert(recovered, bytes20))
    )


@external
def on_sign_packet(
    tx_id: bytes32,
    view: Bytes[transaction.MAX_VIEW],
    index: uint8,
    signer: Bytes[transaction.MAX_ACCOUNT_ID],
    port: String[types.MAX_PORT],
    channel: String[types.MAX_ID],
) -> String[transaction.MAX_REASON]:
    """A CHANNEL signer of part ``index`` signed on the ledger across its channel, proven over
    IBC (the module received its SIGN packet on (port, channel)), with the view it was shown:
    the reason it is refused, "" when taken."""
    assert msg.sender == module, "CROSS: only the cross module hands over SIGN packets"
    v: transaction.TxView = transaction.decode_view(view)
    if transaction.view_id(v) != tx_id:
        return "the signed view is not of the transaction the packet names"
    if not transaction.reveals(v, index):
        return "the signed view hides the part or a part it links to"
    part: transaction.ContractTransaction = transaction.view_part(v, index)
    positions: uint256 = 0
    if part.cross_chain_channel.port == port and part.cross_chain_channel.channel == channel:
        positions = self._part_positions(
            part, convert(index, uint256), transaction.SIGNER_CHANNEL, signer
        )
    reason: String[transaction.MAX_REASON] = ""
    done: bool = False
    reason, done = self._sign_as(
        tx_id,
        transaction.expired(v.timeout_height, v.timeout_timestamp),
        positions,
        transaction.SIGNER_CHANNEL,
        signer,
    )
    if done:
        extcall ICrossModule(module).start(tx_id)
    return reason


@external
def sign_remote(view: Bytes[transaction.MAX_VIEW], index: uint8, source_channel: String[types.MAX_ID]):
    """The caller, a CHANNEL signer of part ``index`` (its address), signs a transaction
    coordinated on the ledger reached over this chain's ``source_channel`` (port ``cross``):
    the module sends it a SIGN packet. ``view``: the view revealing part ``index`` and the
    parts it links to (`InitiateTx.view(index)`), all this chain is shown."""
    v: transaction.TxView = transaction.decode_view(view)
    tx_id: bytes32 = transaction.view_id(v)
    assert tx_id != empty(bytes32), "CROSS: a malformed view"
    assert transaction.reveals(v, index), "CROSS: the view hides that part or a part it links to"
    assert not transaction.expired(v.timeout_height, v.timeout_timestamp), "CROSS: cross transaction timed out: no more signatures"
    signer: Bytes[transaction.MAX_ACCOUNT_ID] = concat(convert(msg.sender, bytes20), b"")
    part: transaction.ContractTransaction = transaction.view_part(v, index)
    named: uint256 = self._part_positions(
        part, convert(index, uint256), transaction.SIGNER_CHANNEL, signer
    )
    assert named != 0, "CROSS: the sender is not a CHANNEL signer of that part"
    extcall ICrossModule(module).send_sign(source_channel, tx_id, index, abi_encode(signer, view))
