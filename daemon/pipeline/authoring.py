"""The rule author's loop: draft a rule from an example, test it, promote it.

``leadpipe rules new SOURCE (FILE.eml | --dlq ID | --lead ID)`` writes
``rules/SOURCE.draft.yaml`` — a draft the daemon does not load (``rules.rule_files`` leaves
drafts out) — and puts the example beside the fixtures as
``fixtures/emails/SOURCE/NAME.eml`` with the golden file the draft gives it.
``leadpipe rules test SOURCE`` runs a source's draft with the loaded rules;
``leadpipe rules promote SOURCE`` checks the draft and renames it to ``rules/SOURCE.yaml``,
which the daemon then loads on its next reload.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

from daemon.errors import DraftError
from daemon.lead import ParseOutcome
from daemon.pipeline import Engine, parse_email
from daemon.reading import goldens
from daemon.reading.draft import Draft, draft_rule
from daemon.reading.rules import DRAFT_SUFFIX, LoadedRule, load_rule_file, ruleset_of

_SOURCE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


def check_source_name(source: str) -> None:
    """Raises ``DraftError`` with one line saying what source names may be."""
    if _SOURCE.match(source):
        return
    why = []
    if source != source.lower():
        why.append("capitals")
    if re.search(r"\s", source):
        why.append("spaces")
    rest = sorted(set(re.sub(r"[a-zA-Z0-9_.\s-]", "", source)))
    if rest:
        why.append("the characters " + " ".join(rest))
    if not why:
        why.append("a first character that is not a letter or digit")
    suggestion = re.sub(r"[^a-z0-9_.-]+", "_", source.lower()).strip("_.-") or "my_source"
    raise DraftError(f"`{source}` is not a source name: it has {' and '.join(why)}; a source name is lower-case "
                     f"letters, digits and _ . - (e.g. `{suggestion}`)")


def draft_path(rules_dir: Path, source: str) -> Path:
    return rules_dir / f"{source}{DRAFT_SUFFIX}"


@dataclass(frozen=True)
class Written:
    """What ``write_draft`` wrote, and how the example reads with the draft."""

    rule_file: Path
    fixture: Path
    draft: Draft
    outcome: ParseOutcome


def write_draft(rules_dir: Path, fixtures_dir: Path, engine: Engine, source: str, data: bytes,
                example_name: str) -> Written:
    """Draft ``rules/SOURCE.draft.yaml`` from the example ``data``, and store the example as a
    fixture with its golden file. Never overwrites anything. Raises ``DraftError``."""
    check_source_name(source)
    final, path = rules_dir / f"{source}.yaml", draft_path(rules_dir, source)
    for existing in (final, path):
        if existing.exists():
            raise DraftError(f"{existing} already exists; edit it, or choose another SOURCE name")
    taken = next((r for r in engine.rules.rules if r.spec.source == source), None)
    if taken is not None:
        raise DraftError(f"source `{source}` is already defined in {taken.file}")
    try:
        draft = draft_rule(source, data, engine.labels, engine.region)
    except ValueError as exc:
        raise DraftError(f"cannot draft a rule for `{source}` from {example_name}: {exc}") from exc
    try:
        with path.open("x", encoding="utf-8") as f:  # "x": never overwrite, even in a race
            f.write(draft.text)
    except FileExistsError as exc:
        raise DraftError(f"{path} already exists; edit it, or choose another SOURCE name") from exc
    outcome = parse_email(data, with_draft(engine, path))
    fixture = _free(fixtures_dir / source, re.sub(r"[^\w.-]+", "_", Path(example_name).stem) or "example")
    fixture.parent.mkdir(parents=True, exist_ok=True)
    fixture.write_bytes(data)
    goldens.write(fixture, outcome)
    return Written(path, fixture, draft, outcome)


def with_draft(engine: Engine, path: Path) -> Engine:
    """``engine`` with the draft at ``path`` loaded beside its rules (for a trial)."""
    rule = load_rule_file(path)
    others = [r for r in engine.rules.rules if r.spec.source != rule.source]
    return dataclasses.replace(engine, rules=ruleset_of([*others, LoadedRule(rule, str(path))], (),
                                                       path.parent))


def promote(rules_dir: Path, engine: Engine, source: str) -> Path:
    """Rename ``rules/SOURCE.draft.yaml`` to ``rules/SOURCE.yaml`` once it loads and names
    ``source``. Raises ``DraftError`` (``RuleError`` for a draft that does not load)."""
    check_source_name(source)
    path, final = draft_path(rules_dir, source), rules_dir / f"{source}.yaml"
    if not path.exists():
        raise DraftError(f"there is no draft {path}; draft one with `leadpipe rules new {source} FILE.eml`")
    if final.exists():
        raise DraftError(f"{final} already exists; merge the draft into it by hand, or remove one of them")
    rule = load_rule_file(path)
    if rule.source != source:
        raise DraftError(f"{path} says `source: {rule.source}`; a promoted rule's file is named after its source")
    taken = next((r for r in engine.rules.rules if r.spec.source == source), None)
    if taken is not None:
        raise DraftError(f"source `{source}` is already defined in {taken.file}")
    path.rename(final)
    return final


def _free(folder: Path, stem: str) -> Path:
    """``folder/stem.eml``, or ``stem-2.eml``… when that is taken."""
    candidate, n = folder / f"{stem}.eml", 1
    while candidate.exists():
        n += 1
        candidate = folder / f"{stem}-{n}.eml"
    return candidate
