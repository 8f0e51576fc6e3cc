# pragma version ~=0.4.3
"""
@title Kakehashi ERC-20 token
@notice A standard ERC-20 token (with EIP-2612 permits) built on snekmate's `erc20` module.
        The deployer is the owner and the first minter and receives `initial_supply_`; the
        owner appoints further minters with `set_minter`, and minters create tokens with
        `mint`. Transfers, allowances and events are snekmate's, unchanged, so any ERC-20
        tool works.
"""

from snekmate.auth import ownable
initializes: ownable

from snekmate.tokens import erc20
initializes: erc20[ownable := ownable]

exports: erc20.__interface__


# The EIP-712 signing-domain version of permits.
_EIP712_VERSION: constant(String[20]) = "1"


@deploy
def __init__(name_: String[25], symbol_: String[5], decimals_: uint8, initial_supply_: uint256):
    """
    @param name_ The token name (at most 25 characters); also the EIP-712 domain name.
    @param symbol_ The token symbol (at most 5 characters).
    @param decimals_ The number of decimals a user interface shows.
    @param initial_supply_ Tokens minted to the deployer (in the smallest unit).
    """
    ownable.__init__()
    erc20.__init__(name_, symbol_, decimals_, name_, _EIP712_VERSION)
    if initial_supply_ != 0:
        erc20._mint(msg.sender, initial_supply_)
