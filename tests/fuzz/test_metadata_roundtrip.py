"""Arbitrary JSON in `metadata` (and any float in a float field) goes through the real
ingest, comes back from jsonb meaning the same, and the hash chain over it verifies."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from motionledger.domain.nesting import MAX_JSON_DEPTH
from motionledger.services.verify import verify_chain
from tests.fuzz.conftest import Ledger
from tests.fuzz.strategies import Nested, nested_json, same
from tests.support import events as ev

# No U+0000 and no lone surrogates here: those are refused (see test_bad_input).
TEXT = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)))
FLOATS = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(
    [1e16, -1e16, 1.5e300, -0.0, 0.0, 1e-7, 5e-324, 0.1 + 0.2, 1e15 + 0.5, 2.0**53 + 2]
)
INTS = (
    st.integers() | st.integers(-(10**300), 10**300) | st.sampled_from([2**63, -(2**63) - 1, 2**64])
)
JSON = st.recursive(
    st.none() | st.booleans() | INTS | FLOATS | TEXT,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(TEXT, inner, max_size=5),
    max_leaves=25,
)


@pytest.fixture
async def session(ledger: Ledger) -> str:
    events = [ev.session_started("S1"), ev.camera_upserted("S1", "cam1")]
    await ledger.wait_for((await ev.publish_events(ledger.js, ledger.root, events))[-1])
    return "S1"


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(
    values=st.lists(JSON, min_size=1, max_size=8),
    weights=st.lists(FLOATS, min_size=1, max_size=3),
    deep=st.lists(nested_json(st.integers(1, MAX_JSON_DEPTH - 1)), max_size=2),
)
async def test_any_json_metadata_round_trips_and_the_chain_verifies(
    ledger: Ledger, session: str, values: list[Any], weights: list[float], deep: list[Nested]
) -> None:
    values += [nested.value for nested in deep]  # as deep as the ledger takes
    events = [ev.director(session, metadata=value) for value in values]
    events += [ev.camera_state(session, "cam1", priorityWeight=w, metadata=w) for w in weights]
    events.append(ev.music(session, audioSnapshot=values[0], tempo=weights[0]))
    await ledger.wait_for((await ev.publish_events(ledger.js, ledger.root, events))[-1])

    rows = await ledger.db.fetch(
        "SELECT event_id, body FROM ledger.events WHERE event_id = ANY($1::text[])",
        [e["eventId"] for e in events],
    )
    stored = {row["event_id"]: msgspec.json.decode(row["body"]) for row in rows}
    assert len(stored) == len(events), "an event with valid JSON metadata was not logged"
    for event in events:
        body = stored[event["eventId"]]
        for key, value in event.items():
            if value is not None:  # null optionals are left out of the canonical body
                assert same(value, body[key]), (key, value, body[key])
    assert await ledger.db.fetchval("SELECT count(*) FROM ledger.dead_letters") == 0
    report = await verify_chain(ledger.db)
    assert report.ok, report.broken
