"""``leadpipe agents``: the roster, with each agent's counts of today; ``agents away NAME
--until …`` and ``agents back NAME`` set an agent away (skipped by round robin and claims)."""

from __future__ import annotations

import argparse
import dataclasses
from datetime import UTC, datetime

from rich.table import Table

from daemon.cli.common import EXIT_OK, UserError, database_of, out, settings_of
from daemon.routing import roster
from daemon.routing.availability import until_of
from daemon.terminal import Commands, json_text
from storage import routing as store


def add_commands(cmds: Commands) -> None:
    """Add ``leadpipe agents``."""
    agents = cmds.command("agents", cmd_agents, "the agents, with today's counts; "
                          "`agents away NAME --until 2d`, `agents back NAME`")
    agents.add_argument("action", nargs="?", choices=("away", "back"),
                        help="away: skip NAME in round robin and claims until --until; back: end it")
    agents.add_argument("name", nargs="?", metavar="NAME", help="the agent's name, as configured")
    agents.add_argument("--until", metavar="WHEN", help="a duration (3h, 2d, 1w) or a date or time in "
                        "the agent's time zone (2026-12-05, 2026-12-05T09:00)")
    agents.add_argument("--json", action="store_true", help="one JSON object per agent")


def cmd_away(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    agent = settings.agents_by_name.get(args.name or "")
    if agent is None:
        raise UserError(f"no agent named {args.name!r}; the agents are: "
                        + ", ".join(a.name for a in settings.agents))
    db = database_of(settings, existing=True)
    now = datetime.now(UTC)
    with db.session() as s:
        if args.action == "back":
            was = store.clear_away(s, agent.name)
            out.print(f"{agent.name} is back" + ("" if was else " (was not set away)"))
            return EXIT_OK
        if not args.until:
            raise UserError("agents away needs --until (e.g. --until 2d, or --until 2026-12-05)")
        try:
            until = until_of(args.until, now=now, zone_name=agent.time_zone)
        except ValueError as exc:
            raise UserError(f"--until: {exc}") from exc
        if until <= now:
            raise UserError(f"--until {args.until} is in the past")
        store.set_away(s, agent.name, until=until, at=now, by="cli")
    out.print(f"{agent.name} is away until {until:%Y-%m-%d %H:%M} UTC: round robin and claims skip them")
    return EXIT_OK


def cmd_agents(args: argparse.Namespace) -> int:
    if args.action:
        if not args.name:
            raise UserError(f"agents {args.action} needs the agent's NAME")
        return cmd_away(args)
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
    for col in ("name", "slack user", "crm user", "active", "weight", "assigned", "claimed", "repeat", "next",
                "teams", "available"):
        t.add_column(col)
    for a in report.agents:
        t.add_row(a.name, a.slack_user_id or "-", a.crm_user_id or "-", "yes" if a.active else "no",
                  str(a.weight), str(a.assigned), str(a.claimed), str(a.repeat), "◀" if a.next_up else "",
                  ", ".join(a.teams) or "-", "yes" if a.unavailable is None else a.unavailable)
    out.print(t)
    out.print(f"drip (low tier, no agent): {report.drip}   unassigned: {report.unassigned}   "
              f"offered in Slack, waiting for a claim: {report.offered}")
    return EXIT_OK
