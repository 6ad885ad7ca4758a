"""Canonical bodies: stable under a jsonb round trip, and the chain hash over them."""

from __future__ import annotations

import hashlib

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from motionledger.domain import canonical
from motionledger.domain.canonical import GENESIS_HASH, canonical_json, chain_hash
from motionledger.domain.nesting import MAX_JSON_DEPTH


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"b": 1, "a": 2}, b'{"a":2,"b":1}'),
        ({"x": 1e16}, b'{"x":10000000000000000}'),  # jsonb prints it as an integer
        ({"x": [-0.0, 0.0]}, b'{"x":[0.0,0.0]}'),  # jsonb has no negative zero
        ({"x": 1e-7}, b'{"x":1e-7}'),  # comes back as 0.0000001 = the same float
        ({"x": -1.5e300}, b'{"x":-15' + b"0" * 299 + b"}"),
        ({"id": "3e4f-0190-1e16"}, b'{"id":"3e4f-0190-1e16"}'),  # strings are untouched
    ],
)
def test_floats_are_written_as_jsonb_prints_them(value: object, expected: bytes) -> None:
    assert canonical_json(value) == expected


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_canonical_is_a_fixed_point(value: object) -> None:
    once = canonical_json(value)
    assert canonical_json(msgspec.json.decode(once)) == once


def test_chain_hash_binds_position_id_and_body() -> None:
    body = b'{"a":1}'
    first = chain_hash(GENESIS_HASH, 1, "e1", body)
    assert first == hashlib.sha256(GENESIS_HASH + (1).to_bytes(8, "big") + b"e1\n" + body).digest()
    assert (
        len(
            {
                first,
                chain_hash(GENESIS_HASH, 2, "e1", body),
                chain_hash(GENESIS_HASH, 1, "e2", body),
                chain_hash(GENESIS_HASH, 1, "e1", b'{"a":2}'),
                chain_hash(first, 1, "e1", body),
            }
        )
        == 5
    )


def test_the_float_walk_needs_no_recursion() -> None:
    """However deep a body nests, rewriting its floats does not meet the recursion limit
    (the encoder's own guard is what bounds the rest, and decoding bounds the depth)."""
    deep: object = [-0.0, 1e16]
    for _ in range(20_000):
        deep = [deep, {"k": -0.0}]
    stable = canonical._jsonb_stable(deep)
    for _ in range(20_000):
        assert isinstance(stable, list)
        assert stable[1] == {"k": 0.0}
        assert str(stable[1]["k"]) == "0.0"
        stable = stable[0]
    assert stable == [0.0, 10_000_000_000_000_000]
    assert type(stable[1]) is int


def test_canonical_at_the_deepest_accepted_nesting() -> None:
    value: object = [1e16, -0.0]
    for _ in range(MAX_JSON_DEPTH - 2):
        value = {"a": value}
    encoded = canonical_json({"metadata": value})
    assert encoded.endswith(b"[10000000000000000,0.0]" + b"}" * (MAX_JSON_DEPTH - 1))
    assert canonical_json(msgspec.json.decode(encoded)) == encoded


def test_every_free_json_and_float_field_of_every_event_is_screened() -> None:
    """The screen that skips the float walk must see through annotations on the fields
    (a documented `Json` is `Annotated[Any, ...]`): were metadata missed, `-0.0` in it would
    be hashed as written and the stored jsonb (`0`) would no longer verify."""
    import msgspec

    from motionledger.domain.canonical import _number_fields
    from motionledger.domain.events import EVENT_TYPES, DirectorEvent

    for cls in EVENT_TYPES:
        floats, free = _number_fields(cls)
        for field in msgspec.structs.fields(cls):
            if field.name in ("metadata", "audio_snapshot"):
                assert field.name in free, (cls.__name__, field.name)
        assert set(floats) == {
            f.name for f in msgspec.structs.fields(cls) if "float" in repr(f.type)
        }, cls.__name__
    cut = DirectorEvent(
        event_id="e1", session_id="S1", timestamp_ms=1, event_type="cut", metadata=[-0.0, 1e16]
    )
    assert b"[0.0,10000000000000000]" in canonical_json(cut)
