"""How well the inquiry reader reads intent, urgency and financing facts: the blind intent corpus.

The corpus (``fixtures/intent``, see its README) is 158 inquiry messages labelled by someone
who had not read leadpipe's code. Each message goes through
``daemon.qualifying.intent.read_inquiry`` with its ``context`` line and today = 2026-12-02
(the corpus's day). Beside it, measured in the same run, the keyword approach leadpipe used
before issue 18 (``KEYWORD_BASELINE``):

- intent: ``normalize.parse_intent`` of the message (first keyword wins);
- urgency: ``now`` if a "ready to act" keyword of the old scoring.yaml is in the message,
  else ``browsing`` if a "just browsing" keyword is, else unknown;
- pre_approved / cash / investor: ``True`` if the bare keyword is in the message, else unknown;
- timeline_days: always unknown.

A label is right when it equals the truth (unknown = ``unknown`` / ``null``). A timeline is
right when both are null, or — dates in a message are approximate — when it is exact for a
truth of up to 14 days and within ±15 % of the truth beyond (the corpus README suggests
about that); the same rule for both columns.

Printed: per label the share right, reader beside baseline, for all 158 messages, the
development half (odd-numbered files, which the reader's rules were written against) and the
held-out half (even-numbered files, never looked at).

Target (issue 18): the reader beats the baseline on every label, and ≥ 90 % on intent.

    python bench/intent.py [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from daemon.qualifying.intent import read_inquiry  # noqa: E402
from daemon.qualifying.normalize import parse_intent  # noqa: E402

CORPUS = ROOT / "fixtures" / "intent" / "messages"
TODAY = date(2026, 12, 2)
LABELS = ("intent", "urgency", "pre_approved", "cash", "investor", "timeline_days")
TARGET_INTENT = 0.90

#: the keyword lists of rules/scoring.yaml before issue 18, kept here so the baseline stays fixed
KEYWORD_BASELINE = {
    "ready to act": ["pre-approved", "preapproved", "cash buyer", "asap", "this week", "today", "tomorrow",
                     "schedule a showing", "tour", "see it"],
    "just browsing": ["just browsing", "just looking", "not ready", "next year"],
    "pre_approved": ["pre-approved", "preapproved"],
    "cash": ["cash"],
    "investor": ["investor", "investment"],
}


@dataclass(frozen=True)
class Case:
    number: int
    message: str
    context: str
    labels: dict[str, Any]


def load() -> list[Case]:
    cases = []
    for path in sorted(CORPUS.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        cases.append(Case(int(path.name[:3]), data["message"], data.get("context") or "", data["labels"]))
    return cases


def truth(case: Case) -> dict[str, Any]:
    """The labels with ``unknown`` as ``None``."""
    return {k: (None if case.labels[k] == "unknown" else case.labels[k]) for k in LABELS}


def reader(case: Case) -> dict[str, Any]:
    found = read_inquiry(case.message, today=TODAY, context=case.context)
    return {k: getattr(found, k) for k in LABELS}


def baseline(case: Case) -> dict[str, Any]:
    text = case.message.casefold()

    def has(name: str) -> bool:
        return any(k in text for k in KEYWORD_BASELINE[name])

    urgency = "now" if has("ready to act") else "browsing" if has("just browsing") else None
    return {"intent": parse_intent(case.message), "urgency": urgency,
            "pre_approved": True if has("pre_approved") else None, "cash": True if has("cash") else None,
            "investor": True if has("investor") else None, "timeline_days": None}


def right(label: str, got: Any, want: Any) -> bool:
    if label != "timeline_days" or got is None or want is None:
        return bool(got == want and type(got) is type(want))
    return got == want if want <= 14 else abs(got - want) <= 0.15 * want


def measure(cases: list[Case]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    results = [(truth(c), reader(c), baseline(c)) for c in cases]
    for label in LABELS:
        n = len(results) or 1
        out[label] = {"reader": sum(right(label, r[label], t[label]) for t, r, _b in results) / n,
                      "baseline": sum(right(label, b[label], t[label]) for t, _r, b in results) / n}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--json", action="store_true", help="print the shares as one JSON object")
    args = ap.parse_args()
    cases = load()
    sets = {"all": cases, "development (odd files)": [c for c in cases if c.number % 2],
            "held-out (even files)": [c for c in cases if not c.number % 2]}
    shares = {name: measure(group) for name, group in sets.items()}
    if args.json:
        print(json.dumps(shares))
        return 0
    print(f"inquiry reader on fixtures/intent ({len(cases)} messages, today = {TODAY})")
    for name, group in sets.items():
        print(f"\n== {name}: {len(group)} messages")
        print(f"  {'label':<14} {'reader':>7} {'keywords':>9} {'ratio':>7}")
        for label, row in shares[name].items():
            ratio = f"{row['reader'] / row['baseline']:.2f}" if row["baseline"] else "—"
            print(f"  {label:<14} {row['reader']:>7.1%} {row['baseline']:>9.1%} {ratio:>7}")
        print("  reader/keywords: " + ", ".join(f"{label} {row['reader']:.0%}/{row['baseline']:.0%}"
                                                for label, row in shares[name].items()))
    every = shares["all"]
    beats = all(row["reader"] > row["baseline"] for row in every.values())
    print(f"\ntarget (issue 18): beats the keywords on every label: {'yes' if beats else 'no'}; "
          f"intent {every['intent']['reader']:.1%} (≥ {TARGET_INTENT:.0%}): "
          f"{'yes' if every['intent']['reader'] >= TARGET_INTENT else 'no'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
