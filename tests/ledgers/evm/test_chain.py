"""The embedded QBFT chain: genesis, pool and block production, validation, sealing, persistence."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address

from kakehashi.errors import ConfigurationError, InvalidTransactionError
from kakehashi.ledgers.evm import qbft
from kakehashi.ledgers.evm.chain import (
    DEV_BALANCE,
    EmbeddedChain,
    Genesis,
    dev_accounts,
)
from kakehashi.lightclients.qbft import verify_header

DEAD = bytes.fromhex("000000000000000000000000000000000000dead")


def _addr(account: LocalAccount) -> bytes:
    return bytes.fromhex(account.address[2:])


def _transfer(
    account: LocalAccount,
    nonce: int,
    *,
    to: bytes = DEAD,
    value: int = 1,
    gas: int = 21_000,
    chain_id: int = 1337,
    max_fee: int = 10**10,
    data: bytes = b"",
) -> bytes:
    tx: dict[str, Any] = {
        "to": to_checksum_address(to),
        "value": value,
        "gas": gas,
        "maxFeePerGas": max_fee,
        "maxPriorityFeePerGas": 10**9,
        "nonce": nonce,
        "chainId": chain_id,
        "type": 2,
        "data": data,
    }
    return bytes(Account.sign_transaction(tx, account.key).raw_transaction)


@pytest.fixture
def chain() -> Any:
    with EmbeddedChain() as c:
        yield c


def test_development_genesis_funds_the_standard_test_accounts(chain: EmbeddedChain) -> None:
    accounts = dev_accounts()
    assert accounts[0].address == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"  # as anvil/hardhat
    assert all(chain.balance(_addr(a)) == DEV_BALANCE for a in accounts)
    assert chain.block_number() == 0
    assert len(chain.validators) == 4
    assert chain.genesis.development


def test_auto_mode_mines_one_block_per_transaction(chain: EmbeddedChain) -> None:
    sender = dev_accounts()[0]
    hashes = [chain.send_raw_transaction(_transfer(sender, n, value=5)) for n in range(3)]
    assert chain.block_number() == 3
    for number, tx_hash in enumerate(hashes, start=1):
        receipt = chain.receipt(tx_hash)
        assert receipt is not None and receipt.status == 1 and receipt.block_number == number
    assert chain.balance(DEAD) == 15
    assert chain.nonce(_addr(sender)) == 3


def test_a_nonce_gap_waits_in_the_pool_until_filled(chain: EmbeddedChain) -> None:
    sender = dev_accounts()[1]
    later = chain.send_raw_transaction(_transfer(sender, 1))
    assert chain.receipt(later) is None and chain.pending_count() == 1
    assert chain.nonce(_addr(sender), "pending") == 0
    first = chain.send_raw_transaction(_transfer(sender, 0))
    first_receipt, later_receipt = chain.receipt(first), chain.receipt(later)
    assert first_receipt is not None and later_receipt is not None
    assert (first_receipt.block_number, first_receipt.tx_index) < (
        later_receipt.block_number,
        later_receipt.tx_index,
    )
    assert chain.pending_count() == 0


def test_interval_mode_batches_pending_transactions_into_one_block() -> None:
    with EmbeddedChain(block_mode="interval", interval_ms=60_000) as chain:
        senders = dev_accounts()[:3]
        hashes = [chain.send_raw_transaction(_transfer(s, n)) for n in range(4) for s in senders]
        assert chain.block_number() == 0 and chain.pending_count() == 12
        assert chain.nonce(_addr(senders[0]), "pending") == 4
        block = chain.mine()
        assert block is not None and block.number == 1 and len(block.transactions) == 12
        assert [chain.receipt(h).block_number for h in hashes] == [1] * 12  # type: ignore[union-attr]
        assert chain.mine() is None  # nothing left


def test_interval_mode_produces_blocks_on_its_own() -> None:
    with EmbeddedChain(block_mode="interval", interval_ms=20) as chain:
        tx_hash = chain.send_raw_transaction(_transfer(dev_accounts()[0], 0))
        for _ in range(500):
            if chain.receipt(tx_hash) is not None:
                break
            import time

            time.sleep(0.01)
        assert chain.receipt(tx_hash) is not None


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda a: b"\x02garbage", "malformed"),
        (lambda a: _transfer(a, 0)[:-5], "malformed"),
        (lambda a: _transfer(a, 0, chain_id=1), "chain id 1"),
        (lambda a: _transfer(a, 0, gas=20_000), "intrinsic gas too low"),
        (lambda a: _transfer(a, 0, gas=40_000_000), "exceeds the block gas limit"),
        (lambda a: _transfer(a, 0, value=DEV_BALANCE), "insufficient funds"),
        (lambda a: _transfer(a, 0, max_fee=1), "below the block's base fee"),
    ],
)
def test_invalid_transactions_are_refused_and_change_nothing(
    chain: EmbeddedChain, build: Any, message: str
) -> None:
    sender = dev_accounts()[2]
    head = chain.head().hash
    with pytest.raises(InvalidTransactionError, match=message):
        chain.send_raw_transaction(build(sender))
    assert chain.head().hash == head
    assert chain.pending_count() == 0
    assert chain.balance(_addr(sender)) == DEV_BALANCE


def test_a_bad_signature_is_refused(chain: EmbeddedChain) -> None:
    raw = bytearray(_transfer(dev_accounts()[0], 0))
    raw[-40] ^= 0xFF  # inside s: recovers another sender or none at all
    try:
        tx_hash = chain.send_raw_transaction(bytes(raw))
    except InvalidTransactionError:
        return
    # A flipped s may still recover *some* key: then it is that key's (unfunded) transaction.
    receipt = chain.receipt(tx_hash)
    assert receipt is None or receipt.sender != _addr(dev_accounts()[0])


def test_nonce_too_low_and_duplicates_are_refused(chain: EmbeddedChain) -> None:
    sender = dev_accounts()[3]
    chain.send_raw_transaction(_transfer(sender, 0))
    with pytest.raises(InvalidTransactionError, match="nonce too low"):
        chain.send_raw_transaction(_transfer(sender, 0, value=2))
    chain.send_raw_transaction(_transfer(sender, 5))
    with pytest.raises(InvalidTransactionError, match="already pending"):
        chain.send_raw_transaction(_transfer(sender, 5, value=3))


def test_every_block_carries_a_quorum_of_qbft_seals(chain: EmbeddedChain) -> None:
    sender = dev_accounts()[0]
    for n in range(3):
        chain.send_raw_transaction(_transfer(sender, n))
    for number in range(1, 4):
        header_rlp = chain.raw_header(number)
        assert header_rlp is not None
        header = verify_header(header_rlp, list(chain.validators))
        assert header.number == number
        extra = qbft.QbftExtraData.decode(qbft.header_fields(header_rlp)[12])
        assert extra.validators == chain.validators and len(extra.committed_seals) == 4
        signers = {
            qbft.recover_seal(qbft.commit_hash(header_rlp), s) for s in extra.committed_seals
        }
        assert signers == set(chain.validators)
        assert keccak(header_rlp) == chain.header(number).hash  # type: ignore[union-attr]
    proposers = {chain.header(n).coinbase for n in range(1, 4)}  # type: ignore[union-attr]
    assert proposers <= set(chain.validators) and len(proposers) == 3  # validators take turns


def test_timestamps_follow_the_wall_clock_and_never_decrease(chain: EmbeddedChain) -> None:
    before = int(time.time())
    for n in range(5):
        chain.send_raw_transaction(_transfer(dev_accounts()[0], n))
    stamps = [chain.header(n).timestamp for n in range(6)]  # type: ignore[union-attr]
    assert stamps == sorted(stamps)
    # Several blocks in one second share it (as on Besu with sub-second block periods), so a
    # burst of blocks never runs ahead of real time.
    assert before <= stamps[-1] <= int(time.time())


def test_restart_continues_at_the_same_head_with_the_same_state(tmp_path: Path) -> None:
    sender = dev_accounts()[0]
    with EmbeddedChain(tmp_path / "chain", validators=3) as chain:
        for n in range(4):
            chain.send_raw_transaction(_transfer(sender, n, value=7))
        head, validators = chain.head(), chain.validators
    with EmbeddedChain(tmp_path / "chain") as again:
        assert again.head().hash == head.hash and again.block_number() == 4
        assert again.validators == validators
        assert again.balance(DEAD) == 28
        again.send_raw_transaction(_transfer(sender, 4, value=7))
        assert again.block_number() == 5 and again.balance(DEAD) == 35
        assert verify_header(again.raw_header(5), list(validators)).number == 5  # type: ignore[arg-type]


def test_interval_mode_mines_what_it_accepted_before_a_clean_stop(tmp_path: Path) -> None:
    with EmbeddedChain(tmp_path / "c", block_mode="interval", interval_ms=60_000) as chain:
        tx_hash = chain.send_raw_transaction(_transfer(dev_accounts()[0], 0))
    with EmbeddedChain(tmp_path / "c") as again:
        assert again.receipt(tx_hash) is not None


def test_a_block_that_fails_half_way_leaves_the_database_at_the_previous_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender = dev_accounts()[0]
    with EmbeddedChain(tmp_path / "c") as chain:
        chain.send_raw_transaction(_transfer(sender, 0))
        head = chain.head().hash

        def crash(block: Any) -> Any:
            raise OSError("disk gone while sealing")

        monkeypatch.setattr(chain, "_seal", crash)
        with pytest.raises(OSError):
            chain.send_raw_transaction(_transfer(sender, 1))
    with EmbeddedChain(tmp_path / "c") as again:
        assert again.head().hash == head
        assert again.nonce(_addr(sender)) == 1
        again.send_raw_transaction(_transfer(sender, 1))
        assert again.block_number() == 2


def test_the_data_directory_keeps_its_configuration(tmp_path: Path) -> None:
    EmbeddedChain(tmp_path / "c", validators=2).close()
    with pytest.raises(ConfigurationError, match="2 validators"):
        EmbeddedChain(tmp_path / "c", validators=4)
    key_file = tmp_path / "c" / "validators.key"
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_genesis_from_a_config_file(tmp_path: Path) -> None:
    funded = "0x" + "11" * 20
    path = tmp_path / "genesis.json"
    path.write_text(
        json.dumps(
            {
                "chainId": 4242,
                "gasLimit": "0x1c9c380",
                "validators": 7,
                "alloc": {funded: {"balance": "0x100"}},
            }
        )
    )
    genesis = Genesis.load(path)
    with EmbeddedChain(genesis=genesis) as chain:
        assert chain.chain_id == 4242 and len(chain.validators) == 7
        assert chain.balance(bytes.fromhex("11" * 20)) == 256
        assert chain.head().gas_limit == 30_000_000
        assert chain.balance(_addr(dev_accounts()[0])) == 0
        assert not chain.genesis.development


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"chainId": 1, "bogus": 2}', "unknown key"),
        ('{"chainId": 0}', "chainId must be > 0"),
        ('{"alloc": {"0x11": {"balance": "0x1"}}}', "invalid value"),
        ('{"validators": "many"}', "invalid value"),
    ],
)
def test_bad_genesis_files_are_refused_with_the_reason(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "genesis.json"
    path.write_text(content)
    with pytest.raises(ConfigurationError, match=message):
        Genesis.load(path)


# A contract that emits LOG2(topic0 = calldata[0:32], topic1 = calldata[32:64], data = the rest).
_LOGGER_RUNTIME = bytes.fromhex("602035600035366040900380604060003760" + "00a200")
_LOGGER_INIT = bytes.fromhex("601580600b6000396000f3") + _LOGGER_RUNTIME


def _logs_by_receipts(chain: EmbeddedChain, first: int, last: int) -> list[Any]:
    """Every log of blocks ``first..last`` read from the receipts (the reference answer)."""
    found = []
    for number in range(first, min(last, chain.block_number()) + 1):
        block = chain.block(number)
        assert block is not None
        for tx in block.transactions:
            receipt = chain.receipt(bytes(tx.hash))
            assert receipt is not None
            found.extend(receipt.logs)
    return found


def test_get_logs_from_the_index_answers_as_the_receipts_do_on_random_filters(
    tmp_path: Path,
) -> None:
    """eth_getLogs reads a per-block log index (filled as blocks are sealed, or from the
    receipts after a restart, skipping blocks whose bloom cannot match): on random address /
    topic / range filters it answers exactly the logs the receipts hold, in order."""
    import random

    rng = random.Random(5)
    account = dev_accounts()[0]
    topics = [keccak(bytes([i])) for i in range(4)]
    with EmbeddedChain(tmp_path, block_mode="interval", interval_ms=3_600_000) as chain:
        deployments = []
        for nonce in range(2):
            tx: dict[str, Any] = {
                "value": 0,
                "gas": 200_000,
                "maxFeePerGas": 10**10,
                "maxPriorityFeePerGas": 10**9,
                "nonce": nonce,
                "chainId": 1337,
                "type": 2,
                "data": _LOGGER_INIT,
            }
            raw = bytes(Account.sign_transaction(tx, account.key).raw_transaction)
            deployments.append(chain.send_raw_transaction(raw))
        chain.mine()
        addresses = []
        for tx_hash in deployments:
            deployed = chain.receipt(tx_hash)
            assert deployed is not None and deployed.contract_address is not None
            addresses.append(deployed.contract_address)
        nonce = 2
        for _ in range(12):  # blocks of 0..4 logging transactions, some plain transfers
            for _ in range(rng.randrange(5)):
                data = rng.choice(topics) + rng.choice(topics) + rng.randbytes(rng.randrange(40))
                target = rng.choice(addresses)
                chain.send_raw_transaction(
                    _transfer(account, nonce, to=target, gas=60_000, data=data)
                )
                nonce += 1
            chain.send_raw_transaction(_transfer(account, nonce))
            nonce += 1
            chain.mine()
        head = chain.block_number()
        every = _logs_by_receipts(chain, 0, head)
        assert len(every) > 10

        def reference(first: int, last: int, wanted: list[bytes], filt: list[Any]) -> list[Any]:
            return [
                e
                for e in _logs_by_receipts(chain, first, last)
                if (not wanted or e.address in wanted)
                and len(filt) <= len(e.topics)
                and all(not o or e.topics[i] in o for i, o in enumerate(filt))
            ]

        def random_filter() -> tuple[int, int, list[bytes], list[Any]]:
            first = rng.randrange(head + 1)
            last = rng.randrange(first, head + 3)
            wanted = rng.sample([*addresses, DEAD], rng.randrange(3))
            filt = [
                None if rng.random() < 0.3 else rng.sample(topics, rng.randrange(1, 3))
                for _ in range(rng.randrange(4))
            ]
            return first, last, wanted, filt

        queries = [random_filter() for _ in range(60)]
        expected = [reference(*q) for q in queries]
        assert any(expected) and not all(expected)
        assert [chain.logs(*q) for q in queries] == expected
    with EmbeddedChain(tmp_path) as reopened:  # a cold index: blooms, then receipts
        assert [reopened.logs(*q) for q in queries] == expected
        assert [reopened.logs(*q) for q in queries] == expected  # and now from the index
