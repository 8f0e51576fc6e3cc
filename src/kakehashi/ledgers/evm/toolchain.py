"""Vyper toolchain: compile the contracts under ``contracts/`` and deploy them with web3.

Contracts are compiled with Vyper's Python API (no ``vyper`` executable needed), with the
installed snekmate package importable (``from snekmate.tokens import erc20``) and with the
repository's ``contracts/`` directory as a search path, so ``from tokens import erc20`` style
imports of our own modules work too.

Compiling a snekmate-based token takes about a second, so outputs are cached on disk. The cache
key is a SHA-256 over the compiler version, the compiler settings and the contents of every
source file the compilation reads (the contract and each module or interface it imports,
transitively, found by Vyper's own import resolution). Any edit to any of them is a new key.
Entries are written atomically; an unreadable or corrupt entry is recompiled and replaced.

Environment:

``KAKEHASHI_CONTRACTS_DIR``
    the contracts directory (default: ``contracts/`` of the source tree this module is in).
``KAKEHASHI_CACHE_DIR``
    cache root; compiled outputs go to ``<root>/vyper`` (default ``~/.cache/kakehashi``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import vyper
from eth_utils import keccak
from vyper.compiler import outputs_from_compiler_data
from vyper.compiler.input_bundle import FilesystemInputBundle
from vyper.compiler.phases import CompilerData
from vyper.compiler.settings import OptimizationLevel, Settings
from vyper.exceptions import VyperException, VyperInternalException
from web3 import Web3
from web3.contract import Contract

from kakehashi.errors import ConfigurationError, ContractCompileError, TransactionRevertedError
from kakehashi.ledgers.evm.client import Sender, transact

EVM_VERSION = "prague"
"""The EVM version contracts are compiled for.

Prague is the newest ruleset Vyper 0.4.3 supports (and its default, stated here so that it is
pinned and part of the cache key). It is what the chains Kakehashi runs on execute: the embedded
chain's py-evm VM and eth-tester's default VM are Prague, the tests start anvil with
``--hardfork prague``, and Besu follows Ethereum mainnet forks. Targeting Cancun or later also
matters for state proofs: Vyper then keeps reentrancy locks in transient storage, so a contract's
storage starts at slot 0 with its own variables. GoQuorum's EVM predates Shanghai (no PUSH0), so
for a GoQuorum network compile with ``evm_version="london"`` (and mind the storage-layout shift).
"""

OPTIMIZATION = OptimizationLevel.GAS
"""Vyper's default optimisation, stated explicitly so that it is part of the cache key."""

CACHE_FORMAT = 1
"""Bumped whenever the layout of a cache entry changes."""

_OUTPUTS = ("abi", "bytecode", "bytecode_runtime", "layout")

# Vyper keeps compiler settings in module globals while it compiles; one compilation at a time.
_COMPILE_LOCK = threading.Lock()


@dataclass(frozen=True)
class CompiledContract:
    """A compiled contract: its ABI, its creation and runtime EVM bytecode, its storage layout."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: bytes
    runtime_bytecode: bytes
    storage_layout: dict[str, Any]
    """Vyper's layout: variable name (nested by module) -> ``{"type", "slot", "n_slots"}``."""
    from_cache: bool = field(default=False, compare=False)
    """True when the outputs came from the on-disk cache rather than a fresh compilation."""


# ------------------------------------------------------------------------------- locations
def contracts_dir() -> Path:
    """The contracts directory: ``$KAKEHASHI_CONTRACTS_DIR`` or the source tree's ``contracts/``."""
    override = os.environ.get("KAKEHASHI_CONTRACTS_DIR")
    if override:
        return Path(override).expanduser().resolve()
    # src/kakehashi/ledgers/evm/toolchain.py -> the repository root is four levels up.
    return Path(__file__).resolve().parents[4] / "contracts"


def cache_dir() -> Path:
    """Where compiled outputs are cached: ``$KAKEHASHI_CACHE_DIR/vyper`` or ``~/.cache/...``."""
    root = os.environ.get("KAKEHASHI_CACHE_DIR")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "kakehashi"
    return base / "vyper"


def snekmate_search_path() -> Path:
    """The directory holding the installed ``snekmate`` package (so ``snekmate.*`` resolves)."""
    spec = importlib.util.find_spec("snekmate")
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise ConfigurationError("the snekmate package is not installed (pip install snekmate)")
    return Path(locations[0]).resolve().parent


def _resolve_source(name_or_path: str | Path) -> tuple[Path, str]:
    """The source file for a contract, and the contract's name.

    A ``str`` is a name under the contracts directory (``"tokens/erc721"``, ``.vy`` optional) or
    an absolute path; a :class:`~pathlib.Path` is a file path (relative to the working
    directory). The name is the path under the contracts directory without ``.vy``, or the
    file's stem for a file elsewhere.
    """
    root = contracts_dir()
    candidate = Path(name_or_path)
    if not candidate.suffix:
        candidate = candidate.with_suffix(".vy")
    if isinstance(name_or_path, str) and not candidate.is_absolute():
        candidate = root / candidate
    path = candidate.resolve()
    if not path.is_file():
        raise ContractCompileError(
            f"no contract source {name_or_path!s} (looked for {path}; the contracts directory "
            f"is {root}, set KAKEHASHI_CONTRACTS_DIR to change it)",
            path=str(path),
        )
    try:
        name = path.relative_to(root).with_suffix("").as_posix()
    except ValueError:
        name = path.stem
    return path, name


# ------------------------------------------------------------------------------ compiling
def _settings(evm_version: str) -> Settings:
    return Settings(evm_version=evm_version, optimize=OPTIMIZATION, experimental_codegen=False)


def _compile_error(exc: Exception, path: Path) -> ContractCompileError:
    """A typed error naming the file and line of Vyper's first annotation."""
    line: int | None = getattr(exc, "lineno", None)
    where: str | None = getattr(exc, "resolved_path", None)
    for annotation in getattr(exc, "annotations", None) or ():
        line = getattr(annotation, "lineno", line)
        module = getattr(annotation, "module_node", None)
        where = getattr(module, "resolved_path", None) or where
        break
    where = str(where or path)
    location = f"{where}:{line}" if line is not None else where
    return ContractCompileError(
        f"{location}: {type(exc).__name__}: {str(exc).strip()}", path=where, line=line
    )


def _cache_key(data: CompilerData, main: Path, evm_version: str) -> str:
    """SHA-256 over compiler, settings and every source file the compilation reads."""
    imports = data.resolved_imports.compiler_inputs
    sources = sorted(
        (str(item.path), hashlib.sha256(item.contents.encode()).hexdigest()) for item in imports
    )
    material = {
        "format": CACHE_FORMAT,
        "compiler": f"vyper {vyper.__version__}",
        "settings": {"evm_version": evm_version, "optimize": str(OPTIMIZATION)},
        "outputs": list(_OUTPUTS),
        "main": hashlib.sha256(data.file_input.contents.encode()).hexdigest(),
        "main_name": main.name,
        "sources": sources,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def _read_cache(entry: Path, key: str) -> dict[str, Any] | None:
    """A cached output if ``entry`` holds a well-formed one for ``key``, else None."""
    try:
        cached = json.loads(entry.read_text())
        if not (
            isinstance(cached, dict)
            and cached.get("format") == CACHE_FORMAT
            and cached.get("key") == key
            and isinstance(cached.get("abi"), list)
            and isinstance(cached.get("storage_layout"), dict)
        ):
            return None
        bytes.fromhex(cached["bytecode"])
        bytes.fromhex(cached["bytecode_runtime"])
        return cached
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_cache(entry: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` to ``entry`` atomically (temporary file in the same dir, then rename)."""
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{entry.name}.", dir=entry.parent)
        try:
            with os.fdopen(fd, "w") as out:
                json.dump(payload, out)
            os.replace(tmp, entry)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        # A read-only or full cache directory only costs a recompilation next time.
        pass


def compile_contract(
    name_or_path: str | Path, *, evm_version: str = EVM_VERSION, use_cache: bool = True
) -> CompiledContract:
    """Compile a Vyper contract, from the cache when its sources are unchanged.

    ``name_or_path`` is a name under the contracts directory (``"tokens/erc721"``, suffix
    optional) or a path to a ``.vy`` file. Raises :class:`~kakehashi.errors.ContractCompileError`
    naming the file and line of the first error.
    """
    path, name = _resolve_source(name_or_path)
    search_paths: list[Path] = [snekmate_search_path()]
    root = contracts_dir()
    if root.is_dir():
        search_paths.append(root)  # later search paths win: our own modules first
    with _COMPILE_LOCK:
        try:
            bundle = FilesystemInputBundle(search_paths)
            file_input = bundle.load_file(path)
            data = CompilerData(file_input, bundle, settings=_settings(evm_version))
            key = _cache_key(data, path, evm_version)
            entry = cache_dir() / f"{key}.json"
            cached = _read_cache(entry, key) if use_cache else None
            if cached is not None:
                return CompiledContract(
                    name=name,
                    abi=cached["abi"],
                    bytecode=bytes.fromhex(cached["bytecode"]),
                    runtime_bytecode=bytes.fromhex(cached["bytecode_runtime"]),
                    storage_layout=cached["storage_layout"],
                    from_cache=True,
                )
            out = outputs_from_compiler_data(data, _OUTPUTS)
        except (VyperException, VyperInternalException) as exc:
            raise _compile_error(exc, path) from exc
        except ValueError as exc:  # conflicting settings between pragmas and arguments
            raise ContractCompileError(f"{path}: {exc}", path=str(path)) from exc
    bytecode = bytes.fromhex(out["bytecode"].removeprefix("0x"))
    runtime = bytes.fromhex(out["bytecode_runtime"].removeprefix("0x"))
    layout = out["layout"].get("storage_layout", {})
    if use_cache:
        _write_cache(
            entry,
            {
                "format": CACHE_FORMAT,
                "key": key,
                "compiler": f"vyper {vyper.__version__}",
                "source": str(path),
                "abi": out["abi"],
                "bytecode": bytecode.hex(),
                "bytecode_runtime": runtime.hex(),
                "storage_layout": layout,
            },
        )
    return CompiledContract(
        name=name,
        abi=out["abi"],
        bytecode=bytecode,
        runtime_bytecode=runtime,
        storage_layout=layout,
    )


def storage_slot(compiled: CompiledContract, variable: str) -> int:
    """The base storage slot of ``variable`` (dotted through modules: ``"erc721._owners"``)."""
    node: Any = compiled.storage_layout
    for part in variable.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(f"{compiled.name} has no storage variable {variable!r}")
        node = node[part]
    if not isinstance(node, dict) or not isinstance(node.get("slot"), int):
        raise KeyError(f"{variable!r} in {compiled.name} is a module, not a variable")
    return int(node["slot"])


def mapping_slot(base_slot: int, key: int | bytes | str) -> int:
    """The storage slot of ``HashMap`` entry ``key`` in Vyper: ``keccak256(slot32 ++ key32)``.

    (Solidity hashes ``key ++ slot``; Vyper puts the slot first.) ``key`` is an integer, up to
    32 bytes (left-padded, as addresses and ``bytes32`` are ABI-encoded) or a hex address.
    """
    if isinstance(key, str):
        key = bytes.fromhex(key.removeprefix("0x"))
    key_word = key.rjust(32, b"\0") if isinstance(key, bytes) else key.to_bytes(32, "big")
    if len(key_word) != 32:
        raise ValueError("a HashMap key is at most 32 bytes")
    return int.from_bytes(keccak(base_slot.to_bytes(32, "big") + key_word), "big")


# ------------------------------------------------------------------------------- deploying
def deploy(
    w3: Web3,
    contract: CompiledContract | str | Path,
    *args: Any,
    sender: Sender | None = None,
    timeout: float = 120.0,
    **tx: Any,
) -> Contract:
    """Deploy ``contract`` (compiled, or a name for :func:`compile_contract`) and wait for it.

    ``args`` are the constructor arguments; ``sender`` and ``tx`` are as for
    :func:`kakehashi.ledgers.evm.client.transact`. Returns a web3 contract bound to the new
    address. A reverted deployment raises :class:`~kakehashi.errors.TransactionRevertedError`.
    """
    compiled = contract if isinstance(contract, CompiledContract) else compile_contract(contract)
    factory = w3.eth.contract(abi=compiled.abi, bytecode=compiled.bytecode)
    receipt = transact(
        w3,
        factory.constructor(*args),
        sender=sender,
        timeout=timeout,
        description=f"deployment of {compiled.name}",
        **tx,
    )
    address = receipt["contractAddress"]
    if address is None:
        raise TransactionRevertedError(f"deployment of {compiled.name}: receipt has no address")
    return w3.eth.contract(address=address, abi=compiled.abi)
