"""The DVP as a cross transaction: the stablecoin pays for an asset on the EVM chain (an NFT,
or an amount of an ERC-20 — a security token, :mod:`kakehashi.apps.posttrade.settlement`), or
neither moves.

The steps as the business sees them, and where each happens:

1. buyer and seller agree the trade (:class:`Terms`);
2. :func:`dvp_transaction` writes the cross transaction — Simple Commit, coordinated by the
   Corda IBC host whose operator issued the stablecoin: part 0 moves ``price`` of the
   stablecoin from the buyer to the seller on the Corda model (op 32,
   :func:`~kakehashi.cross.corda_tokens.token_call`), part 1 moves the NFT (or the ERC-20
   amount) from the seller to the buyer on the EVM chain (an ERC-721 / ERC-20 escrow of
   ``cross_app.vy``, :func:`~kakehashi.cross.kv.asset_call`); the host initiates it;
3. each signs on its own ledger: the buyer with its Corda key (a LOCAL signer of the
   coordinating ledger) after depositing the price for part 0 (its consent to the lock,
   :func:`~kakehashi.cross.corda_tokens.deposit`); the seller with its EVM account
   (``cross_auth.sign_remote``: a CHANNEL signer, proven to the coordinator by a SIGN packet),
   having approved the cross application for the NFT (the ERC-20 amount);
4. the last signature makes the host prepare part 0: the deposit becomes a lock, in the host's
   notarised version;
5. the CALL packet moves the NFT to the buyer on the EVM chain (or fails: the seller no longer
   owns it — holds too little of the ERC-20 — or did not approve);
6. the acknowledgement reports it back;
7. the host commits: the seller is paid — or, had part 1 failed, aborts: the buyer is refunded.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from kakehashi.cross.auth import corda_key_id
from kakehashi.cross.corda_tokens import token_call
from kakehashi.cross.kv import OK, OP_ERC721, asset_call
from kakehashi.cross.tx import (
    Account,
    ChannelInfo,
    CommitProtocol,
    ContractTransaction,
    InitiateTx,
    SignerKind,
)
from kakehashi.ibc.types import Height
from kakehashi.ledgers.corda.model.identity import Party
from kakehashi.ledgers.corda.tokens.model import IssuedTokenType

__all__ = ["Terms", "dvp_transaction"]


@dataclass(frozen=True)
class Terms:
    """What buyer and seller agreed: ``price`` of ``stablecoin`` (Corda model) for an asset on
    the EVM chain — by default (``op`` :data:`~kakehashi.cross.kv.OP_ERC721`) the NFT
    ``amount`` of contract ``token``; with ``op`` :data:`~kakehashi.cross.kv.OP_ERC20`,
    ``amount`` units of the ERC-20 ``token`` (the arguments of
    :func:`~kakehashi.cross.kv.asset_call`); each party's identity on each ledger."""

    stablecoin: IssuedTokenType
    price: int
    token: bytes  # the ERC-721 / ERC-20 contract's address
    amount: int  # the ERC-721 token id, or the ERC-20 amount (in the token's smallest unit)
    buyer: Party  # on the Corda model
    seller: Party
    buyer_evm: bytes  # 20-byte addresses
    seller_evm: bytes
    op: int = OP_ERC721  # the asset's kind; asset_call refuses any other


def dvp_transaction(
    terms: Terms, channel: ChannelInfo, *, nonce: int, timeout_ns: int, chain_id: str = "dvp"
) -> InitiateTx:
    """The cross transaction settling ``terms`` (module docstring); ``channel`` is the Corda
    host's cross channel to the EVM chain, ``timeout_ns`` when an unfinished settlement gives
    up (the buyer's deposit is reclaimable from then). Each part is salted at random: the EVM
    chain is sent part 1 and only the digest of part 0, which no guess of the price or the
    parties opens."""
    buyer = Account(SignerKind.LOCAL, corda_key_id(terms.buyer.owning_key))
    seller = Account(SignerKind.CHANNEL, terms.seller_evm)
    cash = token_call(terms.stablecoin, terms.buyer, terms.seller, terms.price)
    asset = asset_call(terms.op, terms.token, terms.seller_evm, terms.buyer_evm, terms.amount)
    return InitiateTx(
        chain_id,
        nonce,
        CommitProtocol.SIMPLE,
        (
            ContractTransaction(channel, (buyer,), cash, OK, salt=secrets.token_bytes(32)),
            ContractTransaction(channel, (seller,), asset, OK, salt=secrets.token_bytes(32)),
        ),
        Height(0, 0),
        timeout_ns,
    )
