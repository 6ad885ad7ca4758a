"""One batch of raw messages → the rows of one ingest transaction.

Decode everything, look up in one round trip whatever the judge's memory cannot answer,
judge in stream order, then lay out log rows (position, chain hash) and dead letters.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, cast

from .. import logs
from ..adapters.nats.puller import RawMessage
from ..adapters.postgres.ledger import BatchWrite, Head
from ..adapters.postgres.log_rows import DeadLetterRow, EventRow, event_row
from ..domain.canonical import chain_hash
from ..domain.decoding import Decoded, check_subject, decode_event
from ..domain.events import LANES, TAG_OF, Event
from ..domain.judge import (
    ACCEPT,
    DUPLICATE,
    FactKeys,
    Knowledge,
    Prior,
    Verdict,
    judge_again,
    judge_and_learn,
)
from ..domain.reasons import STATE_REASONS, Rejection, unprocessable
from .dead_letter_rows import dead_letter, identity
from .memory import JudgeMemory

log = logs.get(__name__)

LookupFacts = Callable[[FactKeys], Awaitable[Knowledge]]
# how eventIds were judged before, from the log and the dead letters
LookupPriors = Callable[[Iterable[str]], Awaitable[dict[str, Prior]]]
# dead letters by id: (eventId, raw body), to check that a replay is one
LookupDeadLetters = Callable[[Iterable[int]], Awaitable[dict[int, tuple[str | None, bytes]]]]
# the header `dead-letters replay` puts on the message it publishes again
REPLAY_HEADER: Final = "Motionledger-Replay-Of"
_REPLAY_MARK: Final = REPLAY_HEADER.encode()

ACCEPTED: Final = "accepted"
DUPLICATED: Final = "duplicate"
REJECTED: Final = "rejected"


def _lane_of(subject: str) -> str:
    parts = subject.split(".")
    return parts[1] if len(parts) == 3 and parts[1] in LANES else "unknown"


# -- quarantine: a message whose handling raises is dead-lettered, the lane goes on ----
# Every step below that looks at one message (decode, subject, fact keys, judge, its row)
# is pure, so an exception there comes from that message's bytes meeting a bug and would
# come again on every retry. Only broker and database failures are worth retrying, and
# those happen outside these steps.


class _Quarantine(Exception):
    """A message's judgment or row failed: judge the batch again with it dead-lettered, so
    nothing learned from it (a session it started, say) outlives it."""

    def __init__(self, seq: int, step: str, error: Exception) -> None:
        super().__init__(seq, step)
        self.seq, self.rejection = seq, _unprocessable(step, error)


def _unprocessable(step: str, error: Exception) -> Rejection:
    if isinstance(error, MemoryError):
        raise error  # the machine, not the message: retried from the checkpoint
    log.exception("message_unprocessable", step=step, error=repr(error)[:500])
    return unprocessable(step, error)


_LOGGED: Final = Prior(None)  # a stand-in: "logged", for the replay test above


def _early_verdict(
    rejection: Rejection, readable: tuple[str, bytes | None] | None, known: Knowledge
) -> Verdict | Rejection:
    """The verdict on a message rejected before judging: its own rejection, unless its
    eventId was judged before (then the first verdict holds); either way what follows in
    the batch is held to it."""
    if readable is None:
        return rejection
    event_id, body = readable
    logged = known.logged.get(event_id)
    prior = Prior(logged) if logged is not None else known.priors.get(event_id)
    if prior is not None:
        return judge_again(event_id, body, prior)
    known.priors[event_id] = Prior(body, rejection)
    return rejection


@dataclass(slots=True)
class Judged:
    write: BatchWrite
    head: Head
    # outcome counts by (lane, type, outcome); accepted ones are counted per event class on
    # the hot path and folded in by `counts()`
    other_counts: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    published_ns: dict[type[Event], list[int]] = field(default_factory=dict)  # accepted
    reasons: Counter[str] = field(default_factory=Counter)
    accepted_ids: list[str] = field(default_factory=list)

    def counts(self) -> Counter[tuple[str, str, str]]:
        out = Counter(self.other_counts)
        for cls, stamps in self.published_ns.items():
            out[(cls.lane, TAG_OF[cls], ACCEPTED)] += len(stamps)
        return out

    def latencies_by_lane(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for cls, stamps in self.published_ns.items():
            out.setdefault(cls.lane, []).extend(stamps)
        return out


@dataclass(slots=True)
class Batcher:
    """Judges batches against the ledger's knowledge; holds no I/O of its own."""

    root: str
    max_event_bytes: int
    memory: JudgeMemory
    lookup_facts: LookupFacts
    lookup_priors: LookupPriors
    lookup_dead_letters: LookupDeadLetters
    # verdicts imposed after PostgreSQL refused a row, and messages it refused even as a
    # dead letter; keyed by stream sequence, dropped once committed past
    forced: dict[int, Rejection] = field(default_factory=dict)
    skip: set[int] = field(default_factory=set)
    # how the eventIds of batches judged but not committed yet were judged, by the batch's
    # last stream sequence: the log cannot tell yet, and the next batch is judged meanwhile
    uncommitted: dict[int, Knowledge] = field(default_factory=dict)

    def forget_before(self, seq: int) -> None:
        self.forced = {s: r for s, r in self.forced.items() if s > seq}
        self.skip = {s for s in self.skip if s > seq}
        self.uncommitted = {s: p for s, p in self.uncommitted.items() if s > seq}

    def forget_uncommitted(self) -> None:
        """A batch was refused: what it would have decided is void."""
        self.uncommitted.clear()

    async def judge(
        self,
        messages: list[RawMessage],
        *,
        stream: str,
        epoch: int,
        from_seq: int,
        head: Head,
        recorded_at: datetime,
    ) -> Judged:
        while True:
            try:
                return await self._judge(messages, stream, epoch, from_seq, head, recorded_at)
            except _Quarantine as failed:
                if failed.seq in self.forced:  # a forced message goes no further: a bug here
                    raise RuntimeError(f"message {failed.seq} failed again") from failed
                self.forced[failed.seq] = failed.rejection  # judged again without it

    async def _judge(
        self,
        messages: list[RawMessage],
        stream: str,
        epoch: int,
        from_seq: int,
        head: Head,
        recorded_at: datetime,
    ) -> Judged:
        decoded: list[tuple[RawMessage, Decoded | Rejection]] = []
        keys = FactKeys()
        ids: set[str] = set()  # eventIds of the batch (judged, or rejected and readable)
        claims: list[tuple[RawMessage, Decoded]] = []  # those that say they are replays
        # messages rejected before judging (not an event, wrong subject, a forced verdict)
        # whose eventId can be read: (eventId, its canonical body, or its raw bytes when it
        # is not an event); their verdict is the eventId's first too, and binds what follows
        early: dict[int, tuple[str, bytes | None]] = {}
        for message in messages:
            if message.seq in self.skip:
                continue
            try:
                outcome = decode_event(message.data, self.max_event_bytes)
                if isinstance(outcome, Decoded):
                    event_id = outcome.event.event_id
                    ids.add(event_id)
                    forced = self.forced.get(message.seq)
                    wrong_subject = check_subject(outcome.event, message.subject, self.root)
                    if forced is not None or wrong_subject is not None:
                        early[len(decoded)] = (event_id, outcome.body)
                        outcome = forced or wrong_subject  # type: ignore[assignment]
                    else:
                        keys.add(outcome.event)
                        if _REPLAY_MARK in message.headers:
                            claims.append((message, outcome))
                else:
                    readable = identity(message.data)[0]
                    if readable is not None:
                        early[len(decoded)] = (readable, message.data)
                        ids.add(readable)
            except Exception as error:  # nothing was learned from it yet
                outcome = _unprocessable("decoding", error)
            decoded.append((message, outcome))

        # Let the previous batch's commit take its next round trip: judging is CPU work on
        # the same thread, and the pipeline only overlaps if the commit keeps moving.
        await asyncio.sleep(0)
        known, missing = self.memory.split(keys)
        if missing:
            found = await self.lookup_facts(missing)
            self.memory.absorb(found)
            known.merge(found)
        # eventIds judged before, as far as memory knows: their first verdict decides
        for pending in self.uncommitted.values():
            for event_id in ids & pending.logged.keys():
                known.logged[event_id] = pending.logged[event_id]
            for event_id in ids & pending.priors.keys():
                known.priors[event_id] = pending.priors[event_id]
        asked = self.memory.event_ids.present(ids) - known.logged.keys() - known.priors.keys()
        if asked:
            known.priors.update(await self._priors(asked))
        replays = await self._replays(claims) if claims else set()

        verdicts: list[Verdict | Rejection] = []
        suspects: set[str] = set()  # state rejections of eventIds not looked up
        for index, (message, d) in enumerate(decoded):
            if not isinstance(d, Decoded):
                verdicts.append(_early_verdict(d, early.get(index), known))
                continue
            try:
                replay = message.seq in replays
                verdict = judge_and_learn(d.event, known, d.body, replay=replay)
            except Exception as error:
                raise _Quarantine(message.seq, "judging", error) from error
            if (
                verdict is not ACCEPT
                and isinstance(verdict, Rejection)
                and verdict.reason in STATE_REASONS
                and d.event.event_id not in asked
            ):
                suspects.add(d.event.event_id)
            verdicts.append(verdict)
        if suspects:
            await self._judged_long_ago(suspects, decoded, early, verdicts, replays, known)
        judged = self._rows(decoded, verdicts, stream, epoch, from_seq, messages, head, recorded_at)
        write = judged.write
        write.fresh_ids = judged.accepted_ids
        if replays:  # a replay is not held to its eventId's first verdict: no guard for it
            write.fresh_ids = [r.event_id for r in write.events if r.stream_seq not in replays]
        self.uncommitted[write.to_seq] = known
        self.memory.absorb(known)  # once no row failed: facts learned from a failed one are void
        if len(self.memory.priors):  # a Prior remembered may be stale now it is logged
            self.memory.priors.discard_all(known.logged.keys())
        await asyncio.sleep(0)
        return judged

    async def _judged_long_ago(
        self,
        suspects: set[str],
        decoded: list[tuple[RawMessage, Decoded | Rejection]],
        early: dict[int, tuple[str, bytes | None]],
        verdicts: list[Verdict | Rejection],
        replays: set[int],
        known: Knowledge,
    ) -> None:
        """A state rejection may really be an eventId judged long ago, beyond the memory:
        whatever the ledger's state says now, the first verdict holds — for every copy of
        it in this batch, in order (a later copy was judged by the earlier one's verdict)."""
        earlier = await self._priors(suspects)
        if not earlier:
            return
        known.priors.update(earlier)
        for index, (message, d) in enumerate(decoded):
            body: bytes | None
            if isinstance(d, Decoded):
                event_id, body = d.event.event_id, d.body
                if message.seq in replays and not earlier.get(event_id, _LOGGED).logged:
                    continue  # a replay is judged afresh: its own verdict stands
            elif index in early:
                event_id, body = early[index]
            else:
                continue
            prior = earlier.get(event_id)
            if prior is not None:
                verdicts[index] = judge_again(event_id, body, prior)

    async def _priors(self, event_ids: set[str]) -> dict[str, Prior]:
        """How these eventIds were judged before: from memory, else one look-up."""
        found: dict[str, Prior] = {}
        for event_id in event_ids:
            prior = self.memory.priors.get(event_id)
            if prior is not None:
                found[event_id] = prior
        rest = event_ids - found.keys()
        if rest:
            looked_up = await self.lookup_priors(rest)
            for event_id, prior in looked_up.items():
                self.memory.priors.put(event_id, prior)
            found.update(looked_up)
        return found

    async def _replays(self, claims: list[tuple[RawMessage, Decoded]]) -> set[int]:
        """The stream sequences of messages `dead-letters replay` published: the header
        names a dead letter, and that dead letter holds this very eventId and body (a
        producer cannot have an eventId judged again by claiming to be a replay)."""
        named: dict[int, tuple[int, str, bytes]] = {}
        for message, d in claims:
            letter = message.header_map().get(REPLAY_HEADER, [""])[0]
            if letter.isdigit():
                named[message.seq] = (int(letter), d.event.event_id, message.data)
        if not named:
            return set()
        letters = await self.lookup_dead_letters({letter for letter, _, _ in named.values()})
        return {
            seq
            for seq, (letter, event_id, raw) in named.items()
            if letters.get(letter) == (event_id, raw)
        }

    def _rows(
        self,
        decoded: list[tuple[RawMessage, Decoded | Rejection]],
        verdicts: list[Verdict | Rejection],
        stream: str,
        epoch: int,
        from_seq: int,
        messages: list[RawMessage],
        head: Head,
        recorded_at: datetime,
    ) -> Judged:
        events: list[EventRow] = []
        dead: list[DeadLetterRow] = []
        position, last_hash = head.position, head.hash
        write = BatchWrite(
            stream=stream,
            epoch=epoch,
            from_seq=from_seq,
            to_seq=messages[-1].seq,
            events=events,
            dead_letters=dead,
            duplicates=0,
            recorded_at=recorded_at,
            head=0,
        )
        judged = Judged(write, head)
        duplicates = 0
        stamps = judged.published_ns
        for (message, outcome), verdict in zip(decoded, verdicts, strict=True):
            if verdict is ACCEPT:
                # the hot path: one row per accepted event, nothing else per event
                ok = cast(Decoded, outcome)  # only valid events are accepted
                event = ok.event
                cls = type(event)
                try:
                    position += 1
                    last_hash = chain_hash(last_hash, position, event.event_id, ok.body)
                    published_at = datetime.fromtimestamp(message.published_ns / 1e9, UTC)
                    events.append(
                        event_row(
                            position, event, ok.body, recorded_at, epoch, message.seq,
                            published_at, last_hash,
                        )
                    )  # fmt: skip
                except Exception as error:
                    raise _Quarantine(message.seq, "building its log row", error) from error
                if cls in stamps:
                    stamps[cls].append(message.published_ns)
                else:
                    stamps[cls] = [message.published_ns]
                judged.accepted_ids.append(event.event_id)
                continue
            lane: str
            if isinstance(outcome, Decoded):
                lane, kind = outcome.event.lane, outcome.event.type_name
            else:
                lane, kind = _lane_of(message.subject), "unknown"
            if verdict is DUPLICATE:
                duplicates += 1
                judged.other_counts[(lane, kind, DUPLICATED)] += 1
            else:
                assert isinstance(verdict, Rejection)
                dead.append(dead_letter(message, outcome, verdict, epoch, recorded_at))
                judged.other_counts[(lane, kind, REJECTED)] += 1
                judged.reasons[verdict.reason.value] += 1
        judged.write.duplicates = duplicates
        judged.write.head = position
        judged.head = Head(position, last_hash)
        return judged
