"""What every ``leadpipe`` command uses: the consoles, the exit codes, ``UserError``, and the
set-up from the command line (the configuration, the rules engine, the database).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.markup import escape
from sqlalchemy.orm import Session

from daemon.config import Settings, load_settings
from daemon.errors import LeadpipeError
from daemon.pipeline import Engine
from daemon.providers.model import ChatModel
from daemon.terminal import SafeConsole
from storage.db import Database

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2

# markup=False: names, subjects, details and regexes are user text; a "[/urgent]" in a
# subject must print as typed, not raise MarkupError. Styled lines escape what they embed.
# Piped output (logs, CI, `| less`) gets room for whole emails and phones, not 80 columns,
# and messages are never hard-wrapped (soft_wrap) for a file or a pipe to keep.
# SafeConsole: text from an email (a subject, a name, the body) is printed with its
# control characters escaped, so it cannot retitle or clear the reader's terminal.
out = SafeConsole(highlight=False, soft_wrap=True, markup=False, width=None if sys.stdout.isatty() else 200)
err = SafeConsole(stderr=True, highlight=False, soft_wrap=True, markup=False)


class UserError(LeadpipeError):
    """A failure the user can fix; the message says how. Exit status 1."""


def plural(n: int, noun: str) -> str:
    """``1 lead``, ``2 leads``, ``0 dead letters``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


# -- shared set-up ---------------------------------------------------------------------


def config_path_of(args: argparse.Namespace) -> str | None:
    path = args.config or os.environ.get("LEADPIPE_CONFIG")
    if path is None and Path("leadpipe.yaml").exists():
        path = "leadpipe.yaml"
    return path


def settings_of(args: argparse.Namespace) -> Settings:
    return load_settings(config_path_of(args))


def engine_of(settings: Settings, *, strict: bool = False) -> Engine:
    if not settings.rules_dir.is_dir():
        raise UserError(f"rules folder {settings.rules_dir} not found; set rules_dir in the configuration "
                        "or run leadpipe from the folder that holds rules/")
    engine = Engine.load(settings.rules_dir, region=settings.default_region,
                         regex_timeout=settings.regex_timeout, model=ChatModel.from_settings(settings.model))
    for e in engine.rules.errors:
        err.print(f"[yellow]rule file not loaded:[/] {escape(str(e))}", markup=True, highlight=False)
    if strict and engine.rules.errors:
        raise UserError("fix the rule files above (leadpipe rules check lists every problem)")
    return engine


def database_of(settings: Settings, *, existing: bool = False) -> Database:
    """The configured database. Commands that take emails in bring it up to date (creating
    it); with ``existing`` (commands that read, or act on rows already stored) it is taken
    as it is, and a missing or outdated one is an error naming it, rather than an empty
    database created beside the daemon's."""
    if existing:
        return Database.existing(settings.database_url)
    db = Database(settings.database_url)
    db.upgrade()
    return db


def existing_database(args: argparse.Namespace) -> Database:
    """The database of the configuration ``args`` names, for a command that only reads it:
    an error, not a new empty database, when there is none yet."""
    return database_of(settings_of(args), existing=True)


@contextmanager
def stored(args: argparse.Namespace) -> Iterator[Session]:
    """A session on ``existing_database(args)``, for a command that reads or acts on rows
    already stored."""
    with existing_database(args).session() as s:
        yield s
