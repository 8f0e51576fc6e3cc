"""Fixtures: embedded Corda-model networks on SQLite files in a temporary folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kakehashi.ledgers.corda.node.setup import EmbeddedNetwork
from kakehashi.ledgers.corda.tokens.model import IssuedTokenType, TokenType

ISSUER = "O=Issuer, L=Tokyo, C=JP"
ALICE = "O=Alice Bank, L=London, C=GB"
BOB = "O=Bob Bank, L=New York, C=US"
CAROL = "O=Carol Bank, L=Paris, C=FR"
NOTARY = "O=Notary, L=Zurich, C=CH"
JPY = TokenType("JPY", 0)


def make_network(directory: Path, validating: bool = False) -> EmbeddedNetwork:
    return EmbeddedNetwork.create(
        directory, NOTARY, [ISSUER, ALICE, BOB, CAROL], validating=validating
    )


@pytest.fixture
def net(tmp_path: Path) -> Iterator[EmbeddedNetwork]:
    network = make_network(tmp_path / "net")
    yield network
    network.close()


@pytest.fixture
def validating_net(tmp_path: Path) -> Iterator[EmbeddedNetwork]:
    network = make_network(tmp_path / "vnet", validating=True)
    yield network
    network.close()


def jpy(network: EmbeddedNetwork) -> IssuedTokenType:
    return IssuedTokenType(network.node(ISSUER).party, JPY)
