"""``leadpipe parse FILE.eml…`` (read emails, no side effects) and ``leadpipe ingest
FILE.eml|DIR…`` (push emails through the whole pipeline).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from daemon.cli.common import (
    EXIT_FAIL,
    EXIT_OK,
    UserError,
    database_of,
    engine_of,
    err,
    out,
    settings_of,
)
from daemon.cli.printing import print_outcome
from daemon.cli.run import print_summary
from daemon.intake import inbox
from daemon.lead import DeadLetter, Lead, Origin, ParseOutcome
from daemon.pipeline import Processed, Worker, parse_email
from daemon.routing import roster
from daemon.terminal import Commands, json_text


def add_commands(cmds: Commands) -> None:
    """Add ``leadpipe parse`` and ``leadpipe ingest``."""
    parse = cmds.command("parse", cmd_parse, "parse, normalize and score emails without side effects")
    parse.add_argument("files", nargs="+", type=Path, metavar="FILE.eml", help="one or more email files")
    parse.add_argument("--json", action="store_true", help="JSON (one object per line with several files)")

    ingest = cmds.command("ingest", cmd_ingest, "push emails through the whole pipeline", quiet_logs=False)
    ingest.add_argument("files", nargs="+", type=Path, metavar="FILE.eml|DIR",
                        help="email files, or folders whose *.eml files (also in subfolders) are taken")


def cmd_parse(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    engine = engine_of(settings)
    several = len(args.files) > 1
    status = EXIT_OK
    for path in args.files:
        try:
            raw = inbox.read_file(path)
        except OSError as exc:
            err.print(f"error: cannot read {path}: {exc.strerror}", highlight=False)
            status = EXIT_FAIL
            continue
        outcome = parse_email(raw.data, engine, received_at=raw.received_at)
        if args.json:
            payload = _json_outcome(outcome)
            if several:
                payload = {"file": str(path), **payload}
                print(json_text(payload))
            else:
                body = payload.get("lead", payload)
                print(json_text(body if isinstance(outcome, Lead) else payload, indent=2))
        else:
            print_outcome(path, outcome)
    return status


def _json_outcome(outcome: ParseOutcome) -> dict[str, Any]:
    if isinstance(outcome, Lead):
        return {"lead": outcome.to_json()}
    if isinstance(outcome, DeadLetter):
        return {"dead_letter": outcome.to_json()}
    return {"ignored": outcome.to_json()}


def cmd_ingest(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    engine = engine_of(settings)
    db = database_of(settings)
    files = _expand(args.files)
    if not files:
        raise UserError("no .eml files found in " + ", ".join(map(str, args.files)))
    results: list[Processed] = []
    worker = Worker(db, lambda: engine, on_processed=results.append, router=roster.router_for(settings, db))
    for path in files:
        try:
            stored = inbox.accept(db, inbox.read_file(path, Origin.CLI))
        except OSError as exc:
            raise UserError(f"cannot read {path}: {exc.strerror}") from exc
        if not stored.created:
            out.print(f"{path}: already stored as email #{stored.id} ({stored.status}); not processed again")
            continue
        worker.process(stored.id)
    print_summary(results)
    return EXIT_OK


def _expand(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        files.extend(sorted(p.rglob("*.eml")) if p.is_dir() else [p])
    return files
