"""Why PostgreSQL refused a batch, and what the judge must learn so the retry goes in.

The judge is the first line; the database's constraints are the last. When they disagree,
the refusal says which rule (motionledger.errors): an eventId logged long ago (a duplicate
the judge's memory had forgotten), a creation the judge's facts missed (look them up
afresh), or a row PostgreSQL cannot hold at all. Such a row is found by trying each row
alone, and becomes a `storage_refused` dead letter; a message that cannot even be stored as
a dead letter is skipped, counted and logged loudly. The batch is then judged again.
"""

from __future__ import annotations

from .. import logs, metrics
from ..adapters.postgres import ledger
from ..adapters.postgres.database import Connection
from ..domain.reasons import Reason, Rejection
from ..errors import DuplicateEventId, JudgedBefore, StaleFact, StorageRefused
from .judging import Batcher, Judged

log = logs.get(__name__)


class Refusals:
    def __init__(self, batcher: Batcher, stream: str) -> None:
        self._batcher = batcher
        self._stream = stream

    async def diagnose(self, conn: Connection, refusal: StorageRefused, judged: Judged) -> None:
        """Teach the batcher what the refusal means; re-raise it when it is not the data."""
        batcher = self._batcher
        batcher.memory.clear()  # optimistic facts of the refused batch are void
        batcher.forget_uncommitted()
        write = judged.write
        log.warning(
            "ingest_batch_refused",
            error=str(refusal),
            constraint=refusal.constraint,
            from_seq=write.from_seq + 1,
            to_seq=write.to_seq,
        )
        if isinstance(refusal, DuplicateEventId | JudgedBefore):
            # an eventId judged long ago, beyond the judge's memory: its first verdict holds
            if await self._remember_priors(conn, judged.accepted_ids):
                return
            # Nothing in the log says so: the verdict the guard saw is in this very batch (a
            # dead letter of the same eventId). The judge holds copies to an earlier one's
            # verdict; should one slip by, it is a conflict, never a retry of the same batch.
            rejected = {row.event_id for row in write.dead_letters if row.event_id}
            for row in write.events:
                if row.event_id in rejected:
                    batcher.forced[row.stream_seq] = Rejection(
                        Reason.EVENT_ID_REUSED,
                        f"eventId {row.event_id} was rejected in the same batch",
                        "eventId",
                    )
            if not rejected & {row.event_id for row in write.events}:
                raise refusal
            return
        if isinstance(refusal, StaleFact):
            return  # the facts will be looked up afresh
        refused = await ledger.refused_events(conn, write.events)
        for seq, (row, why) in refused.items():
            if isinstance(why, DuplicateEventId):  # logged long ago: its first verdict holds
                await self._remember_priors(conn, [row.event_id])
            elif not isinstance(why, StaleFact):  # those: the facts are looked up afresh
                batcher.forced[seq] = Rejection(
                    Reason.STORAGE_REFUSED, f"PostgreSQL refused the event: {why}"
                )
        unstorable = await ledger.refused_dead_letters(conn, write.dead_letters)
        for seq, (_, why) in unstorable.items():
            metrics.UNSTORABLE.inc()
            log.error(
                "message_unstorable_skipped", stream=self._stream, stream_seq=seq, error=str(why)
            )
            batcher.skip.add(seq)
        if not refused and not unstorable:
            raise refusal  # not the data: the caller starts over from the checkpoint

    async def _remember_priors(self, conn: Connection, event_ids: list[str]) -> bool:
        """Teach the judge how these eventIds were judged before (the retry then sees it);
        False when the log knows none of them."""
        batcher = self._batcher
        found = await ledger.priors(conn, event_ids, batcher.max_event_bytes)
        for event_id, prior in found.items():
            batcher.memory.priors.put(event_id, prior)
            batcher.memory.event_ids.put(event_id, True)
        return bool(found)
