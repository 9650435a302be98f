"""Load a YAML file and remember the line of every key, so errors can name it.

Both the configuration file and the rule files are checked by pydantic models; a
``ValidationError`` gives a key path (``fields.phone.0.regex``) and this module turns that
path back into the line where the author typed it.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import BaseModel, BeforeValidator, ValidationError

from daemon.errors import RuleError

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class YamlDocument:
    """The data of a YAML file and the 1-based line of each key path in it."""

    data: Any
    file: str
    lines: dict[Path_, int] = field(default_factory=dict)

    def as_written(self, path: Sequence[str | int]) -> tuple[str | int, ...]:
        """``path`` without the ``[0]`` of a lone value the schema reads as a one-item
        list (``phone: {path: p}`` for ``phone: [{path: p}]``): the key as the file has it."""
        kept: tuple[str | int, ...] = ()
        for i, part in enumerate(path):
            if (*kept, part) in self.lines:
                kept = (*kept, part)
            elif isinstance(part, int) and part == 0:  # ``kept`` is in the file: a lone value
                continue
            else:  # past what the file has (a missing key): keep the rest as pydantic gave it
                return (*kept, *path[i:])
        return kept

    def line_of(self, path: Sequence[str | int]) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        p = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return self.lines.get((), None)


class YamlSyntaxError(Exception):
    """Raised when a file is not valid YAML; carries the file and line of the problem."""

    def __init__(self, file: str, line: int | None, problem: str, key: str | None = None):
        self.file = file
        self.line = line
        self.problem = problem
        #: the dotted key path of ``line``, guessed from indentation (the file did not parse)
        self.key = key
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {key}: {problem}" if key else f"{where}: {problem}")


def load(path: Path | str, text: str | None = None) -> YamlDocument:
    """Parse ``path`` (or ``text``, named as ``path``) into data plus key lines.

    Raises ``YamlSyntaxError`` for YAML that does not parse, and ``OSError`` when the
    file cannot be read.
    """
    name = str(path)
    if text is None:
        text = Path(path).read_text(encoding="utf-8")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        # An unclosed quote, bracket or brace is only noticed lines later (often at the end
        # of the file); the line where it was opened is the one to fix.
        if exc.context_mark is not None and ("quoted" in (exc.context or "") or "flow" in (exc.context or "")):
            mark = exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = " ".join(p for p in (exc.context, exc.problem) if p) or str(exc)
        raise YamlSyntaxError(name, line, problem, key_at(text, line) if line else None) from exc
    except yaml.reader.ReaderError as exc:
        # A control character (pasted from a PDF or a terminal) carries only a character
        # position, no mark; the line is still what the user needs to find it.
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        character = exc.character if isinstance(exc.character, int) else ord(exc.character)
        problem = f"unacceptable character #x{character:04x}: {exc.reason}"
        raise YamlSyntaxError(name, line, problem, key_at(text, line)) from exc
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(name, None, str(exc)) from exc
    lines: dict[Path_, int] = {}
    if node is not None:
        _walk(node, (), lines)
    return YamlDocument(data=data, file=name, lines=lines)


_KEY_LINE = re.compile(r"""^(?P<lead>[ ]*(?:-[ ]+)*)(?P<key>[A-Za-z0-9_][\w .-]*?|'[^']*'|"[^"]*")[ ]*:(?:\s|$)""")


def key_at(text: str, line: int) -> str | None:
    """The dotted key path of block-style ``line`` (1-based), from indentation alone.

    For syntax errors, where the document cannot be composed to give exact paths.
    """
    stack: list[tuple[int, str]] = []
    for raw in text.splitlines()[:line]:
        m = _KEY_LINE.match(raw)
        indent = len(m.group("lead")) if m else len(raw) - len(raw.lstrip(" "))
        if not raw.strip() or raw.lstrip(" ").startswith("#"):
            continue
        while stack and stack[-1][0] >= indent:
            stack.pop()
        if m:
            stack.append((indent, m.group("key").strip("'\"")))
    return ".".join(k for _, k in stack) or None


def _walk(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            lines[(*path, key)] = key_node.start_mark.line + 1
            _walk(value_node, (*path, key), lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[(*path, i)] = item.start_mark.line + 1
            _walk(item, (*path, i), lines)


class AtKey(ValueError):
    """Raised by a validator about one key inside the value it checks (a secret file of a
    section, the second agent with a taken ``slack_user_id``): ``problems`` reports it at
    that key's line, not at the line of the value the validator was given."""

    def __init__(self, path: Sequence[str | int], message: str):
        super().__init__(message)
        self.path = tuple(path)


@dataclass(frozen=True)
class Problem:
    """One validation problem, located in its file."""

    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


def dotted(path: Sequence[str | int]) -> str:
    """``("fields", "phone", 0, "regex")`` → ``fields.phone[0].regex``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def problems(doc: YamlDocument, error: ValidationError, *, model: type[BaseModel] | None = None,
             elsewhere: Mapping[tuple[str, ...], str] | None = None) -> list[Problem]:
    """Translate a pydantic ``ValidationError`` into located problems, one per error.

    With ``model`` (the schema ``error`` came from), an unknown key names the known key it
    is closest to (``did you mean `poll_interval`?``). ``elsewhere`` maps key paths whose
    values did not come from the file (an environment variable) to the name to report
    them under instead of a file and line."""
    found = []
    for err in error.errors():
        # pydantic adds the tag of a tagged union or a function validator's name to loc;
        # keep only the parts that exist in the document.
        # (``tag:…``: the tags of the filter union in daemon/reading/rules.py)
        loc = [p for p in err["loc"] if isinstance(p, int) or not str(p).startswith(("function-", "tag:"))]
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, AtKey):
            loc.extend(cause.path)
        msg = err["msg"]
        if "[key]" in loc:
            # a mapping key that is not allowed (pydantic checks keys with the Literal type)
            loc = [p for p in loc if p != "[key]"]
            if msg.startswith("Value error, "):  # a key that must be a pattern and is not
                msg = msg[len("Value error, ") :]
            else:
                msg = f"unknown key; {msg[0].lower()}{msg[1:]}"
                allowed = re.findall(r"'([^']*)'", str((err.get("ctx") or {}).get("expected", "")))
                if loc and isinstance(loc[-1], str):
                    msg += did_you_mean(loc[-1], allowed)
        elif err["type"] == "extra_forbidden":
            msg = "unknown key"
            if model is not None and loc and isinstance(loc[-1], str):
                msg += did_you_mean(loc[-1], known_keys(model, loc[:-1]))
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        source = source_of(loc, elsewhere or {})
        if source is not None:
            found.append(Problem(source, None, dotted(loc), msg))
            continue
        written = doc.as_written(loc)
        found.append(Problem(doc.file, doc.line_of(written), dotted(written), msg))
    return found


def source_of(loc: Sequence[str | int], elsewhere: Mapping[tuple[str, ...], str]) -> str | None:
    """Where the value at ``loc`` came from when not from the file: the longest key path
    of ``elsewhere`` that ``loc`` starts with."""
    parts = tuple(str(p) for p in loc)
    for n in range(len(parts), 0, -1):
        if parts[:n] in elsewhere:
            return elsewhere[parts[:n]]
    return None


def did_you_mean(key: str, known: Sequence[str]) -> str:
    """``"; did you mean `poll_interval`?"`` for the known key nearest ``key``, or ``""``."""
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f"; did you mean `{close[0]}`?" if close else ""


def known_keys(model: type[BaseModel], path: Sequence[str | int]) -> list[str]:
    """The keys the schema allows at ``path`` inside ``model`` (with ``KEY_file`` for each
    of a section's ``secret_keys``), or none when ``path`` is not a mapping of keys."""
    t: Any = model
    for part in path:
        t = _inner(t, part)
        if t is None:
            return []
    t = _inner(t, None)
    if not (isinstance(t, type) and issubclass(t, BaseModel)):
        return []
    keys = list(t.model_fields)
    keys += [f"{k}_file" for k in getattr(t, "secret_keys", ())]
    return keys


def _inner(t: Any, part: str | int | None) -> Any:
    """The type at ``part`` inside type ``t`` (a field of a model, an item of a list, a value
    of a dict); with ``part`` None, ``t`` itself without ``| None``."""
    origin = typing.get_origin(t)
    if origin in (typing.Union, types.UnionType):
        kinds = [a for a in typing.get_args(t) if a is not type(None)]
        t = kinds[0] if len(kinds) == 1 else None
        origin = typing.get_origin(t)
    if part is None or t is None:
        return t
    if isinstance(t, type) and issubclass(t, BaseModel):
        f = t.model_fields.get(part) if isinstance(part, str) else None
        return f.annotation if f is not None else None
    if origin in (list, tuple) and isinstance(part, int):
        return typing.get_args(t)[0]
    if origin is dict:
        return typing.get_args(t)[1]
    return None


def version_text(v: Any) -> Any:
    """A file's ``version: 3`` read as the text ``"3"`` (YAML makes it a number)."""
    return str(v) if isinstance(v, int | float) else v


#: ``version``: text, though YAML reads ``3`` or ``1.2`` as a number
VersionText = Annotated[str, BeforeValidator(version_text)]

_M = TypeVar("_M", bound=BaseModel)


def load_rule_model(path: Path, model: type[_M], *, text: str | None = None, shape: str | None = None,
                    suggest: bool = True,
                    first: Callable[[YamlDocument, Problem], Problem] | None = None,
                    ) -> tuple[_M, YamlDocument]:
    """Load one file of the rules directory (a source's rule, a webhook mapping,
    ``labels.yaml``, ``scoring.yaml``) and check it against ``model``.

    ``shape`` is the error when the file is not a mapping of keys (without it, an empty file
    is an empty mapping). ``suggest`` names the known key nearest an unknown one; ``first``
    may point the first problem elsewhere. Raises ``RuleError`` naming the file, line and key
    of the first problem, with the others in ``also``."""
    name = str(path)
    try:
        doc = load(path, text)
    except YamlSyntaxError as exc:
        raise RuleError(f"YAML syntax error: {exc.problem}", file=name, line=exc.line, key=exc.key) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleError(f"cannot read the file: {exc}", file=name) from exc
    data = doc.data
    if shape is None:
        data = data or {}
    elif not isinstance(data, dict):
        raise RuleError(shape, file=name, line=1)
    try:
        return model.model_validate(data), doc
    except ValidationError as exc:
        found, *rest = problems(doc, exc, model=model if suggest else None)
        if first is not None:
            found = first(doc, found)
        err = RuleError(found.message, file=name, line=found.line, key=found.key)
        err.also = [RuleError(p.message, file=name, line=p.line, key=p.key) for p in rest]
        raise err from exc
