# pragma version 0.4.3
"""
@title Logistics contract records (Kakehashi use case 2)
@notice The sales contracts whose status follows the deliveries recorded on the Corda-model
        ledger: each has an id and the number of deliveries that complete it. The status itself
        is the cross application's key `status/<id>` (contracts/cross/cross_app.vy), written only
        by a cross transaction, so it is locked while one runs and shows only what the Corda
        ledger supported. The deployer registers contracts.
"""

MAX_ID: constant(uint256) = 64
MAX_CONTRACTS: constant(uint256) = 256


struct Record:
    contract_id: String[MAX_ID]
    expected: uint32


owner: public(immutable(address))
records: DynArray[Record, MAX_CONTRACTS]
registered: HashMap[bytes32, bool]


event Registered:
    contract_id: String[MAX_ID]
    expected: uint32


@deploy
def __init__():
    owner = msg.sender


@external
def register(contract_id: String[MAX_ID], expected: uint32):
    """Register a contract completed by ``expected`` deliveries."""
    assert msg.sender == owner, "LOGISTICS: only the owner registers contracts"
    assert len(contract_id) > 0, "LOGISTICS: a contract id is 1 to 64 characters"
    assert expected > 0, "LOGISTICS: a contract expects at least one delivery"
    key: bytes32 = keccak256(contract_id)
    assert not self.registered[key], "LOGISTICS: the contract is registered already"
    assert len(self.records) < MAX_CONTRACTS, "LOGISTICS: the registry is full"
    self.registered[key] = True
    self.records.append(Record(contract_id=contract_id, expected=expected))
    log Registered(contract_id=contract_id, expected=expected)


@external
@view
def count() -> uint256:
    return len(self.records)


@external
@view
def record(index: uint256) -> Record:
    return self.records[index]
