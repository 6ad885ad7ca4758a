"""The stall watch on a clock the test turns: when it reports a stall, and for how long."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from motionledger.errors import BrokerUnavailable
from motionledger.services.stall import LOG_EVERY_S, IngestProgress, StallWatch


class Broker:
    def __init__(self, last_seq: int) -> None:
        self.last_seq: int | BrokerUnavailable = last_seq

    async def __call__(self) -> int:
        if isinstance(self.last_seq, BrokerUnavailable):
            raise self.last_seq
        return self.last_seq


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def watch(progress: IngestProgress, broker: Broker, clock: Clock) -> tuple[StallWatch, list[float]]:
    reported: list[float] = []
    return StallWatch(progress, broker, reported.append, clock=clock), reported


async def test_nothing_waiting_is_no_stall_however_old_the_last_commit(clock: Clock) -> None:
    progress = IngestProgress(committed_seq=10, last_commit=0.0)
    stall, reported = watch(progress, Broker(10), clock)
    assert (await stall.check()).seconds == 0
    assert reported == [0.0]


async def test_a_stall_counts_from_when_messages_were_first_seen_waiting(clock: Clock) -> None:
    progress = IngestProgress(committed_seq=10, last_commit=0.0)  # idle for a long time
    broker = Broker(10)
    stall, reported = watch(progress, broker, clock)
    await stall.check()
    broker.last_seq = 12  # two arrive, and nothing commits them
    assert (await stall.check()).seconds == 0
    clock.now += 30
    report = await stall.check()
    assert (report.seconds, report.stuck_at_seq, report.stream_last_seq) == (30, 11, 12)
    assert reported[-1] == 30


async def test_commits_under_load_keep_it_near_zero_and_a_commit_ends_a_stall(
    clock: Clock,
) -> None:
    progress = IngestProgress(committed_seq=100, last_commit=clock.now)
    broker = Broker(150)  # always more waiting: a busy stream
    stall, _ = watch(progress, broker, clock)
    await stall.check()
    clock.now += 0.5
    progress.committed(140, clock.now)
    assert (await stall.check()).seconds == 0
    clock.now += 20
    assert (await stall.check()).seconds == 20
    progress.committed(150, clock.now)
    assert (await stall.check()).seconds == 0


async def test_a_standby_reports_no_stall(clock: Clock) -> None:
    progress = IngestProgress(committed_seq=0, last_commit=0.0, standing_by=True)
    stall, _ = watch(progress, Broker(500), clock)
    await stall.check()
    clock.now += 60
    assert (await stall.check()).seconds == 0


async def test_the_broker_gone_quiet_keeps_the_stall_measured(clock: Clock) -> None:
    progress = IngestProgress(committed_seq=5, last_commit=clock.now)
    broker = Broker(9)
    stall, _ = watch(progress, broker, clock)
    await stall.check()
    broker.last_seq = BrokerUnavailable("no responders")
    clock.now += 15
    assert (await stall.check()).stream_last_seq == 9
    assert stall.current.seconds == 15


async def test_a_stall_is_logged_every_few_seconds_with_where_it_is_stuck(clock: Clock) -> None:
    progress = IngestProgress(committed_seq=5, last_commit=clock.now)
    progress.last_error = "database: DatabaseUnavailable('connection refused')"
    stall, _ = watch(progress, Broker(9), clock)
    with capture_logs() as logs:
        await stall.check()
        clock.now += LOG_EVERY_S + 1
        await stall.check()
        clock.now += 1
        await stall.check()  # too soon to say it again
    said = [entry for entry in logs if entry["event"] == "ingest_stalled"]
    assert len(said) == 1
    assert said[0]["stuck_at_seq"] == 6
    assert said[0]["last_error"].startswith("database:")
