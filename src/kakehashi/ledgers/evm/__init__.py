"""The EVM permissioned chain: embedded QBFT chain, JSON-RPC node, external nodes, Vyper."""
