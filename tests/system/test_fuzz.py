"""Hostile emails and rule files, built by hypothesis.

Promises under test: whatever bytes arrive, ``parse_email`` and the stored path (accept +
Worker) never raise, and each email becomes a lead, an ignored email or a dead letter
with a reason; ``parser_error`` (an unexpected failure) never happens. A fuzzed rule file
fails only with ``RuleError`` naming its file (and a line where there is one).

Bounded for CI (``derandomize``; ~100–150 examples per test). For long runs:
``LEADPIPE_FUZZ=long pytest tests/system/test_fuzz.py`` (random seeds, thousands of examples).
"""

from __future__ import annotations

import os
import random
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from daemon.errors import RuleError
from daemon.intake import inbox
from daemon.lead import DeadLetter, DeadLetterReason, Ignored, Lead, Origin, RawEmail
from daemon.pipeline import Engine, Worker, parse_email
from daemon.reading.rules import load_rule_file, load_rules
from storage import inbound
from storage.db import Database

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = sorted((ROOT / "fixtures" / "emails").rglob("*.eml"))
RULE_FILES = sorted(p for p in (ROOT / "rules").glob("*.yaml") if p.name not in ("labels.yaml", "scoring.yaml"))
RECEIVED = datetime(2026, 11, 3, 19, 22, 5, tzinfo=UTC)

_SUPPRESS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture]
settings.register_profile("ci", max_examples=120, deadline=None, derandomize=True,
                          suppress_health_check=_SUPPRESS, print_blob=True)
settings.register_profile("long", max_examples=3000, deadline=None, derandomize=False,
                          suppress_health_check=_SUPPRESS, print_blob=True)
PROFILE = "long" if os.environ.get("LEADPIPE_FUZZ") == "long" else "ci"
fuzz = settings.get_profile(PROFILE)


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.load(ROOT / "rules")


# -- building hostile emails -----------------------------------------------------------

_CHARSETS = ["utf-8", "us-ascii", "iso-8859-1", "windows-1252", "utf-16", "x-unknown-42",
             "utf-8\"; foo=\"", "", "gb2312", "utf-7", "\u00e9\u00e9", "../../etc/passwd"]
_CTES = ["7bit", "8bit", "base64", "quoted-printable", "binary", "x-uuencode", "bogus", "base64 ",
         ""]
_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300)


def _header_line(name: str, value: str) -> bytes:
    return f"{name}: {value}\r\n".encode("utf-8", "surrogateescape")


@st.composite
def mime_part(draw: st.DrawFn, depth: int = 0) -> bytes:
    """A part with a random type, charset and transfer encoding, maybe lying about them."""
    kind = draw(st.sampled_from(["text/plain", "text/html", "multipart/alternative",
                                 "multipart/mixed", "message/rfc822", "application/octet-stream"]))
    charset = draw(st.sampled_from(_CHARSETS))
    cte = draw(st.sampled_from(_CTES))
    if kind.startswith("multipart") and depth < 3:
        boundary = draw(st.sampled_from(["b1", "==b==", "", "a" * 80, "--", "b1\r\n--b1"]))
        parts = draw(st.lists(mime_part(depth + 1), max_size=3))
        close = draw(st.booleans())
        wrong = draw(st.booleans())  # a boundary that never appears
        used = boundary + "x" if wrong else boundary
        body = b"".join(b"--" + used.encode() + b"\r\n" + p + b"\r\n" for p in parts)
        if close:
            body += b"--" + used.encode() + b"--\r\n"
        head = f'Content-Type: {kind}; boundary="{boundary}"\r\n'.encode()
        return head + b"\r\n" + body
    if kind == "message/rfc822" and depth < 3:
        return b"Content-Type: message/rfc822\r\n\r\n" + draw(hostile_email(depth + 1))
    payload = draw(st.one_of(_TEXT.map(lambda t: t.encode("utf-8")), st.binary(max_size=300), html_bomb()))
    head = (f"Content-Type: {kind}; charset={charset}\r\n"
            f"Content-Transfer-Encoding: {cte}\r\n").encode()
    return head + b"\r\n" + payload


@st.composite
def html_bomb(draw: st.DrawFn) -> bytes:
    """HTML with scripts, entity floods, unclosed tags and deep nesting."""
    pieces = draw(st.lists(st.sampled_from([
        "<script>alert('Name: Evil')</script>",
        "<style>td{}</style>",
        "&amp;" * 2000,
        "&#x1F600;&#0;&#xD800;&#99999999;&bogus;&",
        "<div>" * 500,
        "<table><tr><td>Name</td><td>Ana Ruiz</td></tr><tr><td>Phone</td><td>305-555-0141</td>",
        "<!DOCTYPE html [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;\">]>&b;",
        "<meta name=\"lead_email\" content=\"x@example.com\">",
        "<![CDATA[ x ]]><!-- comment -->",
        "<p>Email: <a href='mailto:a@b.c'>a@b.c</a>",
        "\x00\x01\x02",
        "<svg><foreignObject><math><mi>",
    ]), max_size=6))
    return "".join(pieces).encode("utf-8", "surrogatepass")


@st.composite
def hostile_email(draw: st.DrawFn, depth: int = 0) -> bytes:
    headers = b""
    for name in draw(st.lists(st.sampled_from(
            ["From", "To", "Subject", "Date", "Message-ID", "Reply-To", "X-Junk", "MIME-Version"]), max_size=8)):
        value = draw(st.one_of(
            _TEXT,
            st.sampled_from(["=?utf-8?q?Zo=C3=AB?= <z@zillow.com>", "=?bogus?b?!!!?=", "<>", "@@@",
                             "\"unclosed <a@b", "Thu, 99 Foo 2026 99:99:99 +9999",
                             "leads@zillow.com", "New Lead: Ana Ruiz", "a" * 5000,
                             "group: a@b.c, <d@e.f>;", "<x@y>" * 200]),
        ))
        headers += _header_line(name, value.replace("\r", " ").replace("\n", " "))
    return headers + draw(mime_part(depth))


def _nested(depth: int) -> bytes:
    msg = (b"From: leads@zillow.com\r\nSubject: lead\r\nContent-Type: text/plain\r\n\r\n"
           b"Name: Ana Ruiz\r\nPhone: 305-555-0141\r\n")
    for i in range(depth):
        msg = (f"From: fwd{i}@example.com\r\nSubject: Fwd: lead\r\nMIME-Version: 1.0\r\n"
               f"Content-Type: multipart/mixed; boundary=\"n{i}\"\r\n\r\n--n{i}\r\n"
               f"Content-Type: text/plain\r\n\r\nsee attached\r\n--n{i}\r\n"
               f"Content-Type: message/rfc822\r\n\r\n").encode() + msg + f"\r\n--n{i}--\r\n".encode()
    return msg


def _deep_html(fixture: str, depth: int = 5000) -> bytes:
    """A fixture whose HTML nests 5,000 elements deep: a recursive walk would blow the stack."""
    data = (ROOT / "fixtures" / "emails" / fixture).read_bytes()
    head, _, body = data.partition(b"\n\n")
    return head + b"\nContent-Type: text/html; charset=utf-8\n\n<html><body>" + b"<div>" * depth + body


@st.composite
def mutated_fixture(draw: st.DrawFn) -> bytes:
    """A real fixture email with bytes flipped, cut, duplicated or inserted."""
    data = bytearray(FIXTURES[draw(st.integers(0, len(FIXTURES) - 1))].read_bytes())
    rnd = random.Random(draw(st.integers(0, 2**32 - 1)))
    for _ in range(draw(st.integers(1, 20))):
        if not data:
            break
        op = rnd.randrange(5)
        i = rnd.randrange(len(data))
        if op == 0:
            data[i] = rnd.randrange(256)
        elif op == 1:
            del data[i: i + rnd.randrange(1, 200)]
        elif op == 2:
            j = rnd.randrange(len(data))
            data[i:i] = data[j: j + rnd.randrange(1, 200)]
        elif op == 3:
            data[i:i] = rnd.choice([b"\r\n--", b"\r\n\r\n", b"=?", b"\x00", b"\xff\xfe", b"<td>", b"&#",
                                    b"\r\nContent-Type: multipart/mixed; boundary=x\r\n"])
        else:
            del data[i:]
    return bytes(data)


EMAILS = st.one_of(
    hostile_email(),
    mutated_fixture(),
    st.binary(max_size=2000),
    st.just(b""),
    st.sampled_from([b"\r\n\r\n", b"\x00" * 100, b"From: a@b\r\n" * 3000,
                     b"Subject: " + b"x" * 200_000 + b"\r\n\r\nbody",
                     _nested(50), _deep_html("zillow/current_layout_html_only.eml"),
                     _deep_html("realtor/courtesy_lead_html.eml"), _deep_html("hotpads/html_hcard.eml")]),
)


def _check(outcome: object) -> None:
    assert isinstance(outcome, Lead | Ignored | DeadLetter), outcome
    if isinstance(outcome, DeadLetter):
        assert outcome.reason is not DeadLetterReason.PARSER_ERROR, outcome.detail
        assert outcome.detail
    if isinstance(outcome, Ignored):
        assert outcome.reason


@fuzz
@given(data=EMAILS)
def test_no_hostile_email_makes_the_parser_fail(engine: Engine, data: bytes):
    """A hostile email that raises, or ends as ``parser_error``, would be a lost lead."""
    _check(parse_email(data, engine, received_at=RECEIVED))


def test_fifty_nested_forwards_are_read(engine: Engine):
    """A forward of a forward… 50 deep must not recurse without end or fail."""
    _check(parse_email(_nested(50), engine, received_at=RECEIVED))


@settings(fuzz, max_examples=max(20, fuzz.max_examples // 4))
@given(batch=st.lists(EMAILS, min_size=1, max_size=5))
def test_the_stored_path_ends_every_hostile_email(engine: Engine, sqlite_url: str, batch: list[bytes]):
    """Accept + Worker: every stored email ends done, ignored or dead, none left pending."""
    db = Database(sqlite_url)
    try:
        db.upgrade()
        for i, data in enumerate(batch):
            inbox.accept(db, RawEmail(data=data, origin=Origin.CLI, received_at=RECEIVED, path=f"fuzz{i}.eml"))
        results = Worker(db, lambda: engine).run_pending(limit=100)
        for r in results:
            _check(r.outcome)
        with db.session() as s:
            counts = inbound.count_by_status(s)
        assert "pending" not in counts and "processing" not in counts, counts
    finally:
        db.dispose()
        Path(sqlite_url.removeprefix("sqlite:///")).unlink(missing_ok=True)


# -- rule files ------------------------------------------------------------------------

@st.composite
def mutated_rule(draw: st.DrawFn) -> str:
    text = RULE_FILES[draw(st.integers(0, len(RULE_FILES) - 1))].read_text()
    rnd = random.Random(draw(st.integers(0, 2**32 - 1)))
    lines = text.split("\n")
    for _ in range(draw(st.integers(1, 8))):
        i = rnd.randrange(len(lines)) if lines else 0
        op = rnd.randrange(6)
        if not lines:
            lines = [""]
        if op == 0:
            del lines[i]
        elif op == 1:
            lines.insert(i, rnd.choice(["  bogus: 1", "- [", "fields: 3", "  regex: '(['", "\t x",
                                        "match: {}", "&a [*a, *a]", "version: !!python/object:os.system x",
                                        "  labels: []", "source: ''", "required: [nosuch]", "%YAML 9.9",
                                        "  selector: 'td:::nth'", "priority: x", ": :", "? [a]: b"]))
        elif op == 2:
            lines[i] = lines[i][: rnd.randrange(len(lines[i]) + 1)]
        elif op == 3:
            lines[i] = "  " + lines[i]
        elif op == 4:
            lines[i] = lines[i].replace(":", "", 1)
        else:
            lines[i] = draw(st.text(max_size=40))
    return "\n".join(lines)


RULE_TEXTS = st.one_of(mutated_rule(), st.text(max_size=300),
                       st.sampled_from(["", "[]", "null", "a: *b", "{{{", "\ufeffsource: x"]))


@fuzz
@given(text=RULE_TEXTS)
def test_a_fuzzed_rule_file_fails_only_with_a_rule_error(tmp_path_factory: pytest.TempPathFactory, text: str):
    """``rules check`` on a broken file must say file:line, never crash with a traceback."""
    path = tmp_path_factory.mktemp("rules") / "fuzzed.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    try:
        load_rule_file(path)
    except RuleError as exc:
        assert exc.file == str(path)
        assert str(path) in str(exc)
        assert exc.line is None or exc.line >= 1
        if exc.message.startswith("YAML syntax error"):
            assert exc.line is not None, exc
    ruleset = load_rules(path.parent)
    for err in ruleset.errors:
        assert isinstance(err, RuleError) and err.file == str(path)


def test_a_control_character_in_a_rule_file_is_reported_with_its_line(tmp_path: Path):
    """A control character pasted into a rule file: the error must say which line."""
    path = tmp_path / "pasted.yaml"
    path.write_text("source: x\nversion: 1\nmatch:\n  from: a\x03b\n", encoding="utf-8")
    with pytest.raises(RuleError) as caught:
        load_rule_file(path)
    assert caught.value.line == 4
    assert "#x0003" in caught.value.message


# -- HTML to text without BeautifulSoup ------------------------------------------------

_HTML_BITS = st.sampled_from([
    "<table><tr><td>Name</td><td>Ana &amp; Bo</td></tr>", "<tr><th>Phone</th><td>305</td>", "</table>",
    "<br>", "<br/>", "</br>", "<p>", "</p>", "<div>", "</div>", "<li>x", "<ul>", "<script>var a='<td>';</script>",
    "<style>p{}</style>", "<head><title>T</title></head>", "<noscript>no</noscript>", "<template><p>t</p></template>",
    "<!-- c -->", "<!DOCTYPE html>", "<![CDATA[cd]]>", "<?xml version='1.0' encoding='utf-8'?>", "<?pi x?>",
    "<html>", "<body>", "</body>", "</html>", "&nbsp;", "&#x1F600;", "&#0;", "&bogus;", "&", "<", ">", "\r\n",
    "\t", "<span>s</span>", "<b>", "<i>", "</b>", "<a href='mailto:a@b.c'>a@b.c</a>", "<h2>H</h2>", "<td>",
    "<font>", "<svg><text>s</text></svg>", "<math><mi>m</mi></math>", "<frameset>", "<textarea>t</textarea>",
    "<select><option>o</option></select>", "<pre>  p\n q</pre>", "\x00", "\u00a0", "é", "<meta charset='latin1'>",
])
HTML_DOCS = st.one_of(
    st.lists(st.one_of(_HTML_BITS, _TEXT), max_size=30).map("".join),
    st.sampled_from(FIXTURES).map(lambda p: p.read_bytes().decode("utf-8", "replace")),
    mutated_fixture().map(lambda b: b.decode("utf-8", "replace")),
)


@pytest.mark.filterwarnings("ignore::bs4.XMLParsedAsHTMLWarning")
@fuzz
@given(html=HTML_DOCS)
def test_html_text_without_the_soup_is_what_the_soup_gives(html: str):
    """The cheap lxml walk must read every email exactly as the BeautifulSoup walk did,
    or a rule's label would stop matching after the speed-up."""
    from bs4 import BeautifulSoup

    from daemon.reading.htmltext import html_text_of, html_to_text

    assert html_text_of(html) == html_to_text(BeautifulSoup(html[:1_000_000], "lxml"))


# -- CSS selectors without BeautifulSoup -------------------------------------------------



def _selectors_in(node: object) -> list[str]:
    if isinstance(node, dict):
        own = [node["selector"]] if isinstance(node.get("selector"), str) else []
        return own + [s for v in node.values() for s in _selectors_in(v)]
    if isinstance(node, list):
        return [s for v in node for s in _selectors_in(v)]
    return []


_RULE_SELECTORS = sorted({s for path in (ROOT / "rules").glob("*.yaml")
                          for s in _selectors_in(yaml.safe_load(path.read_text()))})
assert _RULE_SELECTORS, "the shipped rules use CSS selectors; this test must see them"
_SELECTORS = st.sampled_from([*_RULE_SELECTORS, "td", "tr td:nth-child(2)", "th + td", "p", "a", "a[href]", "div > span", "li ~ li", "*", "title", "script", "head meta", "body", "td b", ".x", "[class~=x]", "meta[name^='lead_']", "table tr:first-child td", "span:not(.x)"])
_ATTRS = st.sampled_from([None, None, "href", "content", "class", "name"])


def _soup_select(html: str, selector: str, attr: str | None) -> list[str]:
    """What the selector extractor gave when it ran on BeautifulSoup + soupsieve, but
    without </body> and </html>: the soup kept what follows them in a second <html>,
    the lxml tree keeps it in the body (``html_tree``)."""
    from bs4 import BeautifulSoup

    from daemon.reading.htmltext import MAX_HTML

    html = re.sub(r"</\s*(?:html|body)\s*>", "", html[:MAX_HTML], flags=re.IGNORECASE)
    values = []
    for el in BeautifulSoup(html, "lxml").select(selector, limit=5):
        if attr is None:
            value = el.get_text(" ", strip=True)
        else:
            got = el.get(attr)
            value = " ".join(got) if isinstance(got, list) else str(got or "")
        if value:
            values.append(value)
    return values


@pytest.mark.filterwarnings("ignore::bs4.XMLParsedAsHTMLWarning")
@settings(fuzz, max_examples=fuzz.max_examples * 4)  # cheap: ~2 ms an example
@example(html="<table><tr><td>a<script>x</script><!-- c -->b <style>s</style></td></tr></table>",
         selector="td", attr=None)
@example(html="<p class=' x \n y '>p</p>", selector=".x", attr="class")
@given(html=st.one_of(HTML_DOCS, st.lists(st.sampled_from([
    "<p class='x'>", "<span class=' x  y'>", "<span>", "</span>", "<meta name='lead_name' content='Ana'>",
    "<a href='mailto:a@b.c' rel='nofollow  me'>", "</a>", "<table><tr><th>A</th><td>1</td><td><b>2</b></td></tr>",
    "</table>", "<ul><li>1</li><li>2</li></ul>", "<div><span>d</span></div>", "<!-- c -->", "<script>x</script>",
    "text", " ", "\n",
]), max_size=30).map("".join)), selector=_SELECTORS, attr=_ATTRS)
def test_css_selectors_on_lxml_find_what_soupsieve_found(html: str, selector: str, attr: str | None):
    """Selectors run on the lxml tree (cssselect → XPath) must give a rule exactly the
    values BeautifulSoup + soupsieve gave, or a rule would read a different lead."""
    from daemon.reading.htmltext import html_tree, select

    tree = html_tree(html)
    got = select(tree, selector, attr) if tree is not None else []
    assert got == _soup_select(html, selector, attr), (html, selector, attr)


@pytest.mark.filterwarnings("ignore::bs4.XMLParsedAsHTMLWarning")
@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: str(p.relative_to(ROOT / "fixtures" / "emails")))
def test_every_rule_selector_reads_every_fixture_as_soupsieve_did(path: Path):
    from daemon.reading.message import Message

    msg = Message(path.read_bytes())
    for selector in _RULE_SELECTORS:
        for attr in (None, "content", "href"):
            assert msg.select(selector, attr) == (_soup_select(msg.html, selector, attr) if msg.html else []), selector
