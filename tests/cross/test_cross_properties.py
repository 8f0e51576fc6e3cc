"""Properties of cross transactions across the two ledgers, over the real LCP path.

A hypothesis state machine initiates random concurrent transactions — coordinated by either
ledger, Simple Commit or TPC, each moving an ERC-20 amount from the seller to the buyer on the
EVM chain (escrowed by the cross application) and writing a key on the Corda host (records and
locks as notarised states) — from a small pool of keys and with amounts that together exceed
what the seller holds, so lock conflicts and failed escrows happen; it relays random directions
with random batch sizes and crashes the relayer (a new one, knowing nothing, takes over) at
random points. Invariants: tokens are conserved at every step; once relaying has run to the
end, every transaction is decided, all-committed or all-aborted on both ledgers, the buyer
holds exactly the committed amounts, every Corda value was written by a committed transaction,
and no lock, read lock or escrow remains on either ledger.

Also: the relayer crashes between any two steps of one transaction (each half round of the
path in turn) and a new one completes it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from kakehashi.cross.auth import corda_key_id
from kakehashi.cross.corda_module import CROSS_PORT
from kakehashi.cross.kv import OP_ERC20, asset_call, kv_call
from kakehashi.cross.status import Decision, PartStatus, part_record
from kakehashi.cross.tx import (
    Account,
    ChannelInfo,
    CommitProtocol,
    ContractTransaction,
    InitiateTx,
    SignerKind,
)
from kakehashi.ibc.types import Height
from kakehashi.ledgers.evm import toolchain
from kakehashi.ledgers.evm.chain import dev_accounts
from kakehashi.ledgers.evm.client import transact
from kakehashi.relayer.path import PathRelayer
from tests.relayer.support import World, world

DEPLOYER, SELLER, BUYER = dev_accounts()[0], dev_accounts()[3], dev_accounts()[4]
SUPPLY = 100
KEYS = (b"k1", b"k2", b"k3")
_nonce = itertools.count(1)
_round = itertools.count(1)


@pytest.fixture(scope="module")
def w(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with world(tmp_path_factory.mktemp("cross-properties"), cross=True) as built:
        built.link()
        yield built


def _address(account: Any) -> bytes:
    return bytes.fromhex(account.address[2:])


class Trades:
    """The transactions of one run and how to read their outcome on both ledgers."""

    def __init__(self, w: World) -> None:
        self.w = w
        self.token = toolchain.deploy(
            w.w3, "tokens/erc20", "Yen", "JPYC", 0, SUPPLY, sender=DEPLOYER
        )
        transact(w.w3, self.token.functions.transfer(SELLER.address, SUPPLY), sender=DEPLOYER)
        transact(w.w3, self.token.functions.approve(w.app.address, SUPPLY), sender=SELLER)
        self.prefix = f"r{next(_round)}-".encode()  # this run's keys on the shared Corda host
        self.txs: list[tuple[str, InitiateTx, int, bytes, bytes]] = []

    def balance(self, account: Any) -> int:
        return int(self.token.functions.balanceOf(account.address).call())

    def initiate(self, coordinator: str, protocol: CommitProtocol, key: bytes, amount: int) -> None:
        w = self.w
        assert w.record is not None
        value = f"v{len(self.txs)}".encode()
        key = self.prefix + key
        escrow = asset_call(
            OP_ERC20, _address(self.token), _address(SELLER), _address(BUYER), amount
        )
        if coordinator == "evm":
            channel = ChannelInfo(CROSS_PORT, w.record.a_channel_id)
            seller = Account(SignerKind.LOCAL, _address(SELLER))  # it initiates: it signs
            corda_signer = seller
        else:
            channel = ChannelInfo(CROSS_PORT, w.record.b_channel_id)
            seller = Account(SignerKind.CHANNEL, _address(SELLER))  # signs on the EVM chain
            corda_signer = Account(SignerKind.LOCAL, corda_key_id(w.host.node.party.owning_key))
        evm_part = ContractTransaction(channel, (seller,), escrow, b"ok")
        corda_part = ContractTransaction(channel, (corda_signer,), kv_call(key, value), b"ok")
        parts = (evm_part, corda_part) if coordinator == "evm" else (corda_part, evm_part)
        tx = InitiateTx(f"kakehashi-{coordinator}", next(_nonce), protocol, parts, Height(0, 10**9))
        if coordinator == "evm":
            transact(w.w3, w.kv.functions.initiate(tx.encode(), 0), sender=SELLER)
        else:
            w.cross.initiate(tx)
            sign = w.auth.functions.sign_remote(tx.view(1).encode(), 1, w.record.a_channel_id)
            transact(w.w3, sign, sender=SELLER)
        self.txs.append((coordinator, tx, amount, key, value))

    def decision(self, coordinator: str, tx: InitiateTx) -> Decision:
        if coordinator == "evm":
            return Decision(self.w.kv.functions.coordination(tx.tx_id).call()[3])
        c = self.w.cross.coordinator(tx.tx_id)
        return Decision.UNKNOWN if c is None else c.decision

    def parts(self, coordinator: str, tx: InitiateTx) -> tuple[PartStatus, PartStatus]:
        """(the EVM part, the Corda part) as each ledger holds it."""
        w = self.w
        if coordinator == "evm":
            evm = PartStatus(w.kv.functions.coordination_part(tx.tx_id, 0).call()[0])
            corda = w.cross.participant(tx.tx_id).get(1, PartStatus.NONE)
        else:
            c = w.cross.coordinator(tx.tx_id)
            corda = PartStatus.NONE if c is None else c.parts[0]
            evm = PartStatus(w.kv.functions.parts(part_record(tx.tx_id, 1)).call())
        return evm, corda


class CrossMachine(RuleBasedStateMachine):
    world: ClassVar[World]

    def __init__(self) -> None:
        super().__init__()
        self.trades = Trades(self.world)
        self.relayer: PathRelayer = self.world.relayer()

    @rule(
        coordinator=st.sampled_from(["evm", "corda"]),
        protocol=st.sampled_from([CommitProtocol.SIMPLE, CommitProtocol.TPC]),
        key=st.sampled_from(KEYS),
        amount=st.integers(1, 40),
    )
    def initiate(self, coordinator: str, protocol: CommitProtocol, key: bytes, amount: int) -> None:
        self.trades.initiate(coordinator, protocol, key, amount)

    @rule(direction=st.integers(0, 1), batch=st.sampled_from([1, 2, 100]))
    def relay(self, direction: int, batch: int) -> None:
        self.relayer.batch_size = batch
        report = self.relayer.relay_direction(self.relayer.directions()[direction])
        assert not report.failed, report.failed

    @rule()
    def crash_relayer(self) -> None:
        self.relayer = self.world.relayer()  # the old one is gone, with all it knew

    @invariant()
    def tokens_are_conserved(self) -> None:
        t = self.trades
        escrowed = int(t.token.functions.balanceOf(self.world.app.address).call())
        assert t.balance(SELLER) + t.balance(BUYER) + escrowed == SUPPLY

    def teardown(self) -> None:
        relayer = self.world.relayer()
        for _ in range(8):
            report = relayer.relay_once()
            assert not report.failed, report.failed
        t = self.trades
        bought = 0
        values: dict[bytes, set[bytes]] = {}
        for coordinator, tx, amount, key, value in t.txs:
            decision = t.decision(coordinator, tx)
            evm, corda = t.parts(coordinator, tx)
            assert decision is not Decision.UNKNOWN, tx.tx_id.hex()
            event(f"{coordinator} {tx.commit_protocol.name} {decision.name}")
            if decision is Decision.COMMIT:
                assert (evm, corda) == (PartStatus.COMMIT, PartStatus.COMMIT)
                bought += amount
                values.setdefault(key, set()).add(value)
            else:
                assert PartStatus.COMMIT not in (evm, corda), (evm, corda)
        assert t.balance(BUYER) == bought and t.balance(SELLER) == SUPPLY - bought
        for key in {k for _, _, _, k, _ in t.txs}:
            found = self.world.cross.app.value(key)
            assert found is None if key not in values else found in values[key]
        assert int(self.world.app.functions.locks_held().call()) == 0
        assert not self.world.cross.app.locks()


def test_random_cross_transactions_end_atomic_conserved_and_unlocked(w: World) -> None:
    CrossMachine.world = w
    run_state_machine_as_test(
        CrossMachine,
        settings=settings(
            max_examples=8,
            stateful_step_count=12,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )


@pytest.mark.parametrize("crash_after", range(6))
def test_the_relayer_crashes_between_any_two_steps(w: World, crash_after: int) -> None:
    """A TPC coordinated by the Corda host needs six half rounds (SIGN, its ack; PREPARE, its
    ack; DECIDE, its ack): the relayer is replaced after each number of them and a new one,
    knowing nothing, completes the transaction."""
    trades = Trades(w)
    trades.initiate("corda", CommitProtocol.TPC, b"crash", 10)
    relayer = w.relayer(batch_size=1)
    directions = relayer.directions()
    for step in range(crash_after):
        relayer.relay_direction(directions[step % 2])  # EVM -> Corda first (the SIGN)
    relayer = w.relayer()  # crashed: a new relayer takes over
    for _ in range(6):
        assert not relayer.relay_once().failed
    coordinator, tx, *_ = trades.txs[0]
    assert trades.decision(coordinator, tx) is Decision.COMMIT
    assert trades.parts(coordinator, tx) == (PartStatus.COMMIT, PartStatus.COMMIT)
    assert trades.balance(BUYER) == 10
    assert int(w.app.functions.locks_held().call()) == 0 and not w.cross.app.locks()
