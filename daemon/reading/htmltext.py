"""HTML as leadpipe reads it: parsed by lxml (libxml2), or by BeautifulSoup where libxml2
refuses it; turned into lines of text the way a person sees the page; and CSS selectors
as a rule's ``selector:`` runs them."""

from __future__ import annotations

import functools
import re
from typing import Any

import lxml.cssselect
import lxml.etree
from bs4 import BeautifulSoup, NavigableString, Tag

# Elements after which a line ends when HTML is turned into text.
_BLOCKS = frozenset(
    ["address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table", "tbody", "thead", "tfoot", "tr", "ul"]
)
MAX_HTML = 1_000_000
_CELLS = frozenset(("td", "th"))
_INVISIBLE = ("script", "style", "head", "title", "noscript", "template")
_SPACES = re.compile(r"[ \f\v\u00a0\u200b\u2007\u202f]+")


@functools.lru_cache(maxsize=512)
def compiled_selector(selector: str) -> lxml.cssselect.CSSSelector:
    """``selector`` compiled once to XPath. Raises ``cssselect.SelectorError`` (a
    ``SelectorSyntaxError`` or ``ExpressionError``) for one it cannot take."""
    return lxml.cssselect.CSSSelector(selector, translator="html")


# An element's strings as BeautifulSoup's get_text reads them. BeautifulSoup files a
# string under the nearest enclosing script, style, template, rt or rp element ("" for
# none), and an element's text is the strings filed under its own kind: a <td>'s text
# leaves out a <script> inside it, a <script>'s text is its code. Comments never count.
_CONTAINERS = frozenset(("script", "style", "template", "rt", "rp"))
_ELEMENT_TEXT = lxml.etree.XPath(
    "descendant-or-self::text()[name(ancestor::*[self::script or self::style or self::template"
    " or self::rt or self::rp][1]) = $kind]"
)
# Attributes HTML defines as space-separated lists (BeautifulSoup gives them as lists).
_LIST_ATTRS = frozenset(("class", "rel", "rev", "accept-charset", "headers", "accesskey", "dropzone"))


def select(tree: lxml.etree._Element, selector: str, attr: str | None = None, limit: int = 5) -> list[str]:
    """Up to ``limit`` values of the elements ``selector`` finds in ``tree``, in document
    order: each element's text (its strings stripped and joined by a space, script and
    style left out), or its attribute ``attr`` when given. Empty values are skipped.
    The same values BeautifulSoup's ``select`` + ``get_text(" ", strip=True)`` gives
    (tests/test_fuzz.py holds the two together), at a fraction of the cost."""
    values = []
    for el in compiled_selector(selector)(tree)[:limit]:
        if attr is None:
            value = " ".join(filter(None, (str(s).strip() for s in _ELEMENT_TEXT(el, kind=_kind(el)))))
        else:
            value = el.get(attr) or ""
            if attr in _LIST_ATTRS:
                value = " ".join(value.split())
        if value:
            values.append(value)
    return values


def _kind(el: lxml.etree._Element) -> str:
    tag = el.tag
    return tag if isinstance(tag, str) and tag in _CONTAINERS else ""


# libxml2's tree ends at </html>: what follows (a relay's footer, a second document
# pasted in) would be dropped. Without the end tags it stays in the body. A DOCTYPE
# after content (a second document) becomes an empty comment: it still separates the
# text around it, as it does in the soup.
# Every alternative starts with "<", which the regex engine scans for quickly; a lookbehind
# in front (for "after content") made it try each position of the HTML: ~1 ms per 30 KB.
_END_OF_DOCUMENT = re.compile(r"<(?:/\s*(?:html|body)\s*|(!doctype[^>]*))>", re.IGNORECASE)


def _tidy(m: re.Match[str]) -> str:
    if m.group(1) is None:
        return ""
    at = m.start()
    after_content = at > 0 and not m.string[at - 1].isspace() and m.string[at - 1] != "\ufeff"
    if after_content:
        return "<!---->"
    # a leading DOCTYPE stays; what it spans is read on as if the match had not been
    return "<" + _END_OF_DOCUMENT.sub(_tidy, m.group(0)[1:])


def html_tree(html: str) -> lxml.etree._Element | None:
    """``html`` (its first ``MAX_HTML`` characters) parsed by libxml2 the way BeautifulSoup's
    ``lxml`` builder parses it; ``None`` when nothing is left of it."""
    # A lead's HTML is a few kilobytes; past this the rest is padding or an attack,
    # and parsing it all would hold the pipeline for seconds.
    html = _END_OF_DOCUMENT.sub(_tidy, html[:MAX_HTML])
    if html[:1] == "\ufeff":
        html = html[1:]
    # huge_tree: without it libxml2 drops elements nested past 256 levels
    try:
        parser = lxml.etree.HTMLParser(recover=True, huge_tree=True)
        parser.feed(html)
        return parser.close()
    except (UnicodeError, LookupError, lxml.etree.Error):
        pass
    try:  # libxml2 refused the text (an encoding it cannot take): give it UTF-8 bytes
        return lxml.etree.HTML(html.encode("utf-8", "surrogatepass"),
                               lxml.etree.HTMLParser(recover=True, huge_tree=True))
    except (UnicodeError, LookupError, ValueError, lxml.etree.Error):
        return None


def html_text_of(html: str) -> str:
    """Lines of visible text of ``html``: what ``html_to_text`` gives for its soup.

    The same libxml2 parse events that BeautifulSoup's ``lxml`` builder turns into a soup,
    turned into text directly: several times cheaper than building the soup, which is then
    built only for a rule with a CSS selector. tests/test_fuzz.py holds the two to the
    same output.
    """
    html = html[:MAX_HTML]
    if html[:1] == "\ufeff":
        html = html[1:]
    target = _TextTarget()
    try:
        parser = lxml.etree.HTMLParser(target=target, recover=True)
        parser.feed(html)
        parser.close()
    except (UnicodeError, LookupError, lxml.etree.Error):
        # BeautifulSoup retries such markup as UTF-8 bytes; rare enough to let it.
        return html_to_text(BeautifulSoup(html, "lxml"))
    return target.text()


class _TextTarget:
    """An lxml parser target that keeps what ``html_to_text`` would read from the soup:
    text outside script/style/head…, a newline after blocks and at ``<br>``, a tab after
    cells. Blank text is collapsed as BeautifulSoup stores it (but not in ``<pre>``)."""

    def __init__(self) -> None:
        self.out: list[str] = []
        self.buf: list[str] = []
        self.stack: list[str] = []
        self.hidden = 0  # open elements whose whole content is dropped (script, br…)
        self.ruby = 0  # open <rt>/<rp>: BeautifulSoup keeps their text apart
        self.keep = 0  # open <pre>/<textarea>

    def _flush(self) -> None:
        if not self.buf:
            return
        text = "".join(self.buf)
        self.buf.clear()
        if not self.hidden and not self.ruby:
            self.out.append(text if self.keep else _soup_blank(text))

    def start(self, tag: Any, attrib: Any, nsmap: Any = None) -> None:
        self._flush()
        name = str(tag)
        self.stack.append(name)
        if name == "br" and not self.hidden:
            self.out.append("\n")
        if name in _INVISIBLE or name == "br":
            self.hidden += 1
        elif name in _RUBY:
            self.ruby += 1
        if name in _KEEP_BLANKS:
            self.keep += 1

    def end(self, tag: Any) -> None:
        self._flush()
        name = str(tag)
        if name not in self.stack:
            return
        while self.stack:
            if self._pop() == name:
                break

    def _pop(self) -> str:
        name = self.stack.pop()
        if name in _INVISIBLE or name == "br":
            self.hidden -= 1
        else:
            if name in _RUBY:
                self.ruby -= 1
            if not self.hidden:
                if name in _CELLS:
                    self.out.append("\t")
                elif name in _BLOCKS:
                    self.out.append("\n")
        if name in _KEEP_BLANKS:
            self.keep -= 1
        return name

    def data(self, content: str) -> None:
        self.buf.append(content)

    def comment(self, text: str) -> None:
        self._flush()

    def pi(self, target: str, data: str) -> None:
        self._flush()

    def doctype(self, *args: Any) -> None:
        self._flush()

    def close(self) -> None:
        self._flush()

    def text(self) -> str:
        self._flush()
        while self.stack:
            self._pop()
        return "".join(self.out)


_RUBY = frozenset(("rt", "rp"))
_KEEP_BLANKS = frozenset(("pre", "textarea"))
_ASCII_BLANKS = str.maketrans("", "", " \n\t\f\r")


def _soup_blank(text: str) -> str:
    """A string of ASCII white space becomes one newline or space, as BeautifulSoup
    stores it."""
    if text.translate(_ASCII_BLANKS):
        return text
    return "\n" if "\n" in text else " "


def html_to_text(soup: BeautifulSoup) -> str:
    """Lines of visible text: a line per block element, tabs between table cells."""
    for tag in soup(_INVISIBLE):
        tag.decompose()
    out: list[str] = []
    _walk(soup, out)
    return "".join(out)


def _walk(node: Tag, out: list[str]) -> None:
    for child in node.children:
        if isinstance(child, NavigableString):
            if child.__class__ is NavigableString:  # skip comments, CDATA, doctype
                out.append(str(child))
            continue
        if not isinstance(child, Tag):
            continue
        name = child.name
        if name == "br":
            out.append("\n")
            continue
        _walk(child, out)
        if name in _CELLS:
            out.append("\t")
        elif name in _BLOCKS:
            out.append("\n")


def clean_text(text: str) -> str:
    """Normalise white space per line; keep tabs (cell separators) as one tab."""
    lines = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        cells = [" ".join(_SPACES.sub(" ", c).split()) for c in line.split("\t")]
        lines.append("\t".join(c for c in cells if c))
    # drop runs of blank lines, keep one as a paragraph break
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip("\n")
