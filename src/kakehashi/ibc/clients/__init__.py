"""ICS-02 clients a host keeps of the other ledger, over :mod:`kakehashi.lightclients`.

``qbft`` — the Corda-model host's client of the EVM chain (QBFT headers + ``eth_getProof``);
``corda`` — a client of the Corda-model host (notary-signed host states + sparse-Merkle proofs).
"""
