# pragma version ~=0.4.3
"""
@title Kakehashi ERC-721 token
@notice A standard ERC-721 collection (with the metadata and enumeration extensions, EIP-4494
        permits and ERC-165) built on snekmate's `erc721` module. The deployer is the owner
        and the first minter; the owner appoints further minters with `set_minter`.

        Token ids are chosen by the minter (`mint`), because the ids of business assets (a
        bond, a bill of lading) come from outside the chain. snekmate's counter-based
        `safe_mint` is therefore not exported: its counter could run into an id minted here.
        Transfers, approvals and events are snekmate's, unchanged, so any ERC-721 tool works.
"""

from snekmate.auth import ownable
initializes: ownable

from snekmate.tokens import erc721
initializes: erc721[ownable := ownable]

exports: (
    # ERC-165 and ERC-721
    erc721.supportsInterface,
    erc721.balanceOf,
    erc721.ownerOf,
    erc721.approve,
    erc721.getApproved,
    erc721.setApprovalForAll,
    erc721.isApprovedForAll,
    erc721.transferFrom,
    erc721.safeTransferFrom,
    # metadata and enumeration extensions
    erc721.name,
    erc721.symbol,
    erc721.tokenURI,
    erc721.totalSupply,
    erc721.tokenByIndex,
    erc721.tokenOfOwnerByIndex,
    # EIP-4494 permits and EIP-5267 domain
    erc721.permit,
    erc721.nonces,
    erc721.DOMAIN_SEPARATOR,
    erc721.eip712Domain,
    # roles
    erc721.owner,
    erc721.is_minter,
    erc721.set_minter,
    erc721.transfer_ownership,
    erc721.renounce_ownership,
    erc721.burn,
)


# The EIP-712 signing-domain version of permits.
_EIP712_VERSION: constant(String[20]) = "1"


@deploy
def __init__(name_: String[25], symbol_: String[5], base_uri_: String[80]):
    """
    @param name_ The collection name (at most 25 characters); also the EIP-712 domain name.
    @param symbol_ The collection symbol (at most 5 characters).
    @param base_uri_ Prefix of `tokenURI` (at most 80 characters; may be empty).
    """
    ownable.__init__()
    erc721.__init__(name_, symbol_, base_uri_, name_, _EIP712_VERSION)


@external
def mint(owner: address, token_id: uint256, uri: String[432]):
    """
    @notice Mints token `token_id` to `owner`; only minters may call it. If `owner` is a
            contract it must accept the token (`onERC721Received`), as for `safeTransferFrom`.
    @param owner The receiver; not the zero address.
    @param token_id The new token's id; it must not exist.
    @param uri The token's URI suffix (appended to the base URI by `tokenURI`).
    """
    assert erc721.is_minter[msg.sender], "erc721: access is denied"
    erc721._safe_mint(owner, token_id, b"")
    erc721._set_token_uri(token_id, uri)
