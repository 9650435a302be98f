"""The original email of a lead or dead letter, made safe to show in the admin pages.

The text is shown as text. The HTML is sanitized with ``nh3`` (the Ammonia sanitizer):
no scripts, no event handlers, no forms, no styles that could load anything, no images
but ``data:`` ones — nothing that runs or calls out. The page then shows it in an
``<iframe sandbox srcdoc=…>`` (no scripts, an opaque origin) whose document carries its
own ``Content-Security-Policy: default-src 'none'`` (a ``<meta>`` in the document, and the
admin page's own header, which a srcdoc frame inherits).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import nh3

from daemon.reading.message import Message

#: the policy the email's document gets; inline styles only (already filtered below)
EMAIL_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

_TAGS = set(nh3.ALLOWED_TAGS) | {"font", "tfoot"}
_ATTRIBUTES: dict[str, set[str]] = {k: set(v) for k, v in nh3.ALLOWED_ATTRIBUTES.items()}
for _tag in ("table", "td", "th", "tr", "div", "p", "span", "font", "img", "tbody", "thead"):
    _ATTRIBUTES.setdefault(_tag, set()).update({"style", "width", "height", "align", "valign",
                                                  "bgcolor", "color", "border", "cellpadding",
                                                  "cellspacing"})
_ATTRIBUTES.setdefault("*", set()).add("style")
#: CSS properties that cannot load anything (no url(), no images)
_STYLES = {
    "color", "background-color", "font", "font-family", "font-size", "font-weight",
    "font-style", "text-align", "text-decoration", "text-transform", "line-height",
    "letter-spacing", "vertical-align", "white-space", "width", "max-width", "min-width",
    "height", "max-height", "min-height", "padding", "padding-top", "padding-right",
    "padding-bottom", "padding-left", "margin", "margin-top", "margin-right", "margin-bottom",
    "margin-left", "border", "border-top", "border-right", "border-bottom", "border-left",
    "border-color", "border-style", "border-width", "border-collapse", "border-spacing",
    "border-radius", "display",
}
_MAX_HTML = 512 * 1024


def _attribute(tag: str, attr: str, value: str) -> str | None:
    if tag == "img" and attr == "src" and not value.strip().lower().startswith("data:image/"):
        return None  # a remote image is a tracking pixel at best
    return value


def sanitize_html(html: str) -> str:
    """``html`` with everything that could run or load removed."""
    return nh3.clean(
        html[:_MAX_HTML],
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        attribute_filter=_attribute,
        clean_content_tags={"script", "style", "noscript", "template", "title", "head"},
        url_schemes={"http", "https", "mailto", "tel", "data"},
        link_rel="noopener noreferrer nofollow",
        filter_style_properties=_STYLES,
        strip_comments=True,
    )


def srcdoc(html: str) -> str:
    """A whole document for an ``<iframe srcdoc>``: the sanitized HTML under its own CSP."""
    return ("<!doctype html><html><head><meta charset=\"utf-8\">"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{EMAIL_CSP}\">"
            "<base target=\"_blank\"></head><body>" + sanitize_html(html) + "</body></html>")


@dataclass(frozen=True)
class EmailView:
    """What the admin pages show of one stored email."""

    subject: str | None
    sender: str | None
    date: datetime | None
    message_id: str | None
    text: str
    #: ``srcdoc`` of the sanitized HTML part; empty when the email has none
    html_document: str
    size: int
    problem: str | None = None


def view(data: bytes) -> EmailView:
    """The email in ``data`` for display; never raises."""
    try:
        msg = Message(data)
        html = msg.html
        return EmailView(msg.subject, msg.header("From"), msg.date, msg.message_id,
                         msg.plain.strip() or msg.text, srcdoc(html) if html.strip() else "",
                         len(data))
    except Exception as exc:  # isolation boundary: one odd email must not break the page
        text = data[:20_000].decode("utf-8", "replace")
        return EmailView(None, None, None, None, text, "", len(data),
                         problem=f"the email cannot be read: {exc}")
