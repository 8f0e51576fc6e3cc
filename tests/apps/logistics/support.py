"""A linked path whose Corda network has a carrier and an outsider besides the host's operator,
and whose cross module answers deliveries calls."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kakehashi.apps.logistics.deliveries import DeliveryCheckApp, record_delivery
from kakehashi.cross.corda_apps import apps_factory
from tests.relayer.support import OPERATOR, World, world

CARRIER = "O=Swift Carriers, L=Osaka, C=JP"
OUTSIDER = "O=Other Shipper, L=Busan, C=KR"


@contextmanager
def logistics_world(tmp_path: Path) -> Iterator[World]:
    with world(
        tmp_path,
        cross=True,
        corda_nodes=(OPERATOR, CARRIER, OUTSIDER),
        cross_apps=apps_factory(DeliveryCheckApp),
    ) as built:
        yield built


def deliver(w: World, contract_id: str, shipment: str) -> None:
    """The carrier records a delivery shared with the host's operator (a party of it)."""
    carrier = w.network.node(CARRIER)
    buyer = w.network.node(OPERATOR).party
    record_delivery(carrier, contract_id, shipment, 10, [buyer], delivered_at_ns=time.time_ns())
