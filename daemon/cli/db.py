"""``leadpipe db upgrade``: apply the database migrations."""

from __future__ import annotations

import argparse
from typing import Any

from daemon.cli.common import EXIT_OK, out, settings_of
from storage.db import Database


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``leadpipe db …`` to the command line's subcommands."""
    db = sub.add_parser("db", parents=[common], help="database maintenance")
    dbsub = db.add_subparsers(metavar="ACTION")
    up = dbsub.add_parser("upgrade", parents=[common], help="apply database migrations")
    up.set_defaults(func=cmd_db_upgrade)


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    db = Database(settings.database_url)
    db.upgrade()
    out.print(f"database {db.describe()} is at revision {db.current_revision()}")
    return EXIT_OK
