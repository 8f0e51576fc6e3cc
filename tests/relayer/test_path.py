"""A relayer path through the real LCP service, both ways (:mod:`tests.relayer.support`).

Linking creates an LCP client of each ledger on the other (the enclave key registered from its
simulated AVR, checked by each ledger), opens a connection and a channel; rounds then deliver
packets both ways, bring the acknowledgements back and time out what expired. Two relayers on
one path deliver every packet once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kakehashi.ibc.echo import echo_ack
from kakehashi.ibc.types import ChannelState, ConnectionState, Height, Order
from kakehashi.lcp.client import LcpServiceClient
from kakehashi.relayer.link import register_key, rotate_key
from kakehashi.relayer.path import PathRelayer, RoundReport
from tests.relayer.support import World, world


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as built:
        yield built


def test_link_opens_a_connection_and_a_channel_over_lcp_clients(w: World) -> None:
    relayer = w.link()
    record = w.record
    assert record is not None
    evm, corda = relayer.a.endpoint, relayer.b.endpoint
    assert record.a_client_id.startswith("lcp-client-")
    assert record.b_client_id.startswith("lcp-client-")
    conn_a = evm.connection(record.a_connection_id)
    conn_b = corda.connection(record.b_connection_id)
    assert conn_a is not None and conn_a.state is ConnectionState.OPEN
    assert conn_b is not None and conn_b.state is ConnectionState.OPEN
    chan_a = evm.channel("echo", record.a_channel_id)
    chan_b = corda.channel("echo", record.b_channel_id)
    assert chan_a is not None and chan_a.state is ChannelState.OPEN
    assert chan_b is not None and chan_b.state is ChannelState.OPEN
    assert chan_a.counterparty.channel_id == record.b_channel_id


@pytest.mark.parametrize("order", [Order.UNORDERED, Order.ORDERED])
def test_packets_cross_both_ways_and_their_acks_come_back(w: World, order: Order) -> None:
    relayer = w.link(order)
    to_corda = [w.send_from_evm(f"ping {i}".encode()) for i in range(3)]
    to_evm = [w.send_from_corda(f"pong {i}".encode()) for i in range(2)]

    first = relayer.relay_once()  # EVM -> Corda first, then Corda -> EVM
    assert first.received == {"evm->corda": 3, "corda->evm": 2}
    assert w.echo.received == 3
    assert w.evm_counters()["received"] == 2
    # the Corda host wrote its acks during the first half: the second half took them back
    assert first.acknowledged == {"corda->evm": 3}
    assert w.evm_counters()["acknowledged"] == 3

    second = relayer.relay_once()
    assert second.acknowledged == {"evm->corda": 2}
    assert w.echo.acknowledged == 2 and w.echo.last_ack == echo_ack(to_evm[-1].data)
    assert not first.failed and not second.failed

    idle = relayer.relay_once()
    assert idle.relayed == 0 and idle.pending == {"evm->corda": 0, "corda->evm": 0}
    assert to_corda[0].sequence == 1


def test_a_packet_past_its_timeout_height_is_timed_out_on_its_source(w: World) -> None:
    relayer = w.link()
    corda_height = relayer.b.endpoint.latest_height()
    late = w.send_from_evm(b"too late", timeout_height=Height(0, corda_height.revision_height + 1))
    w.send_from_corda(b"moves the Corda host on")  # the host passes the timeout height
    report = relayer.relay_once()
    assert report.timed_out == {"corda->evm": 1}
    assert w.echo.received == 0  # never delivered
    assert w.evm_counters()["timed_out"] == 1
    assert (
        relayer.a.endpoint.value(
            b"commitments/ports/echo/channels/" + late.source_channel.encode() + b"/sequences/1"
        )
        is None
    )


def test_two_relayers_on_one_path_deliver_each_packet_once(w: World) -> None:
    w.link()
    first, second = w.relayer(account_index=1), w.relayer(account_index=2)
    for i in range(6):
        w.send_from_evm(f"a{i}".encode())
        w.send_from_corda(f"b{i}".encode())
    reports: list[RoundReport] = []

    def run(relayer: PathRelayer) -> None:
        for _ in range(3):
            reports.append(relayer.relay_once())

    threads = [threading.Thread(target=run, args=(r,)) for r in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert w.echo.received == 6 and w.echo.acknowledged == 6
    counters = w.evm_counters()
    assert counters["received"] == 6 and counters["acknowledged"] == 6
    assert sum(r.relayed for r in reports) == 24  # each packet and ack delivered exactly once


def test_a_key_rotation_leaves_no_gap_in_service(w: World) -> None:
    """Stage a new key, register it on both ledgers, activate it: relaying works at every
    moment, the old key's statements before the switch and the new key's after."""
    relayer = w.link()
    old = w.enclave.address
    w.send_from_evm(b"before")
    with LcpServiceClient(w.lcp_url) as lcp:
        staged = lcp.rotate_key(activate=False)
        assert w.enclave.address == old  # staged: the old key still signs
        assert relayer.relay_once().received == {"evm->corda": 1}
        for side in (relayer.a, relayer.b):
            register_key(side, staged)
        w.send_from_corda(b"between")
        assert relayer.relay_once().received == {"corda->evm": 1}
        lcp.activate_key(staged.address)
    assert w.enclave.address == staged.address != old
    w.send_from_evm(b"after")
    w.send_from_corda(b"after")
    report = relayer.relay_once()
    assert report.received == {"evm->corda": 1, "corda->evm": 1} and not report.failed
    relayer.relay_once()
    assert w.echo.acknowledged == 2 and w.evm_counters()["acknowledged"] == 2


def test_rotate_key_does_it_all(w: World) -> None:
    relayer = w.link()
    with LcpServiceClient(w.lcp_url) as lcp:
        address = rotate_key(relayer.a, relayer.b, lcp)
    assert w.enclave.address == address
    w.send_from_corda(b"signed by the new key")
    assert relayer.relay_once().received == {"corda->evm": 1}


def test_timestamp_timeouts_both_ways(w: World) -> None:
    """A packet whose timeout timestamp the destination's time passed is timed out on its source:
    the EVM chain's block time and the Corda host's version time are what count."""
    relayer = w.link()
    evm_now = relayer.a.endpoint.timestamp_at(relayer.a.endpoint.latest_height())
    corda_now = relayer.b.endpoint.timestamp_at(relayer.b.endpoint.latest_height())
    to_corda = w.send_from_evm(b"late for corda", timeout_timestamp=corda_now + 1)
    to_evm = w.send_from_corda(b"late for evm", timeout_timestamp=evm_now + 1)
    # both ledgers move on past the timeouts: the host's versions carry the wall clock; the
    # chain's blocks too, but blocks sealed within one second share its timestamp
    w.send_from_corda(b"tock")
    deadline = time.monotonic() + 10
    ticks = 0
    while relayer.a.endpoint.timestamp_at(relayer.a.endpoint.latest_height()) <= evm_now:
        assert time.monotonic() < deadline
        time.sleep(0.2)
        w.send_from_evm(b"tick")
        ticks += 1
    report = relayer.relay_once()
    assert report.timed_out == {"corda->evm": 1, "evm->corda": 1}
    relayer.relay_once()
    assert w.echo.received == ticks and w.evm_counters()["received"] == 1  # ticks and tock
    assert w.echo.timed_out == 1 and w.evm_counters()["timed_out"] == 1
    assert to_corda.sequence == 1 and to_evm.sequence == 1


def test_an_ordered_timeout_closes_the_channel_on_both_ledgers(w: World) -> None:
    """ICS-04: a timeout on an ORDERED channel closes the source's end; the relayer then proves
    CLOSED to the counterparty, which confirms the close."""
    relayer = w.link(Order.ORDERED)
    height = relayer.b.endpoint.latest_height()
    w.send_from_evm(b"never", timeout_height=Height(0, height.revision_height + 1))
    w.send_from_corda(b"moves the host on")
    report = relayer.relay_once()
    assert report.timed_out == {"corda->evm": 1}
    record = w.record
    assert record is not None
    evm_end = relayer.a.endpoint.channel("echo", record.a_channel_id)
    assert evm_end is not None and evm_end.state is ChannelState.CLOSED
    relayer.relay_once()
    corda_end = relayer.b.endpoint.channel("echo", record.b_channel_id)
    assert corda_end is not None and corda_end.state is ChannelState.CLOSED
