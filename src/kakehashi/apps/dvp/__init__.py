"""DVP (DESIGN.md §7, issue 7 use case 1): a stablecoin on the Corda-model ledger against an
ERC-721 on the EVM chain, settled atomically by the Cross Framework."""
