"""Authentication, asset escrow and cross-chain calls across the two ledgers, over the real LCP
path (:mod:`tests.relayer.support`): nothing runs before every signer has signed — a CHANNEL
signer signs on its own ledger and a SIGN packet proves it to the coordinator; an ERC-20 moves
on the EVM chain only if the Corda part commits; a part acts on the other ledger's answer
(links), which that ledger checks it really gives."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kakehashi.cross.auth import corda_key_id, secp256k1_account, sign_party, sign_secp256k1
from kakehashi.cross.corda_module import CROSS_PORT
from kakehashi.cross.kv import OP_ERC20, asset_call, kv_call, kv_get, kv_set_linked
from kakehashi.cross.participant import PartCall
from kakehashi.cross.status import AuthStatus, Decision
from kakehashi.cross.tx import (
    Account,
    ChannelInfo,
    CommitProtocol,
    ContractTransaction,
    InitiateTx,
    Link,
    SignerKind,
)
from kakehashi.errors import TransactionRevertedError
from kakehashi.ibc.types import Height
from kakehashi.ledgers.evm import toolchain
from kakehashi.ledgers.evm.chain import dev_accounts
from kakehashi.ledgers.evm.client import transact
from kakehashi.relayer.path import PathRelayer
from tests.relayer.support import World, world

INITIATOR, SELLER, BUYER = dev_accounts()[0], dev_accounts()[3], dev_accounts()[4]
FAR = Height(0, 10**6)


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path, cross=True) as built:
        yield built


def address(account: Any) -> bytes:
    return bytes.fromhex(account.address[2:])


def evm_account(account: Any, kind: SignerKind = SignerKind.LOCAL) -> Account:
    return Account(kind, address(account))


def corda_account(w: World, kind: SignerKind = SignerKind.LOCAL) -> Account:
    return Account(kind, corda_key_id(w.host.node.party.owning_key))


def run(relayer: PathRelayer, rounds: int = 4) -> None:
    for _ in range(rounds):
        report = relayer.relay_once()
        assert not report.failed, report.failed


def token(w: World) -> Any:
    """A standard ERC-20 (ours, deployed as anyone's would be); the seller holds 100 and lets
    the cross application move them."""
    erc20 = toolchain.deploy(w.w3, "tokens/erc20", "Yen Coin", "JPYC", 0, 1_000, sender=INITIATOR)
    transact(w.w3, erc20.functions.transfer(SELLER.address, 100), sender=INITIATOR)
    transact(w.w3, erc20.functions.approve(w.app.address, 100), sender=SELLER)
    return erc20


def evm_initiate(w: World, tx: InitiateTx, local: int = 0, sender: Any = INITIATOR) -> None:
    transact(w.w3, w.kv.functions.initiate(tx.encode(), local), sender=sender)


def evm_decision(w: World, tx: InitiateTx) -> Decision:
    return Decision(w.kv.functions.coordination(tx.tx_id).call()[3])


def test_a_corda_coordinated_trade_waits_for_the_evm_seller_to_sign_there(w: World) -> None:
    """Part 0 on the Corda host (its operator signs by initiating), part 1 moves 30 JPYC on the
    EVM chain from the seller, a CHANNEL signer: nothing is locked or escrowed until the seller
    signs on the EVM chain and the SIGN packet reaches the Corda host."""
    relayer = w.link()
    assert w.record is not None
    erc20 = token(w)
    channel = ChannelInfo(CROSS_PORT, w.record.b_channel_id)  # the Corda host's end
    seller = evm_account(SELLER, SignerKind.CHANNEL)
    call = asset_call(OP_ERC20, address(erc20), address(SELLER), address(BUYER), 30)
    tx = InitiateTx(
        "kakehashi-corda",
        1,
        CommitProtocol.TPC,
        (
            ContractTransaction(channel, (corda_account(w),), kv_call(b"trade-1", b"paid"), b"ok"),
            ContractTransaction(channel, (seller,), call, b"ok"),
        ),
        FAR,
    )
    w.cross.initiate(tx)
    run(relayer)
    auth = w.cross.authentication(tx.tx_id)
    assert auth is not None and auth.missing() == (seller,)
    assert w.cross.app.locked_by(b"trade-1") is None  # nothing ran
    with pytest.raises(TransactionRevertedError, match="not a CHANNEL signer"):
        transact(
            w.w3,
            w.auth.functions.sign_remote(tx.view(1).encode(), 1, w.record.a_channel_id),
            sender=BUYER,
        )
    with pytest.raises(TransactionRevertedError, match="hides that part"):  # only its digest
        transact(
            w.w3,
            w.auth.functions.sign_remote(tx.view(0).encode(), 1, w.record.a_channel_id),
            sender=SELLER,
        )
    transact(
        w.w3,
        w.auth.functions.sign_remote(tx.view(1).encode(), 1, w.record.a_channel_id),
        sender=SELLER,
    )
    run(relayer, rounds=6)
    c = w.cross.coordinator(tx.tx_id)
    assert c is not None and c.decision is Decision.COMMIT and c.done
    assert w.cross.app.value(b"trade-1") == b"paid"
    assert erc20.functions.balanceOf(BUYER.address).call() == 30
    assert erc20.functions.balanceOf(SELLER.address).call() == 70
    assert int(w.app.functions.locks_held().call()) == 0 and not w.cross.app.locks()


def test_an_escrow_that_cannot_be_taken_aborts_on_both_ledgers(w: World) -> None:
    """The seller approved 100 but the EVM part asks for 500: its prepare fails cleanly, the
    transaction aborts everywhere, the Corda lock is released and no token moved."""
    relayer = w.link()
    assert w.record is not None
    erc20 = token(w)
    channel = ChannelInfo(CROSS_PORT, w.record.a_channel_id)  # the EVM chain's end
    call = asset_call(OP_ERC20, address(erc20), address(SELLER), address(BUYER), 500)
    tx = InitiateTx(
        "kakehashi-evm",
        2,
        CommitProtocol.TPC,
        (
            ContractTransaction(channel, (evm_account(SELLER),), call, b"ok"),
            ContractTransaction(channel, (evm_account(SELLER),), kv_call(b"t", b"x"), b"ok"),
        ),
        FAR,
    )
    evm_initiate(w, tx, sender=SELLER)  # the seller initiates: it signs
    run(relayer)
    assert evm_decision(w, tx) is Decision.ABORT
    assert erc20.functions.balanceOf(SELLER.address).call() == 100
    assert w.cross.app.value(b"t") is None and not w.cross.app.locks()
    assert int(w.app.functions.locks_held().call()) == 0


def test_an_evm_coordinated_transaction_waits_for_a_corda_party_and_an_extension_key(
    w: World,
) -> None:
    relayer = w.link()
    assert w.record is not None
    channel = ChannelInfo(CROSS_PORT, w.record.a_channel_id)
    corda_party = corda_account(w, SignerKind.CHANNEL)
    holder = dev_accounts()[5]  # any secp256k1 key; it never sends a transaction
    extension, extension_key = secp256k1_account(address(holder)), bytes(holder.key)
    tx = InitiateTx(
        "kakehashi-evm",
        3,
        CommitProtocol.SIMPLE,
        (
            ContractTransaction(
                channel, (evm_account(INITIATOR), extension), kv_call(b"e", b"1"), b"ok"
            ),
            ContractTransaction(channel, (corda_party,), kv_call(b"e", b"1"), b"ok"),
        ),
        FAR,
    )
    evm_initiate(w, tx)
    assert not w.auth.functions.authentication(tx.tx_id).call()[0]
    assert bytes(w.app.functions.writer(b"e").call()) == bytes(32)  # nothing ran
    signature = sign_secp256k1(extension_key, tx.tx_id)
    with pytest.raises(TransactionRevertedError, match="not a signer"):
        transact(  # a signature over another transaction recovers another key
            w.w3,
            w.auth.functions.sign_extension(
                tx.encode(), sign_secp256k1(extension_key, b"\x00" * 32)
            ),
            sender=BUYER,
        )
    transact(w.w3, w.auth.functions.sign_extension(tx.encode(), signature), sender=BUYER)
    assert not w.auth.functions.authentication(tx.tx_id).call()[0]  # the Corda party is missing
    key = w.host.node.key
    w.cross.sign_remote(tx, 1, w.record.b_channel_id, corda_party, sign_party(key, tx.tx_id))
    run(relayer, rounds=6)
    assert w.auth.functions.authentication(tx.tx_id).call()[0]
    assert evm_decision(w, tx) is Decision.COMMIT
    assert bytes(w.app.functions.value(b"e").call()) == b"1" and w.cross.app.value(b"e") == b"1"
    timeline = [e for _, e in w.cross.timeline(tx.tx_id)]
    assert any("the coordinator took the SIGN for part 1" in e for e in timeline)


def test_a_pending_evm_transaction_expires_at_its_timeout(w: World) -> None:
    w.link()
    assert w.record is not None
    channel = ChannelInfo(CROSS_PORT, w.record.a_channel_id)
    deadline = (time.time_ns() // 10**9 + 3) * 10**9
    signers = (evm_account(INITIATOR), evm_account(SELLER))
    tx = InitiateTx(
        "kakehashi-evm",
        4,
        CommitProtocol.TPC,
        (
            ContractTransaction(channel, signers, kv_call(b"late", b"1"), b"ok"),
            ContractTransaction(channel, signers, kv_call(b"late", b"1"), b"ok"),
        ),
        Height(0, 0),
        deadline,
    )
    evm_initiate(w, tx)
    while time.time_ns() < deadline + 1_100_000_000:
        time.sleep(0.2)
    token(w)  # any transaction: a block past the timeout
    with pytest.raises(TransactionRevertedError, match="timed out"):
        transact(w.w3, w.auth.functions.sign(tx.encode()), sender=SELLER)
    assert not w.auth.functions.authentication(tx.tx_id).call()[0]
    assert int(w.app.functions.locks_held().call()) == 0


# ---------------------------------------------------------------------------- cross-chain calls


def seed_corda(w: World, key: bytes, value: bytes) -> None:
    """Commit ``key = value`` on the Corda host (as a finished transaction would)."""
    call = PartCall(b"\x99" * 32, 0, kv_call(key, value))

    def action(_store: object) -> None:
        w.cross.app.prepare(call)
        w.cross.app.commit(call.tx_id, 0)

    w.cross.host.execute(action)


@pytest.mark.parametrize("protocol", [CommitProtocol.SIMPLE, CommitProtocol.TPC])
@pytest.mark.parametrize("declared", [b"3", b"4"])
def test_the_evm_chain_acts_on_what_the_corda_ledger_answers(
    w: World, declared: bytes, protocol: CommitProtocol
) -> None:
    """EVM part 0 sets "status" to part 1's declared answer (a link); part 1 reads
    "deliveries" on the Corda host, which is 3: a declared 3 commits both, a declared 4 fails
    the Corda prepare and nothing changes anywhere."""
    relayer = w.link()
    assert w.record is not None
    seed_corda(w, b"deliveries", b"3")
    channel = ChannelInfo(CROSS_PORT, w.record.a_channel_id)
    me = (evm_account(INITIATOR),)
    tx = InitiateTx(
        "kakehashi-evm",
        5,
        protocol,
        (
            ContractTransaction(channel, me, kv_set_linked(b"status"), b"ok", (Link(1),)),
            ContractTransaction(channel, me, kv_get(b"deliveries"), declared),
        ),
        FAR,
    )
    evm_initiate(w, tx)
    run(relayer)
    if declared == b"3":
        assert evm_decision(w, tx) is Decision.COMMIT
        assert bytes(w.app.functions.value(b"status").call()) == b"3"
    else:
        assert evm_decision(w, tx) is Decision.ABORT
        assert bytes(w.app.functions.value(b"status").call()) == b""
    assert int(w.app.functions.locks_held().call()) == 0 and not w.cross.app.locks()


@pytest.mark.parametrize("protocol", [CommitProtocol.SIMPLE, CommitProtocol.TPC])
@pytest.mark.parametrize("declared", [b"shipped", b"lost"])
def test_the_corda_ledger_acts_on_what_the_evm_chain_answers(
    w: World, declared: bytes, protocol: CommitProtocol
) -> None:
    relayer = w.link()
    assert w.record is not None
    evm_side = ChannelInfo(CROSS_PORT, w.record.a_channel_id)
    setter = InitiateTx(  # "parcel" = "shipped" on the EVM chain, by a committed transaction
        "kakehashi-evm",
        6,
        CommitProtocol.SIMPLE,
        (
            ContractTransaction(
                evm_side, (evm_account(INITIATOR),), kv_call(b"parcel", b"shipped"), b"ok"
            ),
            ContractTransaction(
                evm_side, (evm_account(INITIATOR),), kv_call(b"other", b"x"), b"ok"
            ),
        ),
        FAR,
    )
    evm_initiate(w, setter)
    run(relayer)
    channel = ChannelInfo(CROSS_PORT, w.record.b_channel_id)
    me = (corda_account(w),)
    tx = InitiateTx(
        "kakehashi-corda",
        7,
        protocol,
        (
            ContractTransaction(channel, me, kv_set_linked(b"invoice"), b"ok", (Link(1),)),
            ContractTransaction(channel, me, kv_get(b"parcel"), declared),
        ),
        FAR,
    )
    w.cross.initiate(tx)
    run(relayer)
    c = w.cross.coordinator(tx.tx_id)
    assert c is not None and c.done
    if declared == b"shipped":
        assert c.decision is Decision.COMMIT and w.cross.app.value(b"invoice") == b"shipped"
    else:
        assert c.decision is Decision.ABORT and w.cross.app.value(b"invoice") is None
        assert "declared" in c.failures.get(1, "") + c.rejected.get(1, "")
    assert int(w.app.functions.locks_held().call()) == 0 and not w.cross.app.locks()
    auth = w.cross.authentication(tx.tx_id)
    assert auth is not None and auth.status(w.host.height, w.host.timestamp_ns) is (
        AuthStatus.VERIFIED
    )
