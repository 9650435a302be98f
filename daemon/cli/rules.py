"""``leadpipe rules check | test | new | promote | schema``: validate the rule files, test
them against the fixtures' golden files, draft a new source's rules from an example email
and promote the draft, and write the JSON Schemas for editors.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.markup import escape

from daemon.cli.common import (
    EXIT_FAIL,
    EXIT_OK,
    EXIT_USAGE,
    UserError,
    database_of,
    engine_of,
    err,
    out,
    settings_of,
)
from daemon.cli.printing import print_outcome
from daemon.config import Settings
from daemon.errors import DraftError, RuleError
from daemon.lead import Lead
from daemon.pipeline import parse_email
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
from daemon.terminal import Commands
from storage import dead_letters, inbound, leads


def add_commands(cmds: Commands) -> None:
    """Add ``leadpipe rules …``."""
    group = cmds.group("rules", "check and test rule files")
    group.command("check", cmd_rules_check, "validate every rule file")
    rtest = group.command("test", cmd_rules_test, "run rules on fixtures and diff against golden files")
    rtest.add_argument("source", nargs="?", metavar="SOURCE",
                       help="only this source's fixtures (fixtures/emails/SOURCE); default: all")
    rtest.add_argument("--update", action="store_true", help="rewrite the golden files with today's output")
    rtest.add_argument("--fixtures", type=Path, help="fixtures folder (default: fixtures/emails)")

    rnew = group.command("new", cmd_rules_new,
                         "draft rules/SOURCE.draft.yaml from an example email (not loaded until promoted)")
    rnew.add_argument("source", metavar="SOURCE", help="the new source's name (a-z, 0-9, _ . -)")
    rnew.add_argument("example", type=Path, metavar="FILE.eml", nargs="?",
                      help="an example lead email of that source")
    rnew_from = rnew.add_mutually_exclusive_group()
    rnew_from.add_argument("--dlq", type=int, metavar="ID", help="take the example from dead letter ID")
    rnew_from.add_argument("--lead", type=int, metavar="ID", help="take the example from the email of lead ID")
    rpromote = group.command("promote", cmd_rules_promote,
                             "check rules/SOURCE.draft.yaml and rename it to rules/SOURCE.yaml")
    rpromote.add_argument("source", metavar="SOURCE", help="the drafted source's name")

    rschema = group.command("schema", cmd_rules_schema, "write rules/schema.json (JSON Schema for editors)")
    rschema.add_argument("--check", action="store_true", help="exit 1 if the file is out of date")


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
        print_outcome(Path(name), outcome)
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
