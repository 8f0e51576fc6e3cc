"""Light clients: pure verification of another ledger's headers, states and proofs (no I/O)."""
