"""A real ``leadpipe run`` in a child process, for tests of the whole running daemon.

``start(workdir)`` runs it in ``workdir`` (its ``leadpipe.yaml`` and ``rules/`` written by
the test), its output in ``workdir/daemon.log``; ``Daemon.stop`` sends SIGTERM and, if it
does not end in time, kills it. The environment is the test's without ``LEADPIPE_*``, so a
developer's own settings never leak in.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Daemon:
    """One running ``leadpipe run``."""

    proc: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_log(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        """The first match of ``pattern`` in the log; fails if the daemon exits or the time
        runs out first (the assertion shows the log)."""
        deadline = time.monotonic() + timeout
        while not (m := re.search(pattern, self.text())):
            assert self.proc.poll() is None and time.monotonic() < deadline, self.text()
            time.sleep(0.1)
        return m

    def stop(self) -> int:
        """SIGTERM, then the exit status; killed if it has not ended within 20 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)


def start(workdir: Path, config: str = "leadpipe.yaml") -> Daemon:
    """``leadpipe run --config CONFIG`` in ``workdir``, in a session of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADPIPE_")}
    log = workdir / "daemon.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "daemon.cli", "run", "--config", config],
                                cwd=workdir, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
    return Daemon(proc, log)
