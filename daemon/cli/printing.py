"""How an email's outcome and a stored email are printed, for the commands of several
groups: ``parse``, ``leads show``, ``rules new`` and ``dlq show``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from daemon.cli.common import out
from daemon.lead import DeadLetter, Lead, Origin, ParseOutcome, RawEmail
from daemon.terminal import json_text


def print_outcome(path: Path, outcome: ParseOutcome) -> None:
    """A lead as a table of its fields with its warnings, a dead letter's reason, or why
    the email was ignored; ``path`` names where it came from."""
    if isinstance(outcome, Lead):
        t = Table(title=f"{path}: lead from {outcome.source} (rule v{outcome.rule_version})", title_justify="left",
                  show_header=False)
        t.add_column("field", style="bold")
        t.add_column("value")
        for key, value in outcome.to_json().items():
            if key == "property":
                for pk, pv in value.items():
                    t.add_row(f"property.{pk}", _show(pv))
            elif key != "warnings":
                t.add_row(key, _show(value))
        out.print(t)
        for w in outcome.warnings:
            out.print(f"  [yellow]warning:[/] {escape(w)}", markup=True, highlight=False)
    elif isinstance(outcome, DeadLetter):
        out.print(f"{escape(str(path))}: [red]dead letter[/] {outcome.reason.value}: {escape(outcome.detail)}", markup=True,
                  highlight=False)
    else:
        out.print(f"{path}: ignored ({outcome.reason})")


def _show(value: Any) -> str:
    return "-" if value is None else str(value)


def print_stored_email(raw: RawEmail) -> None:
    """The text of a stored email (``dlq show``, ``leads show --email``), or the JSON body
    of a webhook request; its control characters are escaped by the console."""
    from daemon.reading.message import Message, UnreadableEmail

    if raw.origin is Origin.WEBHOOK:
        out.print(f"--- the body posted to {raw.path} ---")
        try:
            out.print(json_text(json.loads(raw.data), indent=2), highlight=False)
        except (ValueError, RecursionError):
            out.print(raw.data.decode("utf-8", "replace"), highlight=False)
        return
    out.print("--- the email's text ---")
    try:
        out.print(Message(raw.data).text or "(no text)", markup=False, highlight=False)
    except UnreadableEmail as exc:
        out.print(f"(cannot read the email: {exc})")
