"""The Cross Framework (DESIGN.md §6): atomic transactions across ledgers.

``tx`` (the transaction, its canonical encoding and id, the initiation rule), ``status`` (what
every ledger records about a transaction). The Vyper side is ``contracts/cross/``.
"""
