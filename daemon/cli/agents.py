"""``leadpipe agents``: the roster, with each agent's counts of today."""

from __future__ import annotations

import argparse
import dataclasses

from rich.table import Table

from daemon.cli.common import EXIT_OK, database_of, out, settings_of
from daemon.routing import roster
from daemon.terminal import Commands, json_text


def add_commands(cmds: Commands) -> None:
    """Add ``leadpipe agents``."""
    agents = cmds.command("agents", cmd_agents, "the agents, with today's counts")
    agents.add_argument("--json", action="store_true", help="one JSON object per agent")


def cmd_agents(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    db = database_of(settings, existing=True)
    report = roster.today(settings, db)
    if args.json:
        for a in report.agents:
            print(json_text(dataclasses.asdict(a)))
        return EXIT_OK
    if not report.agents:
        out.print("no agents configured: add them under `agents:` in the configuration "
                  "(leads are stored but not routed until then)")
        return EXIT_OK
    t = Table(title=f"agents — today since {report.since:%Y-%m-%d %H:%M} UTC", title_justify="left")
    for col in ("name", "slack user", "crm user", "active", "weight", "assigned", "claimed", "repeat", "next"):
        t.add_column(col)
    for a in report.agents:
        t.add_row(a.name, a.slack_user_id or "-", a.crm_user_id or "-", "yes" if a.active else "no",
                  str(a.weight), str(a.assigned), str(a.claimed), str(a.repeat), "◀" if a.next_up else "")
    out.print(t)
    out.print(f"drip (low tier, no agent): {report.drip}   unassigned: {report.unassigned}   "
              f"offered in Slack, waiting for a claim: {report.offered}")
    return EXIT_OK
