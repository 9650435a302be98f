"""How a catch-up shows its progress: log lines for a backlog, a rich bar on a terminal."""

from __future__ import annotations

import logging
import time
from typing import Any

log = logging.getLogger(__name__)

#: progress lines for a backlog at most this often
_PROGRESS_EVERY = 2.0


class CatchUpProgress:
    """Progress of one catch-up: log lines for a backlog, a rich bar on a terminal."""

    def __init__(self, name: str, label: str, total: int, bar: bool):
        self._name, self._label, self._total = name, label, total
        self._done = self._new = 0
        self._started = self._logged = time.monotonic()
        self._backlog = bar or total > 1
        self._bar: Any = None
        if bar:
            from rich.console import Console
            from rich.progress import Progress

            self._bar = Progress(console=Console(stderr=True), transient=True)
            self._bar.start()
            self._task = self._bar.add_task(f"{name}: {label}", total=total)
        if total > 1:
            log.info("mailbox %s: %s: %d emails to take in", name, label, total)

    def advance(self, n: int, new: int) -> None:
        self._done += n
        self._new += new
        if self._bar is not None:
            self._bar.update(self._task, advance=n)
        now = time.monotonic()
        if self._total > 1 and now - self._logged >= _PROGRESS_EVERY and self._done < self._total:
            self._logged = now
            log.info(
                "mailbox %s: %s: %d/%d (%d%%), %.0f emails/s",
                self._name, self._label, self._done, self._total,
                100 * self._done // self._total, self._done / max(now - self._started, 1e-6),
            )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
        took = time.monotonic() - self._started
        log.info(
            "mailbox %s: %s: %d emails handled (%d new, %d already stored) in %.1fs",
            self._name, self._label, self._done, self._new, self._done - self._new, took,
        )
