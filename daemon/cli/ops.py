"""``leadpipe status | doctor | stats``: the health report, the check of the configuration,
the database, the rules, each mailbox and each destination, and the numbers per source.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.table import Table

from daemon.cli.common import (
    EXIT_FAIL,
    EXIT_OK,
    UserError,
    config_path_of,
    database_of,
    out,
    settings_of,
)
from daemon.config import Settings, parse_duration
from daemon.pipeline import Engine
from daemon.terminal import Commands, json_text
from storage.db import Database


def add_commands(cmds: Commands) -> None:
    """Add ``leadpipe status``, ``doctor`` and ``stats``."""
    status = cmds.command("status", cmd_status, "database, queue and mailbox health")
    status.add_argument("--quiet", action="store_true", help="print nothing; exit 0 when healthy")
    status.add_argument("--json", action="store_true", help="the whole report as one JSON object")
    cmds.command("doctor", cmd_doctor, "check the configuration, the database, the rules and each mailbox",
                 quiet_logs=False)
    stats = cmds.command("stats", cmd_stats, "per source over 24 h and 7 d: emails, leads, dead letters, "
                         "drift, time to route and to claim; per agent, team, source and flow: time to accept")
    stats.add_argument("--json", action="store_true", help="one JSON object per source and window, then "
                       "one per agent, team, source and flow (window `responses-PERIOD`)")
    stats.add_argument("--period", default="7d", metavar="DURATION",
                       help="the period of the response-time figures (default 7d; e.g. 24h, 30d)")


def cmd_doctor(args: argparse.Namespace) -> int:
    from daemon.errors import MailboxError, StorageError
    from daemon.intake.imap import check

    failures = 0

    def report(ok: bool, what: str) -> None:
        nonlocal failures
        failures += not ok
        out.print(f"{'ok  ' if ok else 'FAIL'}  {what}", highlight=False)

    settings = settings_of(args)
    path = config_path_of(args)  # --config, $LEADPIPE_CONFIG, else ./leadpipe.yaml if present
    report(True, f"configuration: {Path(path).resolve()}" if path else "configuration: defaults (no --config, "
           "$LEADPIPE_CONFIG or ./leadpipe.yaml)")
    try:  # as it is: doctor only looks, and creates no database at a mistyped path
        db = Database.existing(settings.database_url)
        report(True, f"database {db.describe()} at revision {db.current_revision()}")
        db.dispose()
    except StorageError as exc:
        report(False, f"database: {exc}")
    engine = Engine.load(settings.rules_dir, region=settings.default_region) if settings.rules_dir.is_dir() else None
    if engine is None:
        report(False, f"rules folder {settings.rules_dir} not found")
    else:
        report(not engine.rules.errors, f"rules: {len(engine.rules.rules)} sources loaded, "
               f"{len(engine.rules.errors)} files refused (leadpipe rules check)")
    if not settings.mailboxes:
        report(True, f"no mailbox configured: the directory inbox {settings.inbox_dir} is watched")
    for m in settings.mailboxes:
        try:
            report(True, check(m).summary())
        except MailboxError as exc:
            report(False, str(exc))
    if settings.slack.bot_token:
        from daemon.errors import DeliveryError
        from notifiers.slack import Slack

        try:
            report(True, Slack.from_config(settings.slack.model_dump()).check())
        except DeliveryError as exc:
            report(False, f"Slack: {exc} (check slack.bot_token and slack.base_url)")
    _doctor_destinations(settings, report)
    out.print("all checks passed" if not failures else f"{failures} checks failed")
    return EXIT_FAIL if failures else EXIT_OK


def _doctor_destinations(settings: Settings, report: Any) -> None:
    """Each CRM's credentials, with a harmless read (a webhook has nothing to check)."""
    from daemon.delivery.dispatch import build_notifiers, lead_destinations
    from daemon.errors import ConfigError, DeliveryError

    try:
        built = build_notifiers(settings)
        names = list(lead_destinations(settings))
    except ConfigError as exc:
        report(False, str(exc))
        return
    for name in names:
        check = getattr(built[name], "check", None)
        if check is None:
            report(True, f"{name}: configured (nothing to check before the first lead)")
            continue
        try:
            report(True, f"{name}: {check()}")
        except DeliveryError as exc:
            report(False, f"{name}: {exc} (check its key and base_url under notifiers:)")


def cmd_stats(args: argparse.Namespace) -> int:
    from daemon.ops import responses, stats
    from daemon.routing.flows import load_plan

    settings = settings_of(args)
    try:
        period = parse_duration(args.period)
    except ValueError as exc:
        raise UserError(f"--period: {exc}") from exc
    db = database_of(settings, existing=True)
    rows = stats.compute(db)
    answers = responses.compute(db, load_plan(settings), period=period)
    if args.json:
        for r in rows:
            print(json_text(r.to_json()))
        for f in answers:
            print(json_text({"window": f"responses-{args.period}", **f.to_json()}))
        return EXIT_OK
    for window, _ in stats.WINDOWS:
        mine = [r for r in rows if r.window == window]
        t = Table(title=f"last {window}", title_justify="left")
        for col in ("source", "emails", "leads", "dead letters", "drift", "route p50", "route p95",
                    "claim p50"):
            t.add_column(col, justify="left" if col == "source" else "right")
        for r in mine:
            t.add_row(r.source, str(r.emails), str(r.leads), str(r.dead_letters), str(r.drift_warnings),
                      stats.seconds(r.route_median), stats.seconds(r.route_p95),
                      stats.seconds(r.claim_median))
        out.print(t if mine else f"last {window}: nothing received")
    print_responses(answers, args.period)
    return EXIT_OK


def print_responses(answers: list[Any], period: str) -> None:
    """The time-to-accept tables of ``leadpipe stats``, one per agent, team, source and flow."""
    from daemon.ops import responses
    from daemon.ops.stats import seconds

    if not answers:
        out.print(f"time to accept, last {period}: no lead was given to an agent")
        return
    for by in responses.GROUPS:
        mine = [f for f in answers if f.by == by]
        if not mine:
            continue
        since = "from its assignment" if by == "agent" else "from the lead's arrival"
        t = Table(title=f"time to accept per {by}, last {period} ({since})", title_justify="left")
        for col in (by, "received", "accepted", "p50", "p90", "within deadline", "reassigned", "claimed"):
            t.add_column(col, justify="left" if col == by else "right")
        for f in mine:
            t.add_row(f.name, str(f.received), str(f.accepted), seconds(f.median), seconds(f.p90),
                      responses.share(f.within_deadline), str(f.reassigned), str(f.claimed))
        out.print(t)


def cmd_status(args: argparse.Namespace) -> int:
    from daemon.service import health

    settings = settings_of(args)
    report = health(settings)
    if args.json:
        print(json.dumps(report, default=str, ensure_ascii=False, indent=2))
    elif not args.quiet:
        for line in status_lines(report):
            out.print(line, highlight=False)
    return EXIT_OK if report.get("healthy") else EXIT_FAIL


def status_lines(report: dict[str, Any]) -> list[str]:
    """``leadpipe status`` for people: the verdict, each check, the daemons, the counts."""
    failed = report.get("failed") or []
    lines = ["healthy: yes" if report.get("healthy") else "healthy: NO (failing: " + ", ".join(failed) + ")"]
    checks = report.get("checks") or []
    width = max((len(c["name"]) for c in checks), default=0)
    for c in checks:
        lines.append(f"{c['name']:<{width}}  {'ok  ' if c['ok'] else 'FAIL'}  {c['detail']}")
    daemons = report.get("daemons")
    if daemons:
        lines.append("daemons (the last day):")
        for d in daemons:
            lines.append(f"  {d['state']:<8} {d['host']} pid {d['pid']}, version {d['version']}, started "
                         f"{_utc(d['started_at'])}, last beat {d['last_beat_seconds_ago']}s ago")
    if "emails" in report:
        lines.append("emails:       " + _counts(report["emails"]))
        lines.append("deliveries:   " + _counts(report["deliveries"]))
        lines.append(f"dead letters: {report['open_dead_letters']} open")
    return lines


def _counts(by_status: dict[str, int]) -> str:
    return ", ".join(f"{n} {status}" for status, n in sorted(by_status.items())) or "none"


def _utc(iso: str) -> str:
    return iso.replace("T", " ").replace("+00:00", " UTC")
