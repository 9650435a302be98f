"""``leadpipe routing check`` and ``leadpipe routing test``: the lead flows, checked like rules."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from daemon.cli.common import EXIT_FAIL, EXIT_OK, UserError, engine_of, err, out, settings_of
from daemon.errors import ConfigError
from daemon.intake import inbox
from daemon.lead import Lead, Property
from daemon.pipeline.parse import parse_email
from daemon.routing import check
from daemon.routing.availability import Availability
from daemon.routing.decide import Roster, decide
from daemon.routing.flows import load_plan
from daemon.terminal import Commands, json_text


def add_commands(cmds: Commands) -> None:
    """Add ``leadpipe routing check`` and ``leadpipe routing test``."""
    group = cmds.group("routing", "lead flows and teams: check them, or see where a lead would go")
    group.command("check", cmd_routing_check, "unknown agents or teams, unreachable flows, overlapping "
                  "postal codes: each as file:line: key: problem")
    test = group.command("test", cmd_routing_test, "which flow a lead would take, to whom, and why")
    test.add_argument("files", nargs="+", type=Path, metavar="LEAD.json|EMAIL.eml",
                      help="a lead as JSON (the lead contract, as `leadpipe parse --json` prints) or an email")
    test.add_argument("--at", metavar="TIME", help="route as at this time (ISO 8601, UTC unless it says); "
                      "default: now")
    test.add_argument("--json", action="store_true", help="one JSON object per file")


def cmd_routing_check(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    try:
        plan = load_plan(settings)
    except ConfigError as exc:
        err.print(str(exc), highlight=False)
        return EXIT_FAIL
    found = check.findings(settings, plan)
    for f in found:
        out.print(str(f))
    flows = f"{len(plan.flows)} flow{'s' if len(plan.flows) != 1 else ''}"
    teams = f"{len(plan.teams)} team{'s' if len(plan.teams) != 1 else ''}"
    if found:
        err.print(f"{flows}, {teams}: {len(found)} problem{'s' if len(found) != 1 else ''}", highlight=False)
        return EXIT_FAIL
    out.print(f"{flows}, {teams}: ok" + ("" if plan.flows else " (no flows: every lead takes the "
                                          "default flow, one rotation of every active agent)"))
    return EXIT_OK


def cmd_routing_test(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    plan = load_plan(settings)
    roster = Roster.of(settings.agents)
    now = _at(args.at)
    status = EXIT_OK
    for path in args.files:
        lead = _lead_of(path, settings)
        if lead is None:
            status = EXIT_FAIL
            continue
        can_offer = bool(settings.routing.offer_hot_leads and settings.slack.bot_token
                         and settings.slack.hot_leads_channel)
        decision = decide(lead, roster, None, can_offer=can_offer, plan=plan, now=now,
                          available=Availability(now, plan.hours, {}), slack=bool(settings.slack.bot_token))
        choice = decision.choice
        if args.json:
            print(json_text({"file": str(path), "flow": decision.flow, "team": decision.team,
                             "method": decision.kind, "agent": decision.agent,
                             "candidates": [a for a in dict.fromkeys(decision.rotation) if a not in decision.skip],
                             "why": decision.why,
                             "tried": [{"flow": n, "matched": ok, "conditions": list(c)}
                                       for n, ok, c in (choice.tried if choice else ())]}))
            continue
        out.print(f"{path}: flow {decision.flow} → {_outcome(decision)}")
        for name, ok, conds in choice.tried if choice else ():
            out.print(f"  {'✔' if ok else '✘'} {name}: " + ("; ".join(conds) or "matches every lead"))
        out.print(f"  why: {decision.why}")
    return status


def _outcome(d: Any) -> str:
    team = f" in team {d.team}" if d.team else ""
    if d.kind == "round_robin":
        up = [a for a in dict.fromkeys(d.rotation) if a not in d.skip]
        return f"round robin{team} (available: {', '.join(up)}; the pointer decides who)"
    if d.kind == "offer":
        return f"offered in {d.channel or 'the hot-leads channel'} for claiming{team}"
    if d.kind in ("agent", "repeat"):
        return f"{d.agent}{team}"
    return {"pond": "the pond (unassigned, claimable)", "drip": "drip (low tier, no agent)"}.get(
        d.kind, "unassigned (no active agent)")


def _at(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC)
    try:
        at = datetime.fromisoformat(text)
    except ValueError as exc:
        raise UserError(f"--at: not a time: {text!r} (write 2026-11-02T13:30 or 2026-11-02T08:30-05:00)") from exc
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def _lead_of(path: Path, settings: Any) -> Lead | None:
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            err.print(f"error: cannot read {path}: {exc}", highlight=False)
            return None
        return lead_from_json(data.get("lead", data) if isinstance(data, dict) else {})
    try:
        raw = inbox.read_file(path)
    except OSError as exc:
        err.print(f"error: cannot read {path}: {exc.strerror}", highlight=False)
        return None
    outcome = parse_email(raw.data, engine_of(settings), received_at=raw.received_at)
    if not isinstance(outcome, Lead):
        err.print(f"{path}: not a lead: {outcome.to_json()}", highlight=False)
        return None
    return outcome


def lead_from_json(data: dict[str, Any]) -> Lead:
    """A ``Lead`` from the lead contract (only what routing reads; the rest is left out)."""
    p = data.get("property") or {}
    return Lead(
        source=str(data.get("source") or "unknown"), rule_version=str(data.get("rule_version") or "0"),
        full_name=data.get("full_name"), first_name=data.get("first_name"), email=data.get("email"),
        phone=data.get("phone"),
        property=Property(address=p.get("address"), city=p.get("city"), state=p.get("state"),
                          postal_code=None if p.get("postal_code") is None else str(p.get("postal_code")),
                          price=p.get("price")),
        budget_min=data.get("budget_min"), budget_max=data.get("budget_max"),
        intent=data.get("intent"), message=data.get("message"),
        score=int(data.get("score") or 0), tier=data.get("tier") or "standard",
    )
