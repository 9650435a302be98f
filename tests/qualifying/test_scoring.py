"""Scoring on what the inquiry reader found (daemon/qualifying/scoring.py): urgency_is, finding,
finding_false, timeline_within_days and intent_is buy_and_sell, checked like every other key."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from daemon.errors import RuleError
from daemon.lead import Inquiry, Lead
from daemon.qualifying.inquiry import with_inquiry
from daemon.qualifying.scoring import load_scoring

SHIPPED = Path(__file__).resolve().parents[2] / "rules" / "scoring.yaml"


def scoring(tmp_path: Path, text: str):
    path = tmp_path / "scoring.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_scoring(path)


def lead(**inquiry) -> Lead:
    return Lead(source="website", rule_version="1", inquiry=Inquiry(**inquiry))


CONDITIONS = """\
    conditions:
      - {name: now, points: 20, urgency_is: [now]}
      - {name: soon or later, points: 5, urgency_is: [soon, later]}
      - {name: pre-approved, points: 10, finding: pre_approved}
      - {name: not pre-approved, points: -5, finding_false: pre_approved}
      - {name: investor, points: 7, finding: investor}
      - {name: within a month, points: 3, timeline_within_days: 30}
      - {name: both ways, points: 15, intent_is: [buy_and_sell]}
    """


@pytest.mark.parametrize(("inquiry", "names"), [
    ({"urgency": "now", "pre_approved": True}, ["now", "pre-approved"]),
    ({"urgency": "soon", "pre_approved": False, "timeline_days": 30}, ["soon or later", "not pre-approved",
                                                                        "within a month"]),
    ({"urgency": "later", "timeline_days": 31, "investor": True}, ["soon or later", "investor"]),
    ({"intent": "buy_and_sell"}, ["both ways"]),
    ({}, []),
])
def test_conditions_on_the_findings(tmp_path: Path, inquiry: dict, names: list[str]):
    """A brokerage's points for "ready to act" or "pre-approved" go to the leads that said so."""
    scored = scoring(tmp_path, CONDITIONS).score(lead(**inquiry))
    assert [line.name for line in scored.score_breakdown] == names


def test_unknown_findings_hold_neither_way(tmp_path: Path):
    """Not said is not no: a lead that never mentions financing loses no points for it."""
    scored = scoring(tmp_path, CONDITIONS).score(lead(pre_approved=None))
    assert "not pre-approved" not in [line.name for line in scored.score_breakdown]


def test_bad_finding_keys_name_file_line_and_key(tmp_path: Path):
    with pytest.raises(RuleError) as caught:
        scoring(tmp_path, """\
            conditions:
              - name: fast
                points: 20
                urgency_is: [immediately]
              - name: money
                points: 10
                finding: rich
              - name: month
                points: 5
                timeline_within_days: -3
            """)
    problems = [caught.value, *caught.value.also]
    assert [(p.line, p.key) for p in problems] == [
        (4, "conditions[0].urgency_is[0]"), (7, "conditions[1].finding"), (10, "conditions[2].timeline_within_days")]
    assert "'now'" in problems[0].message and "pre_approved" in problems[1].message
    assert all(str(p).startswith(f"{tmp_path / 'scoring.yaml'}:") for p in problems)


def test_shipped_scoring_reads_sentences_not_keywords():
    """Issue 18: "not pre-approved yet, no rush" scored no points for pre-approval and ready-to-act
    under the old keyword lists; the shipped file must not give them."""
    rules = load_scoring(SHIPPED)
    when = datetime(2026, 12, 2, 12, tzinfo=UTC)

    def points(message: str) -> dict[str, int]:
        base = Lead(source="website", rule_version="1", message=message, received_at=when)
        return {line.name: line.points for line in rules.score(with_inquiry(base)).score_breakdown}

    hedged = points("We're not pre-approved yet and there's no rush, just looking.")
    assert "pre-approved" not in hedged and "ready to act" not in hedged
    assert hedged.get("just browsing", 0) < 0
    keen = points("We're pre-approved and want to see it this Saturday.")
    assert keen.get("pre-approved", 0) > 0 and keen.get("ready to act", 0) > 0
