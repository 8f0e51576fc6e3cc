"""Ledgers Kakehashi connects: the EVM chain and the Corda-model ledger."""
