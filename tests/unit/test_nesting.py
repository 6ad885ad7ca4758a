"""The nesting bound, read from raw bytes: exact on JSON, never fooled by strings, linear."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings

from motionledger.domain.decoding import Decoded, decode_event
from motionledger.domain.nesting import MAX_JSON_DEPTH, TOO_DEEP, nests_deeper_than
from tests.fuzz.strategies import JSON, nested_json


def depth_of(value: Any) -> int:
    """Containers inside one another, counted on the decoded value (the reference)."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        node, level = pending.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, level)
            children = node.values() if isinstance(node, dict) else node
            pending.extend((child, level + 1) for child in children)
    return deepest


def assert_exact(raw: bytes, depth: int) -> None:
    assert not nests_deeper_than(raw, depth)
    if depth > 0:
        assert nests_deeper_than(raw, depth - 1)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(JSON)
def test_exact_on_generated_json(value: Any) -> None:
    assert_exact(msgspec.json.encode(value), depth_of(value))


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(nested_json())
def test_exact_on_deep_json(nested: Any) -> None:
    assert_exact(nested.raw, nested.depth)


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ('["[[[[", {"{{": "]]"}]', 2),
        ('["\\"[[[["]', 1),  # an escaped quote does not end the string
        ('["\\\\", [[1]]]', 3),  # an escaped backslash does not escape the quote after it
        ('{"a": "x\\u005b[[[[["}', 1),
        ('"' + "[" * 600 + '"', 0),
        ("[" * 300 + "]" * 300, 300),
        ("[" * 300 + "]" * 300 + "[" * 300 + "]" * 300, 300),
        ("[{" * 150 + '"a":1' + "}]" * 150, 300),
    ],
)
def test_strings_and_escapes_do_not_count(text: str, depth: int) -> None:
    assert_exact(text.encode(), depth)


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 100_000,  # never closed
        b"[" * 300 + b'"' + b"[" * 100_000,  # an unclosed string swallows the rest
        b"[" * 300 + b'\\"' * 100_000,  # quotes outside strings: a rescan would be quadratic
        b"[" * 300 + b"\\",
        b"\xff\xfe[" * 1_000,
    ],
)
def test_text_that_is_not_json_is_read_without_error(raw: bytes) -> None:
    nests_deeper_than(raw)  # some answer, at once; the decoder rejects such text anyway


def test_the_limit_counts_the_event_object_itself() -> None:
    event = {"type": "director.event", "eventId": "e", "sessionId": "S", "timestampMs": 1}
    head = json.dumps({**event, "eventType": "cut"}).encode()[:-1] + b', "metadata": '
    deepest = MAX_JSON_DEPTH - 1  # metadata's levels below the event's own
    ok = decode_event(head + b"[" * deepest + b"1" + b"]" * deepest + b"}", 1 << 20)
    assert isinstance(ok, Decoded), ok
    over = decode_event(head + b"[" * (deepest + 1) + b"1" + b"]" * (deepest + 1) + b"}", 1 << 20)
    assert over == TOO_DEEP


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 999, 1_000, 1_200, 50_000])
@pytest.mark.parametrize("leaf", [b"-0.0", b"1e16", b'"\\u0000"', b"null"])
def test_too_deep_is_one_verdict_whatever_the_leaf(depth: int, leaf: bytes) -> None:
    for opening, closing in ((b"[", b"]"), (b'{"":', b"}")):
        raw = b'{"type":"director.event","metadata":' + opening * depth + leaf
        raw += closing * depth + b"}"
        assert decode_event(raw, len(raw)) == TOO_DEEP
