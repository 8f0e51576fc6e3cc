"""Authentication of end users: extension signatures (checked in Python and, for ECDSA, by
``ecrecover`` on the embedded chain), the identity registry, and one ledger's signing record."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import coincurve
import pytest
from eth_utils import keccak

from kakehashi.cross.auth import (
    Authentication,
    IdentityRegistry,
    corda_key_id,
    ed25519_account,
    secp256k1_account,
    sign_ed25519,
    sign_secp256k1,
    verify_extension,
)
from kakehashi.cross.status import AuthStatus
from kakehashi.cross.tx import Account, CrossTxError, SignerKind
from kakehashi.errors import ConfigurationError, SignatureError
from kakehashi.ibc.types import Height
from kakehashi.ledgers.corda.model.crypto import KeyPair, SignatureScheme
from kakehashi.ledgers.evm import toolchain
from kakehashi.ledgers.evm.chain import EmbeddedChain, dev_accounts
from kakehashi.ledgers.evm.provider import embedded_web3
from tests.cross.test_tx import dvp


def _address(private_key: bytes) -> bytes:
    public = coincurve.PrivateKey(private_key).public_key.format(compressed=False)
    return keccak(public[1:])[12:]


def test_extension_signatures_verify_only_for_their_key_and_tx() -> None:
    tx_id, other_id = dvp().tx_id, dvp(nonce=99).tx_id
    secp = os.urandom(32)
    account = secp256k1_account(_address(secp))
    signature = sign_secp256k1(secp, tx_id)
    verify_extension(account, tx_id, signature)
    seed = os.urandom(32)
    ed = ed25519_account(KeyPair(SignatureScheme.ED25519, seed).public.encoded)
    ed_signature = sign_ed25519(seed, tx_id)
    verify_extension(ed, tx_id, ed_signature)
    bad = [
        (account, other_id, signature),  # another transaction
        (account, tx_id, signature[:64] + bytes([5])),  # bad v
        (account, tx_id, bytes([signature[0] ^ 1]) + signature[1:]),  # altered r
        (secp256k1_account(os.urandom(20)), tx_id, signature),  # another key
        (ed, other_id, ed_signature),
        (ed, tx_id, ed_signature[:-1] + bytes([ed_signature[-1] ^ 1])),
        (Account(SignerKind.EXTENSION, b"\x09" + os.urandom(20)), tx_id, signature),  # no verifier
        (Account(SignerKind.LOCAL, os.urandom(20)), tx_id, signature),
    ]
    for who, what, sig in bad:
        with pytest.raises(SignatureError):
            verify_extension(who, what, sig)


def test_the_evm_recovers_the_same_extension_signer() -> None:
    secp = os.urandom(32)
    tx_id = dvp().tx_id
    with EmbeddedChain() as chain:
        w3 = embedded_web3(chain)
        checker = toolchain.deploy(
            w3, toolchain.compile_contract("cross/extension_check"), sender=dev_accounts()[0]
        )
        recovered = checker.functions.signer(tx_id, sign_secp256k1(secp, tx_id)).call()
    assert bytes.fromhex(recovered[2:]) == _address(secp)


def test_the_registry_designates_counterparties_by_name(tmp_path: Path) -> None:
    key = KeyPair.generate()
    path = tmp_path / "identities.toml"
    path.write_text(
        '[[party]]\nname = "O=Bank A, L=London, C=GB"\nevm = "0x'
        + "11" * 20
        + f'"\ncorda = "{key.public.to_text()}"\n'
        '[[party]]\nname = "O=Bank B, L=Tokyo, C=JP"\nevm = "0x' + "22" * 20 + '"\n'
    )
    registry = IdentityRegistry.load(path)
    bank_a = "O=Bank A, L=London, C=GB"
    assert registry.account(bank_a, "evm") == Account(SignerKind.LOCAL, b"\x11" * 20)
    assert registry.account(bank_a, "corda", local=False) == Account(
        SignerKind.CHANNEL, corda_key_id(key.public)
    )
    with pytest.raises(CrossTxError, match="no identity on the corda"):
        registry.account("O=Bank B, L=Tokyo, C=JP", "corda")
    with pytest.raises(CrossTxError, match="not in the identity registry"):
        registry.account("O=Nobody, L=Nowhere, C=US", "evm")
    path.write_text('[[party]]\nname = "O=X, L=Y, C=GB"\nevm = "0x1234"\n')
    with pytest.raises(ConfigurationError, match="20 bytes"):
        IdentityRegistry.load(path)


def test_authentication_is_verified_once_every_signer_signed_before_the_timeout() -> None:
    secp = os.urandom(32)
    ext = secp256k1_account(_address(secp))
    base = dvp()
    first, second = base.contract_transactions
    tx = replace(
        base,
        contract_transactions=(first, replace(second, signers=(*second.signers, ext))),
    )
    auth = Authentication(tx)
    buyer, seller = first.signers[0], second.signers[0]
    early = Height(0, 10)
    assert auth.status(early, 0) is AuthStatus.PENDING
    auth.sign_local(buyer, early, 1)
    auth.sign_local(buyer, early, 2)  # twice: a no-op, the first time stays
    assert auth.signed[buyer] == 1
    with pytest.raises(CrossTxError, match="CHANNEL"):
        auth.sign_channel(buyer, early, 3)
    auth.sign_channel(seller, early, 3)
    with pytest.raises(SignatureError):
        auth.sign_extension(ext, sign_secp256k1(os.urandom(32), tx.tx_id), early, 4)
    assert auth.missing() == (ext,) and auth.status(early, 4) is AuthStatus.PENDING
    with pytest.raises(CrossTxError, match="not a signer"):
        auth.sign_local(Account(SignerKind.LOCAL, b"\x99" * 20), early, 5)
    late = tx.timeout_height
    assert auth.status(late, 5) is AuthStatus.EXPIRED
    with pytest.raises(CrossTxError, match="timed out"):
        auth.sign_extension(ext, sign_secp256k1(secp, tx.tx_id), late, 5)
    auth.sign_extension(ext, sign_secp256k1(secp, tx.tx_id), early, 6)
    assert auth.status(late, 7) is AuthStatus.VERIFIED
