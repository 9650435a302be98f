"""``leadpipe dlq list | show | replay``: the dead letters (emails no rule could parse),
one with the email's text, and replaying them against the current rules.
"""

from __future__ import annotations

import argparse

from rich.table import Table

from daemon.cli.common import (
    EXIT_OK,
    UserError,
    database_of,
    engine_of,
    err,
    out,
    plural,
    settings_of,
    stored,
)
from daemon.cli.printing import print_stored_email
from daemon.lead import Ignored, Lead, Origin
from daemon.pipeline import Engine, replay
from daemon.routing import roster
from daemon.routing.assign import Router
from daemon.terminal import Commands, json_text
from storage import dead_letters, inbound
from storage.db import Database


def add_commands(cmds: Commands) -> None:
    """Add ``leadpipe dlq …``."""
    group = cmds.group("dlq", "dead letters: emails no rule could parse")
    dlist = group.command("list", cmd_dlq_list, "open dead letters, newest first")
    dlist.add_argument("--all", action="store_true", help="include resolved ones")
    dlist.add_argument("--source", metavar="SOURCE", help="only dead letters of this source")
    dlist.add_argument("--json", action="store_true", help="one JSON object per dead letter")
    dshow = group.command("show", cmd_dlq_show, "one dead letter: reason, rule, fields, the email's text")
    dshow.add_argument("id", type=int, help="the dead letter's id (leadpipe dlq list shows them)")
    dreplay = group.command("replay", cmd_dlq_replay, "re-run dead letters against the current rules")
    dreplay.add_argument("ids", nargs="*", type=int, metavar="ID", help="the dead letters to replay")
    dreplay.add_argument("--source", metavar="SOURCE", help="every open dead letter of this source")
    dreplay.add_argument("--all", action="store_true", help="every open dead letter")


def cmd_dlq_list(args: argparse.Namespace) -> int:
    with stored(args) as s:
        rows = dead_letters.listing(s, status=None if args.all else "open", source=args.source)
    if args.json:
        for r in rows:
            print(json_text({"id": r.id, "status": r.status, "message_id": r.message_id, "subject": r.subject,
                              **r.dead_letter.to_json()}))
        return EXIT_OK
    t = Table(title=plural(len(rows), "dead letter"), title_justify="left")
    for col in ("id", "when", "status", "reason", "rule", "subject"):
        t.add_column(col)
    for r in rows:
        t.add_row(str(r.id), r.created_at.strftime("%Y-%m-%d %H:%M"), r.status, r.dead_letter.reason.value,
                  r.dead_letter.rule or "-", r.subject or "-")
    out.print(t)
    return EXIT_OK


def cmd_dlq_show(args: argparse.Namespace) -> int:
    with stored(args) as s:
        row = dead_letters.get(s, args.id)
        raw = inbound.get_raw(s, row.inbound_email_id) if row else None
    if row is None or raw is None:
        raise UserError(f"no dead letter #{args.id} (leadpipe dlq list shows the ids)")
    d = row.dead_letter
    out.print(f"dead letter #{row.id} ({row.status}), email #{row.inbound_email_id}, {row.created_at:%Y-%m-%d %H:%M}")
    out.print(f"reason:   {d.reason.value}\ndetail:   {d.detail}\nrule:     {d.rule or '-'}", highlight=False)
    out.print(f"message:  {row.message_id or '-'}\nsubject:  {row.subject or '-'}", highlight=False)
    if d.fields_found:
        out.print("found:")
        for k, v in d.fields_found.items():
            out.print(f"  {k}: {v}", highlight=False)
    if d.fields_missing:
        out.print("missing:  " + ", ".join(d.fields_missing))
    print_stored_email(raw)
    what = "mapping" if raw.origin is Origin.WEBHOOK else "rule"
    out.print(f"--- replay after fixing the {what}: leadpipe dlq replay {row.id}")
    return EXIT_OK

def cmd_dlq_replay(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    engine = engine_of(settings)
    db = database_of(settings, existing=True)
    if not (args.ids or args.source or args.all):
        raise UserError("say which dead letters: IDs, --source SOURCE, or --all")
    with db.session() as s:
        if args.ids:
            chosen = [r.id for r in dead_letters.listing(s, status=None, ids=args.ids, limit=None)]
            unknown = sorted(set(args.ids) - set(chosen))
            if unknown:
                raise UserError("no dead letter " + ", ".join(f"#{i}" for i in unknown))
        else:
            chosen = [r.id for r in dead_letters.listing(s, status="open", source=args.source, limit=None)]
    return _replay_all(db, engine, sorted(chosen), roster.router_for(settings, db))


def _replay_all(db: Database, engine: Engine, ids: list[int], router: Router | None = None) -> int:
    from rich.progress import Progress

    resolved = still = 0
    with Progress(console=err, transient=True, disable=not err.is_terminal) as progress:
        task = progress.add_task("replaying", total=len(ids))
        for dl_id in ids:
            result = replay(db, engine, dl_id, router)
            progress.advance(task)
            if result is None:
                continue
            if isinstance(result.outcome, Lead):
                resolved += 1
                note = " (already resolved)" if result.already_resolved else ""
                out.print(f"dead letter #{dl_id} → lead #{result.lead_id}{note}")
            elif isinstance(result.outcome, Ignored):
                out.print(f"dead letter #{dl_id} → ignored ({result.outcome.reason})")
            else:
                still += 1
                out.print(f"dead letter #{dl_id} still fails: {result.outcome.reason.value}: {result.outcome.detail}",
                          highlight=False)
    out.print(f"replayed {len(ids)}: {resolved} now leads, {still} still dead letters")
    return EXIT_OK
