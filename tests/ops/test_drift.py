"""Rules survive template drift, and the tech channel hears about it early.

The acceptance test of issue 4: for every fixture of every source that yields a lead, a
mutated copy, with each label replaced by a synonym from ``rules/labels.yaml`` and the
field order shuffled, still yields the same name, email and phone; where the mutation
broke the rule (without the vocabulary the lead would lose its name, email or phone, or
become a dead letter) the lead carries a drift warning.

How the mutations are made, from the ``.eml`` (``mutate``):

- Every ``text/plain`` and ``text/html`` part is decoded, changed and re-encoded as UTF-8
  (also inside a ``message/rfc822`` attachment); headers are kept.
- Labels: a label is text the rule itself uses as a ``label`` for a vocabulary field, or any
  label of ``labels.yaml``. In text, a label at the start of a line followed by ``:``, a tab,
  `` - `` or the end of the line; in HTML, the first cell of a table row with two or more
  cells, a ``<dt>``, or a text node that opens a block and is followed by ``:``. Each is
  replaced by a synonym of its field that the rule does not list for that field (chosen by
  a seeded random generator; capitals kept for labels typed in capitals). ``MLS # 123``
  (no separator) gets ``: `` after the new label.
- Order: in text, a *field segment* is a label line (a label alone on its line takes the
  value lines below it, up to a blank line) or a line that is a bare email or phone; runs of
  adjacent segments (blank lines between them allowed) are shuffled, the blank lines staying
  where they were. In HTML, runs of adjacent field rows (first cell a label, or a bare email
  or phone) and the ``<dt>/<dd>`` pairs of a ``<dl>`` are shuffled.
- Headers and the subject are not changed: a name only in the subject or the From display
  name (Rent.com, Zumper) is not template drift this test can make.

Fixtures in ``_hostile/`` are left out: re-encoding would repair the damage they exist for.
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
import random
import re
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from bs4 import BeautifulSoup, NavigableString, Tag

from daemon.lead import DeadLetter, DeadLetterReason, Ignored, Lead
from daemon.ops.drift import DriftMonitor
from daemon.pipeline import Engine, Processed, parse_email
from daemon.reading import goldens
from daemon.reading.parsing import is_drift_warning
from daemon.reading.reader import NEW_SENDER
from daemon.reading.rules import Rule
from daemon.reading.vocabulary import VOCABULARY_FIELDS, Vocabulary, has_shape, label_key

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "fixtures" / "emails"
ENGINE = Engine.load(REPO / "rules")
SEEDS = (1, 2, 3)
CONTACT = ("full_name", "email", "phone")


def lead_fixtures() -> list[Path]:
    found = []
    for eml in goldens.fixtures(FIXTURES):
        golden = goldens.load(eml) or {}
        if eml.parent.name != "_hostile" and "lead" in golden:
            found.append(eml)
    return found


LEAD_FIXTURES = lead_fixtures()


# -- the mutation -------------------------------------------------------------------------------


@dataclass
class Mutation:
    """A mutated email and what was done to it."""

    data: bytes
    replaced: list[tuple[str, str, str]] = field(default_factory=list)  # (field, old, new)
    shuffled: int = 0  # runs of fields whose order changed


class Labels:
    """The labels a mutation recognises for one rule, and the synonyms it may use."""

    def __init__(self, rule: Rule, vocabulary: Vocabulary, rng: random.Random):
        self.vocabulary = vocabulary
        self.rng = rng
        self.own: dict[str, set[str]] = {}  # field -> the rule's own label keys
        self.known: dict[str, str] = {}  # label text -> field
        for name, extractors in rule.fields.items():
            for ex in extractors:
                for label in ex.label or ():
                    if name in VOCABULARY_FIELDS:
                        self.own.setdefault(name, set()).add(label_key(label))
                        self.known.setdefault(label, name)
        for name, labels in vocabulary.labels.items():
            for label in labels:
                self.known.setdefault(label, name)
        used = {k for keys in self.own.values() for k in keys}
        self.choices = {
            name: [s for s in vocabulary.labels.get(name, ()) if label_key(s) not in used]
            for name in VOCABULARY_FIELDS
        }
        # longest first, so "Phone Number" is found before "Phone"
        words = sorted(self.known, key=len, reverse=True)
        self.pattern = re.compile(
            r"^(?P<indent>\s*)(?P<label>" + "|".join(_flexible(w) for w in words) + r")"
            r"(?P<sep>\s*(?:[:：]|\t|\s[-–]\s)|\s*$)?", re.IGNORECASE)

    def field_of(self, label: str) -> str | None:
        key = label_key(label)
        return next((f for text, f in self.known.items() if label_key(text) == key), None)

    def synonym(self, name: str, old: str) -> str | None:
        choices = [s for s in self.choices.get(name, []) if label_key(s) != label_key(old)]
        if not choices:
            return None
        new = self.rng.choice(choices)
        return new.upper() if old.isupper() else new

    def match(self, text: str) -> re.Match[str] | None:
        m = self.pattern.match(text)
        if m is None:
            return None
        # "MLS #123" and "Phone#: 1" need no separator; other labels do ("Names of…" is prose)
        if m["sep"] is None and m["label"][-1:].isalnum():
            return None
        return m


def _flexible(label: str) -> str:
    return r"\s*".join(re.escape(w) for w in label.split())


def mutate(data: bytes, rule: Rule, vocabulary: Vocabulary, seed: int) -> Mutation:
    """A copy of ``data`` with each label replaced by a synonym and the fields shuffled."""
    rng = random.Random(seed)
    labels = Labels(rule, vocabulary, rng)
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    result = Mutation(b"")
    for part in list(msg.walk()):
        ctype = part.get_content_type()
        if part.is_multipart() or ctype not in ("text/plain", "text/html") or part.get_filename():
            continue
        assert isinstance(part, EmailMessage)
        try:
            content = part.get_content()
        except (LookupError, ValueError):
            continue
        changed = (_mutate_html if ctype == "text/html" else _mutate_text)(content, labels, rng, result)
        part.set_content(changed, subtype=ctype.split("/")[1], charset="utf-8")
    result.data = msg.as_bytes(policy=email.policy.SMTP)
    return result


def _is_bare(text: str) -> bool:
    t = text.strip()
    return bool(t) and (("@" in t and has_shape("email", t)) or (
        re.fullmatch(r"[+(]?\d[\d\s().+-]{6,22}\d", t) is not None and has_shape("phone", t)))


def _mutate_text(text: str, labels: Labels, rng: random.Random, result: Mutation) -> str:
    lines = text.split("\n")
    kinds: list[str] = []  # "label" (value on the line), "alone", "bare", "blank", "other"
    for i, line in enumerate(lines):
        m = labels.match(line)
        if m is not None and (name := labels.field_of(m["label"])) is not None:
            new = labels.synonym(name, m["label"])
            rest = line[m.end("label"):]
            if new is not None:
                if not rest.strip() or m["sep"]:
                    lines[i] = m["indent"] + new + rest
                else:
                    lines[i] = m["indent"] + new + ": " + rest.lstrip()
                result.replaced.append((name, m["label"], new))
            kinds.append("alone" if not rest.strip(" \t:：\r") else "label")
        elif not line.strip():
            kinds.append("blank")
        elif _is_bare(line):
            kinds.append("bare")
        else:
            kinds.append("other")
    # segments: (start, end) line ranges; a label alone owns the value lines below it
    segments: list[tuple[int, int]] = []
    i = 0
    while i < len(lines):
        if kinds[i] in ("label", "alone", "bare"):
            end = i + 1
            if kinds[i] == "alone":
                while end < len(lines) and kinds[end] in ("other", "bare") and (
                        end == i + 1 or kinds[end] == "other"):
                    end += 1
            segments.append((i, end))
            i = end
        else:
            i += 1
    out = list(lines)
    for run in _runs(segments, kinds):
        if len(run) < 2:
            continue
        order = _shuffled(len(run), rng)
        bodies = [lines[a:b] for a, b in run]
        gaps = [lines[run[k][1] : run[k + 1][0]] for k in range(len(run) - 1)]
        rebuilt: list[str] = []
        for k, j in enumerate(order):
            rebuilt += bodies[j]
            if k < len(gaps):
                rebuilt += gaps[k]
        out[run[0][0] : run[-1][1]] = rebuilt
        result.shuffled += 1
    return "\n".join(out)


def _runs(segments: list[tuple[int, int]], kinds: list[str]) -> list[list[tuple[int, int]]]:
    """Adjacent segments, with only blank lines between them."""
    runs: list[list[tuple[int, int]]] = []
    for seg in segments:
        if runs and all(k == "blank" for k in kinds[runs[-1][-1][1] : seg[0]]):
            runs[-1].append(seg)
        else:
            runs.append([seg])
    return runs


def _shuffled(n: int, rng: random.Random) -> list[int]:
    order = list(range(n))
    rng.shuffle(order)
    if order == sorted(order):
        order = order[1:] + order[:1]
    return order


def _mutate_html(html: str, labels: Labels, rng: random.Random, result: Mutation) -> str:
    soup = BeautifulSoup(html, "lxml")

    def relabel(node: Tag, *, whole: bool) -> bool:
        """Replace the label at the start of ``node``'s text; ``whole``: the text is only the label."""
        text = node.get_text(" ", strip=True)
        m = labels.match(text)
        if m is None or (name := labels.field_of(m["label"])) is None:
            return False
        if whole and text[m.end("label"):].strip(" :："):
            return False
        if not whole and not (m["sep"] or "").strip():
            return False  # a text node in a block: only "Label: value"
        new = labels.synonym(name, m["label"])
        if new is None:
            return True
        target = next((s for s in node.find_all(string=True) if s.strip()), None)
        if isinstance(target, NavigableString):
            target.replace_with(re.sub(re.escape(m["label"]), lambda _: new, str(target), count=1,
                                       flags=re.IGNORECASE))
            result.replaced.append((name, m["label"], new))
        return True

    def is_field_row(row: Tag) -> bool:
        cells = row.find_all(["td", "th"], recursive=False)
        if not cells:
            return False
        first = cells[0].get_text(" ", strip=True)
        if _is_bare(first):
            return True
        return len(cells) >= 2 and relabel(cells[0], whole=True)

    for parent in {row.parent for row in soup.find_all("tr") if row.parent is not None}:
        rows = parent.find_all("tr", recursive=False)
        flags = [is_field_row(r) for r in rows]
        run: list[Tag] = []
        for row, is_field in [*zip(rows, flags, strict=True), (None, False)]:
            if is_field and row is not None:
                run.append(row)
                continue
            if len(run) >= 2:
                _reorder(run, _shuffled(len(run), rng))
                result.shuffled += 1
            run = []
    for dl in soup.find_all("dl"):
        terms = dl.find_all("dt", recursive=False)
        pairs = [(dt, dt.find_next_sibling("dd")) for dt in terms]
        for dt, _ in pairs:
            relabel(dt, whole=True)
        if len(pairs) >= 2 and all(dd is not None for _, dd in pairs):
            order = _shuffled(len(pairs), rng)
            anchors = [dt for dt, _ in pairs]
            placeholders = [soup.new_tag("i") for _ in anchors]
            for ph, dt in zip(placeholders, anchors, strict=True):
                dt.insert_before(ph)
            moved = [(pairs[j][0].extract(), pairs[j][1].extract()) for j in order]  # type: ignore[union-attr]
            for ph, (dt, dd) in zip(placeholders, moved, strict=True):
                ph.replace_with(dt)
                dt.insert_after(dd)
            result.shuffled += 1
    for block in soup.find_all(["p", "div", "li"]):
        if not block.find(["p", "div", "li", "table"]):
            relabel(block, whole=False)
    return str(soup)


def _reorder(rows: list[Tag], order: list[int]) -> None:
    placeholders = []
    for row in rows:
        ph = BeautifulSoup("<tr></tr>", "lxml").tr
        assert ph is not None
        row.insert_before(ph)
        placeholders.append(ph)
    taken = [rows[j].extract() for j in order]
    for ph, row in zip(placeholders, taken, strict=True):
        ph.replace_with(row)


# -- the acceptance test ------------------------------------------------------------------------


def contact(outcome: Lead | DeadLetter | Ignored) -> dict[str, Any] | None:
    return {k: getattr(outcome, k) for k in CONTACT} if isinstance(outcome, Lead) else None


@dataclass(frozen=True)
class Case:
    eml: Path
    seed: int

    @property
    def id(self) -> str:
        return f"{self.eml.relative_to(FIXTURES)}~{self.seed}"


CASES = [Case(eml, seed) for eml in LEAD_FIXTURES for seed in SEEDS]


def seed_of(case: Case) -> int:
    """Each fixture and seed its own random choices, the same in every run."""
    return zlib.crc32(case.id.encode())
#: which cases broke their rule (filled as the test runs; checked by the summary test)
BROKEN: dict[str, bool] = {}


def rule_of(eml: Path) -> Rule:
    golden = goldens.load(eml)
    assert golden is not None
    rule = ENGINE.rules.by_source(golden["lead"]["source"])
    assert rule is not None
    return rule


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_fixture_with_relabelled_shuffled_fields_yields_the_same_contact(case: Case):
    golden = goldens.load(case.eml)
    assert golden is not None
    want = {k: golden["lead"][k] for k in CONTACT}
    mutation = mutate(case.eml.read_bytes(), rule_of(case.eml), ENGINE.labels, seed_of(case))
    outcome = parse_email(mutation.data, ENGINE)
    without_vocabulary = parse_email(mutation.data, dataclasses.replace(ENGINE, labels=Vocabulary()))
    broke = contact(without_vocabulary) != want
    BROKEN[case.id] = broke
    what = f"replaced {mutation.replaced}, {mutation.shuffled} runs shuffled"
    assert contact(outcome) == want, f"{what}; got {outcome}"
    assert isinstance(outcome, Lead) and outcome.source == golden["lead"]["source"], what
    if broke:
        drift = [w for w in outcome.warnings if is_drift_warning(w)]
        assert drift, f"{what}: the rule broke, but the lead has no drift warning: {outcome.warnings}"


def test_the_mutations_really_break_the_rules_they_test():
    """Guards the test above against passing vacuously: most label-based fixtures must lose
    their contact details to the mutation when the vocabulary is off."""
    missing = [c.id for c in CASES if c.id not in BROKEN]
    for c in CASES:
        if c.id in missing:
            m = mutate(c.eml.read_bytes(), rule_of(c.eml), ENGINE.labels, seed_of(c))
            no_vocab = parse_email(m.data, dataclasses.replace(ENGINE, labels=Vocabulary()))
            want = {k: (goldens.load(c.eml) or {})["lead"][k] for k in CONTACT}
            BROKEN[c.id] = contact(no_vocab) != want
    broken_fixtures = {c.eml for c in CASES if BROKEN[c.id]}
    assert len(broken_fixtures) >= 20, sorted(str(p.relative_to(FIXTURES)) for p in broken_fixtures)


#: Layouts without any label (SOURCES.md: "Many big sources have no labels at all"): their
#: mutation can only shuffle bare lines, and their rules read them by position and pattern.
LABEL_LESS = {
    "apartments_com/newer_reply_to.eml", "apartments_com/newer_reply_to_no_name.eml",
    "homes_com/newer_phone_only_html.eml", "homes_com/newer_phone_only_multipart.eml",
    "hotpads/html_caps_reply_to.eml", "hotpads/html_hcard.eml", "hotpads/multipart_hcard.eml",
    "zillow/current_layout_all_caps.eml", "zillow/current_layout_html_only.eml",
    "zillow/current_layout_multipart.eml", "zillow/forwarded_as_attachment.eml",
    "zillow_rentals/html_only.eml", "zillow_rentals/multipart.eml",
    "zillow_rentals/text_base64_multiline.eml",
    "zumper/html_only_nonascii.eml", "zumper/multipart.eml", "zumper/text_base64_caps.eml",
}


def test_only_the_label_less_layouts_have_no_label_to_replace():
    nothing = set()
    for eml in LEAD_FIXTURES:
        if not mutate(eml.read_bytes(), rule_of(eml), ENGINE.labels, seed_of(Case(eml, 1))).replaced:
            nothing.add(str(eml.relative_to(FIXTURES)))
    assert nothing == LABEL_LESS


def test_the_mutation_relabels_and_shuffles_text_and_html():
    """The generator itself, on the two layouts it handles."""
    eml = FIXTURES / "realtor" / "text_layout.eml"
    m = mutate(eml.read_bytes(), rule_of(eml), ENGINE.labels, 1)
    text = email.message_from_bytes(m.data, policy=email.policy.default)
    body = text.get_body()  # type: ignore[attr-defined]
    assert body is not None
    content = body.get_content()
    assert "Phone Number:" not in content and "Email Address:" not in content
    assert {name for name, _, _ in m.replaced} >= {"first_name", "last_name", "email", "phone"}
    assert m.shuffled >= 1
    eml = FIXTURES / "apartmentlist" / "html_caps_name.eml"
    m = mutate(eml.read_bytes(), rule_of(eml), ENGINE.labels, 1)
    assert all(new.isupper() for _, _, new in m.replaced)
    assert m.shuffled == 1


# -- drift alerts -------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


DRIFT = "zillow v3: field `phone` found under label 'Cell Phone' instead of Phone, Phone Number (template drift?)"


def lead(source: str = "zillow", *warnings: str) -> Lead:
    return Lead(source=source, rule_version="3", full_name="Pat Doe", warnings=warnings)


def dead(rule: str | None = "zillow v3") -> DeadLetter:
    return DeadLetter(DeadLetterReason.MISSING_REQUIRED_FIELD, "required field `phone or email` not found",
                      rule=rule)


@pytest.fixture
def monitor() -> tuple[DriftMonitor, list[str], Clock]:
    sent: list[str] = []
    clock = Clock()
    return DriftMonitor(sent.append, clock=clock), sent, clock


Monitor = tuple[DriftMonitor, list[str], Clock]


def test_the_first_drift_warning_of_a_source_in_a_day_alerts_with_rule_field_labels_and_command(
        monitor: Monitor):
    m, sent, clock = monitor
    m.observe(Processed(1, lead("zillow", DRIFT), lead_id=41))
    assert sent == [f"Template drift in zillow: {DRIFT} — see the email: `leadpipe leads show 41 --email`"]
    m.observe(Processed(2, lead("zillow", DRIFT), lead_id=42))
    clock.advance(hours=1)
    m.observe(Processed(3, lead("zillow", DRIFT), lead_id=43))
    m.flush()
    assert len(sent) == 1  # the same day: the first one only
    clock.advance(days=1)
    m.observe(Processed(4, lead("zillow", DRIFT), lead_id=44))
    assert len(sent) == 2 and sent[1].endswith("`leadpipe leads show 44 --email`")


def test_drift_of_two_sources_alerts_for_each(monitor: Monitor):
    m, sent, _ = monitor
    m.observe(Processed(1, lead("zillow", DRIFT), lead_id=1))
    m.observe(Processed(2, lead("realtor", DRIFT.replace("zillow v3", "realtor v2")), lead_id=2))
    assert [s.split(":")[0] for s in sent] == ["Template drift in zillow", "Template drift in realtor"]


def test_a_lead_without_drift_warnings_alerts_nothing(monitor: Monitor):
    m, sent, _ = monitor
    m.observe(Processed(1, lead("zillow", "phone '12' is not a valid phone number; left empty"), lead_id=1))
    m.observe(Processed(2, Ignored("newsletter")))
    assert sent == []


def test_a_rise_in_a_sources_dead_letter_rate_alerts_then_is_rate_limited_with_a_count(monitor: Monitor):
    m, sent, clock = monitor
    for i in range(3):
        m.observe(Processed(i, lead("zillow"), lead_id=i))
    m.observe(Processed(10, dead(), dead_letter_id=7))
    assert len(sent) == 1
    assert sent[0].startswith("Dead-letter rate of zillow rose to 25% (1 of 4 emails in the last 24 h; was 0%)")
    assert "rule zillow v3: missing_required_field" in sent[0]
    assert sent[0].endswith("`leadpipe dlq show 7`")
    for i in range(3):
        clock.advance(minutes=1)
        m.observe(Processed(11 + i, dead(), dead_letter_id=8 + i))
    assert len(sent) == 1  # held back: one per source per 15 minutes
    m.flush()
    assert len(sent) == 1
    clock.advance(minutes=15)
    m.flush()
    assert len(sent) == 2
    assert sent[1].startswith("zillow: 3 more alerts held back since 09:00 UTC; the latest: Dead-letter rate "
                              "of zillow rose to 57% (4 of 7")
    assert sent[1].endswith("`leadpipe dlq show 10`")


def test_a_steady_dead_letter_rate_does_not_alert_again(monitor: Monitor):
    m, sent, clock = monitor
    m.observe(Processed(1, dead(), dead_letter_id=1))
    clock.advance(minutes=20)
    m.observe(Processed(2, dead(), dead_letter_id=2))  # still 100%: no rise
    assert len(sent) == 1
    m.observe(Processed(3, lead("zillow"), lead_id=3))  # 67%
    m.observe(Processed(4, dead(), dead_letter_id=4))  # 75%: a rise again
    assert len(sent) == 2 and "rose to 75%" in sent[1]


def test_dead_letters_no_rule_matched_count_against_unknown(monitor: Monitor):
    m, sent, _ = monitor
    m.observe(Processed(1, DeadLetter(DeadLetterReason.NO_MATCHING_RULE, "no rule matches"), dead_letter_id=3))
    assert sent[0].startswith("Dead-letter rate of unknown rose to 100%")
    assert "no rule matched: no_matching_rule" in sent[0]


def test_a_lead_read_from_a_new_sender_alerts_once_with_the_command_that_drafts_its_rule(monitor: Monitor):
    """The tech channel hears of a new sender once (not once a day, not per lead), and is
    told how to draft its rule — not to replay anything."""
    m, sent, clock = monitor
    w = f"{NEW_SENDER} a@b.example (subject 'Hi'); read by the reader. Draft its rule: …"
    m.observe(Processed(1, lead("b.example", w), lead_id=5))
    m.observe(Processed(2, lead("b.example", w), lead_id=6))
    clock.advance(minutes=60 * 25)
    m.observe(Processed(3, lead("b.example", w), lead_id=7))
    m.observe(Processed(4, lead("c.example", w.replace("b.example", "c.example")), lead_id=8))
    assert sent == [
        f"New sender b.example: a lead was read without a rule ({w}). "
        "Draft its rule: `leadpipe rules new b.example --lead 5`",
        f"New sender c.example: a lead was read without a rule ({w.replace('b.example', 'c.example')}). "
        "Draft its rule: `leadpipe rules new c.example --lead 8`",
    ]
    assert not any("dlq replay" in text for text in sent)


def test_drift_and_dead_letter_alerts_of_one_source_share_its_rate_limit(monitor: Monitor):
    m, sent, clock = monitor
    m.observe(Processed(1, lead("zillow", DRIFT), lead_id=1))
    clock.advance(minutes=5)
    m.observe(Processed(2, dead(), dead_letter_id=2))
    assert len(sent) == 1
    clock.advance(minutes=11)
    m.observe(Processed(3, lead("zillow"), lead_id=3))
    m.observe(Processed(4, dead(), dead_letter_id=4))
    assert len(sent) == 2
    assert "(and 1 more alert held back since 09:00 UTC)" in sent[1]


def test_an_alert_that_fails_does_not_fail_the_email(monitor: Monitor):
    def broken(text: str) -> None:
        raise RuntimeError("slack is down")

    m = DriftMonitor(broken)
    m.observe(Processed(1, lead("zillow", DRIFT), lead_id=1))  # no exception


def test_alert_text_names_rule_field_expected_and_found_for_a_real_drifted_email():
    eml = FIXTURES / "realtor" / "text_layout.eml"
    data = eml.read_bytes().replace(b"Phone Number:", b"Cell Phone:")
    outcome = parse_email(data, ENGINE)
    sent: list[str] = []
    DriftMonitor(sent.append).observe(Processed(1, outcome, lead_id=9))
    assert sent == ["Template drift in realtor: realtor v2: field `phone` found under label 'Cell Phone' "
                    "instead of Phone Number (template drift?) — see the email: `leadpipe leads show 9 --email`"]



def test_the_daemon_alerts_the_first_drifted_email_of_the_day_through_its_alert(
        tmp_path: Path, caplog: pytest.LogCaptureFixture):
    import logging

    from daemon.config import load_settings
    from daemon.service import Service

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    drifted = (FIXTURES / "realtor" / "text_layout.eml").read_bytes().replace(b"Phone Number:", b"Cell Phone:")
    (inbox / "1.eml").write_bytes(drifted)
    (inbox / "2.eml").write_bytes(drifted.replace(b"Message-ID: <", b"Message-ID: <again."))
    config = tmp_path / "leadpipe.yaml"
    config.write_text(f"database_url: sqlite:///{tmp_path}/lp.db\nrules_dir: {REPO / 'rules'}\n"
                      f"inbox_dir: {inbox}\n", encoding="utf-8")
    service = Service(load_settings(config))
    with caplog.at_level(logging.ERROR):
        results = service.run_once()
    assert [type(r.outcome).__name__ for r in results] == ["Lead", "Lead"]
    alerts = [r.getMessage() for r in caplog.records if "ALERT" in r.getMessage()]
    assert alerts == [f"ALERT Template drift in realtor: realtor v2: field `phone` found under label "
                      f"'Cell Phone' instead of Phone Number (template drift?) — see the email: "
                      f"`leadpipe leads show {results[0].lead_id} --email`"]
    service.db.dispose()
