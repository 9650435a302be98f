"""Draft a rule file from one example email (``leadpipe rules new SOURCE FILE.eml``).

The draft matches the example's sender domain and the fixed part of its subject, has one
``label`` extractor per label/value pair found in the text (mapped to a lead field through
``labels.yaml``; labels that map to no field are listed as comments), the lead metadata
tags where present, and header or bare-line extractors for a name, email or phone the
labels did not give. It is a starting point for the developer to edit, checked to load.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import regex

from daemon.message import Message
from daemon.parsing import META_FIELDS
from daemon.rules import Rule
from daemon.vocabulary import Vocabulary, has_shape, split_label

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
    """A rule for ``source`` drafted from the example email ``data``.

    Raises ``ValueError`` when the email gives nothing to match on (no sender, no subject).
    """
    msg = _original(Message(data))
    sender = msg.from_address or ""
    domain = sender.rpartition("@")[2]
    subject = _subject_pattern(msg)
    if not domain and not subject:
        raise ValueError("the email has neither a sender address nor a subject to recognise it by")
    fields: dict[str, list[dict[str, object]]] = {}
    notes: dict[str, str] = {}
    unmapped: list[str] = []

    def add(name: str, extractor: dict[str, object], note: str) -> None:
        fields.setdefault(name, []).append(extractor)
        notes.setdefault(name, note)

    for tag, value in msg.lead_meta.items():
        if tag in META_FIELDS:
            add(META_FIELDS[tag], {"selector": f'meta[name="lead_{tag}"]', "attr": "content"},
                f"lead metadata tag: {value}")
    lines = msg.lines
    for i, line in enumerate(lines):
        pair = split_label(line)
        if pair is None:
            continue
        label, value = pair
        value = value or _value_below(lines, i, labels)
        if not value:
            continue
        name = labels.field_of(label)
        if name is None:
            if len(label.split()) <= 6:
                unmapped.append(f"{label}: {value[:60]}")
            continue
        if any("label" in ex for ex in fields.get(name, [])) or not has_shape(name, value, region):
            continue
        extractor: dict[str, object] = {"label": label}
        if name == "message":
            extractor["filters"] = ["collapse", "unquote"]
        add(name, extractor, f"{label}: {value[:60]}")
    _fill_unlabelled(msg, fields, add)
    has_name = any(n in fields for n in ("full_name", "first_name", "last_name"))
    reach = [n for n in ("phone", "email") if n in fields]
    doc = {
        "source": source,
        "version": 1,
        "match": {k: v for k, v in (("from", [f"*@{domain}"] if domain else []),
                                    ("subject", [subject] if subject else [])) if v},
        "fields": fields,
        "required": ["full_name"] if has_name else [],
        "require_any": [reach] if reach else [],
    }
    rule = Rule.model_validate(doc)  # raises if the draft would not load
    text = _render(doc, msg, notes, unmapped)
    return Draft(text, rule, tuple(unmapped))


def _value_below(lines: list[str], i: int, labels: Vocabulary) -> str:
    """The value under a label that stands alone on line ``i``: the next non-empty line,
    unless that is a label itself."""
    below = next((x.strip() for x in lines[i + 1 :] if x.strip()), "")
    pair = split_label(below) if below else None
    if pair is not None and (pair[1] or below.endswith(":") or labels.field_of(pair[0])):
        return ""
    return below


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


def _fill_unlabelled(msg: Message, fields: dict[str, list[dict[str, object]]],
                     add: Callable[[str, dict[str, object], str], None]) -> None:
    """Headers and bare lines for a name, email or phone the labels did not give; each only
    if it finds something in the example."""
    if "email" not in fields:
        if msg.reply_to and msg.reply_to.lower() != (msg.from_address or ""):
            add("email", {"header": "reply_to"}, f"Reply-To: {msg.reply_to}")
        elif (m := re.search(_BARE_EMAIL, msg.text, re.MULTILINE)) is not None:
            add("email", {"regex": _BARE_EMAIL}, f"a bare line: {m['value']}")
    if "phone" not in fields and (m := re.search(_BARE_PHONE, msg.text, re.MULTILINE)) is not None:
        add("phone", {"regex": _BARE_PHONE}, f"a bare line: {m['value']}")
    if not any(n in fields for n in ("full_name", "first_name", "last_name")) and msg.reply_to_name:
        add("full_name", {"header": "reply_to_name"}, f"Reply-To name: {msg.reply_to_name}")


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
                    out.append(f"{lead}{key}: [{', '.join(str(v) for v in value)}]")
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


def _q(text: str) -> str:
    """``text`` as a single-quoted YAML scalar (backslashes stay as typed)."""
    return "'" + text.replace("'", "''").replace("\n", " ") + "'"


def _comment(text: str) -> str:
    return " ".join(text.split())[:100]
