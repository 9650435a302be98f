"""``leadpipe db upgrade``: apply the database migrations."""

from __future__ import annotations

import argparse

from daemon.cli.common import EXIT_OK, out, settings_of
from daemon.terminal import Commands
from storage.db import Database


def add_commands(cmds: Commands) -> None:
    """Add ``leadpipe db …``."""
    cmds.group("db", "database maintenance").command(
        "upgrade", cmd_db_upgrade, "apply database migrations", quiet_logs=False)


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    db = Database(settings.database_url)
    db.upgrade()
    out.print(f"database {db.describe()} is at revision {db.current_revision()}")
    return EXIT_OK
