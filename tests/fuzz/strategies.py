"""Hypothesis strategies derived from the event Structs themselves (msgspec.inspect), so
every event type and every field is covered without describing a field twice."""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from typing import Any

import msgspec
import msgspec.inspect as mi
from hypothesis import strategies as st

from motionledger.domain.events import EVENT_TYPES, Event
from motionledger.domain.nesting import MAX_JSON_DEPTH

ID_ALPHABET = string.ascii_letters + string.digits + "_-"
IDS = st.text(ID_ALPHABET, min_size=1, max_size=24)
# what jsonb can hold: no U+0000, no lone surrogates
TEXT = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)))
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**40), 10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
TAGS = {cls: str(cls.__struct_config__.tag) for cls in EVENT_TYPES}


def _for(info: mi.Type) -> st.SearchStrategy[Any]:
    if isinstance(info, mi.Metadata):
        return _for(info.type)
    if isinstance(info, mi.StrType):
        if info.pattern is not None:
            return IDS
        return TEXT.filter(lambda s: len(s) >= (info.min_length or 0))
    if isinstance(info, mi.IntType):
        return st.integers(info.ge if info.ge is not None else -(2**63), info.le or 2**63 - 1)
    if isinstance(info, mi.FloatType):
        return st.floats(allow_nan=False, allow_infinity=False)
    if isinstance(info, mi.BoolType):
        return st.booleans()
    if isinstance(info, mi.LiteralType):
        return st.sampled_from(info.values)
    if isinstance(info, mi.AnyType):
        return JSON
    if isinstance(info, mi.NoneType):
        return st.none()
    if isinstance(info, mi.UnionType):
        return st.one_of(*(_for(t) for t in info.types))
    raise NotImplementedError(f"no strategy for {info!r}")


@st.composite
def event(draw: st.DrawFn, cls: type[Event], fixed: dict[str, Any]) -> dict[str, Any]:
    """A valid body of `cls`: required fields always, optional ones sometimes; `fixed`
    (by wire name) pins the ids the judge's rules depend on."""
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    body: dict[str, Any] = {"type": TAGS[cls]}
    for field in info.fields:
        name = field.encode_name
        if name in fixed:
            body[name] = fixed[name]
        elif field.required or draw(st.booleans()):
            body[name] = draw(_for(field.type))
    return body


def required_fields(cls: type[Event]) -> list[str]:
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    return [f.encode_name for f in info.fields if f.required]


@st.composite
def mutated(draw: st.DrawFn, body: dict[str, Any], cls: type[Event]) -> bytes:
    """One change to a valid body; it may or may not stay valid."""
    body = dict(body)
    field = draw(st.sampled_from(sorted(body)))
    how = draw(
        st.sampled_from(
            ["drop", "retype", "extra", "bad-id", "nul", "surrogate", "enum", "tag", "array"]
        )
    )
    if how == "drop":
        del body[field]
    elif how == "retype":
        body[field] = draw(st.one_of(st.integers(), TEXT, st.booleans(), st.lists(st.none())))
    elif how == "extra":
        body[draw(TEXT.filter(lambda k: k not in body))] = draw(JSON)
    elif how == "bad-id":
        body[draw(st.sampled_from(["eventId", "sessionId"]))] = draw(
            st.sampled_from(["", "a b", "x" * 129, "a.b", "a*", "é", "id\n"])
        )
    elif how == "nul":
        body[field] = "before\x00after"
    elif how == "surrogate":
        body[field] = "\udc00 lone"
    elif how == "enum":
        body[field] = "not_a_closed_value"
    elif how == "tag":
        body["type"] = draw(st.sampled_from(["", "session", "director.evnt", "DIRECTOR.EVENT"]))
    else:
        return json.dumps([body]).encode()
    # stdlib json: it writes lone surrogates as escapes, which msgspec would refuse to encode
    return json.dumps(body).encode()


def encode(body: dict[str, Any]) -> bytes:
    return msgspec.json.encode(body)


def _same_leaf(sent: Any, stored: Any) -> bool:
    if isinstance(sent, bool) or sent is None or isinstance(sent, str):
        return type(stored) is type(sent) and stored == sent
    if isinstance(sent, float):
        return (
            isinstance(stored, int | float)
            and not isinstance(stored, bool)
            and float(stored) == sent
        )
    assert isinstance(sent, int), sent
    return type(stored) is int and stored == sent


def same(sent: Any, stored: Any) -> bool:
    """Equal as JSON values: a float may come back as the int jsonb printed for it.
    Walked with a stack of its own: the values may nest as deep as the ledger takes."""
    pending = [(sent, stored)]
    while pending:
        a, b = pending.pop()
        if isinstance(a, list):
            if not isinstance(b, list) or len(a) != len(b):
                return False
            pending.extend(zip(a, b, strict=True))
        elif isinstance(a, dict):
            if not isinstance(b, dict) or a.keys() != b.keys():
                return False
            pending.extend((value, b[key]) for key, value in a.items())
        elif not _same_leaf(a, b):
            return False
    return True


# -- JSON nested deep on purpose: st.recursive almost never goes past a dozen levels ------
# A chain of arrays and objects (a drawn pattern of kinds, repeated), with a few siblings
# along the way and one leaf at the bottom. Depth counts the containers: as `metadata` of
# an event (the event object is level 1), it is accepted up to MAX_JSON_DEPTH - 1.
DEPTHS = st.integers(1, 1_200) | st.sampled_from(
    [MAX_JSON_DEPTH - 2, MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH, 999, 1_000, 1_001, 20_000]
)
JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(-(10**40), 10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([-0.0, 1e16, 1.5e300, 5e-324])
    | TEXT
)


@dataclass(frozen=True)
class Nested:
    raw: bytes  # the JSON text, written directly: msgspec cannot encode past ~1,000 levels
    depth: int
    value: Any  # the same as a Python value, when it is shallow enough to be accepted

    @property
    def accepted_as_metadata(self) -> bool:
        return self.depth < MAX_JSON_DEPTH


@st.composite
def nested_json(draw: st.DrawFn, depths: st.SearchStrategy[int] = DEPTHS) -> Nested:
    depth = draw(depths)
    kinds = draw(st.lists(st.sampled_from(["list", "dict"]), min_size=1, max_size=4))
    siblings = draw(st.dictionaries(st.integers(0, depth - 1), JSON_LEAVES, max_size=3))
    keys = draw(st.lists(TEXT, min_size=1, max_size=3))
    leaf = draw(JSON_LEAVES)
    opens: list[bytes] = []
    closes: list[bytes] = []
    for level in range(depth):
        kind, key = kinds[level % len(kinds)], keys[level % len(keys)]
        extra = b""
        if level in siblings:
            extra = (
                encode(siblings[level])
                if kind == "list"
                else encode({key + "~": siblings[level]})[1:-1]
            )
            extra += b","
        if kind == "list":
            opens.append(b"[" + extra)
            closes.append(b"]")
        else:
            opens.append(b"{" + extra + encode(key) + b":")
            closes.append(b"}")
    raw = b"".join(opens) + encode(leaf) + b"".join(reversed(closes))
    value: Any = None
    if depth < MAX_JSON_DEPTH:
        value = leaf
        for level in reversed(range(depth)):  # built from the bottom: no recursion
            kind, key = kinds[level % len(kinds)], keys[level % len(keys)]
            if kind == "list":
                value = [siblings[level], value] if level in siblings else [value]
            else:
                container = {key + "~": siblings[level]} if level in siblings else {}
                container[key] = value
                value = container
    return Nested(raw, depth, value)
