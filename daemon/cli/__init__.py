"""The ``leadpipe`` command line. Only this module turns errors into exit codes.

Exit status: 0 success, 1 a failure the user can fix (the message says how), 2 bad usage.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from daemon.config import Settings, load_settings
from daemon.delivery import history as delivery_log
from daemon.errors import DraftError, LeadpipeError, RuleError
from daemon.intake import inbox
from daemon.lead import DeadLetter, Ignored, Lead, Origin, ParseOutcome, RawEmail
from daemon.ops.heartbeat import version
from daemon.pipeline import Engine, Processed, Worker, parse_email, replay
from daemon.qualifying.scoring import load_scoring
from daemon.reading import goldens
from daemon.reading.mappings import load_mappings, mapping_files
from daemon.reading.rules import (
    LABELS_FILE,
    SCORING_FILE,
    load_rules,
    rule_files,
)
from daemon.reading.vocabulary import load_vocabulary
from daemon.routing import roster
from daemon.routing.assign import Router
from daemon.terminal import SafeConsole, json_text
from daemon.web.admin import commands as admin_commands
from storage import dead_letters, inbound, leads
from storage.db import Database

log = logging.getLogger("leadpipe")

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2

# markup=False: names, subjects, details and regexes are user text; a "[/urgent]" in a
# subject must print as typed, not raise MarkupError. Styled lines escape what they embed.
# Piped output (logs, CI, `| less`) gets room for whole emails and phones, not 80 columns,
# and messages are never hard-wrapped (soft_wrap) for a file or a pipe to keep.
# SafeConsole: text from an email (a subject, a name, the body) is printed with its
# control characters escaped, so it cannot retitle or clear the reader's terminal.
out = SafeConsole(highlight=False, soft_wrap=True, markup=False, width=None if sys.stdout.isatty() else 200)
err = SafeConsole(stderr=True, highlight=False, soft_wrap=True, markup=False)


class UserError(LeadpipeError):
    """A failure the user can fix; the message says how. Exit status 1."""


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


# -- parser ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE",
                        help="configuration file (default: $LEADPIPE_CONFIG, else ./leadpipe.yaml if present)")
    common.add_argument("-v", "--verbose", action="store_true", help="log debug detail")

    p = argparse.ArgumentParser(prog="leadpipe", description="Turn a lead inbox into routed, deduplicated leads.",
                                parents=[common])
    p.add_argument("--version", action="version", version=f"leadpipe {version()}",
                   help="print leadpipe's version and exit")
    sub = p.add_subparsers(metavar="COMMAND")

    run = sub.add_parser("run", parents=[common], help="run the daemon")
    run.add_argument("--once", action="store_true",
                     help="take in what is waiting, process it, print a summary and exit")
    run.set_defaults(func=cmd_run)

    parse = sub.add_parser("parse", parents=[common], help="parse, normalize and score emails without side effects")
    parse.add_argument("files", nargs="+", type=Path, metavar="FILE.eml", help="one or more email files")
    parse.add_argument("--json", action="store_true", help="JSON (one object per line with several files)")
    parse.set_defaults(func=cmd_parse, quiet_logs=True)

    ingest = sub.add_parser("ingest", parents=[common], help="push emails through the whole pipeline")
    ingest.add_argument("files", nargs="+", type=Path, metavar="FILE.eml|DIR",
                        help="email files, or folders whose *.eml files (also in subfolders) are taken")
    ingest.set_defaults(func=cmd_ingest)

    lds = sub.add_parser("leads", parents=[common], help="stored leads")
    lsub = lds.add_subparsers(metavar="ACTION")
    llist = lsub.add_parser("list", parents=[common], help="stored leads, newest first")
    llist.add_argument("--json", action="store_true", help="one lead contract per line")
    llist.add_argument("--limit", type=int, default=50, metavar="N", help="at most N leads (default: 50)")
    llist.add_argument("--source", metavar="SOURCE", help="only leads of this source (e.g. zillow)")
    llist.add_argument("--tier", choices=("hot", "standard", "low"), help="only leads of this tier")
    llist.set_defaults(func=cmd_leads_list, quiet_logs=True)
    lshow = lsub.add_parser("show", parents=[common], help="one lead with its warnings and score")
    lshow.add_argument("id", type=int, help="the lead's id (leadpipe leads list shows them)")
    lshow.add_argument("--json", action="store_true", help="the stored lead contract as JSON")
    lshow.add_argument("--email", action="store_true", help="also print the text of the email it was read from")
    lshow.set_defaults(func=cmd_leads_show, quiet_logs=True)

    rls = sub.add_parser("rules", parents=[common], help="check and test rule files")
    rsub = rls.add_subparsers(metavar="ACTION")
    rcheck = rsub.add_parser("check", parents=[common], help="validate every rule file")
    rcheck.set_defaults(func=cmd_rules_check, quiet_logs=True)
    rtest = rsub.add_parser("test", parents=[common], help="run rules on fixtures and diff against golden files")
    rtest.add_argument("source", nargs="?", metavar="SOURCE",
                       help="only this source's fixtures (fixtures/emails/SOURCE); default: all")
    rtest.add_argument("--update", action="store_true", help="rewrite the golden files with today's output")
    rtest.add_argument("--fixtures", type=Path, help="fixtures folder (default: fixtures/emails)")
    rtest.set_defaults(func=cmd_rules_test, quiet_logs=True)

    rnew = rsub.add_parser("new", parents=[common],
                           help="draft rules/SOURCE.draft.yaml from an example email (not loaded until promoted)")
    rnew.add_argument("source", metavar="SOURCE", help="the new source's name (a-z, 0-9, _ . -)")
    rnew.add_argument("example", type=Path, metavar="FILE.eml", nargs="?",
                      help="an example lead email of that source")
    rnew_from = rnew.add_mutually_exclusive_group()
    rnew_from.add_argument("--dlq", type=int, metavar="ID", help="take the example from dead letter ID")
    rnew_from.add_argument("--lead", type=int, metavar="ID", help="take the example from the email of lead ID")
    rnew.set_defaults(func=cmd_rules_new, quiet_logs=True)
    rpromote = rsub.add_parser("promote", parents=[common],
                               help="check rules/SOURCE.draft.yaml and rename it to rules/SOURCE.yaml")
    rpromote.add_argument("source", metavar="SOURCE", help="the drafted source's name")
    rpromote.set_defaults(func=cmd_rules_promote, quiet_logs=True)

    rschema = rsub.add_parser("schema", parents=[common], help="write rules/schema.json (JSON Schema for editors)")
    rschema.add_argument("--check", action="store_true", help="exit 1 if the file is out of date")
    rschema.set_defaults(func=cmd_rules_schema, quiet_logs=True)

    dlq = sub.add_parser("dlq", parents=[common], help="dead letters: emails no rule could parse")
    dsub = dlq.add_subparsers(metavar="ACTION")
    dlist = dsub.add_parser("list", parents=[common], help="open dead letters, newest first")
    dlist.add_argument("--all", action="store_true", help="include resolved ones")
    dlist.add_argument("--source", metavar="SOURCE", help="only dead letters of this source")
    dlist.add_argument("--json", action="store_true", help="one JSON object per dead letter")
    dlist.set_defaults(func=cmd_dlq_list, quiet_logs=True)
    dshow = dsub.add_parser("show", parents=[common], help="one dead letter: reason, rule, fields, the email's text")
    dshow.add_argument("id", type=int, help="the dead letter's id (leadpipe dlq list shows them)")
    dshow.set_defaults(func=cmd_dlq_show, quiet_logs=True)
    dreplay = dsub.add_parser("replay", parents=[common], help="re-run dead letters against the current rules")
    dreplay.add_argument("ids", nargs="*", type=int, metavar="ID", help="the dead letters to replay")
    dreplay.add_argument("--source", metavar="SOURCE", help="every open dead letter of this source")
    dreplay.add_argument("--all", action="store_true", help="every open dead letter")
    dreplay.set_defaults(func=cmd_dlq_replay, quiet_logs=True)

    delivery_log.add_parser(sub, common)

    agents = sub.add_parser("agents", parents=[common], help="the agents, with today's counts")
    agents.add_argument("--json", action="store_true", help="one JSON object per agent")
    agents.set_defaults(func=cmd_agents, quiet_logs=True)

    db = sub.add_parser("db", parents=[common], help="database maintenance")
    dbsub = db.add_subparsers(metavar="ACTION")
    up = dbsub.add_parser("upgrade", parents=[common], help="apply database migrations")
    up.set_defaults(func=cmd_db_upgrade)

    status = sub.add_parser("status", parents=[common], help="database, queue and mailbox health")
    status.add_argument("--quiet", action="store_true", help="print nothing; exit 0 when healthy")
    status.add_argument("--json", action="store_true", help="the whole report as one JSON object")
    status.set_defaults(func=cmd_status, quiet_logs=True)
    doctor = sub.add_parser("doctor", parents=[common],
                            help="check the configuration, the database, the rules and each mailbox")
    doctor.set_defaults(func=cmd_doctor)
    stats = sub.add_parser("stats", parents=[common],
                           help="per source over 24 h and 7 d: emails, leads, dead letters, drift, "
                                "time to route and to claim")
    stats.add_argument("--json", action="store_true", help="one JSON object per source and window")
    stats.set_defaults(func=cmd_stats, quiet_logs=True)
    admin_commands.add_parser(sub, common)
    return p


# -- shared set-up ---------------------------------------------------------------------


def config_path_of(args: argparse.Namespace) -> str | None:
    path = args.config or os.environ.get("LEADPIPE_CONFIG")
    if path is None and Path("leadpipe.yaml").exists():
        path = "leadpipe.yaml"
    return path


def settings_of(args: argparse.Namespace) -> Settings:
    return load_settings(config_path_of(args))


def engine_of(settings: Settings, *, strict: bool = False) -> Engine:
    if not settings.rules_dir.is_dir():
        raise UserError(f"rules folder {settings.rules_dir} not found; set rules_dir in the configuration "
                        "or run leadpipe from the folder that holds rules/")
    engine = Engine.load(settings.rules_dir, region=settings.default_region,
                         regex_timeout=settings.regex_timeout)
    for e in engine.rules.errors:
        err.print(f"[yellow]rule file not loaded:[/] {escape(str(e))}", markup=True, highlight=False)
    if strict and engine.rules.errors:
        raise UserError("fix the rule files above (leadpipe rules check lists every problem)")
    return engine


def database_of(settings: Settings, *, existing: bool = False) -> Database:
    """The configured database. Commands that take emails in bring it up to date (creating
    it); with ``existing`` (commands that read, or act on rows already stored) it is taken
    as it is, and a missing or outdated one is an error naming it, rather than an empty
    database created beside the daemon's."""
    if existing:
        return Database.existing(settings.database_url)
    db = Database(settings.database_url)
    db.upgrade()
    return db


# -- commands ----------------------------------------------------------------------------


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


def plural(n: int, noun: str) -> str:
    """``1 lead``, ``2 leads``, ``0 dead letters``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


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
            _print_outcome(path, outcome)
    return status


def _json_outcome(outcome: ParseOutcome) -> dict[str, Any]:
    if isinstance(outcome, Lead):
        return {"lead": outcome.to_json()}
    if isinstance(outcome, DeadLetter):
        return {"dead_letter": outcome.to_json()}
    return {"ignored": outcome.to_json()}


def _print_outcome(path: Path, outcome: ParseOutcome) -> None:
    if isinstance(outcome, Lead):
        t = Table(title=f"{path}: lead from {outcome.source} (rule v{outcome.rule_version})", title_justify="left",
                  show_header=False)
        t.add_column("field", style="bold")
        t.add_column("value")
        for key, value in outcome.to_json().items():
            if key == "property":
                for pk, pv in value.items():
                    t.add_row(f"property.{pk}", _show(pv))
            elif key != "warnings":
                t.add_row(key, _show(value))
        out.print(t)
        for w in outcome.warnings:
            out.print(f"  [yellow]warning:[/] {escape(w)}", markup=True, highlight=False)
    elif isinstance(outcome, DeadLetter):
        out.print(f"{escape(str(path))}: [red]dead letter[/] {outcome.reason.value}: {escape(outcome.detail)}", markup=True,
                  highlight=False)
    else:
        out.print(f"{path}: ignored ({outcome.reason})")


def _show(value: Any) -> str:
    return "-" if value is None else str(value)


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


def cmd_leads_list(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    db = database_of(settings, existing=True)
    with db.session() as s:
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
    settings = settings_of(args)
    db = database_of(settings, existing=True)
    with db.session() as s:
        row = leads.get(s, args.id)
        raw = inbound.get_raw(s, row.inbound_email_id) if args.email and row and row.inbound_email_id else None
    if row is None:
        raise UserError(f"no lead #{args.id} (leadpipe leads list shows the ids)")
    if args.json:
        print(json_text(row.to_json(), indent=2))
        return EXIT_OK
    _print_outcome(Path(f"lead #{row.id}"), row.lead)
    out.print(f"status: {row.status}   agent: {row.agent or '-'}   claimed by: {row.claimed_by or '-'}")
    for line in row.lead.score_breakdown:
        out.print(f"  score {line.points:+d}  {line.name}")
    delivery_log.print_for_lead(db, row.id)
    if args.email:
        if raw is None:
            out.print(f"--- the email of lead #{row.id} is no longer stored")
        else:
            print_stored_email(raw)
    return EXIT_OK


def cmd_rules_check(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    if not settings.rules_dir.is_dir():
        raise UserError(f"rules folder {settings.rules_dir} not found")
    files = rule_files(settings.rules_dir)
    # the same loader `run` uses, so check and run never disagree about a file
    ruleset = load_rules(settings.rules_dir)
    problems: list[RuleError] = list(ruleset.errors)
    try:
        load_scoring(settings.rules_dir / SCORING_FILE)
    except RuleError as exc:
        problems.extend([exc, *exc.also])
    try:  # the label vocabulary (the reader's words)
        load_vocabulary(settings.rules_dir / LABELS_FILE)
    except RuleError as exc:
        problems.extend([exc, *exc.also])
    webhooks = load_mappings(settings.rules_dir)  # rules/webhooks/*.yaml
    problems.extend(webhooks.errors)
    for p in problems:
        out.print(str(p), highlight=False)
    mapping_count = len(mapping_files(settings.rules_dir))
    if mapping_count:
        out.print(f"{len(webhooks)} of {mapping_count} webhook mappings OK")
    out.print(f"{len(ruleset.rules)} of {len(files)} rule files OK; {len(problems)} problems")
    return EXIT_FAIL if problems else EXIT_OK


def cmd_rules_test(args: argparse.Namespace) -> int:
    from daemon.pipeline import authoring

    settings = settings_of(args)
    engine = engine_of(settings)
    root = args.fixtures or settings.fixtures_dir
    emls = list(goldens.fixtures(root, args.source))
    if not emls:
        raise UserError(f"no fixtures found under {root / (args.source or '')}")
    draft = authoring.draft_path(settings.rules_dir, args.source) if args.source else None
    if draft is not None and draft.exists():  # a source still being drafted is tested with its draft
        try:
            engine = authoring.with_draft(engine, draft)
        except RuleError as exc:
            raise UserError(f"the draft does not load: {exc}") from exc
        out.print(f"with the draft {draft}", highlight=False)
    failed = 0
    for eml in emls:
        outcome = parse_email(eml.read_bytes(), engine)
        if args.update:
            goldens.write(eml, outcome)
            continue
        golden = goldens.load(eml)
        if golden is None:
            failed += 1
            source = eml.parent.name if eml.parent != root else "SOURCE"
            out.print(f"[red]FAIL[/]  {escape(str(eml))}: no golden file yet — run "
                      f"`leadpipe rules test {escape(source)} --update`", markup=True, highlight=False)
            continue
        diffs = goldens.compare(golden, outcome)
        if not diffs:
            out.print(f"[green]ok[/]    {escape(str(eml))}", markup=True, highlight=False)
            continue
        failed += 1
        out.print(f"[red]FAIL[/]  {escape(str(eml))}", markup=True, highlight=False)
        for d in diffs:
            out.print(f"        {d.key}: expected {d.expected!r}, got {d.actual!r}", highlight=False)
    if args.update:
        out.print(f"rewrote {len(emls)} golden files; review them with git diff")
        return EXIT_OK
    out.print(f"{len(emls) - failed} of {len(emls)} fixtures match their golden files")
    return EXIT_FAIL if failed else EXIT_OK


def cmd_rules_new(args: argparse.Namespace) -> int:
    from daemon.pipeline import authoring

    if (args.example is None) == (args.dlq is None and args.lead is None):
        err.print("leadpipe rules new: give one example: FILE.eml, --dlq ID or --lead ID", highlight=False)
        return EXIT_USAGE
    settings = settings_of(args)
    engine = engine_of(settings)
    data, name = _example_of(args, settings)
    try:
        written = authoring.write_draft(settings.rules_dir, settings.fixtures_dir, engine, args.source, data, name)
    except DraftError as exc:
        raise UserError(str(exc)) from exc
    out.print(f"wrote {written.rule_file} (a draft: the daemon does not load it until promoted)", highlight=False)
    out.print(f"wrote {written.fixture} and its golden file", highlight=False)
    outcome = written.outcome
    if isinstance(outcome, Lead) and outcome.source == args.source:
        fields = [k for k in ("full_name", "email", "phone", "message") if getattr(outcome, k)]
        out.print(f"the example parses with it: {', '.join(fields) or 'no contact fields'} found", highlight=False)
    elif isinstance(outcome, Lead):
        out.print(f"note: the example is still read by rule {outcome.source} v{outcome.rule_version}, "
                  "which is tried first; make this rule's match more specific or raise its priority",
                  highlight=False)
    else:
        _print_outcome(Path(name), outcome)
    if written.draft.unmapped:
        out.print(f"{len(written.draft.unmapped)} labels or values map to no extractor; they are listed in the "
                  "file as comments")
    out.print(f"next: edit {written.rule_file}, check it with leadpipe rules test {args.source}, then "
              f"leadpipe rules promote {args.source}", highlight=False)
    return EXIT_OK


def _example_of(args: argparse.Namespace, settings: Settings) -> tuple[bytes, str]:
    """The example email of ``rules new``: a file, or a stored dead letter's or lead's email."""
    if args.example is not None:
        try:
            return args.example.read_bytes(), args.example.name
        except OSError as exc:
            raise UserError(f"cannot read {args.example}: {exc.strerror}") from exc
    db = database_of(settings, existing=True)
    with db.session() as s:
        if args.dlq is not None:
            dead = dead_letters.get(s, args.dlq)
            if dead is None:
                raise UserError(f"no dead letter #{args.dlq} (leadpipe dlq list shows them)")
            inbound_id, name = dead.inbound_email_id, f"dlq-{args.dlq}"
        else:
            lead = leads.get(s, args.lead)
            if lead is None or lead.inbound_email_id is None:
                raise UserError(f"no lead #{args.lead} with a stored email (leadpipe leads list shows them)")
            inbound_id, name = lead.inbound_email_id, f"lead-{args.lead}"
        raw = inbound.get_raw(s, inbound_id)
    if raw is None:
        raise UserError(f"the email of {name} is no longer stored")
    return raw.data, f"{name}.eml"


def cmd_rules_promote(args: argparse.Namespace) -> int:
    from daemon.pipeline import authoring

    settings = settings_of(args)
    engine = engine_of(settings)
    try:
        final = authoring.promote(settings.rules_dir, engine, args.source)
    except DraftError as exc:
        raise UserError(str(exc)) from exc
    except RuleError as exc:
        raise UserError(f"the draft does not load, so it was not promoted: {exc}") from exc
    out.print(f"promoted: {final} is loaded by the daemon on its next rules reload", highlight=False)
    out.print(f"next: leadpipe rules test {args.source}; dead letters of this sender: leadpipe dlq list",
              highlight=False)
    return EXIT_OK


def cmd_rules_schema(args: argparse.Namespace) -> int:
    from daemon.reading import mappings
    from daemon.reading.rules import json_schema_text

    settings = settings_of(args)
    schemas = [(settings.rules_dir / "schema.json", json_schema_text()),
               (settings.rules_dir / mappings.WEBHOOKS_DIR / "schema.json", mappings.json_schema_text())]
    for path, text in schemas:
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if args.check:
            if current != text:
                raise UserError(f"{path} is out of date; run leadpipe rules schema")
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        out.print(f"wrote {path}")
    return EXIT_OK


def cmd_dlq_list(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    db = database_of(settings, existing=True)
    with db.session() as s:
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
    settings = settings_of(args)
    db = database_of(settings, existing=True)
    with db.session() as s:
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


def print_stored_email(raw: RawEmail) -> None:
    """The text of a stored email (``dlq show``, ``leads show --email``), or the JSON body
    of a webhook request; its control characters are escaped by the console."""
    from daemon.reading.message import Message, UnreadableEmail

    if raw.origin is Origin.WEBHOOK:
        out.print(f"--- the body posted to {raw.path} ---")
        try:
            out.print(json_text(json.loads(raw.data), indent=2), highlight=False)
        except (ValueError, RecursionError):
            out.print(raw.data.decode("utf-8", "replace"), highlight=False)
        return
    out.print("--- the email's text ---")
    try:
        out.print(Message(raw.data).text or "(no text)", markup=False, highlight=False)
    except UnreadableEmail as exc:
        out.print(f"(cannot read the email: {exc})")


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


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    db = Database(settings.database_url)
    db.upgrade()
    out.print(f"database {db.describe()} is at revision {db.current_revision()}")
    return EXIT_OK


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
    from daemon.ops import stats

    settings = settings_of(args)
    rows = stats.compute(database_of(settings, existing=True))
    if args.json:
        for r in rows:
            print(json_text(r.to_json()))
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
    return EXIT_OK


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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
