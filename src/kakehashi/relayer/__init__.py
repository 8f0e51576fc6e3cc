"""The relayer (DESIGN.md §5): untrusted and stateless, it moves headers, packets,
acknowledgements and timeouts between two ledgers, seeing each only through a
:class:`~kakehashi.relayer.chains.ChainEndpoint` (``chains``)."""

from kakehashi.relayer.chains import (
    AlreadyRelayed,
    ChainEndpoint,
    CordaEndpoint,
    EvmEndpoint,
    RelayOutcome,
    Submitted,
    WrittenAck,
    is_timed_out,
    timed_out_packets,
    unreceived_packets,
    unrelayed_acks,
)

__all__ = [
    "AlreadyRelayed",
    "ChainEndpoint",
    "CordaEndpoint",
    "EvmEndpoint",
    "RelayOutcome",
    "Submitted",
    "WrittenAck",
    "is_timed_out",
    "timed_out_packets",
    "unreceived_packets",
    "unrelayed_acks",
]
