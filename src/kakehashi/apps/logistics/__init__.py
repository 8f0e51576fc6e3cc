"""Logistics (DESIGN.md §7, issue 7 use case 2): contract records on the EVM chain updated
from delivery records kept on the Corda-model ledger, through a cross-chain call."""
