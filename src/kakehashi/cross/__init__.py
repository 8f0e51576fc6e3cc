"""The Cross Framework (DESIGN.md §6): atomic transactions across ledgers.

``tx`` (the transaction, its encoding, its id from salted part commitments, the view of it a
participant is sent, the initiation rule), ``status`` (what every ledger records about a
transaction). The Vyper side is ``contracts/cross/``.
"""
