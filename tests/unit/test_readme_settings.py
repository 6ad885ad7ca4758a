"""Every setting is documented where the deploy files point: the README's table."""

from __future__ import annotations

from pathlib import Path

from motionledger.settings import ENV_PREFIX, Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_has_a_row_in_the_readme() -> None:
    rows = [line for line in README.read_text().splitlines() if line.startswith("| `")]
    for name in Settings.__struct_fields__:
        variable = f"`{ENV_PREFIX}{name.upper()}`"
        assert any(variable in row for row in rows), variable
