"""The relayer's configuration file (TOML) and the objects it opens.

```toml
[lcp]
url = "http://127.0.0.1:8600"      # kakehashi lcp serve
key_expiration_s = 604800          # how long a registered enclave key stays valid (link)
development = true                 # trust the service's simulation root (never in production)

[a]                                # one ledger of the path: an EVM chain ...
type = "evm"
rpc = "http://127.0.0.1:8545"
handler = "0x…"                    # the IBC handler (kakehashi ibc deploy-evm)
port = "echo"
private_key_file = "relayer.key"   # the relayer's account (pays gas); hex
gas = 5000000                      # gas limit of each IBC transaction
from_block = 0                     # first block searched for packet events

[b]                                # ... and a Corda-model node serving its IBC host
type = "corda"
url = "http://127.0.0.1:10001"     # kakehashi corda serve ... --ibc
port = "echo"

[channel]
ordering = "unordered"             # or "ordered"
version = "echo-1"

[relayer]
interval_s = 0.5                   # pause between rounds
batch_size = 100                   # packet messages per submission
metrics_port = 9464                # Prometheus on 127.0.0.1 (0: off)
link_file = "link.json"            # written by `relayer link`, read by `relayer start`
```

Relative file names are relative to the configuration file's folder.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account

from kakehashi.errors import ConfigurationError
from kakehashi.ibc.clients.lcp import TAG_UPDATE_CLIENT
from kakehashi.ibc.types import Order
from kakehashi.relayer.chains import ChainEndpoint, CordaEndpoint, EvmEndpoint
from kakehashi.relayer.path import Side

__all__ = ["ChainConfig", "RelayerConfig", "load_config"]


@dataclass(frozen=True)
class ChainConfig:
    name: str
    type: str
    port: str
    rpc: str = ""
    handler: str = ""
    private_key: str = field(default="", repr=False)
    gas: int = 5_000_000
    from_block: int = 0
    url: str = ""

    def open(self) -> ChainEndpoint:
        """Connect to the ledger (nothing is sent)."""
        if self.type == "evm":
            from kakehashi.ibc.evm_host import EvmIbcHost
            from kakehashi.ledgers.evm.client import connect

            w3 = connect(self.rpc)
            sender = Account.from_key(self.private_key)
            ibc = EvmIbcHost(w3, self.handler, sender=sender, gas=self.gas)
            return EvmEndpoint(ibc, name=self.name, from_block=self.from_block)
        from kakehashi.ibc.corda_host.remote import RemoteCordaHost

        return CordaEndpoint(RemoteCordaHost(self.url), name=self.name)

    def side(self) -> Side:
        tag = bytes([TAG_UPDATE_CLIENT]) if self.type == "corda" else b""
        return Side(self.open(), port_id=self.port, update_tag=tag)


@dataclass(frozen=True)
class RelayerConfig:
    path: Path
    lcp_url: str
    a: ChainConfig
    b: ChainConfig
    ordering: Order = Order.UNORDERED
    version: str = "echo-1"
    key_expiration_s: int = 7 * 24 * 3600
    development: bool = True
    interval_s: float = 0.5
    batch_size: int = 100
    metrics_port: int = 9464
    link_file: Path = Path("link.json")


def _table(data: dict[str, Any], name: str, where: Path) -> dict[str, Any]:
    table = data.get(name)
    if not isinstance(table, dict):
        raise ConfigurationError(f"{where}: the [{name}] table is missing")
    return table


def _get(table: dict[str, Any], key: str, kind: type[Any], what: str, default: Any = None) -> Any:
    value = table.get(key, default)
    if value is None:
        raise ConfigurationError(f"{what}: `{key}` is required")
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigurationError(f"{what}: `{key}` must be a {kind.__name__}, got {value!r}")
    return value


def _chain(data: dict[str, Any], name: str, where: Path) -> ChainConfig:
    table = _table(data, name, where)
    what = f"{where} [{name}]"
    kind = _get(table, "type", str, what)
    port = _get(table, "port", str, what)
    if kind == "evm":
        key_file = where.parent / _get(table, "private_key_file", str, what)
        try:
            key = key_file.read_text().strip()
        except OSError as exc:
            raise ConfigurationError(f"{what}: cannot read {key_file}: {exc}") from None
        return ChainConfig(
            name,
            kind,
            port,
            rpc=_get(table, "rpc", str, what),
            handler=_get(table, "handler", str, what),
            private_key=key,
            gas=_get(table, "gas", int, what, 5_000_000),
            from_block=_get(table, "from_block", int, what, 0),
        )
    if kind == "corda":
        return ChainConfig(name, kind, port, url=_get(table, "url", str, what))
    raise ConfigurationError(f'{what}: `type` must be "evm" or "corda", got {kind!r}')


def load_config(path: Path) -> RelayerConfig:
    """Read and check ``path`` (module docstring); ConfigurationError says what is wrong."""
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigurationError(f"cannot read the relayer configuration {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path} is not valid TOML: {exc}") from None
    lcp = _table(data, "lcp", path)
    channel = data.get("channel", {})
    relayer = data.get("relayer", {})
    ordering = _get(channel, "ordering", str, f"{path} [channel]", "unordered").lower()
    if ordering not in ("ordered", "unordered"):
        raise ConfigurationError(f"{path} [channel]: ordering must be ordered or unordered")
    batch_size = _get(relayer, "batch_size", int, f"{path} [relayer]", 100)
    if batch_size < 1:
        raise ConfigurationError(f"{path} [relayer]: batch_size must be at least 1")
    interval = _get(relayer, "interval_s", float, f"{path} [relayer]", 0.5)
    if interval < 0:
        raise ConfigurationError(f"{path} [relayer]: interval_s cannot be negative")
    return RelayerConfig(
        path=path,
        lcp_url=_get(lcp, "url", str, f"{path} [lcp]"),
        a=_chain(data, "a", path),
        b=_chain(data, "b", path),
        ordering=Order.ORDERED if ordering == "ordered" else Order.UNORDERED,
        version=_get(channel, "version", str, f"{path} [channel]", "echo-1"),
        key_expiration_s=_get(lcp, "key_expiration_s", int, f"{path} [lcp]", 7 * 24 * 3600),
        development=_get(lcp, "development", bool, f"{path} [lcp]", True),
        interval_s=interval,
        batch_size=batch_size,
        metrics_port=_get(relayer, "metrics_port", int, f"{path} [relayer]", 9464),
        link_file=path.parent / _get(relayer, "link_file", str, f"{path} [relayer]", "link.json"),
    )
