"""Shared fixtures for the EVM tests.

Nodes:

- ``anvil`` (session): a real anvil node (npm ``@foundry-rs/anvil``, see ``tests/foundry.py``)
  on 127.0.0.1 on a free port, started the first time a test asks for it and stopped at the end
  of the session. Its dev accounts (mnemonic ``test test ... junk``) are funded.
- ``anvil_w3`` (session): a :func:`kakehashi.ledgers.evm.client.connect` connection to it, with
  ``default_account`` set to the first dev account.
- ``tester_w3``: a fresh in-process chain (web3's ``EthereumTesterProvider`` on py-evm) for one
  test, with ``default_account`` set to its first funded account.

Accounts and contracts:

- ``dev_accounts`` (session): the first 10 dev accounts as eth-account ``LocalAccount`` objects.
- ``erc721_compiled`` / ``erc20_compiled`` (session): ``contracts/tokens/erc721.vy`` and
  ``erc20.vy`` compiled by the toolchain (from its on-disk cache when unchanged).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.providers.eth_tester import EthereumTesterProvider

from foundry import AnvilNode
from kakehashi.ledgers.evm import client, toolchain


# --------------------------------------------------------------------------------- nodes
@pytest.fixture(scope="session")
def anvil() -> Iterator[AnvilNode]:
    """A running anvil node on 127.0.0.1 (``anvil.url``), stopped at the end of the session."""
    node = AnvilNode()
    try:
        node.start()
        yield node
    finally:
        node.cleanup()


@pytest.fixture(scope="session")
def anvil_w3(anvil: AnvilNode, dev_accounts: list[LocalAccount]) -> Web3:
    """Web3 connected to ``anvil`` through ``client.connect``; sends from dev account 0."""
    w3 = client.connect(anvil.url)
    w3.eth.default_account = dev_accounts[0].address
    return w3


@pytest.fixture
def tester_w3() -> Web3:
    """A fresh in-process py-evm chain for one test; sends from its first funded account."""
    w3 = Web3(EthereumTesterProvider())
    w3.eth.default_account = w3.eth.accounts[0]
    return w3


# ------------------------------------------------------------------- accounts, contracts
@pytest.fixture(scope="session")
def dev_accounts() -> list[LocalAccount]:
    """The first 10 accounts of the development mnemonic (anvil funds them)."""
    return client.funded_accounts(client.DEV_MNEMONIC, 10)


@pytest.fixture(scope="session")
def erc721_compiled() -> toolchain.CompiledContract:
    return toolchain.compile_contract("tokens/erc721")


@pytest.fixture(scope="session")
def erc20_compiled() -> toolchain.CompiledContract:
    return toolchain.compile_contract("tokens/erc20")
