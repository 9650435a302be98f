"""Loading rule files (daemon/reading/rules.py): a broken file is refused with its file, line and key,
and never stops the other sources' rules from loading and parsing.

When one of these fails, a rule author with a typo gets a message that does not say where
to look, or one broken provider template takes every other source down with it.
"""

from __future__ import annotations

import json
import textwrap
from email.message import EmailMessage
from pathlib import Path

import pytest

from daemon.errors import RuleError
from daemon.lead import Lead
from daemon.pipeline import Engine, parse_email
from daemon.qualifying.scoring import load_scoring
from daemon.reading.rules import json_schema_text, load_rule_file, load_rules

REPO = Path(__file__).resolve().parents[2]
SHIPPED_RULES = REPO / "rules"

GOOD_RULE = """\
source: goodportal
version: 4
match:
  from: ["*@goodportal.example"]
fields:
  full_name:
    - label: Name
  phone:
    - label: Phone
  email:
    - header: reply_to
required: [full_name]
"""

# Each broken file, the line the error must name, and the key path.
BROKEN = {
    "yaml_syntax.yaml": (
        """\
        source: yamlsyntax
        version: 1
        match:
          from: ["*@yamlsyntax.example]
        fields:
          email:
            - header: reply_to
        """,
        4,
        "match.from",
        "YAML syntax error",
    ),
    "unknown_key.yaml": (
        """\
        source: unknownkey
        version: 1
        match:
          from: ["*@unknownkey.example"]
        fields:
          email:
            - header: reply_to
          phone:
            - label: Phone
              filter: [digits]
        """,
        10,
        "fields.phone[0].filter",
        "unknown key",
    ),
    "unknown_field.yaml": (
        """\
        source: unknownfield
        version: 1
        match:
          from: ["*@unknownfield.example"]
        fields:
          email:
            - header: reply_to
          cellphone:
            - label: Cell
        """,
        8,
        "fields.cellphone",
        "unknown key",
    ),
    "bad_regex.yaml": (
        """\
        source: badregex
        version: 1
        match:
          from: ["*@badregex.example"]
        fields:
          email:
            - header: reply_to
            - regex: '(?P<value>[\\w.]+@'
        """,
        8,
        "fields.email[1].regex",
        "bad regular expression",
    ),
    "bad_match_regex.yaml": (
        """\
        source: badmatch
        version: 1
        match:
          from: ["*@badmatch.example"]
          subject: ['new (lead']
        fields:
          email:
            - header: reply_to
        """,
        5,
        "match.subject[0]",  # the pattern itself, not just its list
        "bad regular expression",
    ),
    "replace_unknown_group.yaml": (
        """\
        source: replaceunknowngroup
        version: 1
        match:
          from: ["*@rug.example"]
        fields:
          phone:
            - label: Phone
              filters:
                - replace: ['(\\d{3})-(\\d{4})', '\\1\\3']
        """,
        9,
        "fields.phone[0].filters[0]",
        "replacement '\\\\1\\\\3' does not fit pattern",
    ),
    "replace_unknown_name.yaml": (
        """\
        source: replaceunknownname
        version: 1
        match:
          from: ["*@run.example"]
        fields:
          phone:
            - label: Phone
              filters:
                - replace: ['(?P<area>\\d{3})', '\\g<areas>']
        """,
        9,
        "fields.phone[0].filters[0]",
        "unknown group",
    ),
    "bad_filter_regex.yaml": (
        """\
        source: badfilterregex
        version: 1
        match:
          from: ["*@bfr.example"]
        fields:
          phone:
            - label: Phone
              filters:
                - trim
                - regex: '(?P<value>\\d+'
        """,
        10,
        "fields.phone[0].filters[1].regex",  # not "Input should be 'trim', …"
        "bad regular expression",
    ),
    "unknown_filter.yaml": (
        """\
        source: unknownfilter
        version: 1
        match:
          from: ["*@uf.example"]
        fields:
          phone:
            - label: Phone
              filters:
                - replac: ['-', '']
        """,
        9,
        "fields.phone[0].filters[0]",
        "a filter is one of trim, lower",
    ),
    "bad_selector.yaml": (
        """\
        source: badselector
        version: 1
        match:
          from: ["*@badselector.example"]
        fields:
          email:
            - header: reply_to
          phone:
            - selector: 'td[class=phone'
        """,
        9,
        "fields.phone[0].selector",
        "bad CSS selector",
    ),
    "required_no_extractor.yaml": (
        """\
        source: requirednoextractor
        version: 1
        match:
          from: ["*@rne.example"]
        fields:
          email:
            - header: reply_to

        required: [full_name]
        """,
        9,
        "required",
        "required field `full_name` has no extractor",
    ),
    "two_strategies.yaml": (
        """\
        source: twostrategies
        version: 1
        match:
          from: ["*@two.example"]
        fields:
          email:
            - header: reply_to
              label: Email
        """,
        7,
        "fields.email[0]",
        "exactly one of",
    ),
}


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def lead_email() -> bytes:
    m = EmailMessage()
    m["From"] = "Good Portal <leads@goodportal.example>"
    m["Reply-To"] = "Ana Ruiz <ana@example.com>"
    m["Subject"] = "New lead"
    m.set_content("Name: Ana Ruiz\nPhone: (305) 555-0142\n")
    return bytes(m)


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_rule_file_is_refused_with_file_line_and_key(tmp_path: Path, name: str):
    text, line, key, words = BROKEN[name]
    path = write(tmp_path, name, text)
    with pytest.raises(RuleError) as caught:
        load_rule_file(path)
    e = caught.value
    assert (e.file, e.line, e.key) == (str(path), line, key), str(e)
    assert words in e.message
    assert str(e).startswith(f"{path}:{line}: {key}: ")


def test_broken_files_do_not_stop_the_good_ones_loading_and_parsing(tmp_path: Path):
    write(tmp_path, "good.yaml", GOOD_RULE)
    for name, (text, *_rest) in BROKEN.items():
        write(tmp_path, name, text)
    engine = Engine.load(tmp_path)
    assert [r.source for r in engine.rules] == ["goodportal"]
    located = {(Path(e.file).name, e.line, e.key) for e in engine.rules.errors}
    assert located == {(name, line, key) for name, (_t, line, key, _w) in BROKEN.items()}
    lead = parse_email(lead_email(), engine)
    assert isinstance(lead, Lead), lead
    assert (lead.source, lead.rule_version, lead.full_name, lead.phone, lead.email) == (
        "goodportal", "4", "Ana Ruiz", "+13055550142", "ana@example.com")


def test_two_files_with_the_same_source_refuse_the_second_at_its_source_line(tmp_path: Path):
    write(tmp_path, "a_first.yaml", GOOD_RULE)
    write(tmp_path, "b_second.yaml", "# a copy someone forgot to rename\n\n" + GOOD_RULE)
    rules = load_rules(tmp_path)
    assert [(r.spec.source, Path(r.file).name) for r in rules.rules] == [("goodportal", "a_first.yaml")]
    (e,) = rules.errors
    assert (Path(e.file).name, e.line, e.key) == ("b_second.yaml", 3, "source")
    assert "a_first.yaml" in e.message


def test_every_problem_in_one_file_is_reported(tmp_path: Path):
    path = write(tmp_path, "two_problems.yaml", """\
        source: twoproblems
        version: 1
        match:
          from: ["*@two.example"]
        fields:
          email:
            - header: reply_to
              colour: red
          phone:
            - regex: '(unclosed'
        """)
    rules = load_rules(tmp_path)
    assert {(e.line, e.key) for e in rules.errors} == {
        (8, "fields.email[0].colour"), (10, "fields.phone[0].regex")}
    assert all(e.file == str(path) for e in rules.errors)


def test_a_rule_file_that_is_not_a_mapping_is_refused_at_line_1(tmp_path: Path):
    path = write(tmp_path, "list.yaml", "- source: x\n")
    with pytest.raises(RuleError) as caught:
        load_rule_file(path)
    assert (caught.value.file, caught.value.line) == (str(path), 1)


def test_require_any_needs_only_one_field_of_the_group_extractable(tmp_path: Path):
    """A Reply-To-only source has an email and no phone; the default [[phone, email]] holds."""
    path = write(tmp_path, "replyto.yaml", """\
        source: replyto
        version: 1
        match:
          from: ["*@replyto.example"]
        fields:
          email:
            - header: reply_to
        """)
    assert load_rule_file(path).require_any == [["phone", "email"]]


def test_require_any_group_with_no_extractable_field_is_refused(tmp_path: Path):
    path = write(tmp_path, "noreach.yaml", """\
        source: noreach
        version: 1
        match:
          from: ["*@noreach.example"]
        fields:
          full_name:
            - label: Name
        """)
    with pytest.raises(RuleError) as caught:
        load_rule_file(path)
    assert caught.value.key == "require_any"
    assert "phone, email" in caught.value.message


def test_rule_version_is_text_even_when_written_as_a_number(tmp_path: Path):
    write(tmp_path, "good.yaml", GOOD_RULE)
    rule = load_rules(tmp_path).by_source("goodportal")
    assert rule is not None and rule.version == "4"


def test_scoring_and_labels_files_are_not_taken_for_rules(tmp_path: Path):
    write(tmp_path, "good.yaml", GOOD_RULE)
    write(tmp_path, "scoring.yaml", "tiers: {low_below: 10, hot_above: 90}\n")
    write(tmp_path, "labels.yaml", "anything: goes\n")
    rules = load_rules(tmp_path)
    assert not rules.errors
    assert [r.source for r in rules] == ["goodportal"]


# -- the shipped rules ------------------------------------------------------------------


def test_shipped_rules_all_load_without_errors():
    rules = load_rules(SHIPPED_RULES)
    assert [str(e) for e in rules.errors] == []
    assert len(rules.rules) >= 8
    sources = [r.source for r in rules]
    assert len(sources) == len(set(sources))


def test_shipped_scoring_file_loads():
    scoring = load_scoring(SHIPPED_RULES / "scoring.yaml")
    assert scoring.conditions
    assert scoring.tiers.low_below <= scoring.tiers.hot_above


def test_shipped_schema_json_is_current():
    """Editors validate rule files against rules/schema.json; a stale one misleads them."""
    path = SHIPPED_RULES / "schema.json"
    if not path.exists():
        pytest.skip("rules/schema.json is not shipped yet")
    assert path.read_text(encoding="utf-8") == json_schema_text(), (
        "rules/schema.json is out of date; run: leadpipe rules schema")
    schema = json.loads(path.read_text(encoding="utf-8"))
    assert {"source", "version", "match", "fields"} <= set(schema["required"])


# -- scoring.yaml -----------------------------------------------------------------------


def test_scoring_errors_name_file_line_and_key(tmp_path: Path):
    path = write(tmp_path, "scoring.yaml", """\
        tiers:
          low_below: 20
          hot_above: 75
        conditions:
          - name: reachable by phone
            points: 20
            present: phone
          - name: high price
            points: 10
            above: {field: property.prise, value: 750000}
          - name: typo
            point: 5
            present: email
        """)
    with pytest.raises(RuleError) as caught:
        load_scoring(path)
    problems = [caught.value, *caught.value.also]
    assert [(p.file, p.line, p.key) for p in problems] == [
        (str(path), 10, "conditions[1].above.field"),
        (str(path), 11, "conditions[2].points"),
        (str(path), 12, "conditions[2].point"),
    ]
    assert "property.prise" in problems[0].message


def test_scoring_yaml_syntax_error_is_located(tmp_path: Path):
    path = write(tmp_path, "scoring.yaml", "tiers:\n  low_below: 20\n  hot_above: [75\nconditions: []\n")
    with pytest.raises(RuleError) as caught:
        load_scoring(path)
    assert (caught.value.file, caught.value.line, caught.value.key) == (str(path), 3, "tiers.hot_above")


def test_engine_load_refuses_a_broken_scoring_file(tmp_path: Path):
    write(tmp_path, "good.yaml", GOOD_RULE)
    write(tmp_path, "scoring.yaml", "tiers: {low_below: 90, hot_above: 10}\n")
    with pytest.raises(RuleError) as caught:
        Engine.load(tmp_path)
    assert caught.value.line == 1
    assert "low_below" in caught.value.message
