"""docs/schema/: the committed JSON Schemas, made from the event Structs.

    .venv/bin/python -m tests.support.schema_docs     # (`make schema-docs`) rewrite them

`event.json` is exactly what `motionledger schema` prints; `<type>.json` is one event type
alone. tests/unit/test_schema_docs.py fails when a Struct changed and these were not rewritten.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from motionledger.domain.events import json_schema, json_schemas_by_type

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "docs" / "schema"
UNION = "event.json"


def render(schema: object) -> str:
    """The bytes `motionledger schema` prints (msgspec's 2-space indent, a final newline)."""
    return msgspec.json.format(msgspec.json.encode(schema), indent=2).decode() + "\n"


def expected() -> dict[str, str]:
    files = {UNION: render(json_schema())}
    files.update({f"{tag}.json": render(s) for tag, s in json_schemas_by_type().items()})
    return files


def write() -> None:
    SCHEMA_DIR.mkdir(parents=True, exist_ok=True)
    for name, text in expected().items():
        (SCHEMA_DIR / name).write_text(text)


if __name__ == "__main__":
    write()
