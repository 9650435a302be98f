"""Golden files: every fixture email gives exactly the outcome beside it (convention 9).

One case per ``fixtures/emails/**/NAME.eml``, compared with ``NAME.expected.yaml`` through
``daemon.reading.goldens`` (the same comparison ``leadpipe rules test`` prints). When a case fails,
a rule or normalize change altered what a real provider email turns into: review the diff
and, if the change is intended, rewrite the golden with ``leadpipe rules test --update``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.pipeline import Engine, parse_email
from daemon.reading import goldens

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "fixtures" / "emails"
EMAILS = list(goldens.fixtures(FIXTURES)) if FIXTURES.is_dir() else []


@pytest.fixture(scope="module")
def engine() -> Engine:
    engine = Engine.load(REPO / "rules")
    assert not engine.rules.errors, [str(e) for e in engine.rules.errors]
    return engine


def test_there_are_fixtures():
    assert EMAILS, f"no .eml files under {FIXTURES}"


@pytest.mark.parametrize("eml", EMAILS, ids=[str(p.relative_to(FIXTURES)) for p in EMAILS])
def test_fixture_matches_its_golden_file(engine: Engine, eml: Path):
    expected = goldens.load(eml)
    outcome = parse_email(eml.read_bytes(), engine)
    differences = goldens.compare(expected, outcome)
    if differences:
        width = max(len(d.key) for d in differences)
        lines = [f"  {d.key:<{width}}  expected {d.expected!r}\n  {'':<{width}}  got      {d.actual!r}"
                 for d in differences]
        pytest.fail(
            f"{eml.relative_to(REPO)} differs from {goldens.golden_path(eml).name}:\n"
            + "\n".join(lines)
            + "\n(if the change is intended: leadpipe rules test --update, then review git diff)",
            pytrace=False,
        )
