"""The node shell around the ledger model: databases, notary, messaging, flows."""
