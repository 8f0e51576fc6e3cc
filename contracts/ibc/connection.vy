# pragma version 0.4.3
"""
@title ICS-03 connection handshake (logic contract; the handler delegate-calls it)
@notice INIT -> TRYOPEN -> OPEN. Every step that depends on the counterparty verifies, through
        this chain's client of the counterparty, that the counterparty committed the end this
        step expects under `connections/{id}` at the proof height.
        Not verified (as yui-ibc-solidity with self-client validation off): the counterparty's
        client state and consensus state of this chain.
"""

from ibc import types
from ibc import store

initializes: store


@internal
@pure
def _default_versions() -> DynArray[types.Version, types.MAX_VERSIONS]:
    # The one connection version both hosts offer (kakehashi.ibc.types.DEFAULT_VERSION).
    return [types.Version(identifier="1", features=["ORDER_ORDERED", "ORDER_UNORDERED"])]


@internal
@pure
def _has(features: DynArray[String[32], types.MAX_FEATURES], feature: String[32]) -> bool:
    for f: String[32] in features:
        if keccak256(f) == keccak256(feature):
            return True
    return False


@internal
@pure
def _pick_version(
    counterparty_versions: DynArray[types.Version, types.MAX_VERSIONS]
) -> types.Version:
    # ICS-03 pickVersion (kakehashi.ibc.connection.pick_version): the first of our versions
    # the counterparty also offers, with the features both support, in our order.
    supported: DynArray[types.Version, types.MAX_VERSIONS] = self._default_versions()
    for ours: types.Version in supported:
        for theirs: types.Version in counterparty_versions:
            if keccak256(theirs.identifier) != keccak256(ours.identifier):
                continue
            common: DynArray[String[32], types.MAX_FEATURES] = []
            for f: String[32] in ours.features:
                if self._has(theirs.features, f):
                    common.append(f)
            if len(common) > 0:
                return types.Version(identifier=ours.identifier, features=common)
    raise "IBC: no connection version in common"


@internal
@pure
def _check_offered(version: types.Version, offered: DynArray[types.Version, types.MAX_VERSIONS]):
    # kakehashi.ibc.connection.check_offered_version: non-empty, no repeated feature, and a
    # subset of one offered version.
    assert len(version.features) > 0, "IBC: connection version offers no features"
    for i: uint256 in range(types.MAX_FEATURES):
        if i >= len(version.features):
            break
        for j: uint256 in range(types.MAX_FEATURES):
            if j >= i:
                break
            assert keccak256(version.features[i]) != keccak256(version.features[j]), "IBC: connection version repeats a feature"
    for candidate: types.Version in offered:
        if keccak256(candidate.identifier) != keccak256(version.identifier):
            continue
        subset: bool = True
        for f: String[32] in version.features:
            if not self._has(candidate.features, f):
                subset = False
        if subset:
            return
    raise "IBC: connection version not offered"


@internal
def _new_connection_id() -> String[types.MAX_ID]:
    n: uint64 = store.next_connection_sequence
    store.next_connection_sequence = n + 1
    return concat("connection-", uint2str(n))


@external
def conn_open_init(
    client_id: String[types.MAX_ID],
    counterparty: types.ConnectionCounterparty,
    delay_period: uint64,
) -> String[types.MAX_ID]:
    assert store.client_impls[client_id] != empty(address), "IBC: unknown client"
    assert len(counterparty.connection_id) == 0, "IBC: counterparty connection id must be empty"
    assert len(counterparty.prefix) > 0, "IBC: counterparty prefix is empty"
    # As kakehashi.ibc.handler: a delay would be stored but not enforced, so only 0 is accepted.
    assert delay_period == 0, "IBC: connection delay period not supported"
    connection_id: String[types.MAX_ID] = self._new_connection_id()
    store.set_connection(
        connection_id,
        types.ConnectionEnd(
            client_id=client_id,
            versions=self._default_versions(),
            state=types.CONN_INIT,
            counterparty=counterparty,
            delay_period=delay_period,
        ),
    )
    log types.ConnectionOpen(step=1, connection_id=connection_id)
    return connection_id


@external
def conn_open_try(
    counterparty: types.ConnectionCounterparty,
    delay_period: uint64,
    client_id: String[types.MAX_ID],
    counterparty_versions: DynArray[types.Version, types.MAX_VERSIONS],
    proof_init: Bytes[types.MAX_PROOF],
    proof_height: types.Height,
) -> String[types.MAX_ID]:
    assert len(counterparty.connection_id) > 0, "IBC: counterparty connection id is empty"
    assert len(counterparty.prefix) > 0, "IBC: counterparty prefix is empty"
    assert store.client_impls[client_id] != empty(address), "IBC: unknown client"
    assert delay_period == 0, "IBC: connection delay period not supported"
    picked: types.Version = self._pick_version(counterparty_versions)
    expected: types.ConnectionEnd = types.ConnectionEnd(
        client_id=counterparty.client_id,
        versions=counterparty_versions,
        state=types.CONN_INIT,
        counterparty=types.ConnectionCounterparty(
            client_id=client_id, connection_id="", prefix=store.prefix()
        ),
        delay_period=delay_period,
    )
    connection_id: String[types.MAX_ID] = self._new_connection_id()
    end: types.ConnectionEnd = types.ConnectionEnd(
        client_id=client_id,
        versions=[picked],
        state=types.CONN_TRYOPEN,
        counterparty=counterparty,
        delay_period=delay_period,
    )
    ref: store.ConnectionRef = store.ConnectionRef(
        client_id=client_id, prefix=counterparty.prefix, counterparty_connection_id=""
    )
    assert store.verify_membership(
        ref, proof_height, proof_init, types.connection_path(counterparty.connection_id),
        keccak256(abi_encode(expected))
    ), "IBC: connection proof does not verify"
    store.set_connection(connection_id, end)
    log types.ConnectionOpen(step=2, connection_id=connection_id)
    return connection_id


@external
def conn_open_ack(
    connection_id: String[types.MAX_ID],
    counterparty_connection_id: String[types.MAX_ID],
    version: types.Version,
    proof_try: Bytes[types.MAX_PROOF],
    proof_height: types.Height,
):
    end: types.ConnectionEnd = store.connections[connection_id]
    assert end.state == types.CONN_INIT, "IBC: connection not in INIT"
    assert len(counterparty_connection_id) > 0, "IBC: counterparty connection id is empty"
    self._check_offered(version, end.versions)
    expected: types.ConnectionEnd = types.ConnectionEnd(
        client_id=end.counterparty.client_id,
        versions=[version],
        state=types.CONN_TRYOPEN,
        counterparty=types.ConnectionCounterparty(
            client_id=end.client_id, connection_id=connection_id, prefix=store.prefix()
        ),
        delay_period=end.delay_period,
    )
    ref: store.ConnectionRef = store.ConnectionRef(
        client_id=end.client_id, prefix=end.counterparty.prefix, counterparty_connection_id=""
    )
    assert store.verify_membership(
        ref, proof_height, proof_try, types.connection_path(counterparty_connection_id),
        keccak256(abi_encode(expected))
    ), "IBC: connection proof does not verify"
    end.state = types.CONN_OPEN
    end.versions = [version]
    end.counterparty.connection_id = counterparty_connection_id
    store.set_connection(connection_id, end)
    log types.ConnectionOpen(step=3, connection_id=connection_id)


@external
def conn_open_confirm(
    connection_id: String[types.MAX_ID],
    proof_ack: Bytes[types.MAX_PROOF],
    proof_height: types.Height,
):
    end: types.ConnectionEnd = store.connections[connection_id]
    assert end.state == types.CONN_TRYOPEN, "IBC: connection not in TRYOPEN"
    expected: types.ConnectionEnd = types.ConnectionEnd(
        client_id=end.counterparty.client_id,
        versions=end.versions,
        state=types.CONN_OPEN,
        counterparty=types.ConnectionCounterparty(
            client_id=end.client_id, connection_id=connection_id, prefix=store.prefix()
        ),
        delay_period=end.delay_period,
    )
    ref: store.ConnectionRef = store.ConnectionRef(
        client_id=end.client_id, prefix=end.counterparty.prefix, counterparty_connection_id=""
    )
    assert store.verify_membership(
        ref, proof_height, proof_ack, types.connection_path(end.counterparty.connection_id),
        keccak256(abi_encode(expected))
    ), "IBC: connection proof does not verify"
    end.state = types.CONN_OPEN
    store.set_connection(connection_id, end)
    log types.ConnectionOpen(step=4, connection_id=connection_id)
