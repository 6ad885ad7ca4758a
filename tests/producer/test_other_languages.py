"""Producers in other languages work from the committed contract alone: the JSON Schema files
(equal to `motionledger schema`), the example payloads, docs/producers.md, and a JavaScript
producer on the official NATS client run against a real ledger."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import asyncpg
import jsonschema
import msgspec
import pytest

from motionledger.domain.events import DECODER, EVENT_TYPES, TAG_OF
from motionledger.domain.reasons import Reason
from motionledger.settings import Settings
from tests.support import schema_docs
from tests.support.ledger import running_ledger

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "docs" / "schema"
EXAMPLES = SCHEMAS / "examples"
PAGE = ROOT / "docs" / "producers.md"
JS = ROOT / "docs" / "examples"
NPM_CACHE = ROOT / ".ci" / "npm"  # gitignored; the install is reused across runs


def test_the_committed_union_schema_is_what_motionledger_schema_prints() -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "motionledger", "schema"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    assert (SCHEMAS / schema_docs.UNION).read_text() == printed, (
        "docs/schema is stale: run `make schema-docs`"
    )


def test_one_committed_schema_per_event_type_made_from_the_structs() -> None:
    expected = schema_docs.expected()
    committed = {p.name: p.read_text() for p in SCHEMAS.glob("*.json")}
    assert committed == expected, "docs/schema is stale: run `make schema-docs`"
    assert set(committed) == {schema_docs.UNION} | {f"{t}.json" for t in TAG_OF.values()}


@pytest.mark.parametrize("tag", sorted(TAG_OF.values()))
def test_each_example_fits_its_schema_and_the_ledgers_decoder(tag: str) -> None:
    raw = (EXAMPLES / f"{tag}.json").read_bytes()
    example = json.loads(raw)
    assert example["type"] == tag
    for schema_file in (f"{tag}.json", schema_docs.UNION):
        schema = json.loads((SCHEMAS / schema_file).read_text())
        jsonschema.Draft202012Validator(schema).validate(example)
    event = DECODER.decode(raw)
    assert TAG_OF[type(event)] == tag
    # and a schema that is really checked: the example less a required field is refused
    required = json.loads((SCHEMAS / f"{tag}.json").read_text())["required"]
    broken = {k: v for k, v in example.items() if k != required[-1]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(json.loads((SCHEMAS / f"{tag}.json").read_text())).validate(
            broken
        )
    with pytest.raises(msgspec.ValidationError):
        DECODER.decode(json.dumps(broken).encode())


def test_the_producers_page_states_the_wire_contract() -> None:
    page = PAGE.read_text()
    for cls in EVENT_TYPES:
        tag = TAG_OF[cls]
        assert f"`{tag}`" in page, tag
        assert f"`production.{cls.lane}.<sessionId>`" in page, cls.lane
    for reason in Reason:
        assert f"`{reason.value}`" in page, reason
    for needed in (
        "Nats-Msg-Id",
        "duplicate window",
        "262144",
        "motionledger dead-letters",
        "session.started",
        "docs/schema/",
        "examples/producer.mjs",
    ):
        assert needed in page, needed


def _npm_install() -> Path:
    """The example's packages, installed once into .ci/npm (skips on a network failure)."""
    NPM_CACHE.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy(JS / name, NPM_CACHE / name)
    shutil.copy(JS / "producer.mjs", NPM_CACHE / "producer.mjs")
    installed = NPM_CACHE / "node_modules" / "@nats-io" / "jetstream" / "package.json"
    if not installed.is_file():
        npm = shutil.which("npm")
        assert npm is not None
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],  # exactly the lock
            cwd=NPM_CACHE,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0:
            network = ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ETIMEDOUT", "ECONNRESET")
            if any(code in result.stderr for code in network):
                pytest.skip(f"npm install failed for network reasons: {result.stderr.strip()}")
            raise AssertionError(result.stderr)
    return NPM_CACHE / "producer.mjs"


@pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None, reason="node and npm not found"
)
async def test_the_javascript_producer_lands_its_events(
    settings: Settings, db: asyncpg.Connection
) -> None:
    script = await asyncio.to_thread(_npm_install)
    env = {**os.environ, "NATS_URL": settings.nats_url or "", "SUBJECT_ROOT": settings.subject_root}
    async with running_ledger(settings):
        run = await asyncio.create_subprocess_exec(
            shutil.which("node") or "node",
            str(script),
            "js-shoot-1",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(run.communicate(), 120)
        assert run.returncode == 0, err.decode()
        assert json.loads(out)["sessionId"] == "js-shoot-1"
        for _ in range(600):
            logged = await db.fetch(
                "SELECT type FROM ledger.events WHERE session_id = $1 ORDER BY position",
                "js-shoot-1",
            )
            if len(logged) == 4:
                break
            await asyncio.sleep(0.05)
    types = [row["type"] for row in logged]
    assert types[0] == "session.started"
    assert sorted(types[1:]) == ["director.event", "director.event", "music.moment"]
    assert await db.fetchval("SELECT count(*) FROM ledger.dead_letters") == 0
