"""Draft a rule file from one example email (``leadpipe rules new SOURCE FILE.eml``).

The draft matches the example's sender domain and the fixed part of its subject, has one
``label`` extractor per label/value pair found in the text (mapped to a lead field through
``labels.yaml``; labels that map to no field are listed as comments), the lead metadata
tags where present, and header or bare-line extractors for a name, email or phone the
labels did not give. It is a starting point for the developer to edit, checked to load.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import regex

from daemon.reading.candidates import HTML_LINES, Found
from daemon.reading.message import Message
from daemon.reading.reader import read
from daemon.reading.rules import Rule
from daemon.reading.senders import Parties
from daemon.reading.vocabulary import Vocabulary, split_label

# a line, or a table cell (cells of a row are tab-separated in the text rules read)
_BARE_EMAIL = r"(?:^|\t)[ ]*(?P<value>[\w.+'-]+@[\w-]+(?:\.[\w-]+)+)[ ]*(?:\t|$)"
_BARE_PHONE = r"(?:^|\t)[ ]*(?P<value>(?:\+?1[ .-]?)?\(?\d{3}\)?[ .-]?\d{3}[ .-]?\d{4})[ ]*(?:\t|$)"
_REPLY = re.compile(r"^\s*(?:(?:re|fwd?|aw|wg)\s*:\s*)+", re.IGNORECASE)
_SUBJECT_PARTS = re.compile(r"(\s*[:|]\s+|\s+[-–]\s+)")
_VARIABLE = re.compile(r"\d|[\w.+-]+@|\(")
# two to four capitalised words: a person's name ("Anne-Marie Kowalski-Reed")
_NAME_LIKE = re.compile(r"^(?:[^\W\d_a-z][^\s\d]*\s+){1,3}[^\W\d_a-z][^\s\d]*$")
_FIELD_ORDER = ("full_name", "first_name", "last_name", "email", "phone", "message", "address",
                "price", "mls_id", "intent")


@dataclass(frozen=True)
class Draft:
    """The text of a drafted rule file, and what the developer should know about it."""

    text: str
    rule: Rule
    unmapped: tuple[str, ...]


def draft_rule(source: str, data: bytes, labels: Vocabulary, region: str = "US") -> Draft:
    """A rule for ``source`` drafted from the example email ``data``: for every field the
    reader finds (``daemon/reading/reader.py``), the extractor that finds it again — its label, the
    header, the meta tag or class, or a pattern around it in its line.

    Raises ``ValueError`` when the email gives nothing to match on (no sender, no subject).
    """
    outer = Message(data)
    msg = _original(outer)
    sender = msg.from_address or ""
    domain = sender.rpartition("@")[2]
    subject = _subject_pattern(msg)
    if not domain and not subject:
        raise ValueError("the email has neither a sender address nor a subject to recognise it by")
    parties = Parties.of(msg, outer) if msg is not outer else Parties.of(msg)
    reading = read(msg, labels, region, parties=parties)
    fields: dict[str, list[dict[str, object]]] = {}
    notes: dict[str, str] = {}
    values = [f.value for f in reading.chosen.values()]
    unmapped = _unmapped(msg.lines, labels)
    for name, found in reading.chosen.items():
        if name not in _RULE_FIELDS:
            continue
        extractor = _extractor(found, msg, values)
        if extractor is not None:
            fields[name] = [extractor]
            notes[name] = f"{found.value[:60]} ({found.how})"
        else:
            unmapped.append(f"{name} = {found.value[:60]} ({found.how}): no extractor drafted, write one")
    reach = [n for n in ("phone", "email") if n in fields]
    doc = {
        "source": source,
        "version": 1,
        "match": {k: v for k, v in (("from", [f"*@{domain}"] if domain else []),
                                    ("subject", [subject] if subject else [])) if v},
        "fields": fields,
        "required": ["full_name"] if "full_name" in fields else [],
        "require_any": [reach] if reach else [],
    }
    rule = Rule.model_validate(doc)  # raises if the draft would not load
    text = _render(doc, msg, notes, unmapped)
    return Draft(text, rule, tuple(unmapped))


_RULE_FIELDS = frozenset(("full_name", "first_name", "last_name", "email", "phone", "message", "address",
                          "price", "budget"))
_HEADERS = {"Reply-To": "reply_to", "the Reply-To name": "reply_to_name", "the From name": "from_name",
            "From": "from_address"}
_VIA = r"\s+(?:via|through|by)\s"


def _extractor(found: Found, msg: Message, values: list[str]) -> dict[str, object] | None:
    """The extractor that finds ``found`` again in the next email of this template (the
    other ``values`` of this lead stand for anything in the words around it)."""
    if found.label is not None:
        ex: dict[str, object] = {"label": found.label}
        if found.field == "message":
            ex["filters"] = ["collapse", "unquote"]
        return ex
    if found.how in _HEADERS:
        ex = {"header": _HEADERS[found.how]}
        if found.how.endswith("name"):
            ex["filters"] = [{"before": _VIA}]
        return ex
    if found.how.startswith("the lead_"):
        return {"selector": f'meta[name="{found.how.split()[1]}"]', "attr": "content"}
    if found.how.startswith("class "):
        return {"selector": found.how.split()[1]}
    if found.how == "a bare line" and found.field in ("email", "phone"):
        return {"regex": _BARE_EMAIL if found.field == "email" else _BARE_PHONE}
    if found.how == "the subject":
        pattern = _around(msg.subject or "", found.value, values)
        return {"regex": pattern, "in": "subject"} if pattern else None
    lines, at = (msg.html_text.split("\n"), found.line - HTML_LINES) if found.line >= HTML_LINES else (
        msg.lines, found.line)
    if 0 <= at < len(lines):
        line = lines[at]
        if found.field == "message" and found.value.casefold() not in line.casefold():
            return {"after": _anchor(line, values), "until": r"\n\s*\n"}
        pattern = _around(line, found.value, values)
        return {"regex": pattern} if pattern else None
    return None


def _around(line: str, value: str, values: list[str]) -> str | None:
    """A pattern for ``value`` by the words around it in ``line``: the text before it, and
    up to three words after it (digits in them stand for any number)."""
    at = line.casefold().find(value.casefold())
    if at < 0:
        return None
    before = line[:at].strip()
    after = " ".join(line[at + len(value):].split()[:3])
    head = r"(?m)^[ \t]*" + (_generic(before, values) + r"[ \t]*" if before else "")
    tail = r"[ \t]*" + _generic(after, values) if after else r"[ \t]*$"
    return f"{head}(?P<value>[^\\n]+?){tail}"


def _anchor(line: str, values: list[str]) -> str:
    """A pattern for the line a paragraph follows, up to and past the blank lines after it."""
    return r"(?m)^[ \t]*" + _generic(line.strip(), values) + r"[ \t]*\n(?:[ \t]*\n)*"


def _generic(text: str, values: list[str]) -> str:
    """``text`` as a pattern in which this lead's own values (a name, an address) and any
    number stand for whatever the next lead has there."""
    spans = [m.span() for v in values if len(v) >= 3
             for m in re.finditer(re.escape(v), text, re.IGNORECASE)]
    pieces, at = [], 0
    for start, end in sorted(spans):
        if start < at:
            continue
        pieces.append(text[at:start])
        at = end
    pieces.append(text[at:])
    return ".+?".join(r"\d+".join(_escape(p) for p in re.split(r"\d+", piece)) for piece in pieces)


def _unmapped(lines: list[str], labels: Vocabulary) -> list[str]:
    """Label lines whose label means no lead field: listed in the draft as comments."""
    out: list[str] = []
    for line in lines[:200]:
        pair = split_label(line)
        if pair is None or not pair[1]:
            continue
        label, value = pair
        if labels.understand(label) is None and len(label.split()) <= 6:
            out.append(f"{label}: {value[:60]}")
    return out


def _original(msg: Message) -> Message:
    """The forwarded original inside ``msg``, if it is a forward; rules match on it."""
    for inner in (*msg.attached_messages(limit=1), msg.inline_forward()):
        if inner is not None:
            return inner
    return msg


def _subject_pattern(msg: Message) -> str | None:
    """The subject's fixed part, as a regular expression: the parts before the lead's own
    details (a name, an address, a number, an email) begin."""
    subject = _REPLY.sub("", msg.subject or "").strip()
    if not subject:
        return None
    kept: list[str] = []
    for part in _SUBJECT_PARTS.split(subject):
        m = _VARIABLE.search(part)
        if m is not None:
            if part[: m.start()].strip():
                kept.append(part[: m.start()].rstrip())
            break
        if kept and _NAME_LIKE.match(part.strip()):
            break
        kept.append(part)
    head = "".join(kept).rstrip(" -–:|")
    if len(head) < 4:
        return r"\d+".join(_escape(piece) for piece in re.split(r"\d+", subject))
    return _escape(head)


def _escape(text: str) -> str:
    return str(regex.escape(text, special_only=True, literal_spaces=True))


def _render(doc: dict[str, object], msg: Message, notes: dict[str, str], unmapped: list[str]) -> str:
    match = doc["match"]
    assert isinstance(match, dict)
    out = [
        "# yaml-language-server: $schema=schema.json",
        f"# Drafted by `leadpipe rules new` from an email from {msg.from_address or '?'}",
        f"# with the subject {_q(msg.subject or '')}. Check every field, then run",
        f"# `leadpipe rules check` and `leadpipe rules test {doc['source']}`.",
        f"source: {doc['source']}",
        "version: 1",
        f"description: {_q('Drafted from: ' + (msg.subject or ''))}",
        "",
        "match:",
    ]
    for kind, values in match.items():
        out.append(f"  {kind}: [{', '.join(_q(str(v)) for v in values)}]")
    out += ["", "fields:"]
    fields = doc["fields"]
    assert isinstance(fields, dict)
    for name in sorted(fields, key=lambda n: _FIELD_ORDER.index(n) if n in _FIELD_ORDER else 99):
        out.append(f"  {name}:  # {_comment(notes.get(name, ''))}")
        for ex in fields[name]:
            first = True
            for key, value in ex.items():
                lead = "    - " if first else "      "
                first = False
                if isinstance(value, list):
                    out.append(f"{lead}{key}: [{', '.join(_flow(v) for v in value)}]")
                else:
                    out.append(f"{lead}{key}: {_q(str(value))}")
    if not fields:
        out.append("  {}")
    if unmapped:
        out += ["", "# Labels found that map to no lead field (add them under `fields` by hand if wanted):"]
        out += [f"#   {_comment(u)}" for u in unmapped]
    out += ["", f"required: [{', '.join(doc['required'])}]"]  # type: ignore[arg-type]
    groups = doc["require_any"]
    assert isinstance(groups, list)
    out.append("require_any: [" + ", ".join(f"[{', '.join(g)}]" for g in groups) + "]")
    return "\n".join(out) + "\n"


def _flow(item: object) -> str:
    """A list item in YAML flow style: a filter name, or a one-key mapping of a quoted value."""
    if isinstance(item, dict):
        return "{" + ", ".join(f"{k}: {_q(str(v))}" for k, v in item.items()) + "}"
    return str(item)


def _q(text: str) -> str:
    """``text`` as a single-quoted YAML scalar (backslashes stay as typed)."""
    return "'" + text.replace("'", "''").replace("\n", " ") + "'"


def _comment(text: str) -> str:
    return " ".join(text.split())[:100]
