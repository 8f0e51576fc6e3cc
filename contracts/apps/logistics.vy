# pragma version 0.4.3
"""
@title Logistics contract records (Kakehashi use case 2)
@notice The sales contracts whose status follows the deliveries recorded on the Corda-model
        ledger: each has an id, the number of deliveries that complete it and its privacy
        pattern. The status itself is the cross application's key `status/<id>`
        (contracts/cross/cross_app.vy), written only by a cross transaction, so it is locked
        while one runs and shows only what the Corda ledger supported. The deployer registers
        contracts.

        Minimal disclosure (`register`): the check sends the contract id and the expected count;
        the Corda ledger answers yes or no and the status becomes `delivered` on yes.
        Full disclosure (`register_full`): the check sends the contract id only; the Corda
        ledger answers with every delivery record of the contract, and `evaluate` (called by
        the cross application with that answer) gives the status: `delivered` when the records
        number the expected count, else `partial: <n> of <expected>`.
"""

MAX_ID: constant(uint256) = 64
MAX_CONTRACTS: constant(uint256) = 256
MAX_ANSWER: constant(uint256) = 1600  # kakehashi.cross.packets.MAX_ANSWER
MAX_RECORDS: constant(uint256) = 8  # more than fit one answer
MAX_STATUS: constant(uint256) = 192  # a value of the cross application
DECODE_BOUND: constant(uint256) = 6144  # >= the largest ABI encoding of an answer's type


struct Record:
    contract_id: String[MAX_ID]
    expected: uint32
    full: bool  # full disclosure: the answer is every delivery record


struct Delivery:
    shipment_id: String[MAX_ID]
    quantity: uint64
    delivered_at_ns: uint64
    carrier: String[256]  # the carrier's X.500 name


owner: public(immutable(address))
records: DynArray[Record, MAX_CONTRACTS]
registered: HashMap[bytes32, uint256]  # keccak256(id) -> index + 1


event Registered:
    contract_id: String[MAX_ID]
    expected: uint32
    full: bool


@deploy
def __init__():
    owner = msg.sender


@internal
def _register(contract_id: String[MAX_ID], expected: uint32, full: bool):
    assert msg.sender == owner, "LOGISTICS: only the owner registers contracts"
    assert len(contract_id) > 0, "LOGISTICS: a contract id is 1 to 64 characters"
    assert expected > 0, "LOGISTICS: a contract expects at least one delivery"
    assert convert(expected, uint256) <= MAX_RECORDS or not full, "LOGISTICS: full disclosure answers at most 8 records"
    key: bytes32 = keccak256(contract_id)
    assert self.registered[key] == 0, "LOGISTICS: the contract is registered already"
    assert len(self.records) < MAX_CONTRACTS, "LOGISTICS: the registry is full"
    self.records.append(Record(contract_id=contract_id, expected=expected, full=full))
    self.registered[key] = len(self.records)
    log Registered(contract_id=contract_id, expected=expected, full=full)


@external
def register(contract_id: String[MAX_ID], expected: uint32):
    """Register a contract completed by ``expected`` deliveries, checked with minimal
    disclosure (yes / no)."""
    self._register(contract_id, expected, False)


@external
def register_full(contract_id: String[MAX_ID], expected: uint32):
    """Register a contract completed by ``expected`` deliveries, checked with full
    disclosure (the Corda ledger answers with every delivery record)."""
    self._register(contract_id, expected, True)


@external
@view
def count() -> uint256:
    return len(self.records)


@external
@view
def record(index: uint256) -> Record:
    return self.records[index]


@external
@view
def evaluate(key: Bytes[MAX_ID], answer: Bytes[MAX_ANSWER]) -> Bytes[MAX_STATUS]:
    """The status a full-disclosure answer supports for the contract whose status key is
    ``key`` (`status/<id>`): reverts unless ``answer`` is the canonical
    `abi.encode(string contract_id, Delivery[] records)` of that registered full-disclosure
    contract."""
    wide: Bytes[DECODE_BOUND] = answer
    contract_id: String[MAX_ID] = ""
    found: DynArray[Delivery, MAX_RECORDS] = []
    contract_id, found = abi_decode(wide, (String[MAX_ID], DynArray[Delivery, MAX_RECORDS]))
    assert abi_encode(contract_id, found) == answer, "LOGISTICS: the answer is not canonical"
    assert keccak256(concat(b"status/", convert(contract_id, Bytes[MAX_ID]))) == keccak256(key), "LOGISTICS: the answer is for another contract"
    index: uint256 = self.registered[keccak256(contract_id)]
    assert index != 0, "LOGISTICS: not a registered contract"
    record: Record = self.records[index - 1]
    assert record.full, "LOGISTICS: the contract is checked with minimal disclosure"
    if len(found) == convert(record.expected, uint256):
        return b"delivered"
    text: String[MAX_STATUS] = concat(
        "partial: ", uint2str(len(found)), " of ", uint2str(record.expected)
    )
    return convert(text, Bytes[MAX_STATUS])
