"""Golden files: each fixture email beside the outcome it must produce.

``fixtures/emails/<source>/<name>.eml`` sits beside ``<name>.expected.yaml`` holding one
of ``lead`` (the lead contract), ``dead_letter`` (``reason`` and ``rule``) or ``ignored``
(``reason``). ``leadpipe rules test`` and the test suite both compare through here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from daemon.lead import DeadLetter, Ignored, Lead, ParseOutcome


@dataclass(frozen=True)
class Difference:
    """One field whose extracted value differs from the golden one."""

    key: str
    expected: Any
    actual: Any


def fixtures(root: Path, source: str | None = None) -> Iterator[Path]:
    """Every fixture ``.eml`` under ``root`` (one source's folder if ``source``), sorted."""
    base = root / source if source else root
    yield from sorted(base.rglob("*.eml"))


def golden_path(eml: Path) -> Path:
    return eml.with_name(eml.stem + ".expected.yaml")


def record(outcome: ParseOutcome) -> dict[str, Any]:
    """The golden record of an outcome."""
    if isinstance(outcome, Lead):
        return {"lead": outcome.to_json()}
    if isinstance(outcome, DeadLetter):
        return {"dead_letter": {"reason": outcome.reason.value, "rule": outcome.rule}}
    assert isinstance(outcome, Ignored)
    return {"ignored": {"reason": outcome.reason}}


def load(eml: Path) -> dict[str, Any] | None:
    path = golden_path(eml)
    if not path.exists():
        return None
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else None


def write(eml: Path, outcome: ParseOutcome) -> None:
    """Rewrite the golden file, keeping the comment lines at its top (why this outcome)."""
    path = golden_path(eml)
    comments = []
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.startswith("#"):
                break
            comments.append(line + "\n")
    text = yaml.safe_dump(record(outcome), sort_keys=False, allow_unicode=True, width=100)
    path.write_text("".join(comments) + text, encoding="utf-8")


def compare(expected: dict[str, Any] | None, outcome: ParseOutcome) -> list[Difference]:
    """The differences between a golden record and an outcome, key by key."""
    actual = record(outcome)
    if expected is None:
        return [Difference("(golden file)", None, "missing")]
    return list(_diff("", expected, actual))


def _diff(prefix: str, expected: Any, actual: Any) -> Iterator[Difference]:
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in sorted(set(expected) | set(actual), key=str):
            yield from _diff(f"{prefix}.{key}" if prefix else str(key), expected.get(key), actual.get(key))
        return
    if _same(expected, actual):
        return
    yield Difference(prefix, expected, actual)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return abs(float(a) - float(b)) < 0.005
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    # YAML may read a quoted-or-not value as another type (a zip code, a version)
    if a is not None and b is not None and type(a) is not type(b):
        return str(a) == str(b)
    return bool(a == b)
