"""The ``leadpipe`` command line. Only this module turns errors into exit codes.

Exit status: 0 success, 1 a failure the user can fix (the message says how), 2 bad usage.

Each command group is a module of this package that adds its subcommands with
``add_commands(cmds)`` (``daemon.terminal.Commands``) and holds their ``cmd_*`` functions; ``common`` holds what
they share (the consoles, ``UserError``, the configuration, the engine, the database).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from rich.markup import escape

from daemon.cli import agents, db, deliveries, dlq, leads, ops, parse, routing, rules, run
from daemon.cli.common import EXIT_FAIL, EXIT_USAGE, err
from daemon.errors import LeadpipeError
from daemon.ops.heartbeat import version
from daemon.terminal import Commands
from daemon.web.admin import commands as admin

#: the command groups, in the order ``leadpipe --help`` lists their commands
GROUPS = (run, parse, leads, rules, routing, dlq, deliveries, agents, db, ops, admin)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return EXIT_USAGE
    configure_logging(args)
    try:
        return int(args.func(args) or 0)
    except LeadpipeError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True, highlight=False)
        return EXIT_FAIL
    except KeyboardInterrupt:
        return 130


def configure_logging(args: argparse.Namespace) -> None:
    level = logging.DEBUG if getattr(args, "verbose", False) else logging.INFO
    if getattr(args, "quiet_logs", False):
        level = logging.WARNING
    from daemon.logs import TextFormatter, quiet_libraries

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(TextFormatter())  # an email's control characters escaped
    logging.basicConfig(level=level, handlers=[handler])
    quiet_libraries()  # Alembic's migration steps, the scheduler's job runs, HTTP requests


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE",
                        help="configuration file (default: $LEADPIPE_CONFIG, else ./leadpipe.yaml if present)")
    common.add_argument("-v", "--verbose", action="store_true", help="log debug detail")

    p = argparse.ArgumentParser(prog="leadpipe", description="Turn a lead inbox into routed, deduplicated leads.",
                                parents=[common])
    p.add_argument("--version", action="version", version=f"leadpipe {version()}",
                   help="print leadpipe's version and exit")
    cmds = Commands(p.add_subparsers(metavar="COMMAND"), common)
    for group in GROUPS:
        group.add_commands(cmds)
    return p


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
