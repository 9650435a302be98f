"""Hot reload: keep a running daemon's rules in step with the rules folder.

``RulesReloader.poll()`` compares each file's modification time and size with what it
last saw and reloads only the files that changed: a source rule file, ``scoring.yaml`` or
``labels.yaml``. A file that no longer loads keeps its last good version in force (the
other files are unaffected) and raises one alert naming the file, line and key; a file
that was deleted takes its rule out of force. The daemon polls about once a second.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from daemon.errors import RuleError
from daemon.pipeline import Engine
from daemon.providers.model import ChatModel
from daemon.qualifying.scoring import Scoring, load_scoring
from daemon.reading.mappings import LoadedMapping, MappingSet, load_mapping_file, mapping_files
from daemon.reading.rules import (
    LABELS_FILE,
    SCORING_FILE,
    LoadedRule,
    duplicate_source,
    load_rule_file,
    rule_files,
    ruleset_of,
)
from daemon.reading.vocabulary import Vocabulary, load_vocabulary

log = logging.getLogger(__name__)

#: A broken file younger than this may be half-written by an editor: look again first.
SETTLE_SECONDS = 1.0


@dataclass(frozen=True)
class _Stamp:
    mtime_ns: int
    size: int


class RulesReloader:
    """The rules folder as an ``Engine`` that follows edits, file by file.

    Raises ``RuleError`` from the constructor only for a broken ``scoring.yaml`` (as
    ``Engine.load`` does): a daemon does not start without its scoring.
    """

    def __init__(self, directory: Path, *, region: str = "US",
                 regex_timeout: timedelta = timedelta(seconds=1),
                 alert: Callable[[str], None] | None = None, model: ChatModel | None = None):
        self.directory = Path(directory)
        self.model = model
        self.region = region
        self.regex_timeout = regex_timeout
        self.alert = alert or (lambda text: log.error("ALERT %s", text))
        self._stamps: dict[Path, _Stamp] = {}
        self._rules: dict[Path, LoadedRule] = {}
        self._mappings: dict[Path, LoadedMapping] = {}  # rules/webhooks/*.yaml
        self._errors: dict[Path, list[RuleError]] = {}
        self._scoring = Scoring()
        self._labels = Vocabulary()
        for path, stamp in self._scan().items():
            self._load(path, stamp, initial=True)
        self.engine = self._build()

    def poll(self) -> Engine | None:
        """Reload what changed since the last poll; the new engine, or ``None`` if nothing did."""
        seen = self._scan()
        changed = False
        for path in sorted(set(self._stamps) - set(seen)):
            changed = True
            del self._stamps[path]
            self._errors.pop(path, None)
            gone = self._rules.pop(path, None)
            self._mappings.pop(path, None)
            if path.name == LABELS_FILE:
                self._labels = Vocabulary()
            log.warning("rules: %s was removed%s", path,
                        f"; source {gone.spec.source} is no longer parsed" if gone else "")
        for path, stamp in seen.items():
            if self._stamps.get(path) != stamp:
                changed |= self._load(path, stamp)
        if not changed:
            return None
        self.engine = self._build()
        return self.engine

    # -- one file ------------------------------------------------------------------------

    def _scan(self) -> dict[Path, _Stamp]:
        paths = [*rule_files(self.directory), *mapping_files(self.directory),
                 *(self.directory / name for name in (SCORING_FILE, LABELS_FILE))]
        stamps = {}
        for path in paths:
            try:
                st = path.stat()
            except OSError:  # absent, or removed while scanning
                continue
            stamps[path] = _Stamp(st.st_mtime_ns, st.st_size)
        return stamps

    def _load(self, path: Path, stamp: _Stamp, *, initial: bool = False) -> bool:
        """Load one file; ``True`` when what is in force (or its errors) changed."""
        try:
            what = self._read(path)
        except RuleError as exc:
            problems = [exc, *exc.also]
            if not initial and time.time() - stamp.mtime_ns / 1e9 < SETTLE_SECONDS:
                return False  # maybe half-written: the next poll looks again
            self._stamps[path] = stamp
            self._errors[path] = problems
            if path.name == SCORING_FILE and initial:
                raise
            if not initial:
                self.alert(self._refused(path, problems))
            return True
        self._stamps[path] = stamp
        self._errors.pop(path, None)
        if not initial:
            log.info("rules: reloaded %s (%s)", path, what)
        return True

    def _read(self, path: Path) -> str:
        """Load ``path`` into the state; a short description of what is now in force."""
        if path.parent != self.directory:  # rules/webhooks/
            mapping = load_mapping_file(path)
            self._mappings[path] = LoadedMapping(mapping, str(path))
            return f"webhook mapping {mapping.name}"
        if path.name == SCORING_FILE:
            self._scoring = load_scoring(path)
            return f"{len(self._scoring.conditions)} scoring conditions"
        if path.name == LABELS_FILE:
            self._labels = load_vocabulary(path)
            return f"label vocabulary v{self._labels.version}"
        rule = load_rule_file(path)
        clash = duplicate_source(path, rule, self._rules.values())
        if clash is not None:
            raise clash
        self._rules[path] = LoadedRule(rule, str(path))
        return rule.name

    def _refused(self, path: Path, problems: list[RuleError]) -> str:
        if path.name == SCORING_FILE:
            kept = "the last good scoring stays in force"
        elif path.name == LABELS_FILE:
            kept = (f"the last good vocabulary (v{self._labels.version}) stays in force" if self._labels
                    else "the reader reads without its words")
        elif path in self._rules:
            kept = f"the last good version ({self._rules[path].spec.name}) stays in force"
        elif path in self._mappings:
            kept = f"the last good version ({self._mappings[path].spec.name}) stays in force"
        else:
            kept = "this file never loaded, so its source is not parsed"
        return (f"rule file {path} not reloaded: " + "; ".join(str(p) for p in problems)
                + f" — {kept}. Fix it (leadpipe rules check); it reloads on save.")

    def _build(self) -> Engine:
        errors = [e for path in sorted(self._errors) for e in self._errors[path]]
        webhook_errors = [e for path in sorted(self._errors) if path.parent != self.directory
                          for e in self._errors[path]]
        return Engine(rules=ruleset_of(self._rules.values(), errors, self.directory),
                      scoring=self._scoring, region=self.region, regex_timeout=self.regex_timeout,
                      labels=self._labels,
                      webhooks=MappingSet(tuple(self._mappings[p] for p in sorted(self._mappings)),
                                          tuple(webhook_errors)),
                      model=self.model)
