"""A faithful Python model of the Corda 4 ledger: pure model, node shell, tokens.

``model`` and ``merkle`` are pure (no I/O); ``node`` adds storage, the notary, messaging and
flows; ``tokens`` is a Token-SDK-style fungible token application.
"""
