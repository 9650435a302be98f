"""Text from an email made safe for a terminal, and the consoles the command line prints with.

An email's subject, body or a lead's name can carry bytes a terminal obeys: ``ESC ] 0 ; … BEL``
retitles the window, ``ESC [ 2 J`` clears the screen, a C1 ``CSI`` (U+009B) does the same
in some terminals, and a bidirectional override (U+202E) makes ``exe.txt`` read as
``txt.exe``. ``printable`` writes each such character as a visible escape (``\\x1b``,
``\\u202e``); ``SafeConsole`` applies it to every string it renders (table cells and
titles included), so no command can forget. JSON output is exact: ``json_text`` escapes
the same characters the JSON way (``\\u001b``), which decodes to the original text.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from rich.console import Console
from rich.text import Text

#: C0 controls but tab and newline, DEL, C1 controls, and the bidirectional embeddings,
#: overrides and isolates (LRE RLE PDF LRO RLO, LRI RLI FSI PDI)
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def printable(text: str) -> str:
    """``text`` with every character a terminal would act on written as an escape
    (``\\x1b``, ``\\x07``, ``\\x9b``, ``\\u202e``); tabs and newlines are kept."""
    return UNSAFE.sub(_escape, text)


def duration(d: timedelta, *, exact: bool = False) -> str:
    """``d`` for people, in whole seconds under 2 minutes (``95s``), minutes under 2 hours
    (``5m``), else hours (``3h``); ``exact`` keeps the rest (``5m03s``, ``3h07m``)."""
    s = int(d.total_seconds())
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m{s % 60:02d}s" if exact else f"{s // 60}m"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m" if exact else f"{s // 3600}h"


def json_text(value: Any, **dumps: Any) -> str:
    """``json.dumps(value, ensure_ascii=False, **dumps)`` with the characters ``printable``
    escapes written as ``\\uXXXX``: the same JSON value, safe to print to a terminal."""
    text = json.dumps(value, ensure_ascii=False, **dumps)
    # Outside strings JSON has no such characters, so each one is inside a string literal,
    # where \\uXXXX means exactly that character.
    return UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class SafeConsole(Console):
    """A rich ``Console`` that renders every string through ``printable``."""

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(printable(text), **kwargs)


class Commands:
    """Where a command group adds its subcommands, each sharing the common options.

    ``command`` adds one that runs ``func`` (logging only warnings unless ``quiet_logs`` is
    false: a command's output is its answer); ``group`` adds a command with actions of its
    own (``leadpipe dlq list``), returned as another ``Commands``.
    """

    def __init__(self, sub: Any, common: argparse.ArgumentParser) -> None:
        self._sub = sub  # argparse's _SubParsersAction, private in typeshed
        self._common = common

    def command(self, name: str, func: Callable[[argparse.Namespace], int], help: str, *,
                quiet_logs: bool = True) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = self._sub.add_parser(name, parents=[self._common], help=help)
        parser.set_defaults(func=func, quiet_logs=quiet_logs)
        return parser

    def group(self, name: str, help: str) -> Commands:
        parser = self._sub.add_parser(name, parents=[self._common], help=help)
        return Commands(parser.add_subparsers(metavar="ACTION"), self._common)
