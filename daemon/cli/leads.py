"""``leadpipe leads list | show``: the stored leads, and one lead with its score, its
deliveries and, on request, the email it was read from.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.table import Table

from daemon.cli.common import EXIT_OK, UserError, existing_database, out, plural, stored
from daemon.cli.deliveries import print_for_lead
from daemon.cli.printing import print_outcome, print_stored_email
from daemon.terminal import Commands, json_text
from storage import inbound, leads


def add_commands(cmds: Commands) -> None:
    """Add ``leadpipe leads …``."""
    group = cmds.group("leads", "stored leads")
    llist = group.command("list", cmd_leads_list, "stored leads, newest first")
    llist.add_argument("--json", action="store_true", help="one lead contract per line")
    llist.add_argument("--limit", type=int, default=50, metavar="N", help="at most N leads (default: 50)")
    llist.add_argument("--source", metavar="SOURCE", help="only leads of this source (e.g. zillow)")
    llist.add_argument("--tier", choices=("hot", "standard", "low"), help="only leads of this tier")
    lshow = group.command("show", cmd_leads_show, "one lead with its warnings and score")
    lshow.add_argument("id", type=int, help="the lead's id (leadpipe leads list shows them)")
    lshow.add_argument("--json", action="store_true", help="the stored lead contract as JSON")
    lshow.add_argument("--email", action="store_true", help="also print the text of the email it was read from")


def cmd_leads_list(args: argparse.Namespace) -> int:
    with stored(args) as s:
        rows = leads.newest(s, limit=args.limit, source=args.source, tier=args.tier)
    if args.json:
        for row in rows:
            print(json_text(row.to_json()))
        return EXIT_OK
    t = Table(title=plural(len(rows), "most recent lead"), title_justify="left")
    for col in ("id", "received", "source", "name", "email", "phone", "tier", "score", "status", "agent"):
        t.add_column(col)
    for r in rows:
        lead = r.lead
        when = lead.received_at or r.created_at
        t.add_row(str(r.id), when.strftime("%Y-%m-%d %H:%M") if when else "-", lead.source,
                  lead.full_name or "-", lead.email or "-", lead.phone or "-", lead.tier, str(lead.score),
                  r.status, r.agent or "-")
    out.print(t)
    return EXIT_OK


def cmd_leads_show(args: argparse.Namespace) -> int:
    db = existing_database(args)
    with db.session() as s:
        row = leads.get(s, args.id)
        raw = inbound.get_raw(s, row.inbound_email_id) if args.email and row and row.inbound_email_id else None
    if row is None:
        raise UserError(f"no lead #{args.id} (leadpipe leads list shows the ids)")
    if args.json:
        print(json_text(row.to_json(), indent=2))
        return EXIT_OK
    print_outcome(Path(f"lead #{row.id}"), row.lead)
    out.print(f"status: {row.status}   agent: {row.agent or '-'}   claimed by: {row.claimed_by or '-'}")
    for line in row.lead.score_breakdown:
        out.print(f"  score {line.points:+d}  {line.name}")
    print_for_lead(db, row.id)
    if args.email:
        if raw is None:
            out.print(f"--- the email of lead #{row.id} is no longer stored")
        else:
            print_stored_email(raw)
    return EXIT_OK
