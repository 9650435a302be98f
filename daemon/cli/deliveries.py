"""``leadpipe deliveries list | show | retry``, and the deliveries under ``leadpipe leads
show ID``: every outbox row (a Slack post, a CRM call, a webhook) with its state, and each
attempt. ``retry`` makes rows due again with a fresh count of attempts; the running
daemon's dispatcher sends them within about a second (``leadpipe run --once`` does too).
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

from rich.table import Table

from daemon.cli.common import UserError, out, stored
from daemon.delivery.history import (
    STATUSES,
    attempt_lines,
    of_lead,
    state,
    timestamp,
    to_json,
    when,
)
from daemon.errors import LeadpipeError
from daemon.terminal import Commands, json_text
from storage import outbox
from storage.db import Database
from storage.outbox import Attempt


class NoSuchDelivery(LeadpipeError):
    """Raised when a delivery id given on the command line does not exist."""


def add_commands(cmds: Commands) -> None:
    """Add ``leadpipe deliveries …``."""
    group = cmds.group("deliveries", "outbound deliveries (Slack, CRMs, webhooks): list, show, retry")
    ls = group.command("list", cmd_list, "deliveries, newest first")
    ls.add_argument("--status", choices=sorted(STATUSES),
                    help="only dead ones, pending ones (waiting or being sent) or delivered ones")
    ls.add_argument("--notifier", metavar="NAME", help="e.g. followupboss, hubspot, webhook, slack")
    ls.add_argument("--lead", type=int, metavar="ID", help="only the deliveries of lead ID")
    ls.add_argument("--limit", type=int, default=50, metavar="N", help="at most N deliveries (default: 50)")
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    show = group.command("show", cmd_show, "one delivery with every attempt")
    show.add_argument("id", type=int, help="the delivery's id (leadpipe deliveries list shows them)")
    retry = group.command("retry", cmd_retry, "make deliveries due again now, with a fresh count of attempts")
    retry.add_argument("ids", nargs="*", type=int, metavar="ID", help="the deliveries to send again")
    retry.add_argument("--dead", action="store_true", help="every dead delivery")
    retry.add_argument("--notifier", metavar="NAME", help="with --dead: only this notifier's")


# -- commands ------------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    with stored(args) as s:
        rows = outbox.listing(s, status=STATUSES[args.status] if args.status else None,
                              notifier=args.notifier, lead_id=args.lead, limit=args.limit)
    if args.json:
        for d in rows:
            print(json_text(to_json(d), default=str))
        return 0
    t = Table(title=f"{len(rows)} deliveries", title_justify="left")
    for col in ("id", "lead", "notifier", "action", "status", "attempts", "when", "last error"):
        t.add_column(col)
    for d in rows:
        t.add_row(str(d.id), str(d.lead_id or "-"), d.notifier, d.action, state(d), str(d.attempts),
                  when(d), (d.last_error or "")[:80] or "-")
    out.print(t)
    if any(d.status == "dead" for d in rows):
        out.print("dead deliveries wait for you: leadpipe deliveries show ID, then "
                  "leadpipe deliveries retry ID… (or --dead)")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    with stored(args) as s:
        d = outbox.get(s, args.id)
        log = outbox.attempts(s, args.id) if d else []
    if d is None:
        raise NoSuchDelivery(f"no delivery #{args.id} (leadpipe deliveries list shows the ids)")
    out.print(f"delivery #{d.id}: {d.notifier} {d.action} for lead #{d.lead_id or '-'} — {state(d)}")
    since = f" ({d.attempts} since the last retry)" if d.attempts != len(log) else ""
    out.print(f"key:      {d.idempotency_key}\ncreated:  {timestamp(d.created_at)}\nattempts: {len(log)}{since}")
    if d.status in outbox.WAITING:
        out.print(f"next:     {timestamp(d.next_attempt_at)}")
    if d.delivered_at:
        out.print(f"delivered {timestamp(d.delivered_at)}")
    if d.payload:
        out.print(f"payload:  {json.dumps(d.payload, ensure_ascii=False)}")
    if d.result:
        out.print(f"result:   {json.dumps(d.result, ensure_ascii=False)}")
    if d.last_error:
        out.print(f"error:    {d.last_error}")
    print_attempts(log, indent="")
    if d.status == "dead":
        out.print(f"--- after fixing the cause: leadpipe deliveries retry {d.id}")
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    if not args.ids and not args.dead:
        raise UserError("say which deliveries: IDs, or --dead")
    if args.ids and args.dead:
        raise UserError("give IDs or --dead, not both")
    now = datetime.now(UTC)
    with stored(args) as s:
        if args.dead:
            ids = [d.id for d in outbox.listing(s, status="dead", notifier=args.notifier, limit=None)]
        else:
            found = {i: outbox.get(s, i) for i in args.ids}
            unknown = [i for i, d in found.items() if d is None]
            if unknown:
                raise NoSuchDelivery("no delivery " + ", ".join(f"#{i}" for i in unknown))
            skip = {}
            for i, d in found.items():
                if d is not None and d.status == "delivered":
                    skip[i] = "was delivered already; not sent again"
                elif d is not None and d.status == "sending" and d.next_attempt_at > now:
                    skip[i] = "is being sent right now; see leadpipe deliveries show"
            for i, why in skip.items():
                out.print(f"delivery #{i} {why}")
            ids = [i for i in args.ids if i not in skip]
        n = outbox.retry(s, ids, at=now) if ids else 0
    out.print(f"{n} deliveries due again now; the running daemon sends them within a second "
              "(or run leadpipe run --once)")
    return 0


# -- shared with ``leads show`` ------------------------------------------------------------


def print_for_lead(db: Database, lead_id: int) -> None:
    """The lead's deliveries, each with its attempts."""
    rows = of_lead(db, lead_id)
    if not rows:
        out.print("deliveries: none")
        return
    out.print("deliveries:")
    for d, log in rows:
        n = len(log)
        out.print(f"  #{d.id} {d.notifier} {d.action}: {state(d)}, {n} attempt{'s' * (n != 1)}",
                  highlight=False)
        print_attempts(log, indent="    ")


def print_attempts(log: list[Attempt], *, indent: str) -> None:
    for line in attempt_lines(log, indent=indent):
        out.print(line, highlight=False)
