"""The HTTP edge over fake services: what each kind of answer and error looks like on the
wire, without a database or a broker (the integration suite runs the real ones)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from litestar.testing import TestClient

from motionledger.domain.events import CameraUpserted, Event
from motionledger.errors import Conflict, DatabaseUnavailable, NotCaughtUp, NotFound, Refused
from motionledger.http.app import create_app
from motionledger.services.health import Health
from motionledger.services.waiters import Outcome
from motionledger.services.writes import Submission


class FakeReads:
    def __init__(self) -> None:
        self.asked: list[tuple[Any, ...]] = []
        self.waited: list[int | None] = []

    async def at_least(self, min_position: int | None, attempt: Any) -> tuple[bytes, int]:
        self.waited.append(min_position)
        body, position = await attempt()
        if min_position is not None and position < min_position:
            raise NotCaughtUp(min_position, position)
        return body, position

    async def session(self, session_id: str) -> tuple[bytes, int]:
        self.asked.append(("session", session_id))
        if session_id == "missing":
            raise NotFound(f"session {session_id} is unknown")
        if session_id == "down":
            raise DatabaseUnavailable("connection refused")
        return b'{"_id":"%s"}' % session_id.encode(), 5

    async def active(self, session_type: str | None) -> tuple[bytes, int]:
        return b"null", 5

    async def timeline(
        self, session_id: str, start: int, end: int, limit: int
    ) -> tuple[bytes, int]:
        self.asked.append(("timeline", session_id, start, end, limit))
        return b"{}", 5

    async def cameras(self, session_id: str) -> tuple[bytes, int]:
        return b"[]", 5

    async def events(self, *args: Any) -> tuple[bytes, int]:
        self.asked.append(("events", *args))
        return b'{"page":[],"isDone":true,"continueCursor":"x"}', 5

    async def stills(self, *args: Any) -> tuple[bytes, int]:
        return b"[]", 5

    async def music(self, session_id: str, limit: int) -> tuple[bytes, int]:
        return b"[]", 5

    async def assets(self, session_id: str, asset_type: str | None) -> tuple[bytes, int]:
        return b"[]", 5

    async def camera_row(self, session_id: str, camera_id: str) -> bytes | None:
        return b'{"_id":"%s:%s"}' % (session_id.encode(), camera_id.encode())

    async def still_row(self, still_id: str) -> bytes | None:
        return None


class FakeDerived:
    async def at_least(
        self, min_position: int | None, attempt: Any, *, as_of: bool = False
    ) -> tuple[bytes, int]:
        return await attempt()

    async def cut_log(self, *args: Any) -> tuple[bytes, int]:
        return b'{"segments":[],"onAirMs":{}}', 3

    async def hero_windows(self, *args: Any) -> tuple[bytes, int]:
        return b"[]", 3

    async def alignment(self, *args: Any) -> tuple[bytes, int]:
        return b'{"items":[],"medianAbsOffsetMs":null}', 3

    async def timeline_as_of(self, *args: Any) -> tuple[bytes, int]:
        return b"{}", 3


class FakeWrites:
    def __init__(self, outcome: Outcome | Exception | None) -> None:
        self.outcome = outcome
        self.submitted: list[Event] = []

    async def submit(self, submissions: Sequence[Submission]) -> list[Outcome | None]:
        if isinstance(self.outcome, Exception):
            raise self.outcome
        self.submitted.extend(s.event for s in submissions)
        self.filled = [s.filled for s in submissions]
        return [self.outcome for _ in submissions]

    async def still_session(self, still_id: str) -> str | None:
        return None


def client(
    reads: FakeReads | None, writes: FakeWrites | None, token: str | None = None
) -> TestClient[Any]:
    app = create_app(
        health=Health(),
        reads=lambda: reads,
        derived=lambda: None if reads is None else FakeDerived(),
        writes=lambda: writes,
        token=token,
        max_body_bytes=1024,
    )
    return TestClient(app)  # type: ignore[arg-type]


@pytest.fixture
def reads() -> FakeReads:
    return FakeReads()


@pytest.fixture
def http(reads: FakeReads) -> Iterator[TestClient[Any]]:
    with client(reads, FakeWrites(Outcome(position=7))) as c:
        yield c


CAMERA = {"sessionId": "S1", "cameraId": "c1", "sourceType": "iphone", "role": "hero",
          "priorityWeight": 1.0, "isActive": True}  # fmt: skip


def test_a_read_passes_the_services_json_through_the_envelope(
    http: TestClient[Any], reads: FakeReads
) -> None:
    answer = http.get("/production/session", params={"sessionId": "S1"})
    assert (answer.status_code, answer.json()) == (200, {"ok": True, "result": {"_id": "S1"}})
    assert answer.headers["Ledger-Position"] == "5"
    assert reads.asked == [("session", "S1")]


@pytest.mark.parametrize(
    "path",
    ["session", "session/timeline", "cameras", "events", "stills", "music-moments", "assets",
     "session/active"],
)  # fmt: skip
def test_every_read_takes_min_position_and_says_its_position(
    http: TestClient[Any], reads: FakeReads, path: str
) -> None:
    answer = http.get(f"/production/{path}", params={"sessionId": "S1", "minPosition": "5"})
    assert (answer.status_code, answer.headers["Ledger-Position"]) == (200, "5")
    assert reads.waited == [5]
    behind = http.get(f"/production/{path}", params={"sessionId": "S1", "minPosition": "6"})
    assert (behind.status_code, behind.json()["error"]["code"]) == (503, "not_caught_up")
    assert behind.headers["Retry-After"]
    for malformed in ("-1", "x", "1.5", "", str(2**63)):
        bad = http.get(f"/production/{path}", params={"sessionId": "S1", "minPosition": malformed})
        assert (bad.status_code, bad.json()["error"]["code"]) == (400, "invalid_request"), malformed


def test_parameters_are_typed_and_defaulted_before_the_service_sees_them(
    http: TestClient[Any], reads: FakeReads
) -> None:
    assert http.get("/production/session/timeline", params={"sessionId": "S1"}).status_code == 200
    assert reads.asked[-1] == ("timeline", "S1", 0, 253_402_300_799_999, 100)
    bad = http.get("/production/session/timeline", params={"sessionId": "S1", "limit": "0"})
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "invalid_request"


def test_service_errors_become_their_statuses(http: TestClient[Any]) -> None:
    missing = http.get("/production/session", params={"sessionId": "missing"})
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")
    down = http.get("/production/session", params={"sessionId": "down"})
    assert (down.status_code, down.json()["error"]["code"]) == (503, "unavailable")
    assert down.headers["retry-after"]


def test_while_the_services_are_not_up_every_route_answers_503() -> None:
    with client(None, None) as http:
        answer = http.get("/production/session", params={"sessionId": "S1"})
        assert (answer.status_code, answer.json()["error"]["code"]) == (503, "unavailable")
        assert http.post("/production/camera/upsert", json=CAMERA).status_code == 503
        assert http.get("/healthz").status_code == 200


def test_a_write_answers_the_row_its_event_produced(reads: FakeReads) -> None:
    writes = FakeWrites(Outcome(position=7))
    with client(reads, writes) as http:
        answer = http.post("/production/camera/upsert", json=CAMERA)
    assert answer.json() == {"ok": True, "result": {"_id": "S1:c1"}}
    assert answer.headers["Ledger-Position"] == "7"
    [event] = writes.submitted
    assert isinstance(event, CameraUpserted)
    assert event.event_id  # made by the server
    assert writes.filled == [frozenset({"event_id"})]  # and not held against a retry


@pytest.mark.parametrize(
    ("outcome", "status", "code"),
    [
        (Outcome(reason="unknown_session", detail="session S1 was never started"), 409, "unknown_session"),
        (Outcome(reason="invalid_event", detail="bad"), 400, "invalid_event"),
        (Refused("too_large", "body is 300000 bytes"), 413, "too_large"),
        (Refused("invalid_event", "a string holds \\u0000"), 400, "invalid_event"),
        (DatabaseUnavailable("the database is not reachable"), 503, "unavailable"),
        (Conflict("event_id_reused", "eventId e1 was used before"), 409, "event_id_reused"),
    ],
)  # fmt: skip
def test_a_rejected_or_refused_write(
    reads: FakeReads, outcome: Outcome | Exception, status: int, code: str
) -> None:
    with client(reads, FakeWrites(outcome)) as http:
        answer = http.post("/production/event", json={"sessionId": "S1", "timestampMs": 1,
                                                      "eventType": "cut"})  # fmt: skip
    assert (answer.status_code, answer.json()["error"]["code"]) == (status, code)


def test_a_write_not_decided_in_time_is_pending(reads: FakeReads) -> None:
    with client(reads, FakeWrites(None)) as http:
        answer = http.post("/production/event", json={"sessionId": "S1", "timestampMs": 1,
                                                      "eventType": "cut"})  # fmt: skip
    assert answer.status_code == 202
    assert answer.json()["result"]["pending"] is True


def test_a_body_that_fails_its_schema_is_400_and_nothing_is_submitted(reads: FakeReads) -> None:
    writes = FakeWrites(Outcome(position=1))
    with client(reads, writes) as http:
        answer = http.post("/production/camera/upsert", json={**CAMERA, "isActive": "true"})
    assert (answer.status_code, answer.json()["error"]["code"]) == (400, "invalid_event")
    assert writes.submitted == []


def test_the_token_guards_production_but_not_the_probes(reads: FakeReads) -> None:
    with client(reads, FakeWrites(None), token="s3cret") as http:
        assert http.get("/production/session", params={"sessionId": "S1"}).status_code == 401
        ok = http.get(
            "/production/session",
            params={"sessionId": "S1"},
            headers={"authorization": "Bearer s3cret"},
        )
        assert ok.status_code == 200
        assert http.get("/healthz").status_code == 200


@pytest.mark.parametrize("token", [None, "s3cret"])
def test_the_document_asks_for_a_token_only_when_the_server_does(
    reads: FakeReads, token: str | None
) -> None:
    with client(reads, FakeWrites(None), token=token) as http:
        document = http.get("/schema/openapi.json").json()
    operations = [op for item in document["paths"].values() for op in item.values()]
    schemes = document.get("components", {}).get("securitySchemes", {})
    if token:
        assert schemes["bearer"]["scheme"] == "bearer"
        assert all(op["security"] == [{"bearer": []}] for op in operations)
    else:
        assert schemes == {}
        assert all("security" not in op for op in operations)
