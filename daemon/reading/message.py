"""A readable view of one raw email: headers, plain text, HTML, parsed lazily.

Built on mail-parser for MIME and charsets, and ``daemon.reading.htmltext`` for HTML. The
HTML is parsed only when a rule asks for it or the email has no text part, because parsing
HTML costs about as much as parsing the MIME.
"""

from __future__ import annotations

import email.errors
import email.header
import email.utils
import functools
import re
from datetime import datetime
from email.message import EmailMessage
from html import unescape as _unescape
from typing import Any

import ftfy
import lxml.cssselect
import lxml.etree
import mailparser

from daemon.reading.htmltext import MAX_HTML, clean_text, html_text_of, html_tree, select

_FORWARD = re.compile(
    r"^[>\s]*(?:-{5,}\s*Forwarded message\s*-{5,}|Begin forwarded message:|-{5,}\s*Original Message\s*-{5,})\s*$"
    r"|^(?=[> ]*From:\s.+\n[> ]*(?:Sent|Date):\s.+\n)",
    re.IGNORECASE | re.MULTILINE,
)
_FORWARD_HEADER = re.compile(r"^(From|Sent|Date|To|Cc|Subject|Reply-To):\s*(.*)$", re.IGNORECASE)
_META = re.compile(r"<meta\b([^>]{0,2000})>", re.IGNORECASE)
_ATTR = re.compile(r"""([\w:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")


# UTF-8 read as latin-1/cp1252: "Ã" or "Â" followed by a continuation byte's character
_MOJIBAKE = re.compile("[ÃÂ][\u0080-\u00bf]|â€")
_EMAIL_HEADERS = ("From", "To", "Subject", "Date", "Message-ID", "Content-Type", "MIME-Version",
                  "Received", "Return-Path", "Reply-To", "Sender", "Delivered-To")


class UnreadableEmail(Exception):
    """Raised when the bytes cannot be read as an email at all."""


class Message:
    """Lazy accessors over one email. Never holds more than it was asked for."""

    def __init__(self, data: bytes):
        self.data = data
        try:
            self._mail = mailparser.parse_from_bytes(data)
        except Exception as exc:  # mail-parser raises many kinds; all mean "unreadable"
            raise UnreadableEmail(f"{type(exc).__name__}: {exc}") from exc

    # -- headers ---------------------------------------------------------------------

    def header(self, name: str) -> str | None:
        """A header's decoded value, white space collapsed; ``None`` when absent or empty."""
        # From the raw message, not mail-parser's ``headers``: those turn a header given
        # twice into a list and address headers into lists of tuples. The first one counts.
        value = self._mail.message.get(name)
        if value is None:
            return None
        text = " ".join(_decode_words(str(value)).replace("\x00", "").split())
        return text or None

    @property
    def subject(self) -> str | None:
        subject = self._mail.subject
        if isinstance(subject, list):  # Subject given twice: the first one counts
            subject = subject[0] if subject else None
        return " ".join(str(subject or "").replace("\x00", "").split()) or None

    @functools.cached_property
    def message_id(self) -> str | None:
        mid = self.header("Message-ID")
        return mid.strip() if mid else None

    @property
    def from_name(self) -> str | None:
        return _first(self._mail.from_, 0)

    @functools.cached_property
    def from_address(self) -> str | None:
        addr = _first(self._mail.from_, 1)
        return addr.lower() if addr else None

    @property
    def reply_to(self) -> str | None:
        return _first(self._address_header("Reply-To"), 1)

    @property
    def reply_to_name(self) -> str | None:
        return _first(self._address_header("Reply-To"), 0)

    @property
    def to(self) -> str | None:
        return _first(self._mail.to, 1)

    def addresses(self, name: str) -> list[tuple[str, str]]:
        """``(display name, address)`` of each address in header ``name``, decoded."""
        return self._address_header(name)

    def _address_header(self, name: str) -> list[tuple[str, str]]:
        values = self._mail.message.get_all(name) or []
        pairs = email.utils.getaddresses([str(v) for v in values])
        # getaddresses leaves RFC 2047 words (=?utf-8?q?Zo=C3=AB?=) encoded; names need decoding
        return [(_decode_words(n), a) for n, a in pairs if a or n]

    @functools.cached_property
    def date(self) -> datetime | None:
        """The Date header with its own offset; ``None`` when absent or unparsable."""
        value = self._mail.message.get("Date")
        if not value:
            return None
        try:
            d = email.utils.parsedate_to_datetime(str(value))
        except (TypeError, ValueError, IndexError):
            return None
        return d if d.tzinfo is not None else None

    def header_value(self, name: str) -> str | None:
        """A header by the names rules use: ``from_name``, ``reply_to``… or any raw name."""
        aliases = {
            "from_name": lambda: self.from_name,
            "from_address": lambda: self.from_address,
            "reply_to": lambda: self.reply_to,
            "reply_to_name": lambda: self.reply_to_name,
            "subject": lambda: self.subject,
            "to": lambda: self.to,
        }
        getter = aliases.get(name.lower())
        return getter() if getter else self.header(name)

    # -- bodies ----------------------------------------------------------------------

    @functools.cached_property
    def _bodies(self) -> tuple[str, str]:
        plain = "\n".join(p for p in self._mail.text_plain if p)
        html = "\n".join(p for p in self._mail.text_html if p)
        if "\ufffd" in plain or "\ufffd" in html:
            # A part whose bytes do not fit its declared charset (latin-1 sent as utf-8 or
            # us-ascii is common): decode the parts again, trying the usual suspects.
            plain, html = _redecode(self._mail.message, plain, html)
        if _MOJIBAKE.search(plain) or _MOJIBAKE.search(html):
            # UTF-8 bytes under a latin-1 label ("BegoÃ±a")
            plain, html = _undo_mojibake(plain), _undo_mojibake(html)
        if not plain.strip() and not html.strip():
            plain = _body_after_headers(self.data)
            if _looks_like_html(plain):
                plain, html = "", plain
        # NUL is never text; PostgreSQL refuses it in text columns, so a NUL in a lead
        # field would make storing the lead fail.
        return plain.replace("\x00", ""), html.replace("\x00", "")

    @property
    def html(self) -> str:
        return self._bodies[1]

    @property
    def plain(self) -> str:
        return self._bodies[0]

    @functools.cached_property
    def tree(self) -> lxml.etree._Element | None:
        """The HTML part as an lxml tree (``None`` without HTML), for CSS selectors."""
        return html_tree(self.html) if self.html else None

    def select(self, selector: str, attr: str | None = None, limit: int = 5) -> list[str]:
        """What the CSS ``selector`` finds in the HTML part: see ``select``."""
        return select(self.tree, selector, attr, limit) if self.tree is not None else []

    @functools.cached_property
    def text(self) -> str:
        """The text rules read: the plain part, else the HTML turned into lines.

        Table cells of one row are joined by a tab, so ``<td>Phone</td><td>…</td>``
        reads as ``Phone<TAB>…`` and label rules work on both.
        """
        text = self.plain if self.plain.strip() else (html_text_of(self.html) if self.html else "")
        return clean_text(text)

    @functools.cached_property
    def html_text(self) -> str:
        """The HTML part as text (even when a plain part exists)."""
        return clean_text(html_text_of(self.html)) if self.html else ""

    @functools.cached_property
    def lines(self) -> list[str]:
        return self.text.split("\n")

    def attached_messages(self, limit: int = 3) -> list[Message]:
        """Emails attached as ``message/rfc822`` (a forward "as attachment"), outermost first."""
        found: list[Message] = []
        for part in self._mail.message.walk():
            if part.get_content_type() != "message/rfc822":
                continue
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            if inner is None:
                continue
            try:
                found.append(Message(inner.as_bytes()))
            except (UnreadableEmail, LookupError, ValueError):
                continue
            if len(found) >= limit:
                break
        return found

    def inline_forward(self) -> Message | None:
        """See ``_inline_forward``; computed once per email."""
        if not hasattr(self, "_forward"):
            self._forward = self._inline_forward()
        return self._forward

    def _inline_forward(self) -> Message | None:
        """The original email quoted inside a forward typed into the body (Gmail's
        ``---------- Forwarded message ---------``, Apple Mail's ``Begin forwarded
        message:``, Outlook's ``From: … Sent: … To: … Subject:`` block), rebuilt as an
        email with its original From and Subject, or ``None``."""
        text = self.text
        # the pattern tries every line start; most emails hold none of its words at all
        lower = text.lower()
        if not any(w in lower for w in ("forwarded", "original message", "from:")):
            return None
        m = _FORWARD.search(text)
        if not m:
            return None
        rest = self.text[m.end() :].lstrip("\n")
        headers: dict[str, str] = {}
        lines = rest.split("\n")
        i = 0
        while i < len(lines) and i < 12:
            hm = _FORWARD_HEADER.match(lines[i].strip().lstrip("> "))
            if not hm:
                break
            headers.setdefault(hm.group(1).lower(), hm.group(2).strip())
            i += 1
        if "from" not in headers:
            return None
        rest_lines = lines[i:]
        quoted = [x for x in rest_lines if x.strip()]
        if quoted and sum(x.lstrip().startswith(">") for x in quoted) * 2 >= len(quoted):
            # a forward quoted line by line ("> Name: …"): the original is what is quoted
            rest_lines = [re.sub(r"^\s*> ?", "", x) for x in rest_lines]
        body = "\n".join(rest_lines).strip("\n")
        msg = EmailMessage()
        try:
            msg["From"] = headers["from"].replace("\n", " ")
            if "subject" in headers:
                msg["Subject"] = headers["subject"]
        except (ValueError, AttributeError, email.errors.MessageError):
            # The stdlib's address parser raises on some mangled From lines (AttributeError
            # for a group inside an angle address); such a block is no forward we can read.
            return None
        msg.set_content(body or " ")
        try:
            return Message(msg.as_bytes())
        except (UnreadableEmail, ValueError):
            return None

    @functools.cached_property
    def lead_meta(self) -> dict[str, str]:
        """The leadmetadata.org tags anywhere in the HTML part (``<meta name="lead_email"
        content="…">``, also inside ``<body>``), by name without the ``lead_`` prefix:
        ``{"email": "…", "phone": "…"}``. The first tag of a name counts."""
        if "lead_" not in self.html:
            return {}
        found: dict[str, str] = {}
        for tag in _META.finditer(self.html[:MAX_HTML]):
            attrs = {m[1].lower(): _unescape(m[2] or m[3] or m[4] or "") for m in _ATTR.finditer(tag[1])}
            name = attrs.get("name", "").strip().lower()
            content = " ".join(attrs.get("content", "").split())
            if name.startswith("lead_") and content and name[5:] not in found:
                found[name[5:]] = content
        return found

    def is_empty(self) -> bool:
        return not self.text.strip() and not self.html.strip()

    def has_part(self, content_type: str) -> bool:
        """Whether any MIME part is of ``content_type`` (``text/calendar``)."""
        return any(part.get_content_type() == content_type for part in self._mail.message.walk())

    def has_headers(self) -> bool:
        """Whether the bytes carry any header an email has: binary garbage carries none."""
        return any(self._mail.message.get(h) is not None for h in _EMAIL_HEADERS)


def _undo_mojibake(text: str) -> str:
    """``text`` as it was before UTF-8 bytes were read as latin-1 or cp1252: the whole text
    re-read when it is all of one such mistake (fast), else ftfy, which mends it in parts."""
    if not _MOJIBAKE.search(text):
        return text
    for charset in ("cp1252", "latin-1"):
        try:
            return text.encode(charset).decode("utf-8")
        except UnicodeError:
            continue
    return ftfy.fix_encoding(text)


def _decode_words(value: str) -> str:
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except (UnicodeError, LookupError, email.errors.MessageError):  # incl. CharsetError
        return value  # an undecodable word: keep it as written


def _redecode(message: Any, plain: str, html: str) -> tuple[str, str]:
    plains: list[str] = []
    htmls: list[str] = []
    for part in message.walk():
        ctype = part.get_content_type()
        if ctype not in ("text/plain", "text/html") or part.get_filename():
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        text = _decode_best(payload, part.get_content_charset())
        (plains if ctype == "text/plain" else htmls).append(text)
    return ("\n".join(plains) or plain, "\n".join(htmls) or html)


def _decode_best(data: bytes, declared: str | None) -> str:
    for charset in (declared, "utf-8"):
        if not charset:
            continue
        try:
            return data.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
    # cp1252 is what "latin-1" text from Windows mail clients really is
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _body_after_headers(data: bytes) -> str:
    """The raw body of an email whose MIME structure hides it (a boundary that never
    appears): better to read the lead from the raw text than to lose it."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        i = data.find(sep)
        if i >= 0:
            return _decode_best(data[i + len(sep) :], None)
    return ""


def _looks_like_html(text: str) -> bool:
    head = text.lstrip()[:500].lower()
    return head.startswith(("<!doctype html", "<html")) or "<body" in head or "<table" in head


def _first(pairs: list[tuple[str, str]] | None, i: int) -> str | None:
    for pair in pairs or ():
        value = " ".join((pair[i] or "").replace("\x00", "").split())
        if value:
            return value
    return None
