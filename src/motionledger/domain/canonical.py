"""Canonical JSON of an event body, and the hash chain over the log.

The log keeps bodies as jsonb, which rewrites numbers (`1e16` comes back as
`10000000000000000`, `-0.0` as `0.0`) and reorders keys. The canonical form is chosen so
that decoding the stored jsonb and encoding again gives the very same bytes: keys sorted,
and the two kinds of float that jsonb would print differently already written the way it
prints them. The chain hash is taken over these bytes, so `verify` can recompute it from
the stored rows alone.
"""

from __future__ import annotations

import decimal
import hashlib
import math
import re
from typing import Any, Final

import msgspec
import msgspec.inspect

GENESIS_HASH: Final = bytes(32)

_SORTED: Final = msgspec.json.Encoder(order="sorted")
# Cheap screen for the rare bodies that may hold a float jsonb would print differently: a
# number (after `:`, `,` or `[`) with a positive exponent (`1e16`), or a negative zero.
# Anchoring on the token start keeps hex ids ("3e4f") from matching; a false positive (such
# text inside a string) only costs a walk.
_SUSPECT_NUMBER: Final = re.compile(rb"[:,\[]-?[0-9]+(?:\.[0-9]+)?e[0-9]|[:,\[]-0\.0[,\]}]")


def _jsonb_float(value: float) -> float | int:
    """A float as jsonb will give it back."""
    if value == 0.0:
        return 0.0
    text = _SORTED.encode(value)
    if b"e" in text and math.isfinite(value) and value.is_integer():
        # jsonb keeps the decimal it is given: 1.5e300 comes back as 15 and 299 zeros,
        # which decodes as an int. Take that int from the same decimal text.
        return int(decimal.Decimal(text.decode()))
    return value


def _jsonb_stable(value: Any) -> Any:
    """A copy of `value` with floats rewritten as jsonb will give them back.

    Walked with a stack of its own, not by recursion: how deep a value nests is the
    producer's choice, and Python's recursion limit must not be what answers it.
    """
    if isinstance(value, float):
        return _jsonb_float(value)
    if not isinstance(value, dict | list):
        return value
    top: Any = dict(value) if isinstance(value, dict) else list(value)
    pending = [top]
    while pending:
        node = pending.pop()  # a copy of ours: its items are replaced in place
        for key, item in node.items() if isinstance(node, dict) else enumerate(node):
            if isinstance(item, float):
                node[key] = _jsonb_float(item)
            elif isinstance(item, dict):
                node[key] = mapping = dict(item)
                pending.append(mapping)
            elif isinstance(item, list):
                node[key] = array = list(item)
                pending.append(array)
    return top


_FieldNames = tuple[tuple[str, ...], tuple[str, ...]]
_NUMBER_FIELDS: dict[type, _FieldNames] = {}


def _kinds(info: msgspec.inspect.Type) -> set[type[msgspec.inspect.Type]]:
    """The kinds of value a field's type takes (Annotated metadata and unions seen through)."""
    while isinstance(info, msgspec.inspect.Metadata):
        info = info.type
    if isinstance(info, msgspec.inspect.UnionType):
        return set().union(*(_kinds(t) for t in info.types))
    return {type(info)}


def _number_fields(cls: type[msgspec.Struct]) -> _FieldNames:
    """The float fields and the free JSON fields of a Struct type (looked up once)."""
    floats, free = [], []
    for field in msgspec.inspect.type_info(cls).fields:  # type: ignore[attr-defined]
        kinds = _kinds(field.type)
        if msgspec.inspect.AnyType in kinds:
            free.append(field.name)
        elif msgspec.inspect.FloatType in kinds:
            floats.append(field.name)
    _NUMBER_FIELDS[cls] = shape = (tuple(floats), tuple(free))
    return shape


def _may_hold_suspect_number(event: msgspec.Struct) -> bool:
    """Hot-path screen for Structs: only a big or zero float, or free JSON, can need a walk."""
    floats, free = _NUMBER_FIELDS.get(type(event)) or _number_fields(type(event))
    for name in free:
        if getattr(event, name) is not None:
            return True
    for name in floats:
        number = getattr(event, name)
        if number is not None and (number == 0.0 or not -1e16 < number < 1e16):
            return True
    return False


def canonical_json(value: Any) -> bytes:
    """Canonical bytes of an event (a Struct) or of a decoded body (plain values).

    Raises `UnicodeEncodeError` for strings that cannot be UTF-8 (lone surrogates).
    """
    encoded = _SORTED.encode(value)
    if isinstance(value, msgspec.Struct) and not _may_hold_suspect_number(value):
        return encoded
    if _SUSPECT_NUMBER.search(encoded) is None:
        return encoded
    plain = msgspec.to_builtins(value) if isinstance(value, msgspec.Struct) else value
    return _SORTED.encode(_jsonb_stable(plain))


def chain_hash(previous: bytes, position: int, event_id: str, body: bytes) -> bytes:
    """The hash linking a log row to the one before it."""
    material = b"".join((previous, position.to_bytes(8, "big"), event_id.encode(), b"\n", body))
    return hashlib.sha256(material).digest()
