"""The post-trade contract (contracts/apps/posttrade.vy) and each party's client of it
(kakehashi.apps.posttrade.ledger) on a real embedded EVM chain: the route's rules, the whole
workflow (approvals in route order, an NG with a reason and a narrative, an amendment, the
resubmission, the CSD's statuses, cancellation), and the confidentiality claims (an outsider
gets ciphertext only, a party removed from the route cannot open the new version, a tampered
envelope is detected against the digest on chain)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from kakehashi.apps.posttrade import sealing
from kakehashi.apps.posttrade.codes import Direction, Role
from kakehashi.apps.posttrade.demo import (
    AM,
    CSD,
    CUSTODIAN,
    OUTSIDER,
    SECURITIES,
    sample_instruction,
)
from kakehashi.apps.posttrade.form import Form, Instruction, form_id_hash
from kakehashi.apps.posttrade.ledger import (
    DigestMismatchError,
    FormStateError,
    NotOnRouteError,
    NotYourTurnError,
    PostTradeLedger,
    Processing,
    Settlement,
    StaleVersionError,
    UnknownFormError,
    deploy,
    register_party,
)
from kakehashi.errors import (
    NotARecipientError,
    PostTradeError,
    TransactionRevertedError,
    UnknownPartyError,
)
from kakehashi.ledgers.evm.chain import EmbeddedChain, dev_accounts
from kakehashi.ledgers.evm.client import transact
from kakehashi.ledgers.evm.provider import embedded_web3

OPERATOR = dev_accounts()[0]
ROLES: dict[str, Role | None] = {
    AM: Role.ASSET_MANAGER,
    CUSTODIAN: Role.CUSTODIAN,
    SECURITIES: Role.SECURITIES_COMPANY,
    CSD: Role.CSD,
    OUTSIDER: None,
}
ROUTE = (CUSTODIAN, SECURITIES, CSD)


def instruction(**changes: Any) -> Instruction:
    return sample_instruction(**changes)


def form(form_id: str = "F-1", version: int = 1, route: tuple[str, ...] = ROUTE, **kw: Any) -> Form:
    return Form(form_id, version, instruction(**kw), route, AM)


@dataclass
class Net:
    chain: EmbeddedChain
    w3: Any
    contract: Any
    parties: dict[str, PostTradeLedger]

    def __getitem__(self, name: str) -> PostTradeLedger:
        return self.parties[name]


@pytest.fixture
def net() -> Iterator[Net]:
    """A fresh chain, the contract deployed by the operator, five parties registered, each
    with its own EVM account and X25519 key pair."""
    with EmbeddedChain() as chain:
        w3 = embedded_web3(chain)
        contract = deploy(w3, OPERATOR)
        parties = {}
        for i, (name, role) in enumerate(ROLES.items(), start=1):
            private, public = sealing.generate_keypair()
            account = dev_accounts()[i]
            register_party(w3, contract, OPERATOR, name, account.address, public, role)
            parties[name] = PostTradeLedger(w3, contract, name, account, private)
        yield Net(chain, w3, contract, parties)


# ------------------------------------------------------------------------ the contract's rules
def _raw_submit(
    net: Net,
    sender: Any,
    form_ref: str,
    envelope: bytes,
    digest: bytes | None = None,
    route: list[str] | None = None,
) -> None:
    accounts = route if route is not None else [net[p].account.address for p in ROUTE]
    transact(
        net.w3,
        net.contract.functions.submit(
            form_ref,
            hashlib.sha256(b"content").digest(),
            digest if digest is not None else hashlib.sha256(envelope).digest(),
            envelope,
            accounts,
        ),
        sender=sender,
    )


def test_the_contract_refuses_what_breaks_the_route(net: Net) -> None:
    am = net[AM].account
    envelope = os.urandom(300)
    with pytest.raises(TransactionRevertedError, match="envelope digest mismatch"):
        _raw_submit(net, am, "R-1", envelope, digest=hashlib.sha256(b"other").digest())
    with pytest.raises(TransactionRevertedError, match="not a registered party"):
        _raw_submit(net, dev_accounts()[8], "R-1", envelope)
    twice = [net[CUSTODIAN].account.address] * 2
    with pytest.raises(TransactionRevertedError, match="appears twice"):
        _raw_submit(net, am, "R-1", envelope, route=twice)
    with pytest.raises(TransactionRevertedError, match="not registered"):
        _raw_submit(net, am, "R-1", envelope, route=[dev_accounts()[9].address])
    with pytest.raises(TransactionRevertedError, match="route is empty"):
        _raw_submit(net, am, "R-1", envelope, route=[])
    _raw_submit(net, am, "R-1", envelope)
    with pytest.raises(TransactionRevertedError, match="exists already"):
        _raw_submit(net, am, "R-1", envelope)
    record = net.contract.functions.form(form_id_hash("R-1")).call()
    assert (
        record[0] == "R-1"
        and record[1] == 1
        and bytes(record[3]) == hashlib.sha256(envelope).digest()
    )
    key, vhash = form_id_hash("R-1"), hashlib.sha256(b"content").digest()
    approve = net.contract.functions.approve
    with pytest.raises(TransactionRevertedError, match="not your turn"):
        transact(net.w3, approve(key, 1, vhash), sender=net[CSD].account)
    with pytest.raises(TransactionRevertedError, match="not on the route"):
        transact(net.w3, approve(key, 1, vhash), sender=net[OUTSIDER].account)
    with pytest.raises(TransactionRevertedError, match="stale version"):
        transact(
            net.w3,
            approve(key, 1, hashlib.sha256(b"other").digest()),
            sender=net[CUSTODIAN].account,
        )
    with pytest.raises(TransactionRevertedError, match="needs a reason code"):
        transact(
            net.w3,
            net.contract.functions.reject(key, 1, vhash, b"\0" * 4, b""),
            sender=net[CUSTODIAN].account,
        )
    with pytest.raises(TransactionRevertedError, match="only the submitter cancels"):
        transact(net.w3, net.contract.functions.cancel(key), sender=net[CUSTODIAN].account)
    with pytest.raises(TransactionRevertedError, match="only the CSD"):
        transact(
            net.w3,
            net.contract.functions.record_matching(key, vhash, b"\0" * 32, True, []),
            sender=net[CUSTODIAN].account,
        )
    with pytest.raises(TransactionRevertedError, match="stale version hash"):
        transact(
            net.w3,
            net.contract.functions.record_matching(key, b"\1" * 32, b"\0" * 32, True, []),
            sender=net[CSD].account,
        )
    with pytest.raises(TransactionRevertedError, match="not accepted"):
        transact(
            net.w3,
            net.contract.functions.record_settlement(key, vhash, 3, b"\0" * 4, b"\0" * 32),
            sender=net[CSD].account,
        )
    with pytest.raises(TransactionRevertedError, match="stale version hash"):
        transact(
            net.w3,
            net.contract.functions.record_settlement(key, b"\1" * 32, 3, b"\0" * 4, b"\0" * 32),
            sender=net[CSD].account,
        )
    with pytest.raises(TransactionRevertedError, match="only the deployer"):
        transact(
            net.w3, net.contract.functions.register_party("x", am.address, b"\1" * 32, 1), sender=am
        )
    # the record is as the one accepted submission left it
    record = net.contract.functions.form(key).call()
    assert (record[1], record[6], record[7]) == (1, 0, Processing.ON_ROUTE)


# --------------------------------------------------------------------------- the workflow
def test_the_whole_workflow_in_route_order_with_an_ng_and_a_resubmission(net: Net) -> None:
    v1 = form()
    state = net[AM].submit(v1)
    assert state.processing is Processing.ON_ROUTE and state.awaiting == CUSTODIAN
    assert state.route == ROUTE and state.submitter == AM
    assert state.version_hash == v1.version_hash

    # every party on the route is notified and opens the same content
    for name in (AM, *ROUTE):
        assert [(n.form_id, n.version, n.what) for n in net[name].inbox()] == [
            ("F-1", 1, "submitted")
        ]
        view = net[name].show("F-1")
        assert view.readable and view.form == v1
    assert net[OUTSIDER].inbox() == []

    # nobody approves before the CSD has matched the version with the counterparty's
    with pytest.raises(FormStateError, match="not matched"):
        net[CUSTODIAN].approve("F-1")
    assert net[CSD].record_matching("F-1", "F-2", matched=True).matching.iso == "MACH"
    assert net[CUSTODIAN].approve("F-1").awaiting == SECURITIES
    # NG by the securities company: back with the submitter, reason visible on the route
    state = net[SECURITIES].reject("F-1", "LACK", "only 600 shares in the account")
    assert state.processing is Processing.REJECTED and state.processing.iso == "REJT"
    assert (state.rejected_by, state.rejected_step, state.reject_reason) == (SECURITIES, 1, "LACK")
    assert [s.state for s in state.steps] == ["approved", "rejected", "not reached"]
    for name in (AM, *ROUTE):
        view = net[name].show("F-1")
        assert view.state.reject_reason == "LACK"
        assert view.narrative == "only 600 shares in the account"
        assert net[name].inbox()[-1].what == "rejected"
    outsider = net[OUTSIDER].show("F-1")
    assert outsider.state.reject_reason == "LACK" and outsider.narrative is None
    with pytest.raises(FormStateError, match="back with the submitter"):
        net[CSD].approve("F-1")

    # the submitter amends (version 2) and the route starts over
    v2 = form(version=2, quantity=Decimal(600), settlement_amount=Decimal(1710300))
    state = net[AM].amend(v2)
    assert (state.version, state.step, state.processing) == (2, 0, Processing.ON_ROUTE)
    assert state.rejected_by is None
    for name in ROUTE:
        assert net[name].show("F-1").form == v2
    assert state.matching.iso is None  # a new version is matched again
    net[CSD].record_matching("F-1", "F-2", matched=True)
    for name in ROUTE:
        state = net[name].approve("F-1")
    assert state.processing is Processing.ACCEPTED and state.processing.iso == "PACK"
    assert [s.state for s in state.steps] == ["approved"] * 3

    # the CSD records the settlement
    assert state.matching.iso == "MACH"
    state = net[CSD].record_settlement("F-1", Settlement.FAILING, "LACK")
    assert (state.settlement.iso, state.settlement_reason) == ("PENF", "LACK")
    with pytest.raises(PostTradeError, match="32-byte"):
        net[CSD].record_settlement("F-1", Settlement.SETTLED, evidence=b"short")
    state = net[CSD].record_settlement("F-1", Settlement.SETTLED, evidence=b"\x42" * 32)
    assert state.settlement.iso == "SETT"
    with pytest.raises(FormStateError, match="settled"):
        net[AM].cancel("F-1")

    history = [(h.event, h.party, h.version) for h in net[AM].history("F-1")]
    assert history == [
        ("submitted", AM, 1),
        ("matching", CSD, 1),
        ("approved", CUSTODIAN, 1),
        ("rejected", SECURITIES, 1),
        ("submitted", AM, 2),
        ("matching", CSD, 2),
        ("approved", CUSTODIAN, 2),
        ("approved", SECURITIES, 2),
        ("approved", CSD, 2),
        ("settlement", CSD, 2),
        ("settlement", CSD, 2),
    ]
    settled = net[AM].history("F-1")[-1].detail
    assert settled["version_hash"] == v2.version_hash.hex()  # bound to the version settled
    assert settled["evidence"] == "42" * 32  # the cross transaction, for anyone to look up
    assert [n.what for n in net[CUSTODIAN].inbox()] == [
        "submitted",
        "matching",
        "approved",
        "rejected",
        "submitted",
        "matching",
        "approved",
        "approved",
        "accepted",
        "settlement",
        "settlement",
    ]


def test_cancel_by_the_submitter_ends_the_route(net: Net) -> None:
    net[AM].submit(form())
    with pytest.raises(NotOnRouteError, match="only the submitter cancels"):
        net[CUSTODIAN].cancel("F-1")
    state = net[AM].cancel("F-1")
    assert state.processing is Processing.CANCELLED and state.processing.iso == "CAND"
    with pytest.raises(FormStateError, match="cancelled"):
        net[CUSTODIAN].approve("F-1")
    with pytest.raises(FormStateError, match="cancelled"):
        net[AM].amend(form(version=2))
    assert net[CSD].inbox()[-1].what == "cancelled"


def test_out_of_order_and_wrong_party_steps_are_refused_with_typed_errors(net: Net) -> None:
    net[AM].submit(form())
    with pytest.raises(NotYourTurnError, match="awaiting 'custodian' \\(step 1 of 3\\)"):
        net[CSD].approve("F-1")
    with pytest.raises(NotYourTurnError):
        net[SECURITIES].reject("F-1", "LACK")
    with pytest.raises(NotOnRouteError, match="cannot open"):
        net[OUTSIDER].approve("F-1")
    with pytest.raises(NotOnRouteError, match="not on the route"):  # even naming the version
        net[OUTSIDER].approve("F-1", version=1)
    with pytest.raises(NotOnRouteError, match="only the submitter amends"):
        net[CUSTODIAN].amend(form(version=2))
    with pytest.raises(PostTradeError, match="may not reject with LACK"):
        net[CUSTODIAN].reject("F-1", "LACK")  # the securities company's code
    with pytest.raises(UnknownFormError, match="no form 'F-9'"):
        net[CUSTODIAN].approve("F-9", version=1)
    assert net[AM].state("F-1").step == 0  # nothing changed


def test_an_approval_of_a_stale_version_is_refused(net: Net) -> None:
    net[AM].submit(form())
    net[CUSTODIAN].reject("F-1", "CASH", "cash account closed")
    net[AM].amend(form(version=2, safekeeping_account="SAFE-002"))
    with pytest.raises(StaleVersionError, match=r"stale version.*at version 2"):
        net[CUSTODIAN].approve("F-1", version=1)
    with pytest.raises(StaleVersionError):
        net[AM].amend(form(version=2))  # version 2 exists: the next is 3
    net[CSD].record_matching("F-1", "F-2", matched=True)
    assert net[CUSTODIAN].approve("F-1", version=2).step == 1


def test_an_outsider_gets_the_ciphertext_and_not_a_recipient(net: Net) -> None:
    v1 = form()
    net[AM].submit(v1)
    view = net[OUTSIDER].show("F-1")
    assert not view.readable and view.form is None
    assert view.refusal is not None and view.refusal.startswith("not a recipient")
    assert view.envelope == net[CUSTODIAN].envelope("F-1")
    assert hashlib.sha256(view.envelope).digest() == view.state.envelope_digest
    assert v1.encode() not in view.envelope and b"JP3633400001" not in view.envelope
    # the outsider's key opens nothing, even under a route party's name
    envelope = sealing.Envelope.decode(view.envelope)
    with pytest.raises(NotARecipientError):
        sealing.open_envelope(envelope, OUTSIDER, net[OUTSIDER].private_key)
    with pytest.raises(PostTradeError):
        sealing.open_envelope(envelope, CUSTODIAN, net[OUTSIDER].private_key)


def test_a_party_removed_from_the_route_cannot_open_the_new_version(net: Net) -> None:
    net[AM].submit(form())
    net[CUSTODIAN].reject("F-1", "SAFE", "wrong account")
    v2 = form(version=2, route=(CUSTODIAN, CSD), safekeeping_account="SAFE-002")
    net[AM].amend(v2)
    view = net[SECURITIES].show("F-1")
    assert not view.readable and view.refusal is not None and "not a recipient" in view.refusal
    with pytest.raises(NotARecipientError):
        sealing.open_envelope(
            sealing.Envelope.decode(net[SECURITIES].envelope("F-1", 2)),
            SECURITIES,
            net[SECURITIES].private_key,
        )
    # it still holds version 1, which was sealed for it
    old = sealing.Envelope.decode(net[SECURITIES].envelope("F-1", 1))
    assert (
        Form.decode(sealing.open_envelope(old, SECURITIES, net[SECURITIES].private_key)).version
        == 1
    )
    assert net[CSD].show("F-1").form == v2
    with pytest.raises(NotOnRouteError):
        net[SECURITIES].approve("F-1", version=2)


def test_a_tampered_envelope_handed_over_is_detected(net: Net) -> None:
    net[AM].submit(form())
    genuine = net[CUSTODIAN].envelope("F-1")
    assert net[CUSTODIAN].show("F-1", envelope=genuine).readable
    for i in (0, len(genuine) // 2, len(genuine) - 1):
        tampered = bytearray(genuine)
        tampered[i] ^= 0x01
        with pytest.raises(DigestMismatchError, match="altered"):
            net[CUSTODIAN].show("F-1", envelope=bytes(tampered))
    # an envelope sealed afresh for the same content is another digest: refused as well
    other = sealing.seal(
        form().encode(), "F-1", 1, {CUSTODIAN: net[CUSTODIAN].party(CUSTODIAN).public_key}
    ).encode()
    with pytest.raises(DigestMismatchError):
        net[CUSTODIAN].show("F-1", envelope=other)


def test_a_party_acts_only_from_its_own_account(net: Net) -> None:
    private, _ = sealing.generate_keypair()
    with pytest.raises(UnknownPartyError, match="use the party's own EVM key"):
        PostTradeLedger(net.w3, net.contract, CUSTODIAN, dev_accounts()[7], private)
    with pytest.raises(UnknownPartyError, match="no party named"):
        PostTradeLedger(net.w3, net.contract, "nobody", dev_accounts()[7], private)
    with pytest.raises(UnknownPartyError, match="no party named 'nobody'"):
        net[AM].submit(form(route=(CUSTODIAN, "nobody")))


def test_the_csd_matches_the_two_sides_and_records_the_result(net: Net) -> None:
    net[AM].submit(form())  # receives against payment
    seller = Form(
        "F-2",
        1,
        instruction(direction=Direction.DELI, sender_reference="TS-77"),
        (CSD,),
        SECURITIES,
    )
    net[SECURITIES].submit(seller)
    result = net[CSD].match_counterpart("F-1", "F-2")
    assert result.matched and net[AM].state("F-1").matching.iso == "MACH"
    assert [h.detail for h in net[AM].history("F-1") if h.event == "matching"] == [
        {"matched": True, "codes": [], "version_hash": form().version_hash.hex()}
    ]

    wrong = Form(
        "F-3",
        1,
        instruction(
            direction=Direction.DELI, quantity=Decimal(999), settlement_date=date(2026, 12, 3)
        ),
        (CSD,),
        SECURITIES,
    )
    net[SECURITIES].submit(wrong)
    result = net[CSD].match_counterpart("F-1", "F-3")
    assert not result.matched and {c.value for c in result.codes} == {"DQUA", "DDAT"}
    assert net[CUSTODIAN].state("F-1").matching.iso == "NMAT"
    assert net[CUSTODIAN].history("F-1")[-1].detail["codes"] == [c.value for c in result.codes]

    assert net[CSD].match_counterpart("F-1", None).codes[0].value == "CMIS"
    with pytest.raises(NotOnRouteError, match="only the CSD"):
        net[CUSTODIAN].record_matching("F-1", "F-2", matched=True)
    with pytest.raises(NotOnRouteError, match="cannot open form 'F-2'"):
        net[CUSTODIAN].match_counterpart("F-1", "F-2")  # F-2 is not sealed for the custodian


def test_a_narrative_too_long_for_the_contract_is_refused_before_sending(net: Net) -> None:
    net[AM].submit(form())
    with pytest.raises(PostTradeError, match="shorten it"):
        net[CUSTODIAN].reject("F-1", "CASH", "x" * 4000)
    assert net[AM].state("F-1").processing is Processing.ON_ROUTE
    state = net[CUSTODIAN].reject("F-1", "CASH", "x" * 2000)  # within the bound: on chain
    assert state.processing is Processing.REJECTED
    assert net[AM].show("F-1").narrative == "x" * 2000
