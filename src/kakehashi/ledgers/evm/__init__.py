"""The EVM permissioned chain: embedded QBFT chain, JSON-RPC node, external nodes, Vyper."""

import os

# eth-hash picks its keccak256 backend at the first hash, from this variable: the C one
# (safe-pysha3) is about four times faster than the default, and a block hashes thousands of
# trie nodes. A choice the user made in the environment stands.
os.environ.setdefault("ETH_HASH_BACKEND", "pysha3")
