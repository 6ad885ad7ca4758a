"""The ingest daemon: stream → judge → log, in stream order, exactly once.

One readable loop, in the manner of arq's worker:

    take the writer lease (a Postgres advisory lock; a second `serve` waits here)
    read the committed stream sequence and the log head from Postgres
    (re)create the consumer at that sequence + 1
    loop: fetch a batch, judge it, commit it (rows + dead letters + checkpoint, one
          transaction) while the next batch is fetched and judged

The connect → lease → work → back off loop is the shared `services.worker.Worker`; this
module is the work. Anything that breaks the chain of custody — a broker hiccup, a sequence
gap, a lost connection, another writer — restarts from the committed checkpoint, so no
message is judged twice or skipped. A row PostgreSQL refuses is found, dead-lettered with its
reason (services.refusals), and the batch goes again; it never blocks the lane.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from nats.aio.client import Client

from .. import logs, metrics
from ..adapters.nats import broker
from ..adapters.nats.puller import Puller, RawMessage, consumer_name
from ..adapters.nats.watchdog import StallWatchdog
from ..adapters.postgres import ledger
from ..adapters.postgres.database import Connection, Pool
from ..adapters.postgres.ledger import Head
from ..adapters.postgres.locks import Lock
from ..errors import (
    BrokerUnavailable,
    DatabaseUnavailable,
    OutOfStep,
    Permanent,
    PullBroken,
    StorageRefused,
    Unavailable,
)
from ..settings import Settings
from .judging import Batcher, Judged
from .memory import JudgeMemory
from .refusals import Refusals
from .stall import IngestProgress, StallReport, StallWatch
from .worker import Worker

log = logs.get(__name__)


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
        pool: Pool,
        client: Client,
        *,
        on_commit: Callable[[int], None] | None = None,
    ) -> None:
        self.settings = settings
        # API calls fail fast: one sent into an outage would otherwise hold the restart
        # for nats-py's default 5 s after the broker is back
        self._js = client.jetstream(timeout=broker.API_TIMEOUT_S)
        self._watch_js = client.jetstream(timeout=1.0)  # the stall watch asks on its own
        self._stream = settings.stream
        self._batcher = Batcher(
            root=settings.subject_root,
            max_event_bytes=settings.max_event_bytes,
            memory=JudgeMemory(),
            lookup_facts=lambda keys: ledger.lookup_facts(pool, keys),
            lookup_priors=lambda ids: ledger.priors(pool, ids, settings.max_event_bytes),
            lookup_dead_letters=lambda ids: ledger.dead_letters_by_id(pool, ids),
        )
        self._refusals = Refusals(self._batcher, self._stream)
        self._puller = Puller(
            client, self._stream, consumer_name(self._stream), batch=settings.batch_size
        )
        self.on_commit = on_commit  # told the new log head after each commit
        self.progress = IngestProgress(last_commit=time.monotonic())
        self._worker = Worker(
            "ingest",
            settings.database_url or "",
            self._ingest,
            lease=Lock.WRITER,
            on_failure=self._failed,
            on_active=self._activated,
            on_standby=self._standing_by,
        )
        self._stall = StallWatch(self.progress, self._stream_last_seq, metrics.INGEST_STALLED.set)
        self.ingesting = False  # holds the lease and has resumed from the checkpoint
        self.epoch = 0
        self.committed_seq = 0
        self.head_position = 0
        self._head = Head(0, b"")
        self._last_recorded = datetime.now(UTC)
        self._last_commit = 0.0

    @property
    def active(self) -> bool:
        """Holds the writer lease (else it stands by)."""
        return self._worker.active

    @property
    def stall(self) -> StallReport:
        """Whether commits have stopped while the stream holds unjudged messages."""
        return self._stall.current

    async def run(self, stop: asyncio.Event) -> None:
        watch = asyncio.ensure_future(self._stall.run(stop))
        try:
            await self._worker.run(stop)
        finally:
            await watch
            await self._puller.close()
        log.info("ingest_stopped", committed_seq=self.committed_seq, head=self.head_position)

    async def _stream_last_seq(self) -> int:
        return (await broker.stream_position(self._watch_js, self._stream)).last_seq

    def _failed(self, kind: str, error: Exception) -> None:
        self.progress.last_error = f"{kind}: {error!r}"[:500]
        metrics.INGEST_RESTARTS.labels(kind).inc()

    def _activated(self, active: bool) -> None:
        metrics.INGEST_ACTIVE.set(1 if active else 0)

    def _standing_by(self, standing_by: bool) -> None:
        self.progress.standing_by = standing_by

    # -- the work: holding the lease, ingest until stopped --------------------------------
    async def _ingest(self, conn: Connection, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self._from_checkpoint(conn, stop)
            except BrokerUnavailable as error:
                # the broker is not the truth: start over from what Postgres has committed
                cause = "pull" if isinstance(error, PullBroken) else "broker"
                self.progress.last_error = f"{cause}: {error!r}"[:500]
                metrics.INGEST_RESTARTS.labels(cause).inc()
                log.warning("ingest_restart", cause=cause, error=str(error) or repr(error))
                await self._worker.backoff.sleep(stop)
            except (DatabaseUnavailable, OutOfStep):
                raise  # the worker loop reconnects and takes the lease again
            except (Unavailable, Permanent) as error:  # contention, a privilege: no bug
                self.progress.last_error = f"{type(error).__name__}: {error}"[:500]
                metrics.INGEST_RESTARTS.labels("database").inc()
                log.warning("ingest_restart", cause=type(error).__name__, error=str(error))
                await self._worker.backoff.sleep(stop)
            except Exception as error:
                # a bug, not an outage: say so loudly, then start over from the checkpoint
                self.progress.last_error = f"error: {error!r}"[:500]
                metrics.INGEST_RESTARTS.labels("error").inc()
                log.exception("ingest_failed", error=repr(error))
                await self._worker.backoff.sleep(stop)

    # -- one run from the committed checkpoint -----------------------------------------
    async def _from_checkpoint(self, conn: Connection, stop: asyncio.Event) -> None:
        # what was judged but not committed before the restart is judged again from here
        self._batcher.memory.clear()
        self._batcher.forget_uncommitted()
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
        self.progress.committed(state.stream_seq)  # resumed: the stall counts from here
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
        self, conn: Connection, messages: list[RawMessage], judged: Judged
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

    async def _finish(self, conn: Connection, inflight: _InFlight) -> bool:
        """Wait for a batch's commit. True when it went in as judged; False when it was
        refused, diagnosed and committed again on its own (so later judgments are stale)."""
        try:
            await inflight.task
        except StorageRefused as refusal:
            await self._diagnose(conn, refusal, inflight.judged)
            await self._commit_alone(conn, inflight.messages)
            return False
        self._committed(inflight.judged, inflight.done_ns)
        return True

    async def _commit_alone(self, conn: Connection, messages: list[RawMessage]) -> None:
        """Judge and commit without pipelining, diagnosing refusals until it goes in."""
        for attempt in range(8):
            judged = await self._judge(messages, None)
            try:
                await ledger.commit_batch(conn, judged.write)
            except StorageRefused as refusal:
                if attempt == 7:
                    raise
                await self._diagnose(conn, refusal, judged)
                continue
            self._committed(judged, time.time_ns())
            return

    async def _diagnose(self, conn: Connection, refusal: StorageRefused, judged: Judged) -> None:
        if judged.write.from_seq != self.committed_seq:
            raise RuntimeError(  # a bug: the batch was judged on a checkpoint that moved
                f"refused batch built on {judged.write.from_seq}, committed {self.committed_seq}"
            )
        await self._refusals.diagnose(conn, refusal, judged)

    def _committed(self, judged: Judged, now_ns: int) -> None:
        write = judged.write
        metrics.CONSUMER_PENDING.set(self._puller.backlog_after(write.to_seq))
        self.committed_seq = write.to_seq
        self.progress.committed(write.to_seq)
        self.head_position = write.head
        self._head = judged.head
        self._batcher.forget_before(write.to_seq)
        self._worker.backoff.reset()
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
                reason=row.reason,
                event_id=row.event_id,
                session_id=row.session_id,
                subject=row.subject,
                stream_seq=row.stream_seq,
            )
        if self.on_commit is not None:
            self.on_commit(write.head)

    def _now(self) -> datetime:
        # recorded times never go backwards along positions, even if the clock does
        now = datetime.now(UTC)
        self._last_recorded = max(now, self._last_recorded)
        return self._last_recorded
