"""The judge: given an event and what the ledger knows, accept it, call it a duplicate, or
reject it with a reason. Pure: what the ledger knows is handed in, nothing is fetched here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

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


@dataclass(slots=True)
class Knowledge:
    """What the ledger holds, as far as the events being judged need it.

    Only positive facts: the log is append-only, so a fact once true stays true. The
    caller fills it for every key in `FactKeys` (absence means "not in the ledger").
    """

    event_ids: set[str] = field(default_factory=set)
    sessions: set[str] = field(default_factory=set)
    cameras: set[tuple[str, str]] = field(default_factory=set)
    stills: dict[str, str] = field(default_factory=dict)  # stillCandidateId -> sessionId
    assets: set[str] = field(default_factory=set)

    def merge(self, other: Knowledge) -> None:
        self.event_ids |= other.event_ids
        self.sessions |= other.sessions
        self.cameras |= other.cameras
        self.stills.update(other.stills)
        self.assets |= other.assets

    def learn(self, event: AnyEvent) -> None:
        """Record what an accepted event adds, so later events in the batch see it."""
        self.event_ids.add(event.event_id)
        if isinstance(event, SessionStarted):
            self.sessions.add(event.session_id)
        elif isinstance(event, CameraUpserted):
            self.cameras.add((event.session_id, event.camera_id))
        elif isinstance(event, StillCreated):
            self.stills[event.still_candidate_id] = event.session_id
        elif isinstance(event, AssetCreated):
            self.assets.add(event.asset_id)


def judge(event: AnyEvent, known: Knowledge) -> Verdict:
    """The ledger's rules, in the order the contract gives them."""
    if event.event_id in known.event_ids:
        return DUPLICATE
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


def judge_and_learn(event: AnyEvent, known: Knowledge) -> Verdict:
    verdict = judge(event, known)
    if verdict is ACCEPT:
        known.learn(event)
    return verdict
