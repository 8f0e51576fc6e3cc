"""Deterministic CBOR serialisation of ledger objects (RFC 8949 §4.2 core deterministic encoding).

Every object that crosses the wire or enters a Merkle tree is a frozen dataclass registered here
under a stable type name. It is encoded as a CBOR map holding its fields plus the key ``"$t"``
with the type name; maps are written with canonically sorted keys, integers in their shortest form
and no floats, so the same object always gives the same bytes.

Decoding only builds registered types, checks every field against its declared type and rejects
anything else with :class:`~kakehashi.errors.SerializationError`: bytes from a peer cannot
instantiate arbitrary classes or smuggle a string where a key is expected.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Callable
from typing import Any, TypeVar, Union, get_args, get_origin

import cbor2

from kakehashi.errors import SerializationError

T = TypeVar("T")

TYPE_KEY = "$t"
ENUM_VALUE_KEY = "v"
_MAX_DEPTH = 64

_by_name: dict[str, type] = {}
_by_class: dict[type, str] = {}
_field_checks: dict[type, dict[str, Callable[[Any], bool]]] = {}
_field_names: dict[type, tuple[str, ...]] = {}
_enums: set[type] = set()


def serializable(name: str) -> Callable[[type[T]], type[T]]:
    """Register a frozen dataclass or an enum under a stable wire name."""

    def register(cls: type[T]) -> type[T]:
        if name in _by_name and _by_name[name] is not cls:
            raise ValueError(f"serialisation name {name!r} already registered")
        if not (dataclasses.is_dataclass(cls) or issubclass(cls, enum.Enum)):
            raise TypeError(f"{cls.__name__} must be a dataclass or an enum to be serialisable")
        _by_name[name] = cls
        _by_class[cls] = name
        if issubclass(cls, enum.Enum):
            _enums.add(cls)
        else:
            _field_names[cls] = tuple(
                f.name for f in dataclasses.fields(cls) if not f.metadata.get("transient")
            )
        return cls

    return register


def type_name(cls: type) -> str:
    """The wire name a class was registered under."""
    try:
        return _by_class[cls]
    except KeyError:
        raise SerializationError(f"{cls.__qualname__} is not registered as serialisable") from None


def serialize(obj: object) -> bytes:
    """Encode ``obj`` to deterministic CBOR."""
    try:
        return bytes(cbor2.dumps(_to_cbor(obj, 0), canonical=True))
    except SerializationError:
        raise
    except (TypeError, ValueError, cbor2.CBOREncodeError) as exc:
        raise SerializationError(f"cannot serialise {type(obj).__name__}: {exc}") from exc


def deserialize(data: bytes, expected: type[T] | None = None) -> T:
    """Decode bytes produced by :func:`serialize`; ``expected`` checks the top-level type."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise SerializationError("expected bytes to deserialise")
    try:
        raw = cbor2.loads(bytes(data))
    except Exception as exc:  # cbor2 raises several unrelated types on garbage
        raise SerializationError(f"malformed CBOR: {exc}") from exc
    obj = _from_cbor(raw, 0)
    if expected is not None and not isinstance(obj, expected):
        raise SerializationError(
            f"expected {expected.__name__}, got {type(obj).__name__} in serialised data"
        )
    return typing.cast(T, obj)


_SCALARS = (bytes, str, int, bool, type(None))


def _to_cbor(obj: object, depth: int) -> object:
    kind = type(obj)
    if kind in _SCALARS:
        return obj
    if depth > _MAX_DEPTH:
        raise SerializationError("object nests too deeply to serialise")
    name = _by_class.get(kind)
    if name is not None:
        if isinstance(obj, enum.Enum):
            return {TYPE_KEY: name, ENUM_VALUE_KEY: obj.value}
        out: dict[object, object] = {TYPE_KEY: name}
        for field_name in _field_names[kind]:
            out[field_name] = _to_cbor(getattr(obj, field_name), depth + 1)
        return out
    if kind is tuple or kind is list:
        return [_to_cbor(item, depth + 1) for item in obj]  # type: ignore[attr-defined]
    if isinstance(obj, dict):
        mapping: dict[object, object] = {}
        for key, value in obj.items():
            if type(key) not in (str, int) or key == TYPE_KEY:
                raise SerializationError(f"map keys must be strings or integers, not {key!r}")
            mapping[key] = _to_cbor(value, depth + 1)
        return mapping
    if isinstance(obj, float):
        raise SerializationError("floats are not allowed in ledger data; use integers")
    if isinstance(obj, int | str | bytes):  # subclasses of the scalars (not enums)
        return obj
    if dataclasses.is_dataclass(obj):
        raise SerializationError(f"{kind.__qualname__} is not registered as serialisable")
    raise SerializationError(f"cannot serialise a value of type {kind.__name__}")


def _from_cbor(raw: object, depth: int) -> object:
    kind = type(raw)
    if kind in _SCALARS:
        return raw
    if depth > _MAX_DEPTH:
        raise SerializationError("serialised data nests too deeply")
    if kind is list:
        return tuple([_from_cbor(item, depth + 1) for item in raw])  # type: ignore[attr-defined]
    if kind is dict:
        assert isinstance(raw, dict)
        name = raw.get(TYPE_KEY)
        if name is None:
            return {key: _from_cbor(value, depth + 1) for key, value in raw.items()}
        cls = _by_name.get(name) if type(name) is str else None
        if cls is None:
            raise SerializationError(f"unknown serialised type {name!r}")
        if cls in _enums:
            try:
                return cls(raw.get(ENUM_VALUE_KEY))
            except ValueError as exc:
                raise SerializationError(f"bad value for {name}: {exc}") from exc
        checks = _checks_for(cls)
        kwargs: dict[str, object] = {}
        for key, value in raw.items():
            if key == TYPE_KEY:
                continue
            check = checks.get(key) if type(key) is str else None
            if check is None:
                raise SerializationError(f"{name} has no field {key!r}")
            decoded = _from_cbor(value, depth + 1)
            if not check(decoded):
                raise SerializationError(
                    f"{name}.{key} has a value of the wrong type ({type(decoded).__name__})"
                )
            kwargs[key] = decoded
        try:
            return cls(**kwargs)
        except SerializationError:
            raise
        except Exception as exc:  # constructors validate their own invariants
            raise SerializationError(f"invalid {name}: {exc}") from exc
    raise SerializationError(f"unsupported CBOR item of type {kind.__name__}")


def _checks_for(cls: type) -> dict[str, Callable[[Any], bool]]:
    checks = _field_checks.get(cls)
    if checks is None:
        hints = typing.get_type_hints(cls)
        checks = {
            field.name: _checker(hints[field.name])
            for field in dataclasses.fields(cls)
            if not field.metadata.get("transient")
        }
        _field_checks[cls] = checks
    return checks


def _checker(hint: Any) -> Callable[[Any], bool]:
    """A predicate telling whether a decoded value fits a field's declared type."""
    if hint is Any or hint is object:
        return lambda value: True
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        options = [_checker(arg) for arg in get_args(hint)]
        return lambda value: any(check(value) for check in options)
    if origin is tuple:
        args = get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            item = _checker(args[0])
            return lambda value: isinstance(value, tuple) and all(item(v) for v in value)
        items = [_checker(arg) for arg in args]
        return lambda value: (
            isinstance(value, tuple)
            and len(value) == len(items)
            and all(check(v) for check, v in zip(items, value, strict=True))
        )
    if origin is dict:
        key_arg, value_arg = get_args(hint)
        key_check, value_check = _checker(key_arg), _checker(value_arg)
        return lambda value: (
            isinstance(value, dict)
            and all(key_check(k) and value_check(v) for k, v in value.items())
        )
    if origin is frozenset:
        return lambda value: isinstance(value, tuple)
    if hint is type(None):
        return lambda value: value is None
    if hint is int:
        return lambda value: isinstance(value, int) and not isinstance(value, bool)
    if isinstance(hint, type):
        return lambda value: isinstance(value, hint)
    return lambda value: True
