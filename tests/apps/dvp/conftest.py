"""The DVP tests' world: the in-process sandbox with the bank (the IBC host, the stablecoin's
issuer), the buyer, the seller and an outsider, the cross module running the token escrow."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kakehashi.cross.corda_apps import apps_factory
from kakehashi.cross.corda_tokens import TokenEscrowApp
from kakehashi.ops.sandbox import OPERATOR, World, world
from tests.apps.dvp.test_settlement import BUYER, OUTSIDER, SELLER


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(
        tmp_path,
        cross=True,
        corda_nodes=(OPERATOR, BUYER, SELLER, OUTSIDER),
        cross_apps=apps_factory(TokenEscrowApp),
    ) as built:
        yield built
