"""Canonical JSON of an event body, and the hash chain over the log.

The log keeps bodies as jsonb, which rewrites numbers (`1e16` comes back as
`10000000000000000`, `-0.0` as `0.0`) and reorders keys. The canonical form is chosen so
that decoding the stored jsonb and encoding again gives the very same bytes: keys sorted,
and the two kinds of float that jsonb would print differently already written the way it
prints them. The chain hash is taken over these bytes, so `verify` can recompute it from
the stored rows alone.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any, Final

import msgspec

GENESIS_HASH: Final = bytes(32)

_SORTED: Final = msgspec.json.Encoder(order="sorted")
# Cheap screen for the rare bodies that may hold a float jsonb would print differently:
# a positive exponent (`1e16`) or a negative zero. False positives only cost a walk.
_SUSPECT_NUMBER: Final = re.compile(rb"[0-9]e[0-9]|-0\.0")


def _jsonb_stable(value: Any) -> Any:
    """`value` with floats rewritten as jsonb will give them back."""
    if isinstance(value, float):
        if value == 0.0:
            return 0.0
        if b"e" in _SORTED.encode(value) and math.isfinite(value) and value.is_integer():
            # jsonb prints 1e16 as 10000000000000000, which decodes as an int.
            return int(value)
        return value
    if isinstance(value, dict):
        return {key: _jsonb_stable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonb_stable(item) for item in value]
    return value


def canonical_json(value: Any) -> bytes:
    """Canonical bytes of an event (a Struct) or of a decoded body (plain values).

    Raises `UnicodeEncodeError` for strings that cannot be UTF-8 (lone surrogates).
    """
    encoded = _SORTED.encode(value)
    if _SUSPECT_NUMBER.search(encoded) is None:
        return encoded
    return _SORTED.encode(_jsonb_stable(msgspec.to_builtins(value)))


def chain_hash(previous: bytes, position: int, event_id: str, body: bytes) -> bytes:
    """The hash linking a log row to the one before it."""
    digest = hashlib.sha256(previous)
    digest.update(position.to_bytes(8, "big"))
    digest.update(event_id.encode())
    digest.update(b"\n")
    digest.update(body)
    return digest.digest()
