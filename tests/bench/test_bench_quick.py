"""`python -m bench --quick` runs every part and reports; never how fast (timings stay out
of tests). It must leave no database or stream of its own behind."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
from nats.aio.client import Client

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(600)
async def test_quick_bench_runs_every_part_and_reports(
    tmp_path: Path, pg_admin_url: str, nats_url: str, nc: Client
) -> None:
    argv = [sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)]
    argv += ["--database-url", pg_admin_url, "--nats-url", nats_url]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOTIONLEDGER_")}
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, timeout=540, check=False)
    assert done.returncode == 0, done.stderr.decode()[-4000:]

    (result,) = tmp_path.glob("*.json")
    results = json.loads(result.read_text())
    drain = results["drain"]
    for rate in ("plain_rate", "naive_rate", "copy_rate", "ledger_rate"):
        assert drain[rate] > 0
    assert results["rebuild"]["rate"] > 0
    assert results["rebuild_big"]["rate"] > 0
    assert [level["label"] for level in results["load"]] == ["1k", "5k", "80% max"]
    for level in results["load"]:
        assert level["events"] > 0
        for key in ("commit_ms", "visible_ms", "lag_ms"):
            assert 0 <= level[key]["p50"] <= level[key]["p99"] <= level[key]["max"]
        assert level["cpu_seconds"] > 0
        assert level["peak_rss_mb"] > 0
    queries = results["queries"]["latency_ms"]
    assert set(queries) == {"timeline", "stills", "events_page_1", "events_page_20"}
    derived = results["derived"]  # issue 14's figures, beside the other queries
    for name in ("cut_log_minute", "hero_windows_minute", "alignment_minute", "timeline_as_of"):
        assert 0 < derived[name]["p50"] <= derived[name]["p99"]
    assert derived["full_page"]["segments"] == 10_000
    assert results["scale"]["small_us_per_event"] > 0
    live = results["live"]  # issue 13: the catch-up index's cost, and followers over SSE
    assert live["index"]["with_rate"] > 0
    assert live["index"]["without_rate"] > 0
    assert [level["stalled"] for level in live["levels"]] == [False, False, True]
    for level in live["levels"]:
        assert level["complete"]  # every follower got every event
        assert 0 < level["latency_ms"]["p50"] <= level["latency_ms"]["p99"]
    assert results["scale"]["big_us_per_event"] > 0
    # every target has a verdict, in the JSON, the Markdown and the printed table
    judged = [c for c in results["checks"] if c["ok"] is not None]
    assert len(judged) >= 12
    markdown = result.with_suffix(".md").read_text()
    printed = done.stdout.decode()
    for check in judged:
        assert check["figure"] in markdown
        assert check["figure"][:20] in printed
    if importlib.util.find_spec("matplotlib") is not None:
        assert result.with_suffix(".png").stat().st_size > 10_000

    scratch = results["scratch"]
    assert scratch["databases"]
    assert scratch["streams"]
    admin = await asyncpg.connect(pg_admin_url)
    try:
        left = await admin.fetch(
            "SELECT datname FROM pg_database WHERE datname = ANY($1::text[])", scratch["databases"]
        )
    finally:
        await admin.close()
    assert [r["datname"] for r in left] == []
    streams = {s.config.name for s in await nc.jetstream().streams_info()}
    assert streams.isdisjoint(scratch["streams"])
