"""How well leadpipe reads lead email it has no rule for: the blind corpus, field by field.

The corpus (``fixtures/corpus``, see its README) was written by people who had not read the
reader's code; each email's ``.golden.yaml`` is the truth as its author meant it. Every
email goes through ``parse_email`` with the shipped rules, as the daemon would read it.

Printed: per field (name, email, phone, address, message) the share of lead emails where
leadpipe's value equals the truth (an absent value counts as right only when the truth is
absent too; a missed lead gets every field wrong); leads found; false leads (a non-lead read
as a lead); non-leads dead-lettered; and the same per layout tag.

Targets (issue 14): names, emails and phones ≥ 97 % right; 0 false leads; 0 non-leads
dead-lettered.

    python bench/accuracy.py [--set leads+not_leads|holdout|all] [--misses] [--json]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from daemon.lead import DeadLetter, Ignored, Lead  # noqa: E402
from daemon.pipeline import Engine, parse_email  # noqa: E402

CORPUS = ROOT / "fixtures" / "corpus"
FIELDS = ("name", "email", "phone", "address", "message")
TARGET = 0.97
SETS = {"leads+not_leads": ("leads", "not_leads"), "holdout": ("holdout",), "holdout2": ("holdout2",),
        "holdout3": ("holdout3",), "holdout4": ("holdout4",),
        "all": ("leads", "not_leads", "holdout", "holdout2", "holdout3", "holdout4")}
_ABBREVIATIONS = {"street": "st", "avenue": "ave", "road": "rd", "boulevard": "blvd", "drive": "dr",
                  "lane": "ln", "court": "ct", "place": "pl", "terrace": "ter", "circle": "cir",
                  "parkway": "pkwy", "highway": "hwy", "apartment": "apt", "suite": "ste", "north": "n",
                  "south": "s", "east": "e", "west": "w", "unit": "#", "apt": "#", "ste": "#"}


@dataclass
class Case:
    """One corpus email and its truth."""

    eml: Path
    truth: dict[str, Any]

    @property
    def is_lead(self) -> bool:
        return self.truth.get("kind") == "lead"

    @property
    def layouts(self) -> list[str]:
        return list(self.truth.get("layouts") or [])


@dataclass
class Tally:
    """Counts for one group of emails (all of them, or one layout)."""

    leads: int = 0
    found: int = 0
    right: Counter[str] = field(default_factory=Counter)
    not_leads: int = 0
    false_leads: int = 0
    dead_non_leads: int = 0

    def share(self, name: str) -> float:
        return self.right[name] / self.leads if self.leads else 1.0


def cases(sets: tuple[str, ...]) -> list[Case]:
    out = []
    for folder in sets:
        for eml in sorted((CORPUS / folder).rglob("*.eml")):
            golden = eml.with_name(eml.stem + ".golden.yaml")
            truth = yaml.safe_load(golden.read_text(encoding="utf-8")) if golden.exists() else None
            if isinstance(truth, dict):
                out.append(Case(eml, truth))
    return out


def _text(value: Any) -> str:
    text = unicodedata.normalize("NFKC", str(value or "")).casefold()
    text = text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
    return " ".join(text.split())


def _name(value: Any) -> str:
    return re.sub(r"[.,]", "", _text(value))


def _address(value: Any) -> str:
    words = re.sub(r"[.,]", " ", _text(value)).replace("#", " # ").split()
    return " ".join(_ABBREVIATIONS.get(w, w) for w in words).replace("# #", "#")


def _message(value: Any) -> str:
    return re.sub(r"[\"'`]", "", _text(value)).strip(" .")


def actual(lead: Lead, name: str) -> Any:
    if name == "name":
        return lead.full_name
    if name == "address":
        return lead.property.address
    return getattr(lead, name)


def right(name: str, expected: Any, got: Any) -> bool:
    """Whether leadpipe's value ``got`` of field ``name`` is the truth ``expected``."""
    if expected in (None, "") or got in (None, ""):
        return expected in (None, "") and got in (None, "")
    if name == "name":
        return _name(expected) == _name(got)
    if name == "address":
        return _address(expected) == _address(got)
    if name == "message":
        e, g = _message(expected), _message(got)
        return e == g or (min(len(e), len(g)) >= 0.9 * max(len(e), len(g)) and (e in g or g in e))
    return _text(expected) == _text(got)


@dataclass
class Result:
    """The whole measurement: totals, per layout, and every miss."""

    total: Tally
    layouts: dict[str, Tally]
    misses: list[str]
    #: the misses with every letter and digit masked (``Aaaa 9999``): the kind of each miss,
    #: for looking at a holdout without reading its emails
    shapes: list[str] = field(default_factory=list)


def shape(value: Any) -> str:
    """``value`` with letters masked as ``a``/``A`` and digits as ``9``; a long text as its
    length and the shape of its first and last three words."""
    if value is None:
        return "None"
    text = re.sub(r"[^\W\d_]", lambda m: "A" if m[0].isupper() else "a", str(value))
    text = re.sub(r"\d", "9", text)
    words = text.split()
    if len(words) > 8:
        return f"<{len(str(value))} chars: {' '.join(words[:3])} … {' '.join(words[-3:])}>"
    return repr(text)


def measure(sets: tuple[str, ...], engine: Engine | None = None) -> Result:
    engine = engine or Engine.load(ROOT / "rules")
    total = Tally()
    layouts: dict[str, Tally] = defaultdict(Tally)
    misses: list[str] = []
    shapes: list[str] = []
    for case in cases(sets):
        outcome = parse_email(case.eml.read_bytes(), engine)
        groups = [total, *(layouts[tag] for tag in case.layouts)]
        where = case.eml.relative_to(CORPUS)
        if not case.is_lead:
            for g in groups:
                g.not_leads += 1
                g.false_leads += isinstance(outcome, Lead)
                g.dead_non_leads += isinstance(outcome, DeadLetter)
            if not isinstance(outcome, Ignored):
                misses.append(f"{where}: not a lead ({case.truth.get('category')}), got {_show(outcome)}")
                shapes.append(f"{where.parent}: not a lead ({case.truth.get('category')}), got "
                              f"{type(outcome).__name__} {layouts_of(case)}")
            continue
        truth = case.truth.get("lead") or {}
        for g in groups:
            g.leads += 1
            g.found += isinstance(outcome, Lead)
        if not isinstance(outcome, Lead):
            misses.append(f"{where}: lead missed: {_show(outcome)}")
            shapes.append(f"{where.parent}: lead missed: {type(outcome).__name__} {layouts_of(case)}")
            continue
        for name in FIELDS:
            expected = truth.get("full_name" if name == "name" else name)
            got = actual(outcome, name)
            ok = right(name, expected, got)
            for g in groups:
                g.right[name] += ok
            if not ok:
                misses.append(f"{where}: {name}: expected {expected!r}, got {got!r}")
                shapes.append(f"{where.parent}: {name}: expected {shape(expected)}, got {shape(got)} "
                              f"{layouts_of(case)}")
    return Result(total, dict(layouts), misses, shapes)


def layouts_of(case: Any) -> str:
    return "[" + ", ".join(case.layouts) + "]"


def _show(outcome: Any) -> str:
    if isinstance(outcome, Lead):
        return f"lead ({outcome.source}: {outcome.full_name!r}, {outcome.email!r}, {outcome.phone!r})"
    if isinstance(outcome, DeadLetter):
        return f"dead letter {outcome.reason.value}: {outcome.detail[:160]}"
    return f"ignored ({outcome.reason})"


def _row(label: str, t: Tally) -> str:
    shares = "  ".join(f"{t.share(n):6.1%}" if t.leads else "     -" for n in FIELDS)
    return (f"{label:<22} {t.leads:>5} {t.found:>5}  {shares}  {t.not_leads:>5} {t.false_leads:>5} "
            f"{t.dead_non_leads:>5}")


def report(result: Result, title: str) -> str:
    t = result.total
    head = (f"{'':<22} {'leads':>5} {'found':>5}  " + "  ".join(f"{n[:7]:>6}" for n in FIELDS)
            + f"  {'non':>5} {'false':>5} {'dead':>5}")
    lines = [f"# {title}", head, _row("all", t), ""]
    lines += [_row(tag, result.layouts[tag]) for tag in sorted(result.layouts)]
    met = (all(t.share(n) >= TARGET for n in ("name", "email", "phone")) and not t.false_leads
           and not t.dead_non_leads)
    lines += ["", f"target: names, emails, phones >= {TARGET:.0%}; 0 false leads; 0 non-leads dead-lettered: "
              + ("met" if met else "NOT met")]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--set", choices=sorted(SETS), default="leads+not_leads",
                    help="which part of the corpus to read (default: the set the reader may be tuned on)")
    ap.add_argument("--misses", action="store_true", help="also list every wrong field and missed email")
    ap.add_argument("--shapes", action="store_true",
                    help="also list every miss with its letters and digits masked (for a holdout: the kind "
                         "of each miss, not its text)")
    ap.add_argument("--json", action="store_true", help="print the totals as one JSON object")
    args = ap.parse_args(argv)
    result = measure(SETS[args.set])
    if args.json:
        t = result.total
        print(json.dumps({"set": args.set, "leads": t.leads, "found": t.found, "not_leads": t.not_leads,
                          "false_leads": t.false_leads, "dead_non_leads": t.dead_non_leads,
                          **{n: round(t.share(n), 4) for n in FIELDS}}))
        return 0
    print(report(result, f"accuracy on fixtures/corpus ({args.set})"))
    if args.misses:
        print("\n".join(["", "misses:", *result.misses]))
    if args.shapes:
        print("\n".join(["", "misses, masked:", *result.shapes]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
