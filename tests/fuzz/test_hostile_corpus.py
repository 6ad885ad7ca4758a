"""Hostile bodies, written out case by case, through both doors of a running ledger.

Each case is published as raw bytes on every lane it applies to, each followed by a good
event of that lane that must land; the hostile message itself must be logged, or kept
whole as a dead letter (subject and raw bytes exact) with the reason the table gives. The
same bodies posted to the HTTP write routes get what the judge would say — 400 with that
reason as the code, 413 for size — never a 5xx, and nothing is published for them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import asyncpg
import httpx
import msgspec
import pytest
from nats.aio.client import Client

from motionledger.domain.canonical import canonical_json
from motionledger.domain.events import LANES
from motionledger.domain.nesting import MAX_JSON_DEPTH
from motionledger.services.verify import verify_chain
from motionledger.settings import Settings
from tests.fuzz.conftest import Ledger
from tests.fuzz.strategies import same
from tests.support import events as ev
from tests.support.ledger import running_ledger

LOGGED: Final = "logged"
SAME: Final = "same"  # the HTTP door answers as the judge does

Build = Callable[[dict[str, Any]], bytes | None]  # a good body -> hostile bytes (None: n/a)
Subject = Callable[[str, str, str], str]  # (root, lane, sessionId) -> subject


@dataclass(frozen=True)
class Case:
    name: str
    build: Build
    expect: str  # LOGGED, or the dead letter's reason
    http: str | None = SAME  # the HTTP door's answer where it differs; None: no HTTP twin
    stored: dict[str, Any] | None = None  # fields a logged body must then hold
    subject: Subject | None = None  # the subject it travels on, if not its own


def encode(value: Any) -> bytes:
    return msgspec.json.encode(value)


def field(name: str, raw: bytes) -> Build:
    """The good body with `name` set to `raw`, written exactly as given."""

    def build(body: dict[str, Any]) -> bytes:
        rest = encode({k: v for k, v in body.items() if k != name})
        return rest[:-1] + b"," + encode(name) + b":" + raw + b"}"

    return build


def first_of(names: tuple[str, ...], raw: bytes) -> Build:
    """`field` on the first of `names` the body's event has (n/a if none)."""

    def build(body: dict[str, Any]) -> bytes | None:
        name = next((n for n in names if n in body), None)
        return None if name is None else field(name, raw)(body)

    return build


def float_field(raw: bytes) -> Build:
    return first_of(("priorityWeight", "score", "tempo"), raw)


def whole(transform: Callable[[bytes], bytes]) -> Build:
    return lambda body: transform(encode(body))


def nest(depth: int, kind: str, leaf: bytes) -> bytes:
    opening, closing = (b"[", b"]") if kind == "arrays" else (b'{"":', b"}")
    return opening * depth + leaf + closing * depth


def nested_expectation(depth: int, leaf: str) -> str:
    if depth >= MAX_JSON_DEPTH:  # metadata's levels come below the event object's own
        return "invalid_json"
    return "unstorable" if leaf == "NUL" else LOGGED


LEAVES = {"-0.0": b"-0.0", "1e16": b"1e16", "NUL": b'"\\u0000"', "plain": b'"plain"'}
DEPTHS = (100, MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH, 500, 900, 1_200, 50_000)  # in metadata
BIG_INT = b"9" * 400
# -- the corpus ---------------------------------------------------------------------------
CORPUS: Final[list[Case]] = [
    # nesting: 7 depths x arrays/objects x 4 leaves, in metadata (every lane) and audioSnapshot
    *(
        Case(
            f"{where} nested {depth} deep in {kind} of {leaf}",
            first_of((where,), nest(depth, kind, raw)),
            nested_expectation(depth, leaf),
        )
        for where in ("metadata", "audioSnapshot")
        for depth in DEPTHS
        for kind in ("arrays", "objects")
        for leaf, raw in LEAVES.items()
    ),
    # numbers in metadata
    Case("metadata 1e400", field("metadata", b"1e400"), "invalid_event"),
    Case("metadata -1e400", field("metadata", b"-1e400"), "invalid_event"),
    Case("metadata NaN", field("metadata", b"NaN"), "invalid_json"),
    Case("metadata Infinity", field("metadata", b"Infinity"), "invalid_json"),
    Case("metadata -Infinity", field("metadata", b"-Infinity"), "invalid_json"),
    Case(
        "metadata 400-digit integer",
        field("metadata", BIG_INT),
        LOGGED,
        stored={"metadata": int(BIG_INT)},
    ),
    Case(
        "metadata -400-digit integer in an array",
        field("metadata", b"[-" + BIG_INT + b"]"),
        LOGGED,
        stored={"metadata": [-int(BIG_INT)]},
    ),
    Case("metadata 5000-digit integer", field("metadata", b"7" * 5000), "invalid_event"),
    Case("metadata -0", field("metadata", b"-0"), LOGGED, stored={"metadata": 0}),
    Case(
        "metadata -0.0", field("metadata", b'{"z":-0.0}'), LOGGED, stored={"metadata": {"z": 0.0}}
    ),
    Case("metadata 1e16", field("metadata", b"[1e16]"), LOGGED, stored={"metadata": [1e16]}),
    Case("metadata 1.5e300", field("metadata", b"1.5e300"), LOGGED, stored={"metadata": 1.5e300}),
    # numbers in float fields (the lanes that have one) and in timestampMs
    Case("float 1e400", float_field(b"1e400"), "invalid_event"),
    Case("float -1e400", float_field(b"-1e400"), "invalid_event"),
    Case("float NaN", float_field(b"NaN"), "invalid_json"),
    Case("float Infinity", float_field(b"Infinity"), "invalid_json"),
    Case("float -Infinity", float_field(b"-Infinity"), "invalid_json"),
    Case("float 400-digit integer", float_field(BIG_INT), "invalid_event"),
    Case("float -0", float_field(b"-0"), LOGGED),
    Case("float -0.0", float_field(b"-0.0"), LOGGED),
    Case("float 1e16", float_field(b"1e16"), LOGGED),
    Case("float 1.7976931348623157e308", float_field(b"1.7976931348623157e308"), LOGGED),
    Case("timestampMs 400-digit integer", first_of(("timestampMs",), BIG_INT), "invalid_event"),
    Case("timestampMs -0", first_of(("timestampMs",), b"-0"), LOGGED, stored={"timestampMs": 0}),
    Case("timestampMs -1", first_of(("timestampMs",), b"-1"), "invalid_event"),
    # duplicate keys: the last one counts, as in jsonb
    Case(
        "metadata three times",  # the good body has one already
        whole(lambda b: b[:-1] + b',"metadata":{"a":1},"metadata":{"a":2}}'),
        LOGGED,
        stored={"metadata": {"a": 2}},
    ),
    Case(
        "a key twice inside metadata",
        field("metadata", b'{"a":1,"b":true,"a":2}'),
        LOGGED,
        stored={"metadata": {"a": 2, "b": True}},
    ),
    Case(
        "type twice, the second another event's",
        whole(lambda b: b[:-1] + b',"type":' + encode(another_type(b)) + b"}"),
        "invalid_event",
    ),
    # text: BOM, NUL, surrogates, bytes that are not UTF-8
    Case("a UTF-8 BOM before the object", whole(lambda b: b"\xef\xbb\xbf" + b), "invalid_json"),
    Case("NUL in a metadata key", field("metadata", b'{"k\\u0000":1}'), "unstorable"),
    Case("NUL in a metadata string", field("metadata", b'["a\\u0000b"]'), "unstorable"),
    Case("NUL in a top-level key", whole(lambda b: b[:-1] + b',"k\\u0000":1}'), "invalid_event"),
    Case("an escaped backslash before u0000", field("metadata", b'"\\\\u0000"'), LOGGED),
    Case("a raw NUL byte in a string", field("metadata", b'"a\x00b"'), "invalid_json"),
    Case("a lone high surrogate", field("metadata", b'"\\ud800"'), "invalid_json"),
    Case("a lone low surrogate", field("metadata", b'"x\\udc00y"'), "invalid_json"),
    Case("reversed surrogates", field("metadata", b'"\\udc00\\ud800"'), "invalid_json"),
    Case("a lone surrogate in a key", field("metadata", b'{"\\ud800":1}'), "invalid_json"),
    Case("invalid UTF-8", field("metadata", b'"\xff\xfe"'), "invalid_json"),
    Case("overlong UTF-8", field("metadata", b'"\xc0\xaf"'), "invalid_json"),
    Case("UTF-8 of a surrogate (CESU)", field("metadata", b'"\xed\xa0\x80"'), "invalid_json"),
    # around the object
    Case("trailing garbage", whole(lambda b: b + b" x"), "invalid_json"),
    Case("a second object after it", whole(lambda b: b + b"{}"), "invalid_json"),
    Case("a trailing comma", whole(lambda b: b + b","), "invalid_json"),
    Case("trailing whitespace", whole(lambda b: b + b" \n\t"), LOGGED),
    Case("cut short", whole(lambda b: b[:-1]), "invalid_json"),
    Case("inside an array", whole(lambda b: b"[" + b + b"]"), "invalid_event"),
    Case("a string", whole(lambda b: b'"director.event"'), "invalid_event"),
    Case("a number", whole(lambda b: b"17"), "invalid_event"),
    Case("null", whole(lambda b: b"null"), "invalid_event"),
    Case("true", whole(lambda b: b"true"), "invalid_event"),
    Case("empty", whole(lambda b: b""), "invalid_json"),
    Case("whitespace only", whole(lambda b: b"  \n"), "invalid_json"),
    # subjects that do not belong to the body (no HTTP twin: the server picks the subject)
    *(
        Case(f"on a subject with {name}", whole(lambda b: b), "subject_mismatch", None, None, how)
        for name, how in [
            ("another session", lambda root, lane, s: f"{root}.{lane}.someone-else"),
            ("another lane", lambda root, lane, s: f"{root}.{other_lane(lane)}.{s}"),
            ("an unknown lane", lambda root, lane, s: f"{root}.bogus.{s}"),
            ("too many tokens", lambda root, lane, s: f"{root}.{lane}.{s}.extra"),
            ("too few tokens", lambda root, lane, s: f"{root}.{lane}"),
        ]
    ),
]


def another_type(body: bytes) -> str:
    return "director.event" if b'"session.started"' in body else "session.started"


def other_lane(lane: str) -> str:
    return LANES[(LANES.index(lane) + 1) % len(LANES)]


# -- good events, one kind per lane -------------------------------------------------------
SESSION = "hostile-shoot"
ROUTES = {
    "session": "session/start",
    "camera": "camera/upsert",
    "director": "event",
    "still": "still-candidate",
    "music": "music-moment",
    "asset": "asset",
}


def good(lane: str) -> dict[str, Any]:
    """A fresh valid event of `lane`, with a float field and metadata where it has them."""
    meta = {"metadata": {"k": "v"}}
    fresh = uuid.uuid4().hex[:12]
    if lane == "session":
        return ev.session_started(f"s{fresh}", **meta)
    if lane == "camera":
        return ev.camera_upserted(SESSION, "c1", **meta)
    if lane == "director":
        return ev.director(SESSION, score=0.5, **meta)
    if lane == "still":
        return ev.still_created(SESSION, f"st{fresh}", camera="c1", **meta)
    if lane == "music":
        return ev.music(SESSION, tempo=120.0, audioSnapshot={"rms": 0.1}, **meta)
    return ev.asset(SESSION, f"as{fresh}", **meta)


@dataclass
class Sent:
    case: Case
    lane: str
    subject: str
    data: bytes
    seq: int
    follower_seq: int


async def setup_session(ledger: Ledger) -> None:
    events = [ev.session_started(SESSION), ev.camera_upserted(SESSION, "c1")]
    await ledger.wait_for((await ev.publish_events(ledger.js, ledger.root, events))[-1])


async def test_every_hostile_body_is_logged_or_dead_lettered_whole_on_every_lane(
    ledger: Ledger,
) -> None:
    await setup_session(ledger)
    sent: list[Sent] = []
    for lane in LANES:
        for case in CORPUS:
            base = good(lane)
            data = case.build(base)
            if data is None:
                continue
            how = case.subject or (lambda root, lane, s: f"{root}.{lane}.{s}")
            subject = how(ledger.root, lane, base["sessionId"])
            seq = (await ledger.js.publish(subject, data)).seq
            [follower] = await ev.publish_events(ledger.js, ledger.root, [good(lane)])
            sent.append(Sent(case, lane, subject, data, seq, follower))
    await ledger.wait_for(sent[-1].follower_seq, timeout=120)

    db = ledger.db
    logged = {r[0]: r[1] for r in await db.fetch("SELECT stream_seq, body FROM ledger.events")}
    dead = {
        r["stream_seq"]: r
        for r in await db.fetch("SELECT stream_seq, subject, raw, reason FROM ledger.dead_letters")
    }
    wrong: list[str] = []
    for item in sent:
        where = f"{item.lane} / {item.case.name}"
        if item.follower_seq not in logged:
            wrong.append(f"{where}: the good event after it was not logged")
        letter = dead.get(item.seq)
        if item.case.expect == LOGGED:
            if item.seq not in logged:
                wrong.append(f"{where}: not logged ({letter and letter['reason']})")
                continue
            body = msgspec.json.decode(logged[item.seq])
            for key, value in (item.case.stored or {}).items():
                if not same(value, body[key]):
                    wrong.append(f"{where}: logged {key} = {body[key]!r:.80}")
        elif letter is None:
            wrong.append(f"{where}: neither dead-lettered nor logged ({item.seq in logged})")
        else:
            if letter["reason"] != item.case.expect:
                wrong.append(f"{where}: reason {letter['reason']}, not {item.case.expect}")
            if bytes(letter["raw"]) != item.data or letter["subject"] != item.subject:
                wrong.append(f"{where}: the dead letter is not the message as sent")
    assert not wrong, "\n".join(wrong)
    assert len(sent) > 6 * 80, "the corpus lost cases"
    assert (await verify_chain(db)).ok


def http_cases() -> list[tuple[str, Case]]:
    return [(lane, case) for lane in LANES for case in CORPUS if case.http is not None]


async def post(http: httpx.AsyncClient, route: str, body: bytes) -> tuple[int, str | None]:
    response = await http.post(
        f"/production/{route}", content=body, headers={"content-type": "application/json"}
    )
    answer = response.json()
    assert answer["ok"] is (response.status_code < 400), answer
    return response.status_code, None if answer["ok"] else answer["error"]["code"]


def expected_answer(case: Case) -> tuple[set[int], str | None]:
    verdict = case.expect if case.http == SAME else case.http
    if verdict == LOGGED:
        return {200, 202}, None
    return {413 if verdict == "too_large" else 400}, verdict


async def test_the_http_door_answers_what_the_judge_would_and_publishes_nothing_refused(
    ledger: Ledger,
) -> None:
    await setup_session(ledger)
    stream = ledger.settings.stream
    before = (await ledger.js.stream_info(stream)).state.last_seq
    wrong: list[str] = []
    accepted = 0
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{ledger.settings.http_port}", timeout=30
    ) as http:
        for lane, case in http_cases():
            data = case.build(without_type(good(lane)))
            if data is None:
                continue
            statuses, code = expected_answer(case)
            answers = [(ROUTES[lane], await post(http, ROUTES[lane], data))]
            # another eventId (not a retry), and no sessionId: the batch names it once
            item = case.build(without_session(without_type(good(lane))))
            if lane == "director" and item is not None and item[:1] == b"{":
                # the same body as the one item of a batch: two levels deeper, same verdict
                batch = b'{"sessionId":"' + SESSION.encode() + b'","events":[' + item + b"]}"
                answers.append(("event/batch", await post(http, "event/batch", batch)))
            for route, (status, got) in answers:
                accepted += status < 300
                if status not in statuses or got != code:
                    wrong.append(f"{route} / {case.name}: {status} {got}, not {statuses} {code}")
    assert not wrong, "\n".join(wrong)
    published = (await ledger.js.stream_info(stream)).state.last_seq - before
    assert published == accepted, "a refused body was published (or an accepted one not)"
    assert await ledger.db.fetchval("SELECT count(*) FROM ledger.dead_letters") == 0


# -- sizes: a small limit, bodies at it and one byte over --------------------------------
LIMIT = 4096


def padded(event: dict[str, Any], size: int) -> dict[str, Any]:
    """`event` with a string in metadata making its canonical body exactly `size` bytes."""
    bare = {**event, "metadata": ""}
    return {**bare, "metadata": "x" * (size - len(canonical_json(bare)))}


@pytest.mark.parametrize("lane", LANES)
async def test_bodies_at_and_one_byte_over_the_size_limit(
    settings: Settings, db: asyncpg.Connection, nc: Client, lane: str
) -> None:
    limited = settings.replace(max_event_bytes=LIMIT)
    js, root = nc.jetstream(), limited.subject_root
    async with (
        running_ledger(limited) as resources,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{limited.http_port}", timeout=30) as http,
    ):
        ledger = Ledger(limited, db, js, resources)
        await setup_session(ledger)
        at, over = padded(good(lane), LIMIT), padded(good(lane), LIMIT + 1)
        sent = [canonical_json(at), canonical_json(over)]
        assert [len(data) for data in sent] == [LIMIT, LIMIT + 1]
        seqs = [
            (await js.publish(ev.subject_of(root, event), data)).seq
            for event, data in zip((at, over), sent, strict=True)
        ]
        seqs += await ev.publish_events(js, root, [good(lane)])
        await ledger.wait_for(seqs[-1])

        # over HTTP the limit is on the event as it would be published, `type` and all
        route = ROUTES[lane]
        bodies = [padded(good(lane), LIMIT), padded(good(lane), LIMIT + 1)]
        # short as sent, long as published: jsonb writes 1e300 out as 301 digits
        expanding = {**good(lane), "metadata": [1e300] * (LIMIT // 200)}
        assert len(encode(expanding)) < LIMIT < len(canonical_json(expanding))
        answers = [await post(http, route, encode(without_type(b))) for b in bodies]
        answers.append(await post(http, route, encode(without_type(expanding))))
        answers.append(await post(http, route, b" " * (limited.max_body_bytes + 1)))

    assert answers == [(200, None), *[(413, "too_large")] * 3]
    logged = {r[0] for r in await db.fetch("SELECT stream_seq FROM ledger.events")}
    dead = dict(await db.fetch("SELECT stream_seq, reason FROM ledger.dead_letters"))
    assert (seqs[0] in logged, dead.get(seqs[1]), seqs[2] in logged) == (True, "too_large", True)
    assert len(dead) == 1  # nothing the HTTP door refused was published


def without_type(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k != "type"}


def without_session(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k != "sessionId"}
