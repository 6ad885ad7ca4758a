"""The ingest daemon: stream → judge → log, in stream order, exactly once.

One readable loop, in the manner of arq's worker:

    take the writer lease (a Postgres advisory lock; a second `serve` waits here)
    read the committed stream sequence and the log head from Postgres
    (re)create the consumer at that sequence + 1
    loop: fetch a batch, judge it, commit it (rows + dead letters + checkpoint, one
          transaction) while the next batch is fetched and judged

Anything that breaks the chain of custody — a broker hiccup, a sequence gap, a lost
connection, another writer — restarts the loop from the committed checkpoint, so no message
is judged twice or skipped. A row PostgreSQL refuses is found, dead-lettered with its
reason, and the batch goes again; it never blocks the lane.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from nats.aio.client import Client
from nats.errors import Error as NatsError

from .. import logs, metrics
from ..adapters.nats import broker
from ..adapters.nats.puller import PullBroken, Puller, RawMessage, consumer_name
from ..adapters.nats.watchdog import StallWatchdog
from ..adapters.postgres import ledger
from ..adapters.postgres.database import DB_DOWN, connect, take_lease
from ..domain.reasons import Reason, Rejection
from ..settings import Settings
from .backoff import Backoff
from .judging import Batcher, Judged
from .memory import JudgeMemory

log = logs.get(__name__)

BROKER_DOWN = (NatsError, PullBroken)
# A row refused by these means another writer, or a stale view of the log: start over.
_OUT_OF_STEP = frozenset({"events_pkey", "events_stream_seq_key", "dead_letters_stream_seq_key"})
# The database holding the judge's creation rules: the judge's facts were stale.
_CREATIONS = frozenset({"events_session_started", "events_still_created", "events_asset_created"})


def _said(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:1000]


@dataclass(slots=True)
class _InFlight:
    messages: list[RawMessage]
    judged: Judged
    task: asyncio.Task[None]
    done_ns: int = 0


# At most one commit started per PACE_S while the stream trickles: at live rates each
# message would otherwise be a transaction of its own, and a commit's round trip costs
# more CPU than its rows. Waiting this long lets a few more join the batch; under load a
# commit takes longer than this anyway and the pause never happens.
PACE_S = 0.002


class Ingestor:
    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        client: Client,
        *,
        on_commit: Callable[[int], None] | None = None,
    ) -> None:
        self.settings = settings
        self._pool = pool
        self._client = client
        # API calls fail fast: one sent into an outage would otherwise hold the restart
        # for nats-py's default 5 s after the broker is back
        self._js = client.jetstream(timeout=broker.API_TIMEOUT_S)
        self._stream = settings.stream
        self._dsn = settings.database_url or ""
        self._batcher = Batcher(
            root=settings.subject_root,
            max_event_bytes=settings.max_event_bytes,
            memory=JudgeMemory(),
            lookup_facts=lambda keys: ledger.lookup_facts(pool, keys),
            find_event_ids=lambda ids: ledger.existing_event_ids(pool, ids),
        )
        self._puller = Puller(
            client, self._stream, consumer_name(self._stream), batch=settings.batch_size
        )
        self._on_commit = on_commit
        self.active = False  # holds the writer lease
        self.ingesting = False  # and has resumed from the checkpoint
        self.epoch = 0
        self.committed_seq = 0
        self.head_position = 0
        self._backoff = Backoff()
        self._last_recorded = datetime.now(UTC)
        self._last_commit = 0.0

    # -- the outer loop: lease, then ingest until stopped ------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            conn: asyncpg.Connection | None = None
            try:
                conn = await connect(self._dsn, timeout=5)
                if not await self._take_lease(conn, stop):
                    break
                self.active = True
                metrics.INGEST_ACTIVE.set(1)
                log.info("ingest_active", stream=self._stream)
                await self._ingest(conn, stop)
            except DB_DOWN as error:
                metrics.DATABASE_UP.set(0)
                metrics.INGEST_RESTARTS.labels("database").inc()
                log.warning("ingest_database_unavailable", error=str(error) or type(error).__name__)
                await self._backoff.sleep(stop)
            except ledger.LeaseLost as error:
                metrics.INGEST_RESTARTS.labels("lease").inc()
                log.error("ingest_lease_lost", error=str(error))
                await self._backoff.sleep(stop)
            except Exception as error:
                # too many connections, a bad password, a bug: never a reason to stop
                # ingesting for good; say so loudly and try again
                metrics.INGEST_RESTARTS.labels("error").inc()
                log.exception("ingest_failed", error=repr(error))
                await self._backoff.sleep(stop)
            finally:
                self.active = False
                metrics.INGEST_ACTIVE.set(0)
                if conn is not None:
                    conn.terminate()  # releases the lease at once
        await self._puller.close()
        log.info("ingest_stopped", committed_seq=self.committed_seq, head=self.head_position)

    async def _take_lease(self, conn: asyncpg.Connection, stop: asyncio.Event) -> bool:
        """Block until this process is the one writer (or is told to stop)."""
        if await conn.fetchval("SELECT pg_try_advisory_lock($1)", ledger.WRITER_LEASE):
            return True
        log.info("ingest_standby", reason="another process holds the writer lease")
        return await take_lease(conn, ledger.WRITER_LEASE, stop)

    async def _ingest(self, conn: asyncpg.Connection, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self._from_checkpoint(conn, stop)
            except BROKER_DOWN as error:
                cause = "pull" if isinstance(error, PullBroken) else "broker"
                metrics.INGEST_RESTARTS.labels(cause).inc()
                log.warning("ingest_restart", cause=cause, error=str(error) or type(error).__name__)
                await self._backoff.sleep(stop)
            except (*DB_DOWN, ledger.LeaseLost):
                raise
            except Exception as error:
                # a bug, not an outage: say so loudly, then start over from the checkpoint
                metrics.INGEST_RESTARTS.labels("error").inc()
                log.exception("ingest_failed", error=repr(error))
                await self._backoff.sleep(stop)

    # -- one run from the committed checkpoint -----------------------------------------
    async def _from_checkpoint(self, conn: asyncpg.Connection, stop: asyncio.Event) -> None:
        self._batcher.memory.clear()
        await broker.ensure_stream(self._js, self.settings)
        position = await broker.stream_position(self._js, self._stream)
        state = await ledger.ingest_state(
            conn, self._stream, position.created, position.last_seq, self._now()
        )
        if state.epoch != self.epoch:
            self._batcher.forget_before(1 << 62)  # verdicts kept by sequence: another epoch
        head = await ledger.head(conn)
        if head.recorded_at is not None:  # a clock set back while we were down
            self._last_recorded = max(self._last_recorded, head.recorded_at)
        metrics.DATABASE_UP.set(1)
        self.epoch, self.committed_seq, self.head_position = (
            state.epoch,
            state.stream_seq,
            head.position,
        )
        self._head = head
        metrics.LOG_HEAD.set(head.position)
        metrics.STREAM_SEQUENCE.set(state.stream_seq)
        await self._puller.open(state.stream_seq + 1, position.first_seq)
        self.ingesting = True
        log.info(
            "ingest_resumed",
            stream=self._stream,
            epoch=state.epoch,
            from_seq=state.stream_seq + 1,
            head=head.position,
        )
        inflight: _InFlight | None = None
        watchdog = StallWatchdog(self._js, self._stream)
        try:
            while not stop.is_set():
                messages = await self._puller.next_batch(timeout=0.25)
                if not messages:
                    if inflight is not None and inflight.task.done():
                        previous, inflight = inflight, None
                        await self._finish(conn, previous)
                    await watchdog.check(
                        self.committed_seq, self._puller.buffered, inflight is not None
                    )
                    continue
                watchdog.progress()
                pause = self._last_commit + PACE_S - time.monotonic()
                if inflight is None and pause > 0 and len(messages) < self.settings.batch_size:
                    await asyncio.sleep(pause)
                    messages += await self._puller.next_batch(timeout=0)
                judged = await self._judge(messages, inflight)
                if inflight is not None:
                    previous, inflight = inflight, None
                    if not await self._finish(conn, previous):
                        # the earlier batch went in alone after a refusal; this one was
                        # judged on its heels and must be judged again
                        await self._commit_alone(conn, messages)
                        continue
                inflight = self._start_commit(conn, messages, judged)
        finally:
            self.ingesting = False
            if inflight is not None:
                # drain: the batch in flight is finished, not abandoned
                await self._finish(conn, inflight)

    def _start_commit(
        self, conn: asyncpg.Connection, messages: list[RawMessage], judged: Judged
    ) -> _InFlight:
        self._last_commit = time.monotonic()
        inflight = _InFlight(
            messages, judged, asyncio.ensure_future(ledger.commit_batch(conn, judged.write))
        )

        def committed(_: object) -> None:
            inflight.done_ns = time.time_ns()
            self._puller.wake()  # finish the batch now, not at the next fetch timeout

        inflight.task.add_done_callback(committed)
        return inflight

    async def _judge(self, messages: list[RawMessage], after: _InFlight | None) -> Judged:
        base = after.judged if after is not None else None
        return await self._batcher.judge(
            messages,
            stream=self._stream,
            epoch=self.epoch,
            from_seq=base.write.to_seq if base else self.committed_seq,
            head=base.head if base else self._head,
            recorded_at=self._now(),
        )

    async def _finish(self, conn: asyncpg.Connection, inflight: _InFlight) -> bool:
        """Wait for a batch's commit. True when it went in as judged; False when it was
        refused, diagnosed and committed again on its own (so later judgments are stale)."""
        try:
            await inflight.task
        except DB_DOWN:
            raise
        except ledger.LeaseLost:
            raise
        except asyncpg.PostgresError as error:
            await self._diagnose(conn, error, inflight.judged)
            await self._commit_alone(conn, inflight.messages)
            return False
        self._committed(inflight.judged, inflight.done_ns)
        return True

    async def _commit_alone(self, conn: asyncpg.Connection, messages: list[RawMessage]) -> None:
        """Judge and commit without pipelining, diagnosing refusals until it goes in."""
        for attempt in range(8):
            judged = await self._judge(messages, None)
            try:
                await ledger.commit_batch(conn, judged.write)
            except DB_DOWN:
                raise
            except (asyncpg.PostgresError, ledger.LeaseLost) as error:
                if isinstance(error, ledger.LeaseLost) or attempt == 7:
                    raise
                await self._diagnose(conn, error, judged)
                continue
            self._committed(judged, time.time_ns())
            return

    async def _diagnose(self, conn: asyncpg.Connection, error: Exception, judged: Judged) -> None:
        """Find why PostgreSQL refused a batch and teach the judge, so the retry goes in."""
        if judged.write.from_seq != self.committed_seq:
            raise RuntimeError(  # a bug: the batch was judged on a checkpoint that moved
                f"refused batch built on {judged.write.from_seq}, committed {self.committed_seq}"
            )
        self._batcher.memory.clear()  # optimistic facts of the refused batch are void
        constraint = getattr(error, "constraint_name", None)
        log.warning(
            "ingest_batch_refused",
            error=str(error),
            constraint=constraint,
            from_seq=judged.write.from_seq + 1,
            to_seq=judged.write.to_seq,
        )
        if constraint == "events_event_id_key":
            # an eventId logged long ago, beyond the judge's memory: a duplicate
            logged = await ledger.existing_event_ids(conn, judged.accepted_ids)
            self._batcher.memory.event_ids.put_all(logged, True)
            return
        if constraint in _OUT_OF_STEP:
            raise ledger.LeaseLost(f"the log moved under this writer: {error}")
        if constraint in _CREATIONS:
            return  # the facts will be looked up afresh
        write = judged.write
        refused = await ledger.refused_rows(conn, "events", ledger.EVENT_COLUMNS, write.events)
        for seq, (row, refusal) in refused.items():
            kind = getattr(refusal, "constraint_name", None)
            if kind in _OUT_OF_STEP:
                raise ledger.LeaseLost(f"the log moved under this writer: {refusal}")
            if kind == "events_event_id_key":  # logged long ago: a duplicate, not a refusal
                self._batcher.memory.event_ids.put(row[1], True)
            elif kind not in _CREATIONS:  # those: the facts are looked up afresh
                self._batcher.forced[seq] = Rejection(
                    Reason.STORAGE_REFUSED, f"PostgreSQL refused the event: {_said(refusal)}"
                )
        unstorable = await ledger.refused_rows(
            conn, "dead_letters", ledger.DEAD_LETTER_COLUMNS, write.dead_letters
        )
        for seq, (_, refusal) in unstorable.items():
            if getattr(refusal, "constraint_name", None) in _OUT_OF_STEP:
                raise ledger.LeaseLost(f"the log moved under this writer: {refusal}")
            metrics.UNSTORABLE.inc()
            log.error(
                "message_unstorable_skipped",
                stream=self._stream,
                stream_seq=seq,
                error=_said(refusal),
            )
            self._batcher.skip.add(seq)
        if not refused and not unstorable:
            raise error  # not the data: let the caller's retry-from-checkpoint handle it

    def _committed(self, judged: Judged, now_ns: int) -> None:
        write = judged.write
        metrics.CONSUMER_PENDING.set(self._puller.backlog_after(write.to_seq))
        self.committed_seq = write.to_seq
        self.head_position = write.head
        self._head = judged.head
        self._batcher.forget_before(write.to_seq)
        self._backoff.reset()
        metrics.BATCH_MESSAGES.observe(write.to_seq - write.from_seq)
        metrics.LOG_HEAD.set(write.head)
        metrics.STREAM_SEQUENCE.set(write.to_seq)
        for (lane, kind, outcome), count in judged.counts().items():
            metrics.EVENTS.labels(lane, kind, outcome).inc(count)
        for reason, count in judged.reasons.items():
            metrics.DEAD_LETTERS.labels(reason).inc(count)
        for lane, stamps in judged.latencies_by_lane().items():
            metrics.observe_many(
                metrics.PUBLISH_TO_COMMIT.labels(lane),
                [max(0.0, (now_ns - stamp) / 1e9) for stamp in stamps],
            )
        metrics.BATCH_COMMIT.observe((now_ns - write.recorded_at.timestamp() * 1e9) / 1e9)
        log.debug(
            "batch_committed",
            from_seq=write.from_seq + 1,
            to_seq=write.to_seq,
            head=write.head,
            events=len(write.events),
            dead_letters=len(write.dead_letters),
            duplicates=write.duplicates,
        )
        for row in write.dead_letters:
            log.info(
                "event_rejected",
                reason=row[3],
                event_id=row[6],
                session_id=row[7],
                subject=row[0],
                stream_seq=row[12],
            )
        if self._on_commit is not None:
            self._on_commit(write.head)

    def _now(self) -> datetime:
        # recorded times never go backwards along positions, even if the clock does
        now = datetime.now(UTC)
        self._last_recorded = max(now, self._last_recorded)
        return self._last_recorded
