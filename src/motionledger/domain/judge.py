"""The judge: given an event and what the ledger knows, accept it, call it a duplicate, or
reject it with a reason. Pure: what the ledger knows is handed in, nothing is fetched here.

An eventId is judged once. When the ledger knows how an eventId was judged before (its
`Prior`), that decides: the same body again is a duplicate of a logged event, or the same
rejection again; another body under the same eventId is a conflict (`event_id_reused`).
`dead-letters replay` alone judges a rejected eventId afresh (`replay=True`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from .canonical import canonical_json
from .events import (
    AnyEvent,
    AssetCreated,
    CameraStateChanged,
    CameraUpserted,
    SessionStarted,
    StillCreated,
    StillUpdated,
)
from .reasons import Reason, Rejection


class Accept:
    __slots__ = ()

    def __repr__(self) -> str:
        return "ACCEPT"


class Duplicate:
    __slots__ = ()

    def __repr__(self) -> str:
        return "DUPLICATE"


ACCEPT: Final = Accept()
DUPLICATE: Final = Duplicate()
Verdict = Accept | Duplicate | Rejection


@dataclass(slots=True)
class FactKeys:
    """The facts a batch of events needs to be judged: what to look up before judging."""

    sessions: set[str] = field(default_factory=set)
    cameras: set[tuple[str, str]] = field(default_factory=set)
    stills: set[str] = field(default_factory=set)
    assets: set[str] = field(default_factory=set)

    def add(self, event: AnyEvent) -> None:
        self.sessions.add(event.session_id)
        if isinstance(event, CameraStateChanged):
            self.cameras.add((event.session_id, event.camera_id))
        elif isinstance(event, StillCreated | StillUpdated):
            self.stills.add(event.still_candidate_id)
        elif isinstance(event, AssetCreated):
            self.assets.add(event.asset_id)

    def __bool__(self) -> bool:
        return bool(self.sessions or self.cameras or self.stills or self.assets)


@dataclass(frozen=True, slots=True)
class Prior:
    """How an eventId was judged before."""

    # the canonical body it came with; the raw bytes when they were not a valid event
    body: bytes | None
    rejection: Rejection | None = None  # None: it was logged
    dead_letter_id: int | None = None  # where the rejection is kept (None: not stored yet)

    @property
    def logged(self) -> bool:
        return self.rejection is None


def judge_again(event_id: str, body: bytes | None, prior: Prior) -> Verdict:
    """The verdict on an eventId that comes again: the first verdict holds. `body`: the
    canonical body of this copy (its raw bytes when it is not a valid event)."""
    if prior.body != body or (body is None and prior.rejection is None):
        return Rejection(
            Reason.EVENT_ID_REUSED,
            f"eventId {event_id} was judged before with another body; an eventId names one "
            "event (give a new event a new eventId)",
            "eventId",
        )
    if prior.rejection is None:
        return DUPLICATE
    where = (
        "earlier in the same batch"
        if prior.dead_letter_id is None
        else f"dead letter {prior.dead_letter_id}"
    )
    return Rejection(
        prior.rejection.reason,
        f"eventId {event_id} was rejected before ({where}): {prior.rejection.detail}"[:1000],
        prior.rejection.field,
        repeat_of=prior.dead_letter_id,
    )


@dataclass(slots=True)
class Knowledge:
    """What the ledger holds, as far as the events being judged need it.

    Only positive facts: the log is append-only, so a fact once true stays true. The
    caller fills it for every key in `FactKeys` (absence means "not in the ledger").
    """

    # eventId -> how it was judged before: `logged` holds the bodies of those logged (the
    # common case, accepted earlier in the batch: no Prior made per event), `priors` the rest
    logged: dict[str, bytes] = field(default_factory=dict)
    priors: dict[str, Prior] = field(default_factory=dict)
    sessions: set[str] = field(default_factory=set)
    cameras: set[tuple[str, str]] = field(default_factory=set)
    stills: dict[str, str] = field(default_factory=dict)  # stillCandidateId -> sessionId
    assets: set[str] = field(default_factory=set)

    def merge(self, other: Knowledge) -> None:
        self.logged.update(other.logged)
        self.priors.update(other.priors)
        self.sessions |= other.sessions
        self.cameras |= other.cameras
        self.stills.update(other.stills)
        self.assets |= other.assets

    def judged(self, event_id: str) -> bool:
        return event_id in self.logged or event_id in self.priors

    def learn(self, event: AnyEvent, body: bytes) -> None:
        """Record what an accepted event adds, so later events in the batch see it."""
        self.logged[event.event_id] = body
        if isinstance(event, SessionStarted):
            self.sessions.add(event.session_id)
        elif isinstance(event, CameraUpserted):
            self.cameras.add((event.session_id, event.camera_id))
        elif isinstance(event, StillCreated):
            self.stills[event.still_candidate_id] = event.session_id
        elif isinstance(event, AssetCreated):
            self.assets.add(event.asset_id)


def judge(
    event: AnyEvent, known: Knowledge, body: bytes | None = None, *, replay: bool = False
) -> Verdict:
    """The ledger's rules, in the order the contract gives them. `body`: the event's
    canonical body (made here when not given); `replay`: an operator asked for this
    rejected event to be judged again (`dead-letters replay`)."""
    event_id = event.event_id
    logged = known.logged.get(event_id)
    if logged is not None:
        return judge_again(event_id, canonical_json(event) if body is None else body, Prior(logged))
    prior = known.priors.get(event_id)
    if prior is not None and not (replay and not prior.logged):
        return judge_again(event_id, canonical_json(event) if body is None else body, prior)
    return judge_rules(event, known)


def judge_rules(event: AnyEvent, known: Knowledge) -> Verdict:
    """The rules about the ledger's state, for an eventId not judged before."""
    session = event.session_id
    if isinstance(event, SessionStarted):
        if session in known.sessions:
            return Rejection(Reason.SESSION_EXISTS, f"session {session} was already started")
        return ACCEPT
    if session not in known.sessions:
        return Rejection(Reason.UNKNOWN_SESSION, f"session {session} was never started")
    if isinstance(event, CameraStateChanged):
        if (session, event.camera_id) not in known.cameras:
            return Rejection(
                Reason.UNKNOWN_CAMERA,
                f"camera {event.camera_id} was never upserted in session {session}",
            )
    elif isinstance(event, StillCreated):
        if event.still_candidate_id in known.stills:
            return Rejection(
                Reason.STILL_EXISTS, f"still {event.still_candidate_id} already exists"
            )
    elif isinstance(event, StillUpdated):
        owner = known.stills.get(event.still_candidate_id)
        if owner is None:
            return Rejection(Reason.UNKNOWN_STILL, f"still {event.still_candidate_id} is unknown")
        if owner != session:
            return Rejection(
                Reason.STILL_SESSION_MISMATCH,
                f"still {event.still_candidate_id} belongs to session {owner}, not {session}",
            )
    elif isinstance(event, AssetCreated) and event.asset_id in known.assets:
        return Rejection(Reason.ASSET_EXISTS, f"asset {event.asset_id} already exists")
    return ACCEPT


def judge_and_learn(
    event: AnyEvent, known: Knowledge, body: bytes | None = None, *, replay: bool = False
) -> Verdict:
    """Judge, and remember the verdict for what follows in the same batch."""
    if body is None:
        body = canonical_json(event)
    event_id = event.event_id
    if event_id in known.logged or event_id in known.priors:
        verdict = judge(event, known, body, replay=replay)
    else:  # the common case: an eventId new to the batch, the memory and the log
        verdict = judge_rules(event, known)
    if verdict is ACCEPT:
        known.learn(event, body)
    elif (
        isinstance(verdict, Rejection)
        and not known.judged(event.event_id)
        and verdict.reason is not Reason.EVENT_ID_REUSED
    ):
        known.priors[event.event_id] = Prior(body, verdict)
    return verdict
