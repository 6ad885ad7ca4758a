"""POST /production/*: the twelve write routes, one per entry of `domain.requests.WRITES`
plus the batch. Each body is decoded strictly by the Struct derived from its event (the
framework's own lenient parsing is bypassed: "true" is not a bool here, as for the judge),
published like any producer's event, and answered once the ledger has decided: a 200
carries the event's log position (`Ledger-Position`; a batch's last, a retry's as logged)."""

from __future__ import annotations

from typing import Any, Final

import msgspec
from litestar import Request, Response, post

from ..domain.events import (
    CameraStateChanged,
    CameraUpserted,
    DirectorEvent,
    Event,
    StillUpdated,
)
from ..domain.integers import decode_with_integral_floats, is_integral_float_complaint
from ..domain.nesting import MAX_JSON_DEPTH, TOO_DEEP, nests_deeper_than
from ..domain.reasons import STATE_REASONS
from ..domain.requests import ROW, WRITES, EventBatchBody, Write, filled_in
from ..domain.rows import ROWS, PendingWrite
from ..domain.uuid7 import uuid7
from ..services.waiters import Outcome
from ..services.writes import Submission
from .deps import ReadModel, Reads, Writes
from .envelope import ok
from .errors import ApiError
from .openapi import documented

_WRITE_ERRORS: Final = (400, 401, 409, 413, 503)
_ENCODER: Final = msgspec.json.Encoder()


def decode_body(raw: bytes, body_type: Any, depth: int = MAX_JSON_DEPTH) -> Any:
    """The request body as `body_type`, validated strictly; a 400 naming the field if not.
    `depth`: how deep the body may nest for its events to nest no deeper than the judge
    takes (each event is checked again exactly as the judge will, see `body_of`)."""
    if nests_deeper_than(raw, depth):
        raise ApiError(400, TOO_DEEP.reason, TOO_DEEP.detail)
    try:
        try:
            return msgspec.json.decode(raw, type=body_type, strict=True)
        except msgspec.ValidationError as error:
            if not is_integral_float_complaint(error):
                raise
            # `1764480000000.0` where an integer goes, as the judge takes it
            return decode_with_integral_floats(raw, body_type)
    except msgspec.ValidationError as error:
        raise ApiError(400, "invalid_event", str(error)) from None
    except msgspec.DecodeError as error:
        raise ApiError(400, "invalid_json", f"the body is not JSON: {error}") from None
    except RecursionError:  # pragma: no cover - the nesting was bounded above
        raise ApiError(400, TOO_DEEP.reason, TOO_DEEP.detail) from None


def _rejected(outcomes: list[Outcome], events: list[Event]) -> ApiError:
    rejected = [(e, o) for e, o in zip(events, outcomes, strict=True) if o.reason is not None]
    event, outcome = rejected[0]
    reason = outcome.reason or "rejected"
    state = reason in STATE_REASONS
    message = outcome.detail or reason
    if len(events) > 1:
        message = (
            f"{len(rejected)} of {len(events)} events rejected; first {event.event_id}: {message}"
        )
    return ApiError(409 if state else 400, reason, message)


async def _answer(
    reads: ReadModel, write: Write, event: Event, outcome: Outcome | None
) -> Response[bytes]:
    if outcome is None:
        return ok(_ENCODER.encode(PendingWrite(event_id=event.event_id, pending=True)), 202)
    if not outcome.accepted:
        raise _rejected([outcome], [event])
    if write.result != ROW:
        return ok(_ENCODER.encode(getattr(event, write.result)), position=outcome.position)
    if isinstance(event, CameraUpserted | CameraStateChanged):
        row = await reads.camera_row(event.session_id, event.camera_id)
    else:
        assert isinstance(event, StillUpdated)
        row = await reads.still_row(event.still_candidate_id)
    if row is None:  # projected but gone: cannot happen to an append-only ledger's rows
        raise ApiError(500, "internal_error", f"{write.projection.name} row missing after write")
    return ok(row, position=outcome.position)


def _write_route(write: Write) -> Any:
    async def handler(
        request: Request[Any, Any, Any], reads: Reads, writes: Writes
    ) -> Response[bytes]:
        body = decode_body(await request.body(), write.body)
        filled = filled_in(write, body)
        if write.path == "still/update" and body.session_id is None:
            # The still names its session; one that is not in the log (once the stream is
            # judged up to now) names none, so there is no subject to publish on: 409 here,
            # as the judge would say, with no dead letter (nothing was published).
            owner = await writes.still_session(body.still_candidate_id)
            if owner is None:
                raise ApiError(409, "unknown_still", f"still {body.still_candidate_id} is unknown")
            body = msgspec.structs.replace(body, session_id=owner)
        event = write.build(body)
        [outcome] = await writes.submit([Submission(event, filled)])
        logged = outcome.event if outcome is not None and outcome.event is not None else event
        return await _answer(reads, write, logged, outcome)

    name = "post_" + write.path.replace("/", "_").replace("-", "_")
    handler.__name__ = handler.__qualname__ = name
    result = ROWS[write.projection.name] if write.result == ROW else str
    return post(
        f"/{write.path}",
        status_code=200,
        operation_id=name,
        summary=write.summary,
        operation_class=documented(
            result, body=write.body, errors=_WRITE_ERRORS, pending=PendingWrite
        ),
    )(handler)


@post(
    "/event/batch",
    status_code=200,
    summary="Record director events of one session, in order",
    description="Checked as a whole before anything is published (one invalid event: 400, "
    "nothing written); then published and judged in order; answers once all are decided.",
    operation_class=documented(
        list[str], body=EventBatchBody, errors=_WRITE_ERRORS, pending=PendingWrite
    ),
)
async def post_event_batch(request: Request[Any, Any, Any], writes: Writes) -> Response[bytes]:
    # the batch's events sit two levels down: {"events": [{...}]}
    body = decode_body(await request.body(), EventBatchBody, MAX_JSON_DEPTH + 2)
    events: list[Event] = []
    submissions: list[Submission] = []
    for item in body.events:
        values = {name: getattr(item, name) for name in item.__struct_fields__}
        values["session_id"] = body.session_id
        filled = frozenset() if values["event_id"] else frozenset({"event_id"})
        values["event_id"] = values["event_id"] or uuid7()
        events.append(DirectorEvent(**values))
        submissions.append(Submission(events[-1], filled))
    outcomes = await writes.submit(submissions)
    ids = [e.event_id for e in events]
    if any(o is None for o in outcomes):
        pending = PendingWrite(event_id=ids[-1], pending=True, event_ids=ids)
        return ok(_ENCODER.encode(pending), 202)
    decided = [o for o in outcomes if o is not None]
    if not all(o.accepted for o in decided):
        raise _rejected(decided, events)
    # the last one's position (published and logged in order: the highest; a retry's
    # events were logged earlier, so the highest is what a later read must reach)
    return ok(_ENCODER.encode(ids), position=max(o.position or 0 for o in decided))


WRITE_ROUTES: Final[list[Any]] = [*(_write_route(w) for w in WRITES), post_event_batch]
