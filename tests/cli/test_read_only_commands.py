"""Commands that only read (or act on stored rows) never create or migrate a database
(``Database.existing``).

When these fail, ``leadpipe status`` run while the daemon's SQLite file was moved away
creates and migrates a fresh empty database at that path: ``/readyz`` then answers 200
while the daemon goes on writing to the deleted file, and ``leads list`` shows 0 rows.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect
from sqlalchemy.pool import NullPool

from daemon.cli import main

REPO = Path(__file__).resolve().parents[2]
READ_ONLY = [
    ["status"], ["status", "--quiet"], ["status", "--json"], ["leads", "list"], ["leads", "show", "1"],
    ["dlq", "list"], ["dlq", "show", "1"], ["deliveries", "list"], ["deliveries", "show", "1"],
    ["stats"], ["agents"], ["doctor"],
    # they write, but only to rows already stored: nothing to do without the daemon's database
    ["dlq", "replay", "--all"], ["deliveries", "retry", "--dead"],
]


@pytest.mark.parametrize("command", READ_ONLY, ids=" ".join)
def test_a_read_only_command_on_a_missing_sqlite_file_exits_1_naming_it_and_creates_nothing(
        command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    missing = tmp_path / "data" / "lp.db"
    config = tmp_path / "leadpipe.yaml"
    config.write_text(f"database_url: sqlite:///{missing}\nrules_dir: {REPO / 'rules'}\n")
    assert main([*command, "--config", str(config)]) == 1
    said = capsys.readouterr()
    if command != ["status", "--quiet"]:
        assert str(missing) in " ".join((said.out + said.err).split()), said
    assert sorted(p.name for p in tmp_path.iterdir()) == ["leadpipe.yaml"]  # no data/, no -wal, -shm


def test_status_on_a_missing_database_file_exits_non_zero_and_creates_nothing(tmp_path: Path):
    """The daemon's file (and its -wal, -shm) moved away: ``status`` as a process."""
    (tmp_path / "leadpipe.yaml").write_text("database_url: sqlite:///leadpipe.db\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADPIPE_")}
    done = subprocess.run([sys.executable, "-m", "daemon.cli", "status", "--config", "leadpipe.yaml"],
                          cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1
    assert f"no database at {tmp_path / 'leadpipe.db'}" in done.stdout
    assert "healthy: NO (failing: database)" in done.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["leadpipe.yaml"]


@pytest.mark.parametrize("command", [["status"], ["leads", "list"], ["stats"]], ids=" ".join)
def test_a_read_only_command_does_not_migrate_an_empty_database(
        command: list[str], database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """An empty database (a new PostgreSQL database, an empty file) is told, not filled."""
    config = tmp_path / "leadpipe.yaml"
    config.write_text(f"database_url: {database_url}\n")
    if database_url.startswith("sqlite"):
        Path(database_url.removeprefix("sqlite:///")).touch()
    assert main([*command, "--config", str(config)]) == 1
    said = capsys.readouterr()
    assert "is at revision none" in " ".join((said.out + said.err).split())
    assert "leadpipe db upgrade" in " ".join((said.out + said.err).split())
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            assert inspect(conn).get_table_names() == []
    finally:
        engine.dispose()
