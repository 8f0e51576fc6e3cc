"""The pure Corda ledger model: states, transactions, Merkle ids, contracts, signatures.

Nothing in this package performs I/O; the node package wraps it with storage and messaging.
"""
