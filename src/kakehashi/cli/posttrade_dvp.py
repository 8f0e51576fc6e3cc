"""Settlement of a post-trade network's forms through the Cross Framework, over the ledgers'
own processes (docs/posttrade.md, "Settlement on a network of processes").

A post-trade network (``kakehashi posttrade init --rpc URL``) whose directory also holds a
``settlement.json`` settles its accepted forms as a DVP — the shares (an ERC-20 on the EVM chain
the post-trade contract lives on) against the currency's stablecoin on the Corda model — with
every party acting for itself:

1. the CSD starts it (:meth:`SettlementDesk.start`): it reads the approved, matched instruction
   (it is on the route), builds the cross transaction of :mod:`kakehashi.apps.posttrade.settlement`
   (part 0 the cash, part 1 the securities), asks the IBC host (the stablecoin's issuer, over
   its ``/cross/initiate`` with the RPC token the host's operator gave the CSD) to coordinate
   it, and records ``PEND`` on the chain;
2. each settling party consents (:meth:`SettlementDesk.consent`): the receiving agent's party
   deposits the cash on its own Corda node and signs the transaction with its Corda key; the
   delivering agent's party lets the cross application take the shares (ERC-20 ``approve``) and
   signs with its EVM account (a SIGN packet to the coordinator);
3. a relayer carries the packets (``kakehashi relayer start`` on the configuration named);
4. the CSD records the outcome (:meth:`SettlementDesk.finish`): ``SETT``, or ``PENF`` with
   ``MONY`` / ``LACK`` / ``OTHR`` and a message naming the party, the ledger and why.

The transaction of a form's current attempt is kept in ``DIR/settlement/<form>.json`` (written
before the host is asked, so a crash at any point resumes: :meth:`start` again initiates the
same transaction if the host never got it). ``settlement.json`` (paths relative to the
network directory)::

    {"relayer_config": "cross-relayer.toml",      # names the EVM chain and the IBC host
     "network_map": "corda/network-map.toml",     # the Corda-model parties' keys
     "host": {"operator": "O=Bank A, L=London, C=GB", "token_file": "bank/rpc.token"},
     "timeout_s": 600,                            # how long a settlement may take
     "agents": {"BIC": {"party": "custodian",     # the post-trade party settling for the BIC
                        "corda": "O=..., L=..., C=..",   # its Corda-model identity
                        "node": "http://127.0.0.1:PORT", # its node (receiving side: deposits)
                        "token_file": "...", "key_file": "..."}},  # its RPC token, identity.key
     "securities": {"ISIN": {"token": "0x…", "decimals": 0}},
     "cash": {"JPY": {"issuer": "O=Bank A, L=London, C=GB", "token": "JPYC",
                      "fraction_digits": 0}}}
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from kakehashi.apps.posttrade.codes import Role, SettlementStatus
from kakehashi.apps.posttrade.form import Instruction
from kakehashi.apps.posttrade.ledger import FormState, Processing, Settlement
from kakehashi.apps.posttrade.settlement import (
    CASH_PART,
    ERC20_ABI,
    SECURITIES_PART,
    SecuritiesRegistry,
    SecurityToken,
    SettlementOrder,
    SettlementOutcome,
    SettlementParty,
    order_for,
    outcome_from,
    settlement_terms,
)
from kakehashi.cli.posttrade import Network, slug
from kakehashi.errors import ConfigurationError, KakehashiError, PostTradeError, TransportError

__all__ = [
    "SETTLEMENT_FILE",
    "Agent",
    "Cash",
    "DvpStatus",
    "SettlementConfig",
    "SettlementDesk",
    "load_settlement",
]

SETTLEMENT_FILE = "settlement.json"
RECORDS = "settlement"
STEP_SENT_SIGN = 13  # contracts/cross/cross_kv.vy: a CHANNEL signer's signature sent


@dataclass(frozen=True)
class Agent:
    """A settling agent (by BIC): the post-trade party acting for it and its Corda-model side."""

    bic: str
    party: str
    corda: str
    node: str | None = None
    token_file: Path | None = None
    key_file: Path | None = None


@dataclass(frozen=True)
class Cash:
    """A currency's stablecoin on the Corda model."""

    issuer: str
    token: str
    fraction_digits: int = 0


@dataclass(frozen=True)
class SettlementConfig:
    """``settlement.json`` of a network directory (module docstring)."""

    relayer_config: Path
    network_map: Path
    host_operator: str
    host_token_file: Path
    agents: dict[str, Agent]
    securities: SecuritiesRegistry
    cash: dict[str, Cash]
    timeout_s: float = 600.0


def load_settlement(directory: Path) -> SettlementConfig | None:
    """The settlement configuration of a network directory; None when it has none (the CSD
    then records settlement statuses by hand)."""
    path = directory / SETTLEMENT_FILE
    if not path.exists():
        return None

    def where(value: str) -> Path:
        return (directory / value).resolve()

    try:
        raw = json.loads(path.read_text())
        agents = {
            bic: Agent(
                bic,
                str(a["party"]),
                str(a["corda"]),
                a.get("node"),
                where(a["token_file"]) if a.get("token_file") else None,
                where(a["key_file"]) if a.get("key_file") else None,
            )
            for bic, a in raw["agents"].items()
        }
        securities = SecuritiesRegistry(
            {
                isin: SecurityToken(
                    bytes.fromhex(str(s["token"]).removeprefix("0x")), int(s.get("decimals", 0))
                )
                for isin, s in raw["securities"].items()
            }
        )
        cash = {
            code: Cash(str(c["issuer"]), str(c["token"]), int(c.get("fraction_digits", 0)))
            for code, c in raw["cash"].items()
        }
        config = SettlementConfig(
            where(raw["relayer_config"]),
            where(raw["network_map"]),
            str(raw["host"]["operator"]),
            where(raw["host"]["token_file"]),
            agents,
            securities,
            cash,
            float(raw.get("timeout_s", 600)),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigurationError(
            f"{path} is not a settlement configuration ({type(exc).__name__}: {exc}); see "
            "docs/posttrade.md, 'Settlement on a network of processes'"
        ) from None
    if config.timeout_s <= 0:
        raise ConfigurationError(f"{path}: timeout_s must be positive")
    return config


@dataclass(frozen=True)
class DvpStatus:
    """Where a form's settlement stands: the transaction, the host's decision (``UNKNOWN``,
    ``COMMIT``, ``ABORT``; ``None`` when the host does not know it), whether every part was
    told, the settling parties whose consent is awaited, and the outcome once decided."""

    form_id: str
    tx_id: bytes
    attempt: int
    decision: str | None
    done: bool
    awaiting: tuple[str, ...]
    outcome: SettlementOutcome | None
    order: SettlementOrder
    state: FormState | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "form_id": self.form_id,
            "tx_id": self.tx_id.hex(),
            "attempt": self.attempt,
            "decision": self.decision,
            "done": self.done,
            "awaiting": list(self.awaiting),
            "receiving": self.order.receiving.name,
            "delivering": self.order.delivering.name,
            "quantity": str(self.order.quantity),
            "isin": self.order.isin,
            "amount": str(self.order.amount),
            "currency": self.order.currency,
        }
        if self.outcome is not None:
            out["status"] = self.outcome.status.value
            out["reason"] = self.outcome.reason
            out["message"] = self.outcome.message
        if self.state is not None:
            out["form"] = self.state.as_dict()
        return out


class SettlementDesk:
    """The settlement steps of a network directory's forms (module docstring)."""

    def __init__(self, net: Network, config: SettlementConfig) -> None:
        from kakehashi.cli.tx import Ledgers
        from kakehashi.ledgers.corda.node.network import NetworkMap
        from kakehashi.relayer.config import load_config
        from kakehashi.relayer.link import LinkRecord

        self.net = net
        self.config = config
        self.ledgers = Ledgers(config.relayer_config)
        relayer = load_config(config.relayer_config)
        self.link = LinkRecord.load(relayer.link_file)
        self.corda_url = relayer.b.url if relayer.b.type == "corda" else relayer.a.url
        self.map = NetworkMap.load(config.network_map)
        for agent in config.agents.values():
            if agent.party not in net.parties:
                raise ConfigurationError(
                    f"settlement agent {agent.bic}: {agent.party!r} is not a party of the "
                    f"post-trade network (parties: {', '.join(net.parties)})"
                )

    # -- what settles ---------------------------------------------------------------------------

    def _agents(self) -> dict[str, SettlementParty]:
        return {
            bic: SettlementParty(a.corda, bytes.fromhex(self.net.parties[a.party]["account"][2:]))
            for bic, a in self.config.agents.items()
        }

    def _agent_of(self, order: SettlementOrder, side: str) -> Agent:
        settling = order.receiving if side == "receiving" else order.delivering
        for agent in self.config.agents.values():
            if agent.corda == settling.name:
                return agent
        raise ConfigurationError(f"no settlement agent for {settling.name}")  # pragma: no cover

    def party_of(self, order: SettlementOrder, side: str) -> str:
        """The post-trade party settling ``side`` (``receiving``: it pays; ``delivering``)."""
        return self._agent_of(order, side).party

    def _order(self, instruction: Instruction) -> SettlementOrder:
        return order_for(instruction, self._agents())

    def _terms(self, order: SettlementOrder) -> Any:
        from kakehashi.ledgers.corda.tokens.model import IssuedTokenType, TokenType

        coins = {
            code: IssuedTokenType(self.map.party(c.issuer), TokenType(c.token, c.fraction_digits))
            for code, c in self.config.cash.items()
        }
        parties = {}
        for side in (order.delivering, order.receiving):
            try:
                parties[side.name] = self.map.party(side.name)
            except KakehashiError:
                raise ConfigurationError(
                    f"{side.name} is not in the Corda-model network map {self.config.network_map}"
                ) from None
        return settlement_terms(order, self.config.securities, coins, parties)

    def _approved(self, form_id: str, who: str) -> tuple[Instruction, FormState]:
        view = self.net.ledger(who).show(form_id)
        state = view.state
        if view.form is None:
            raise PostTradeError(
                f"{who} cannot read form {form_id!r} ({view.refusal}): settlement is started by "
                "the CSD on its route"
            )
        if state.processing is not Processing.ACCEPTED:
            raise PostTradeError(
                f"form {form_id!r} is {state.processing.label}, not accepted: it settles after "
                "the final approval"
            )
        return view.form.instruction, state

    # -- the record of the current attempt ------------------------------------------------------

    def _path(self, form_id: str) -> Path:
        return self.net.directory / RECORDS / f"{slug(form_id)}.json"

    def _record(self, form_id: str) -> dict[str, Any] | None:
        path = self._path(form_id)
        if not path.exists():
            return None
        try:
            record = dict(json.loads(path.read_text()))
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot read the settlement record {path}: {exc}") from None
        if record.get("form_id") != form_id:
            raise ConfigurationError(f"{path} is the record of form {record.get('form_id')!r}")
        missing = [key for key in ("version", "attempt", "tx", "tx_id") if key not in record]
        if missing:
            raise ConfigurationError(
                f"the settlement record {path} lacks {', '.join(missing)}: remove it and the "
                "CSD starts a new attempt"
            )
        return record

    def _write(self, form_id: str, record: dict[str, Any]) -> None:
        path = self._path(form_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with tmp.open("w") as handle:
            handle.write(json.dumps(record, indent=2) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)  # whole, or not at all

    def _tx(self, record: dict[str, Any]) -> Any:
        from kakehashi.cross.tx import InitiateTx

        return InitiateTx.decode(bytes.fromhex(record["tx"]))

    # -- the host -------------------------------------------------------------------------------

    def _host(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """The IBC host's ``/cross`` API. Only ``/cross/initiate`` needs the host's RPC token
        (the CSD's); reading a transaction and signing one are public."""
        headers = {}
        if path == "/cross/initiate":
            try:
                token = self.config.host_token_file.read_text().strip()
            except OSError as exc:
                raise ConfigurationError(
                    f"cannot read the IBC host's RPC token {self.config.host_token_file}: {exc}"
                ) from None
            headers["Authorization"] = f"Bearer {token}"
        try:
            with httpx.Client(base_url=self.corda_url, trust_env=False, timeout=60.0) as http:
                answer = http.request(method, path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise TransportError(
                f"the IBC host at {self.corda_url} is unreachable: {exc}"
            ) from None
        if answer.status_code == 404 and method == "GET":
            return None
        if answer.status_code != 200:
            detail = answer.json().get("detail", answer.text) if answer.content else ""
            raise PostTradeError(f"the IBC host refused ({answer.status_code}): {detail}")
        return answer.json()

    # -- the steps ------------------------------------------------------------------------------

    def advance(self, form_id: str, csd: str, *, wait_s: float = 0.0) -> DvpStatus:
        """The CSD's one command for a form's settlement, each time the next step: start it
        (after the final OK, or after a recorded failure: a new attempt), wait up to ``wait_s``
        for the host's decision, and record the outcome once there is one."""
        record = self._record(form_id)
        state = self.net.ledger(csd).state(form_id)
        if record is not None and record["version"] == state.version:
            current = self.status(form_id, csd)
            outcome = current.outcome
            if outcome is not None and not _recorded(state, outcome):
                return self.finish(form_id, csd)
        started = self.start(form_id, csd)
        if wait_s > 0 and started.outcome is None:
            return self.finish(form_id, csd, wait_s=wait_s)
        return started

    def start(self, form_id: str, csd: str) -> DvpStatus:
        """The CSD starts the settlement of an accepted form (or resumes it: a transaction
        the host never got is initiated again; one under way is left as it is). A form whose
        last attempt failed (PENF) starts a new attempt."""
        if self.net.parties.get(csd, {}).get("role") != Role.CSD.value:
            raise PostTradeError(f"{csd} is not the CSD: only the CSD starts a settlement")
        instruction, state = self._approved(form_id, csd)
        if state.settlement is Settlement.SETTLED:
            raise PostTradeError(f"form {form_id!r} is settled already")
        record = self._record(form_id)
        if record is not None and record["version"] == state.version:
            current = self.status(form_id, csd)
            live = self._tx(record).timeout_timestamp > time.time_ns()
            if current.decision is None and live:  # written, never initiated: a crash between
                self._host("POST", "/cross/initiate", {"tx": record["tx"]})
                return self._pend(form_id, csd, state)
            if current.decision == "UNKNOWN":  # under way
                return self._pend(form_id, csd, state)
            if current.decision == "COMMIT":  # settled on the ledgers: record it
                return self.finish(form_id, csd)
            # aborted (or never initiated and expired): a new attempt
        order = self._order(instruction)
        terms = self._terms(order)
        from kakehashi.apps.dvp.settlement import dvp_transaction
        from kakehashi.cross.corda_module import CROSS_PORT
        from kakehashi.cross.tx import ChannelInfo

        now = time.time_ns()
        tx = dvp_transaction(
            terms,
            ChannelInfo(CROSS_PORT, self.link.b_channel_id),
            nonce=now,
            timeout_ns=now + int(self.config.timeout_s * 1e9),
            chain_id="posttrade",
        )
        attempt = 1 if record is None else int(record["attempt"]) + 1
        self._write(
            form_id,
            {
                "form_id": form_id,
                "version": state.version,
                "attempt": attempt,
                "tx": tx.encode().hex(),
                "tx_id": tx.tx_id.hex(),
                "started_ns": now,
            },
        )
        self._host("POST", "/cross/initiate", {"tx": tx.encode().hex()})
        return self._pend(form_id, csd, state)

    def _pend(self, form_id: str, csd: str, state: FormState) -> DvpStatus:
        if state.settlement is not Settlement.PENDING:
            record = self._record(form_id)
            evidence = bytes.fromhex(record["tx_id"]) if record else None
            self.net.ledger(csd).record_settlement(form_id, Settlement.PENDING, evidence=evidence)
        return self.status(form_id, csd)

    def status(
        self, form_id: str, who: str | None = None, order: SettlementOrder | None = None
    ) -> DvpStatus:
        """Where the form's settlement stands (refused when it never started). ``who``: read
        the order as that party (on the route); default the CSD's own reading of the record.
        ``order``: the order already read (the form is not opened again)."""
        record = self._record(form_id)
        if record is None:
            raise PostTradeError(
                f"form {form_id!r} has no settlement: the CSD starts it after the final OK "
                f"(kakehashi posttrade settle {form_id} --as CSD)"
            )
        tx = self._tx(record)
        order = order or self._order_of(form_id, who)
        view = self._host("GET", f"/cross/tx/{tx.tx_id.hex()}")
        coordinator = (view or {}).get("coordinator")
        if coordinator is None:
            return DvpStatus(form_id, tx.tx_id, record["attempt"], None, False, (), None, order)
        awaiting = self._awaiting(order, tx.tx_id, view.get("authentication") or {})
        outcome = None
        if "outcome" in record:  # as recorded: balances may have changed since
            kept = record["outcome"]
            outcome = SettlementOutcome(
                SettlementStatus(kept["status"]), kept["reason"], kept["message"], tx.tx_id
            )
        elif coordinator["decision"] != "UNKNOWN":
            outcome = self._outcome(order, tx.tx_id, coordinator)
        return DvpStatus(
            form_id,
            tx.tx_id,
            record["attempt"],
            coordinator["decision"],
            bool(coordinator["done"]),
            awaiting,
            outcome,
            order,
        )

    def _order_of(self, form_id: str, who: str | None) -> SettlementOrder:
        reader = who
        if reader is None:
            reader = next(
                (n for n, p in self.net.parties.items() if p.get("role") == Role.CSD.value), None
            )
        if reader is None:
            raise ConfigurationError("the post-trade network has no CSD")
        view = self.net.ledger(reader).show(form_id)
        if view.form is None:
            raise PostTradeError(f"{reader} cannot read form {form_id!r} ({view.refusal})")
        return self._order(view.form.instruction)

    def _awaiting(
        self, order: SettlementOrder, tx_id: bytes, auth: dict[str, Any]
    ) -> tuple[str, ...]:
        from kakehashi.cross.auth import corda_key_id

        missing = {entry["id"] for entry in auth.get("missing", [])}
        out = []
        receiving = self._agent_of(order, "receiving")
        if corda_key_id(self.map.party(order.receiving.name).owning_key).hex() in missing:
            out.append(receiving.party)
        if any(m.endswith(order.delivering.evm.hex()) for m in missing) and not self._sent_sign(
            tx_id
        ):
            out.append(self._agent_of(order, "delivering").party)
        return tuple(out)

    def _sent_sign(self, tx_id: bytes) -> bool:
        """Whether the delivering party has signed on the EVM chain (its SIGN packet sent; the
        host counts it once the relayer has carried it)."""
        steps = self.ledgers.logs("CrossStep", tx_id)
        return any(
            e["args"]["index"] == SECURITIES_PART and e["args"]["step"] == STEP_SENT_SIGN
            for e in steps
        )

    def _outcome(
        self, order: SettlementOrder, tx_id: bytes, coordinator: dict[str, Any]
    ) -> SettlementOutcome:
        from eth_utils import to_checksum_address

        from kakehashi.cross.status import Decision

        why = {
            int(i): str(r)
            for i, r in {**coordinator["failures"], **coordinator["rejected"]}.items()
        }
        token = self.config.securities.token(order.isin)
        erc20 = self.ledgers.w3.eth.contract(
            address=to_checksum_address(token.address), abi=ERC20_ABI
        )
        held = int(erc20.functions.balanceOf(to_checksum_address(order.delivering.evm)).call())
        due = int(self._terms(order).amount)
        return outcome_from(
            order,
            tx_id,
            Decision[coordinator["decision"]],
            why,
            securities_held=held,
            securities_due=due,
        )

    def consent(self, form_id: str, party: str, *, decline: bool = False) -> DvpStatus:
        """A settling party's consent: the receiving side deposits the cash on its node and
        signs with its Corda key; the delivering side approves the shares for the cross
        application and signs on the EVM chain. ``decline``: sign without putting up the asset,
        so that the settlement fails now (PENF) instead of at its timeout."""
        record = self._record(form_id)
        if record is None:
            raise PostTradeError(
                f"form {form_id!r} has no settlement to consent to: the CSD starts it first"
            )
        tx = self._tx(record)
        order = self._order_of(form_id, party)
        terms = self._check(tx, order, party)
        current = self.status(form_id, party, order)
        if current.decision is None:
            raise PostTradeError(
                f"the IBC host does not know form {form_id!r}'s settlement yet: the CSD runs "
                f"`kakehashi posttrade settle {form_id}` again"
            )
        if current.decision != "UNKNOWN":
            raise PostTradeError(
                f"form {form_id!r}'s settlement is decided already ({current.decision})"
            )
        receiving = self._agent_of(order, "receiving")
        delivering = self._agent_of(order, "delivering")
        if party == receiving.party:
            if party not in current.awaiting:
                raise PostTradeError(f"{party} has consented to form {form_id!r}'s settlement")
            self._pay(receiving, tx, decline=decline)
        elif party == delivering.party:
            if party not in current.awaiting:
                raise PostTradeError(f"{party} has consented to form {form_id!r}'s settlement")
            self._deliver(party, tx, terms, decline=decline)
        else:
            raise PostTradeError(
                f"{party} does not settle form {form_id!r}: {receiving.party} pays "
                f"({receiving.bic}) and {delivering.party} delivers ({delivering.bic})"
            )
        return self.status(form_id, party, order)

    def _pay(self, agent: Agent, tx: Any, *, decline: bool) -> None:
        from kakehashi.cli.dvp import post_to_node
        from kakehashi.cross.auth import corda_key_id
        from kakehashi.ledgers.corda.node.setup import load_key

        if agent.node is None or agent.token_file is None or agent.key_file is None:
            raise ConfigurationError(
                f"settlement agent {agent.bic} ({agent.party}) pays on its Corda node: "
                f"{SETTLEMENT_FILE} must give its node, token_file and key_file"
            )
        key = load_key(agent.key_file)
        if not decline:
            body = {
                "tx": tx.encode().hex(),
                "index": CASH_PART,
                "operator": self.config.host_operator,
            }
            try:
                post_to_node(agent.node, agent.token_file, "/rpc/cross/deposit", body)
            except KakehashiError as exc:
                raise PostTradeError(
                    f"{agent.party} cannot pay on its Corda node ({exc}); add funds and consent "
                    "again before the settlement's timeout, or consent with --decline to let it "
                    "fail now (PENF MONY)"
                ) from None
        signature = {
            "tx_id": tx.tx_id.hex(),
            "kind": "LOCAL",
            "id": corda_key_id(key.public).hex(),
            "signature": key.sign(tx.tx_id).hex(),
        }
        self._host("POST", "/cross/sign", signature)

    def _check(self, tx: Any, order: SettlementOrder, party: str) -> Any:
        """The DVP terms of ``order`` (the form as ``party`` reads it), once ``tx`` is seen to
        settle exactly them: a party signs nothing else, whatever the record file says."""
        import dataclasses

        from kakehashi.apps.dvp.settlement import dvp_transaction
        from kakehashi.cross.corda_module import CROSS_PORT
        from kakehashi.cross.tx import ZERO_SALT, ChannelInfo

        terms = self._terms(order)
        expected = dvp_transaction(
            terms,
            ChannelInfo(CROSS_PORT, self.link.b_channel_id),
            nonce=tx.nonce,
            timeout_ns=tx.timeout_timestamp,
            chain_id="posttrade",
        )

        def unsalted(t: Any) -> tuple[Any, ...]:
            parts = tuple(dataclasses.replace(p, salt=ZERO_SALT) for p in t.contract_transactions)
            return (t.chain_id, t.commit_protocol, parts, t.timeout_height)

        if unsalted(tx) != unsalted(expected):
            raise PostTradeError(
                f"the settlement transaction {tx.tx_id.hex()} does not settle form "
                f"{order.reference!r} as {party} reads it: refused (the record may have been "
                "altered; the CSD starts a new attempt)"
            )
        return terms

    def _deliver(self, party: str, tx: Any, terms: Any, *, decline: bool) -> None:
        from eth_utils import to_checksum_address

        from kakehashi.ledgers.evm.client import transact

        ledger = self.net.ledger(party)
        w3 = self.ledgers.w3
        if not decline:
            token = w3.eth.contract(address=to_checksum_address(terms.token), abi=ERC20_ABI)
            transact(
                w3,
                token.functions.approve(self.ledgers.app.address, terms.amount),
                sender=ledger.account,
                description=f"{party}'s approval of the shares for settlement",
            )
        sign = self.ledgers.auth.functions.sign_remote(
            tx.view(SECURITIES_PART).encode(), SECURITIES_PART, self.link.a_channel_id
        )
        transact(w3, sign, sender=ledger.account, description=f"{party}'s settlement signature")

    def finish(self, form_id: str, csd: str, *, wait_s: float = 0.0) -> DvpStatus:
        """The CSD records the outcome once the host has decided (waiting up to ``wait_s``):
        SETT, or PENF with its reason; undecided, the form stays PEND."""
        deadline = time.monotonic() + wait_s
        while True:
            current = self.status(form_id, csd)
            if current.outcome is not None or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        ledger = self.net.ledger(csd)
        state = ledger.state(form_id)
        outcome = current.outcome
        if outcome is not None and not _recorded(state, outcome):
            record = self._record(form_id)
            if record is not None and "outcome" not in record:  # kept first: a crash resumes
                kept = {"status": outcome.status.value, "reason": outcome.reason}
                self._write(form_id, {**record, "outcome": kept | {"message": outcome.message}})
            status = Settlement.SETTLED if outcome.settled else Settlement.FAILING
            state = ledger.record_settlement(
                form_id, status, outcome.reason, evidence=current.tx_id
            )
        return DvpStatus(**{**current.__dict__, "state": state})


def _recorded(state: FormState, outcome: SettlementOutcome) -> bool:
    """Whether the chain holds ``outcome`` as the form's settlement status already."""
    status = Settlement.SETTLED if outcome.settled else Settlement.FAILING
    return (state.settlement, state.settlement_reason) == (status, outcome.reason)
