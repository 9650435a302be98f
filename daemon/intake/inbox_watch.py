"""When is a file in the directory inbox whole? And waking the inbox when one is.

A writer that pauses mid-way (a script, a copy over a network share) leaves a file that
looks like an email but stops mid-word; taking it then stores half an email and never
reads the rest. So a file is taken only once it is complete:

- on Linux, once its writer has closed it: inotify's close-write, through ``watchdog``
  (which also wakes the inbox at once instead of at its next poll). A file opened for
  writing is never taken while it is open, however long the writer pauses;
- a rename into place is complete at once: a dot-file renamed to ``NAME.eml``, a
  maildir-style ``tmp/`` → ``new/`` (files in a ``new/`` folder are whole by the maildir
  rules, with or without events);
- a file moved in from outside the inbox (inotify reports it only as created) once it has
  had no event for a second;
- where no event tells (no inotify, a file written on another machine of a network share,
  a file already there at start), once its size and modification time are unchanged for
  ``inbox_settle``, measured on this process's own clock.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEventHandler

log = logging.getLogger(__name__)

#: a file reported only as created (moved in from outside the inbox) with no event since
#: for this long is whole: its creator would have opened or written it by now
QUIET_AFTER_CREATE = 1.0

# what the events have told about a path
_CREATED = "created"  # created, nothing else seen: a move from outside, or a writer about to open
_OPENED = "opened"  # created and opened: its writer has it open, nothing written yet
_WRITING = "writing"  # written to, not yet closed
_CLOSED = "closed"  # closed after writing, or renamed into place: whole


def is_email_path(root: Path, path: Path) -> bool:
    """Whether the inbox takes ``path``: a ``*.eml`` file, or any file in a maildir
    ``new/`` folder; never a dot-file, anything in a dot-folder or a ``tmp/`` folder (a
    writer's work in progress), nor anything under ``processed/``."""
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return False
    if not parts or parts[0] == "processed" or any(p.startswith(".") for p in parts):
        return False
    if "tmp" in parts[:-1]:
        return False
    return parts[-1].endswith(".eml") or (len(parts) > 1 and parts[-2] == "new")


class Completion:
    """Decides whether a file is complete, from the events seen for it (``created``,
    ``opened`` … called from the watcher's thread) or else from its settle time.
    Thread-safe."""

    def __init__(self, settle: float, *, clock: Callable[[], float] = time.monotonic):
        self.settle = settle
        self._clock = clock
        self._lock = threading.Lock()
        self._state: dict[str, tuple[str, float]] = {}
        self._stamps: dict[str, tuple[tuple[int, int], float]] = {}

    # -- events -------------------------------------------------------------------------

    def created(self, path: str) -> None:
        self._set(path, _CREATED)

    def opened(self, path: str) -> None:
        # Only an open right after the creation is surely the writer's; an open of a file
        # already there may be a reader's (or our own), which close-no-write undoes.
        self._advance(path, _CREATED, _OPENED)

    def modified(self, path: str) -> None:
        self._set(path, _WRITING)

    def closed(self, path: str) -> None:
        """Closed after writing: complete."""
        self._set(path, _CLOSED)

    def closed_unwritten(self, path: str) -> None:
        """Closed without writing: a creator that wrote nothing, or a reader."""
        self._advance(path, _OPENED, _CREATED)

    def moved(self, src: str, dest: str) -> None:
        """Renamed into place: complete at once."""
        with self._lock:
            self._forget(src)
            self._state[_key(dest)] = (_CLOSED, self._clock())
            self._stamps.pop(_key(dest), None)

    def deleted(self, path: str) -> None:
        with self._lock:
            self._forget(path)

    def taken(self, path: Path) -> None:
        """The inbox stored ``path`` and moved it away."""
        self.deleted(str(path))

    # -- the decision ---------------------------------------------------------------------

    def is_complete(self, path: Path, st: os.stat_result) -> bool:
        if path.parent.name == "new":  # maildir: delivered by rename, whole by definition
            return True
        key, now = _key(str(path)), self._clock()
        with self._lock:
            state, since = self._state.get(key, ("", 0.0))
            if state == _CLOSED:
                return True
            if state in (_OPENED, _WRITING):
                return False
            if state == _CREATED and st.st_size > 0 and now - since >= QUIET_AFTER_CREATE:
                return True
            # No event tells: unchanged for the settle time, on our own clock (a network
            # share's clock may differ from ours).
            stamp = (st.st_size, st.st_mtime_ns)
            seen = self._stamps.get(key)
            if seen is None or seen[0] != stamp:
                self._stamps[key] = (stamp, now)
                return self.settle <= 0
            return now - seen[1] >= self.settle

    def _set(self, path: str, state: str) -> None:
        with self._lock:
            self._state[_key(path)] = (state, self._clock())
            self._stamps.pop(_key(path), None)

    def _advance(self, path: str, was: str, state: str) -> None:
        """``path`` goes to ``state`` if the events left it in ``was``; else it stays."""
        with self._lock:
            if self._state.get(_key(path), ("", 0.0))[0] == was:
                self._state[_key(path)] = (state, self._clock())

    def _forget(self, path: str) -> None:
        self._state.pop(_key(path), None)
        self._stamps.pop(_key(path), None)


def _key(path: str) -> str:
    return os.path.abspath(path)


class InboxWatch:
    """inotify events of the inbox folder fed to a ``Completion``; ``on_ready`` is called
    when a file becomes complete, to wake the inbox."""

    def __init__(self, root: Path, completion: Completion, on_ready: Callable[[], None]):
        self.root = root
        self.completion = completion
        self.on_ready = on_ready
        self._observer: Any = None

    def start(self) -> bool:
        """Watch the folder (created if missing). False when inotify cannot be used here
        (another system, the watch limit reached): then the settle time decides alone."""
        try:
            from watchdog.observers.inotify import InotifyObserver
        except ImportError as exc:  # not Linux: no close-write event
            log.info("directory inbox %s: no inotify (%s); a file is taken once unchanged for "
                     "%gs (inbox_settle)", self.root, exc, self.completion.settle)
            return False
        observer = InotifyObserver()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            observer.schedule(_Handler(self), str(self.root), recursive=True)
            observer.start()
        except OSError as exc:
            log.warning("directory inbox %s: cannot watch it with inotify (%s); a file is taken "
                        "once unchanged for %gs (inbox_settle)", self.root, exc,
                        self.completion.settle)
            return False
        self._observer = observer
        return True

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=2)
            self._observer = None

    def ours(self, path: str) -> bool:
        return is_email_path(self.root, Path(path))


class _Handler(FileSystemEventHandler):
    """watchdog's events, by kind, to the ``Completion``."""

    def __init__(self, watch: InboxWatch):
        super().__init__()
        self.watch = watch

    def dispatch(self, event: Any) -> None:
        try:
            self._dispatch(event)
        except Exception:  # isolation boundary: one odd event must not stop the watcher
            log.exception("directory inbox: cannot handle %r", event)

    def _dispatch(self, event: Any) -> None:
        if event.is_directory:
            return
        w, c = self.watch, self.watch.completion
        kind = event.event_type
        src = os.fsdecode(event.src_path)
        if kind == "moved":
            dest = os.fsdecode(event.dest_path)
            if w.ours(dest):
                c.moved(src, dest)
                w.on_ready()
            else:
                c.deleted(src)
            return
        if not w.ours(src):
            return
        if kind == "created":
            c.created(src)
        elif kind == "opened":
            c.opened(src)
        elif kind == "modified":
            c.modified(src)
        elif kind == "closed":
            c.closed(src)
            w.on_ready()
        elif kind == "closed_no_write":
            c.closed_unwritten(src)
        elif kind == "deleted":
            c.deleted(src)
