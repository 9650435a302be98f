"""``leadpipe run [--once]``: the daemon, with a line per processed email on the console,
and the summary table that ``run --once`` and ``ingest`` print at the end.
"""

from __future__ import annotations

import argparse
import logging

from rich.table import Table

from daemon.cli.common import EXIT_OK, config_path_of, out, plural, settings_of
from daemon.lead import DeadLetter, Ignored, Lead
from daemon.pipeline import Processed
from daemon.terminal import Commands


def add_commands(cmds: Commands) -> None:
    """Add ``leadpipe run``."""
    run = cmds.command("run", cmd_run, "run the daemon", quiet_logs=False)
    run.add_argument("--once", action="store_true",
                     help="take in what is waiting, process it, print a summary and exit")


def cmd_run(args: argparse.Namespace) -> int:
    from daemon import logs
    from daemon.service import Service

    settings = settings_of(args)
    # Always, also at the default text/INFO: setup quiets the scheduler's line per job run.
    logs.setup(logging.DEBUG if args.verbose else settings.log_level, settings.log_format)
    service = Service(settings, console=ConsoleReport(), config_path=config_path_of(args))
    if args.once:
        results = service.run_once()
        print_summary(results)
        return EXIT_OK
    service.run_forever()
    return EXIT_OK


class ConsoleReport:
    """The console output of ``run``: one line per processed email."""

    def __call__(self, result: Processed) -> None:
        o = result.outcome
        if isinstance(o, Lead):
            out.print(f"lead #{result.lead_id}  {o.tier:<8} {o.score:>3}  {o.source:<14} {o.full_name or '-'}")
        elif isinstance(o, DeadLetter):
            out.print(f"dead letter #{result.dead_letter_id}  {o.reason.value}: {o.detail}")
        else:
            out.print(f"ignored email #{result.inbound_id}: {o.reason}")


def print_summary(results: list[Processed]) -> None:
    lead_rows = [r for r in results if isinstance(r.outcome, Lead)]
    dead_rows = [r for r in results if isinstance(r.outcome, DeadLetter)]
    ignored = [r for r in results if isinstance(r.outcome, Ignored)]
    if not results:
        out.print("nothing new to process")
        return
    if not lead_rows:
        out.print("no leads")
    else:
        t = Table(title=plural(len(lead_rows), "lead"), title_justify="left")
        for col in ("id", "source", "name", "email", "phone", "tier", "score"):
            t.add_column(col)
        for r in lead_rows:
            o = r.outcome
            assert isinstance(o, Lead)
            t.add_row(str(r.lead_id), o.source, o.full_name or "-", o.email or "-", o.phone or "-", o.tier,
                      str(o.score))
        out.print(t)
    if dead_rows:
        d = Table(title=plural(len(dead_rows), "dead letter"), title_justify="left")
        for col in ("id", "reason", "detail"):
            d.add_column(col)
        for r in dead_rows:
            o = r.outcome
            assert isinstance(o, DeadLetter)
            d.add_row(str(r.dead_letter_id), o.reason.value, o.detail)
        out.print(d)
    if ignored:
        out.print(f"{plural(len(ignored), 'email')} ignored (auto-replies, bounces, newsletters)")
