# pragma version 0.4.3
"""
@title Post-trade settlement instructions with an approval route (Kakehashi issue 8)
@notice A trade's settlement instruction (ISO 20022 sese.023 fields) travels its approval route
        on this chain, encrypted: every node holds every version, only the route's parties (and
        the submitter) can open it (kakehashi.apps.posttrade.sealing). The contract keeps what
        everyone on the chain may see and what every party must agree on:

        * the registry of parties (the deployer registers): name, EVM account, X25519 public
          key (the key each version's content key is wrapped for) and role;
        * per form (form_id = sha256 of its id string): the current version, the sha256 of its
          plaintext encoding (version_hash, checked by every party that opens it), the sha256 of
          its envelope (envelope_digest, computed here from the envelope itself), the route (the
          parties' accounts, in approval order), the submitter, the step awaiting approval, the
          processing status, the matching status and the settlement status, and the last
          rejection (who, at which step, which ISO 20022 reason code).

        A party acts from its own account: the transaction's signature is its signature, and
        msg.sender decides what it may do. Approvals and rejections name the version and its
        hash, so a party approves the content it opened and nothing else. The envelope bytes and
        the sealed narratives are in events only (FormVersion, Rejected): storage keeps the
        digest, so an envelope handed over by anyone is checked against it.

        Every step logs its event and one Notified per party concerned (the route's parties and
        the submitter): a party's inbox is the Notified events naming its account.

        Revert reasons start with "POSTTRADE: " and a fixed phrase the client maps to a typed
        error (kakehashi.apps.posttrade.ledger).
"""

MAX_ROUTE: constant(uint256) = 8
MAX_NAME: constant(uint256) = 128
MAX_FORM_ID: constant(uint256) = 64
MAX_ENVELOPE: constant(uint256) = 12288
MAX_NARRATIVE: constant(uint256) = 4096
MAX_CODES: constant(uint256) = 16

# roles (kakehashi.apps.posttrade.form.Role, in this order)
ROLE_ASSET_MANAGER: constant(uint8) = 1
ROLE_CUSTODIAN: constant(uint8) = 2
ROLE_SECURITIES_COMPANY: constant(uint8) = 3
ROLE_CSD: constant(uint8) = 4
ROLE_OTHER: constant(uint8) = 5

# processing status: on the route (awaiting approvals), accepted (PACK: every step approved),
# returned to the submitter (REJT: an NG), cancelled (CAND)
ON_ROUTE: constant(uint8) = 1
ACCEPTED: constant(uint8) = 2
REJECTED: constant(uint8) = 3
CANCELLED: constant(uint8) = 4

# matching status: none recorded, matched (MACH), unmatched (NMAT)
MATCHED: constant(uint8) = 1
UNMATCHED: constant(uint8) = 2

# settlement status: none recorded, pending (PEND), failing (PENF), settled (SETT)
PENDING: constant(uint8) = 1
FAILING: constant(uint8) = 2
SETTLED: constant(uint8) = 3

# what a Notified event tells a party
N_SUBMITTED: constant(uint8) = 1  # a new form or a new version is on the route
N_APPROVED: constant(uint8) = 2  # a step approved
N_REJECTED: constant(uint8) = 3  # an NG: the form is back with the submitter
N_CANCELLED: constant(uint8) = 4
N_ACCEPTED: constant(uint8) = 5  # the last step approved
N_MATCHING: constant(uint8) = 6
N_SETTLEMENT: constant(uint8) = 7


struct Party:
    name: String[MAX_NAME]
    account: address
    public_key: bytes32  # X25519
    role: uint8


struct Form:
    form_ref: String[MAX_FORM_ID]  # the form id string (form_id = its sha256)
    version: uint32
    version_hash: bytes32
    envelope_digest: bytes32
    route: DynArray[address, MAX_ROUTE]
    submitter: address
    step: uint8  # index in route of the party whose approval is awaited
    processing: uint8
    matching: uint8
    settlement: uint8
    settlement_reason: bytes4
    rejected_by: address  # the last NG (empty address when none on this version)
    rejected_step: uint8
    reject_reason: bytes4
    submitted_block: uint256  # the block of this version's FormVersion event


owner: public(immutable(address))
parties: HashMap[address, Party]
accounts: HashMap[bytes32, address]  # keccak256(name) -> account
party_count: public(uint256)
forms: HashMap[bytes32, Form]
form_ids: public(DynArray[bytes32, 65536])


event PartyRegistered:
    account: indexed(address)
    name: String[MAX_NAME]
    public_key: bytes32
    role: uint8


event FormVersion:
    form_id: indexed(bytes32)
    version: uint32
    envelope: Bytes[MAX_ENVELOPE]


event Submitted:
    form_id: indexed(bytes32)
    submitter: indexed(address)
    form_ref: String[MAX_FORM_ID]
    version: uint32
    version_hash: bytes32
    envelope_digest: bytes32
    route: DynArray[address, MAX_ROUTE]


event Approved:
    form_id: indexed(bytes32)
    party: indexed(address)
    version: uint32
    version_hash: bytes32
    step: uint8


event Rejected:
    form_id: indexed(bytes32)
    party: indexed(address)
    version: uint32
    version_hash: bytes32
    step: uint8
    reason: bytes4
    narrative: Bytes[MAX_NARRATIVE]  # sealed for the route's parties and the submitter


event Cancelled:
    form_id: indexed(bytes32)
    version: uint32


event MatchingRecorded:
    form_id: indexed(bytes32)
    version: uint32
    version_hash: bytes32  # the version matched
    counterpart: bytes32  # the counterparty instruction's form_id (empty: none found)
    matched: bool
    codes: DynArray[bytes4, MAX_CODES]  # the unmatched reason codes


event SettlementRecorded:
    form_id: indexed(bytes32)
    version: uint32
    version_hash: bytes32  # the version settled
    status: uint8
    reason: bytes4
    evidence: bytes32  # the cross transaction that settled it, or failed (empty: none named)


event Notified:
    party: indexed(address)
    form_id: indexed(bytes32)
    version: uint32
    what: uint8


@deploy
def __init__():
    owner = msg.sender


# ------------------------------------------------------------------------------- registry
@external
def register_party(name: String[MAX_NAME], account: address, public_key: bytes32, role: uint8):
    """Register a party: its name, the account it acts from, its X25519 public key, its role."""
    assert msg.sender == owner, "POSTTRADE: only the deployer registers parties"
    assert len(name) > 0, "POSTTRADE: a party name is 1 to 128 characters"
    assert account != empty(address), "POSTTRADE: a party needs an account"
    assert public_key != empty(bytes32), "POSTTRADE: a party needs an X25519 public key"
    assert role >= ROLE_ASSET_MANAGER and role <= ROLE_OTHER, "POSTTRADE: unknown role"
    assert self.parties[account].account == empty(address), "POSTTRADE: account already registered"
    key: bytes32 = keccak256(name)
    assert self.accounts[key] == empty(address), "POSTTRADE: name already registered"
    self.parties[account] = Party(name=name, account=account, public_key=public_key, role=role)
    self.accounts[key] = account
    self.party_count += 1
    log PartyRegistered(account=account, name=name, public_key=public_key, role=role)


@external
@view
def party(account: address) -> Party:
    return self.parties[account]


@external
@view
def account_of(name: String[MAX_NAME]) -> address:
    return self.accounts[keccak256(name)]


# ---------------------------------------------------------------------------------- forms
@external
@view
def form(form_id: bytes32) -> Form:
    return self.forms[form_id]


@external
@view
def form_count() -> uint256:
    return len(self.form_ids)


@internal
def _notify(form_id: bytes32, what: uint8):
    record: Form = self.forms[form_id]
    submitter_on_route: bool = False
    for account: address in record.route:
        log Notified(party=account, form_id=form_id, version=record.version, what=what)
        if account == record.submitter:
            submitter_on_route = True
    if not submitter_on_route:
        log Notified(party=record.submitter, form_id=form_id, version=record.version, what=what)


@internal
def _check_route(route: DynArray[address, MAX_ROUTE]):
    assert len(route) > 0, "POSTTRADE: the route is empty"
    for i: uint256 in range(MAX_ROUTE):
        if i >= len(route):
            break
        assert self.parties[route[i]].account != empty(address), "POSTTRADE: a route party is not registered"
        for j: uint256 in range(MAX_ROUTE):
            if j >= i:
                break
            assert route[j] != route[i], "POSTTRADE: a party appears twice on the route"


@internal
def _put_version(
    form_id: bytes32,
    version: uint32,
    version_hash: bytes32,
    envelope_digest: bytes32,
    envelope: Bytes[MAX_ENVELOPE],
    route: DynArray[address, MAX_ROUTE],
):
    assert version_hash != empty(bytes32), "POSTTRADE: the version hash is empty"
    assert sha256(envelope) == envelope_digest, "POSTTRADE: envelope digest mismatch"
    self._check_route(route)
    record: Form = self.forms[form_id]
    record.version = version
    record.version_hash = version_hash
    record.envelope_digest = envelope_digest
    record.route = route
    record.step = 0
    record.processing = ON_ROUTE
    record.matching = 0  # a new version is matched again before anyone approves it
    record.rejected_by = empty(address)
    record.rejected_step = 0
    record.reject_reason = empty(bytes4)
    record.submitted_block = block.number
    self.forms[form_id] = record
    log FormVersion(form_id=form_id, version=version, envelope=envelope)
    log Submitted(
        form_id=form_id,
        submitter=record.submitter,
        form_ref=record.form_ref,
        version=version,
        version_hash=version_hash,
        envelope_digest=envelope_digest,
        route=route,
    )
    self._notify(form_id, N_SUBMITTED)


@external
def submit(
    form_ref: String[MAX_FORM_ID],
    version_hash: bytes32,
    envelope_digest: bytes32,
    envelope: Bytes[MAX_ENVELOPE],
    route: DynArray[address, MAX_ROUTE],
) -> bytes32:
    """Enter a new form (version 1) on its route; returns its form_id, sha256(form_ref)."""
    assert self.parties[msg.sender].account != empty(address), "POSTTRADE: the sender is not a registered party"
    assert len(form_ref) > 0, "POSTTRADE: a form id is 1 to 64 characters"
    form_id: bytes32 = sha256(convert(form_ref, Bytes[MAX_FORM_ID]))
    assert self.forms[form_id].version == 0, "POSTTRADE: the form exists already"
    self.forms[form_id].form_ref = form_ref
    self.forms[form_id].submitter = msg.sender
    self.form_ids.append(form_id)
    self._put_version(form_id, 1, version_hash, envelope_digest, envelope, route)
    return form_id


@external
def amend(
    form_id: bytes32,
    version: uint32,
    version_hash: bytes32,
    envelope_digest: bytes32,
    envelope: Bytes[MAX_ENVELOPE],
    route: DynArray[address, MAX_ROUTE],
):
    """The submitter's new version (the current one plus one), sealed for its route; it goes
    back to the route's first step. Allowed while on the route and after an NG."""
    record: Form = self.forms[form_id]
    assert record.version != 0, "POSTTRADE: unknown form"
    assert msg.sender == record.submitter, "POSTTRADE: only the submitter amends"
    assert record.processing != CANCELLED, "POSTTRADE: the form is cancelled"
    assert record.processing != ACCEPTED, "POSTTRADE: the form is accepted already"
    assert version == record.version + 1, "POSTTRADE: stale version"
    self._put_version(form_id, version, version_hash, envelope_digest, envelope, route)


@internal
@view
def _at_step(form_id: bytes32, version: uint32, version_hash: bytes32) -> Form:
    record: Form = self.forms[form_id]
    assert record.version != 0, "POSTTRADE: unknown form"
    assert record.processing != CANCELLED, "POSTTRADE: the form is cancelled"
    assert record.processing != REJECTED, "POSTTRADE: the form is back with the submitter"
    assert record.processing != ACCEPTED, "POSTTRADE: the form is accepted already"
    assert version == record.version and version_hash == record.version_hash, "POSTTRADE: stale version"
    assert msg.sender in record.route, "POSTTRADE: not on the route"
    assert record.route[convert(record.step, uint256)] == msg.sender, "POSTTRADE: not your turn"
    return record


@external
def approve(form_id: bytes32, version: uint32, version_hash: bytes32):
    """OK by the party at the current step, for the version (and content) it opened — once the
    CSD has matched this version with the counterparty's instruction."""
    record: Form = self._at_step(form_id, version, version_hash)
    assert record.matching == MATCHED, "POSTTRADE: not matched: the CSD matches this version with the counterparty's instruction before anyone approves"
    step: uint8 = record.step
    record.step += 1
    if convert(record.step, uint256) == len(record.route):
        record.processing = ACCEPTED
    self.forms[form_id] = record
    log Approved(form_id=form_id, party=msg.sender, version=version, version_hash=version_hash, step=step)
    if record.processing == ACCEPTED:
        self._notify(form_id, N_ACCEPTED)
    else:
        self._notify(form_id, N_APPROVED)


@external
def reject(
    form_id: bytes32,
    version: uint32,
    version_hash: bytes32,
    reason: bytes4,
    narrative: Bytes[MAX_NARRATIVE],
):
    """NG by the party at the current step with an ISO 20022 reason code and a sealed
    narrative: the form returns to the submitter."""
    assert reason != empty(bytes4), "POSTTRADE: an NG needs a reason code"
    record: Form = self._at_step(form_id, version, version_hash)
    record.processing = REJECTED
    record.rejected_by = msg.sender
    record.rejected_step = record.step
    record.reject_reason = reason
    self.forms[form_id] = record
    log Rejected(
        form_id=form_id,
        party=msg.sender,
        version=version,
        version_hash=version_hash,
        step=record.step,
        reason=reason,
        narrative=narrative,
    )
    self._notify(form_id, N_REJECTED)


@external
def cancel(form_id: bytes32):
    """The submitter withdraws the form (CAND) unless it is settled."""
    record: Form = self.forms[form_id]
    assert record.version != 0, "POSTTRADE: unknown form"
    assert msg.sender == record.submitter, "POSTTRADE: only the submitter cancels"
    assert record.processing != CANCELLED, "POSTTRADE: the form is cancelled"
    assert record.settlement != SETTLED, "POSTTRADE: the form is settled"
    self.forms[form_id].processing = CANCELLED
    log Cancelled(form_id=form_id, version=record.version)
    self._notify(form_id, N_CANCELLED)


@internal
@view
def _csd(form_id: bytes32) -> Form:
    record: Form = self.forms[form_id]
    assert record.version != 0, "POSTTRADE: unknown form"
    assert msg.sender == record.route[len(record.route) - 1], "POSTTRADE: only the CSD records statuses"
    assert record.processing != CANCELLED, "POSTTRADE: the form is cancelled"
    return record


@external
def record_matching(
    form_id: bytes32,
    version_hash: bytes32,
    counterpart: bytes32,
    matched: bool,
    codes: DynArray[bytes4, MAX_CODES],
):
    """The CSD (the route's last party) records the matching status (MACH / NMAT with the
    unmatched reason codes) of the version it read (``version_hash``: refused unless current)
    against the counterparty's instruction."""
    record: Form = self._csd(form_id)
    assert version_hash == record.version_hash, "POSTTRADE: stale version hash"
    assert record.settlement != SETTLED, "POSTTRADE: the form is settled"
    assert matched == (len(codes) == 0), "POSTTRADE: unmatched needs reason codes, matched none"
    if matched:
        self.forms[form_id].matching = MATCHED
    else:
        self.forms[form_id].matching = UNMATCHED
    log MatchingRecorded(
        form_id=form_id,
        version=record.version,
        version_hash=version_hash,
        counterpart=counterpart,
        matched=matched,
        codes=codes,
    )
    self._notify(form_id, N_MATCHING)


@external
def record_settlement(
    form_id: bytes32, version_hash: bytes32, status: uint8, reason: bytes4, evidence: bytes32
):
    """The CSD records the settlement status of an accepted form's version (``version_hash``:
    refused unless current): PEND, PENF (with a reason) or SETT (final); ``evidence`` names
    the cross transaction anyone may look up (empty when there is none)."""
    record: Form = self._csd(form_id)
    assert version_hash == record.version_hash, "POSTTRADE: stale version hash"
    assert record.processing == ACCEPTED, "POSTTRADE: the form is not accepted"
    assert record.settlement != SETTLED, "POSTTRADE: the form is settled"
    assert status >= PENDING and status <= SETTLED, "POSTTRADE: unknown settlement status"
    assert status != FAILING or reason != empty(bytes4), "POSTTRADE: failing needs a reason code"
    self.forms[form_id].settlement = status
    self.forms[form_id].settlement_reason = reason
    log SettlementRecorded(
        form_id=form_id,
        version=record.version,
        version_hash=version_hash,
        status=status,
        reason=reason,
        evidence=evidence,
    )
    self._notify(form_id, N_SETTLEMENT)
