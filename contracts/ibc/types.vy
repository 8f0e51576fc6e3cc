# pragma version 0.4.3
"""
@title IBC types: ICS-02/03/04 structs, interfaces, ICS-24 paths and ICS-04 commitments
@notice Stateless module shared by every IBC contract. The structs abi_encode to exactly the
        bytes `kakehashi.ibc.types` encodes (ConnectionEnd, ChannelEnd, Packet), so the
        commitment `keccak256(abi_encode(end))` is the one the Python side computes. Paths are the
        ICS-24 ASCII bytes `kakehashi.ibc.host` builds; every value is 32 bytes.
"""

# ----------------------------------------------------------------------------- bounds
MAX_ID: constant(uint256) = 64  # client, connection and channel identifiers (ICS-24: <= 64)
MAX_PORT: constant(uint256) = 128  # port identifiers (ICS-24: <= 128)
MAX_PREFIX: constant(uint256) = 128  # a counterparty's commitment prefix
MAX_PATH: constant(uint256) = 256  # the longest ICS-24 path these bounds allow is 251 bytes
MAX_PROOF: constant(uint256) = 16384
MAX_DATA: constant(uint256) = 8192  # packet data
MAX_ACK: constant(uint256) = 2048
MAX_CLIENT_MESSAGE: constant(uint256) = 16384
MAX_CLIENT_STATE: constant(uint256) = 4096
MAX_VERSION: constant(uint256) = 64  # a channel's version string
MAX_FEATURES: constant(uint256) = 4
MAX_VERSIONS: constant(uint256) = 2
MAX_ENCODED: constant(uint256) = 16384  # abi_encode of a packet with maximal data

# ICS-03 connection states, ICS-04 channel states and orderings (kakehashi.ibc.types)
CONN_INIT: constant(uint8) = 1
CONN_TRYOPEN: constant(uint8) = 2
CONN_OPEN: constant(uint8) = 3
CHAN_INIT: constant(uint8) = 1
CHAN_TRYOPEN: constant(uint8) = 2
CHAN_OPEN: constant(uint8) = 3
CHAN_CLOSED: constant(uint8) = 4
ORDER_UNORDERED: constant(uint8) = 1
ORDER_ORDERED: constant(uint8) = 2

# ICS-02 client status, as ILightClient.status answers
CLIENT_ACTIVE: constant(uint8) = 0

RECEIPT: constant(bytes32) = 0x0000000000000000000000000000000000000000000000000000000000000001
NS_PER_SECOND: constant(uint64) = 1000000000


# ----------------------------------------------------------------------------- structs
struct Height:
    revision_number: uint64
    revision_height: uint64


struct Version:
    identifier: String[16]
    features: DynArray[String[32], MAX_FEATURES]


struct ConnectionCounterparty:
    client_id: String[MAX_ID]
    connection_id: String[MAX_ID]
    prefix: Bytes[MAX_PREFIX]


struct ConnectionEnd:
    client_id: String[MAX_ID]
    versions: DynArray[Version, MAX_VERSIONS]
    state: uint8
    counterparty: ConnectionCounterparty
    delay_period: uint64


struct ChannelCounterparty:
    port_id: String[MAX_PORT]
    channel_id: String[MAX_ID]


struct ChannelEnd:
    state: uint8
    ordering: uint8
    counterparty: ChannelCounterparty
    connection_hops: DynArray[String[MAX_ID], 1]
    version: String[MAX_VERSION]


struct Packet:
    sequence: uint64
    source_port: String[MAX_PORT]
    source_channel: String[MAX_ID]
    destination_port: String[MAX_PORT]
    destination_channel: String[MAX_ID]
    data: Bytes[MAX_DATA]
    timeout_height: Height
    timeout_timestamp: uint64


# ----------------------------------------------------------------------------- interfaces
interface ILightClient:
    # ICS-02 client of one counterparty ledger, behind the handler. One contract may serve
    # several client identifiers; only the handler it was registered with may create/update.
    def create_client(
        client_id: String[MAX_ID],
        client_state: Bytes[MAX_CLIENT_STATE],
        consensus_state: Bytes[MAX_CLIENT_STATE],
    ) -> Height: nonpayable
    def update_client(
        client_id: String[MAX_ID], client_message: Bytes[MAX_CLIENT_MESSAGE]
    ) -> Height: nonpayable
    def verify_membership(
        client_id: String[MAX_ID],
        height: Height,
        proof: Bytes[MAX_PROOF],
        prefix: Bytes[MAX_PREFIX],
        path: Bytes[MAX_PATH],
        commitment: bytes32,
    ) -> bool: view
    def verify_non_membership(
        client_id: String[MAX_ID],
        height: Height,
        proof: Bytes[MAX_PROOF],
        prefix: Bytes[MAX_PREFIX],
        path: Bytes[MAX_PATH],
    ) -> bool: view
    def latest_height(client_id: String[MAX_ID]) -> Height: view
    def timestamp_at(client_id: String[MAX_ID], height: Height) -> uint64: view
    def status(client_id: String[MAX_ID]) -> uint8: view


interface IIBCModule:
    # An application bound to a port (ICS-05/26). A callback reverts to refuse.
    def on_chan_open_init(
        port_id: String[MAX_PORT], channel_id: String[MAX_ID], ordering: uint8,
        version: String[MAX_VERSION]
    ): nonpayable
    def on_chan_open_try(
        port_id: String[MAX_PORT], channel_id: String[MAX_ID], ordering: uint8,
        counterparty_version: String[MAX_VERSION]
    ): nonpayable
    def on_chan_open_ack(
        port_id: String[MAX_PORT], channel_id: String[MAX_ID],
        counterparty_version: String[MAX_VERSION]
    ): nonpayable
    def on_chan_open_confirm(port_id: String[MAX_PORT], channel_id: String[MAX_ID]): nonpayable
    def on_chan_close_init(port_id: String[MAX_PORT], channel_id: String[MAX_ID]): nonpayable
    def on_chan_close_confirm(port_id: String[MAX_PORT], channel_id: String[MAX_ID]): nonpayable
    def on_recv_packet(packet: Packet, relayer: address) -> Bytes[MAX_ACK]: nonpayable
    def on_acknowledgement_packet(
        packet: Packet, acknowledgement: Bytes[MAX_ACK], relayer: address
    ): nonpayable
    def on_timeout_packet(packet: Packet, relayer: address): nonpayable


# ----------------------------------------------------------------------------- events
event ClientCreated:
    client_id: String[MAX_ID]
    client_type: String[32]


event ClientUpdated:
    client_id: String[MAX_ID]
    revision_number: uint64
    revision_height: uint64


event ConnectionOpen:
    # step: 1 init, 2 try, 3 ack, 4 confirm
    step: uint8
    connection_id: String[MAX_ID]


event ChannelOpen:
    # step: 1 init, 2 try, 3 ack, 4 confirm, 5 close init, 6 close confirm
    step: uint8
    port_id: String[MAX_PORT]
    channel_id: String[MAX_ID]


event SendPacket:
    sequence: indexed(uint64)
    packet: Bytes[MAX_ENCODED]  # abi_encode(Packet) = kakehashi.ibc.types.Packet.encode()


event RecvPacket:
    sequence: indexed(uint64)
    packet: Bytes[MAX_ENCODED]


event WriteAcknowledgement:
    sequence: indexed(uint64)
    packet: Bytes[MAX_ENCODED]
    acknowledgement: Bytes[MAX_ACK]


event AcknowledgePacket:
    sequence: indexed(uint64)
    packet: Bytes[MAX_ENCODED]


event TimeoutPacket:
    sequence: indexed(uint64)
    packet: Bytes[MAX_ENCODED]


# ----------------------------------------------------------------------------- ICS-24 paths
@internal
@pure
def connection_path(connection_id: String[MAX_ID]) -> Bytes[MAX_PATH]:
    return concat(b"connections/", convert(connection_id, Bytes[MAX_ID]))


@internal
@pure
def channel_path(port_id: String[MAX_PORT], channel_id: String[MAX_ID]) -> Bytes[MAX_PATH]:
    return concat(
        b"channelEnds/ports/",
        convert(port_id, Bytes[MAX_PORT]),
        b"/channels/",
        convert(channel_id, Bytes[MAX_ID]),
    )


@internal
@pure
def _channel_suffix(port_id: String[MAX_PORT], channel_id: String[MAX_ID]) -> Bytes[210]:
    return concat(
        b"/ports/", convert(port_id, Bytes[MAX_PORT]), b"/channels/",
        convert(channel_id, Bytes[MAX_ID])
    )


@internal
@pure
def packet_path(
    kind: uint8, port_id: String[MAX_PORT], channel_id: String[MAX_ID], sequence: uint64
) -> Bytes[MAX_PATH]:
    # kind: 0 commitments, 1 acks, 2 receipts
    head: Bytes[11] = b"commitments"
    if kind == 1:
        head = b"acks"
    elif kind == 2:
        head = b"receipts"
    return concat(
        head,
        self._channel_suffix(port_id, channel_id),
        b"/sequences/",
        convert(uint2str(sequence), Bytes[20]),
    )


@internal
@pure
def sequence_path(
    kind: uint8, port_id: String[MAX_PORT], channel_id: String[MAX_ID]
) -> Bytes[MAX_PATH]:
    # kind: 0 nextSequenceSend, 1 nextSequenceRecv, 2 nextSequenceAck
    head: Bytes[16] = b"nextSequenceSend"
    if kind == 1:
        head = b"nextSequenceRecv"
    elif kind == 2:
        head = b"nextSequenceAck"
    return concat(head, self._channel_suffix(port_id, channel_id))


# ----------------------------------------------------------------------------- commitments
@internal
@pure
def packet_commitment(
    data: Bytes[MAX_DATA], timeout_height: Height, timeout_timestamp: uint64
) -> bytes32:
    # ICS-04: sha256(timeout_timestamp ‖ revision_number ‖ revision_height ‖ sha256(data)),
    # each number 8 bytes big-endian.
    return sha256(
        concat(
            convert(timeout_timestamp, bytes8),
            convert(timeout_height.revision_number, bytes8),
            convert(timeout_height.revision_height, bytes8),
            sha256(data),
        )
    )


@internal
@pure
def height_gte(a: Height, b: Height) -> bool:
    if a.revision_number != b.revision_number:
        return a.revision_number > b.revision_number
    return a.revision_height >= b.revision_height


@internal
@pure
def height_is_zero(h: Height) -> bool:
    return h.revision_number == 0 and h.revision_height == 0


@internal
@pure
def same_string(a: String[MAX_PORT], b: String[MAX_PORT]) -> bool:
    return keccak256(a) == keccak256(b)
