"""The two privacy patterns' encodings (``kakehashi.apps.logistics.deliveries``): the calls,
the full-disclosure answer and its bound, and the EVM registry's evaluation of an answer
(``contracts/apps/logistics.vy`` on the embedded chain)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_abi import encode as abi_encode
from hypothesis import given, settings
from hypothesis import strategies as st
from web3.exceptions import ContractLogicError

from kakehashi.apps.logistics.deliveries import (
    FULL,
    MAX_ANSWER,
    MINIMAL,
    OP_DELIVERIES,
    decode_deliveries_call,
    decode_records,
    deliveries_call,
    full_deliveries_call,
)
from kakehashi.cross.tx import CrossTxError
from kakehashi.ledgers.evm import toolchain
from kakehashi.ledgers.evm.chain import EmbeddedChain, dev_accounts
from kakehashi.ledgers.evm.client import transact
from kakehashi.ledgers.evm.provider import embedded_web3

OWNER = dev_accounts()[0]
CARRIER = "O=Swift Carriers, L=Osaka, C=JP"


def _answer(contract_id: str, rows: list[tuple[str, int, int, str]]) -> bytes:
    return bytes(abi_encode(["string", "(string,uint64,uint64,string)[]"], [contract_id, rows]))


def test_each_pattern_sends_only_what_it_names() -> None:
    assert decode_deliveries_call(deliveries_call("C-1", 3)) == ("C-1", MINIMAL, 3)
    assert decode_deliveries_call(full_deliveries_call("C-1")) == ("C-1", FULL, 0)
    query = abi_encode(["uint8", "uint32"], [FULL, 2])  # full disclosure passes the id only
    with pytest.raises(CrossTxError, match="contract id only"):
        decode_deliveries_call(
            bytes(abi_encode(["uint8", "bytes", "bytes"], [OP_DELIVERIES, b"C-1", query]))
        )
    for bad in (b"", deliveries_call("C-1", 3)[:-1], deliveries_call("C-1", 3) + bytes(32)):
        with pytest.raises(CrossTxError):
            decode_deliveries_call(bad)
    with pytest.raises(CrossTxError, match="1 to 64"):
        full_deliveries_call("")


@given(
    st.text(min_size=1, max_size=20),
    st.lists(
        st.tuples(
            st.text(max_size=20),
            st.integers(1, 2**64 - 1),
            st.integers(0, 2**64 - 1),
            st.text(max_size=30),
        ),
        max_size=4,
    ),
)
@settings(max_examples=60, deadline=None)
def test_answers_decode_to_what_was_encoded(contract_id: str, rows: list) -> None:  # type: ignore[type-arg]
    answer = _answer(contract_id, rows)
    assert decode_records(answer) == (contract_id, rows)
    with pytest.raises(CrossTxError):
        decode_records(answer + b"\x00")


def test_a_non_canonical_answer_is_refused() -> None:
    answer = bytearray(_answer("C-1", [("S-1", 1, 2, CARRIER)]))
    answer[-1] = 1  # nonzero padding after the carrier's name
    with pytest.raises(CrossTxError):
        decode_records(bytes(answer))


@pytest.fixture(scope="module")
def registry() -> Iterator[tuple[object, object]]:
    with EmbeddedChain() as chain:
        w3 = embedded_web3(chain)
        contract = toolchain.deploy(w3, "apps/logistics", sender=OWNER)
        transact(w3, contract.functions.register_full("C-1", 2), sender=OWNER)
        transact(w3, contract.functions.register("C-2", 1), sender=OWNER)
        yield w3, contract


def test_the_registry_derives_the_status_from_the_records(registry: tuple) -> None:  # type: ignore[type-arg]
    _, contract = registry
    evaluate = contract.functions.evaluate  # type: ignore[attr-defined]
    two = [("S-1", 10, 1, CARRIER), ("S-2", 5, 2, CARRIER)]
    assert bytes(evaluate(b"status/C-1", _answer("C-1", two)).call()) == b"delivered"
    assert bytes(evaluate(b"status/C-1", _answer("C-1", two[:1])).call()) == b"partial: 1 of 2"
    assert bytes(evaluate(b"status/C-1", _answer("C-1", [])).call()) == b"partial: 0 of 2"
    for key, answer in [
        (b"status/C-2", _answer("C-1", two)),  # another contract's answer
        (b"status/C-2", _answer("C-2", two)),  # a minimal-disclosure contract
        (b"status/C-9", _answer("C-9", two)),  # not registered
        (b"status/C-1", _answer("C-1", two) + bytes(32)),  # not canonical
        (b"status/C-1", b"garbage"),
    ]:
        with pytest.raises(ContractLogicError):
            evaluate(key, answer).call()
    record = contract.functions.record(0).call()  # type: ignore[attr-defined]
    assert tuple(record) == ("C-1", 2, True)


def test_the_answer_bound_is_what_one_acknowledgement_carries() -> None:
    rows = [(f"S-{i:02}", 1, i, CARRIER) for i in range(20)]
    assert len(_answer("C-1", rows)) > MAX_ANSWER
    assert len(_answer("C-1", rows[:4])) <= MAX_ANSWER
