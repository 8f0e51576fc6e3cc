"""Kakehashi (架け橋): atomic, trust-minimised interoperability between an EVM permissioned
chain and a Corda-model ledger."""

__version__ = "0.1.0"
