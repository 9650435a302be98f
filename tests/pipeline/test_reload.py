"""Hot reload: a rule edit is in force in a running daemon within 5 s, without a restart,
and a broken edit keeps the last good version of that file in force and alerts.

``RulesReloader`` is tested on a folder of real rule files; the promise itself with a real
``leadpipe run`` subprocess (directory inbox, SQLite), which is edited while it runs.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon.pipeline.reload import RulesReloader

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "fixtures" / "emails"
ZILLOW_EMAIL = FIXTURES / "zillow" / "current_layout_multipart.eml"
TRULIA_EMAIL = FIXTURES / "trulia" / "text.eml"


def portal_rule(version: int, phone_label: str = "Phone") -> str:
    return (f"source: portal\nversion: {version}\nmatch:\n  from: ['*@portal.example']\n"
            f"fields:\n  full_name:\n    - label: Name\n  phone:\n    - label: {phone_label}\n"
            "required: [full_name]\n")


BROKEN = "source: portal\nversion: 9\nmatch:\n  from: ['*@portal.example']\nfields:\n  phone:\n    - regex: '(['\n"


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    d = tmp_path / "rules"
    d.mkdir()
    (d / "portal.yaml").write_text(portal_rule(1), encoding="utf-8")
    (d / "other.yaml").write_text(portal_rule(1).replace("portal", "other"), encoding="utf-8")
    shutil.copy(REPO / "rules" / "labels.yaml", d / "labels.yaml")
    shutil.copy(REPO / "rules" / "scoring.yaml", d / "scoring.yaml")
    return d


def edit(path: Path, text: str) -> None:
    """Write ``text`` and move the file's time a second back, as an edit made a moment ago
    (the reloader waits a second before alerting on a file that may be half-written)."""
    path.write_text(text, encoding="utf-8")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - 2_000_000_000))


def versions(reloader: RulesReloader) -> dict[str, str]:
    return {r.source: r.version for r in reloader.engine.rules}


def test_an_edited_rule_file_is_reloaded_alone(rules: Path):
    alerts: list[str] = []
    reloader = RulesReloader(rules, alert=alerts.append)
    assert versions(reloader) == {"portal": "1", "other": "1"}
    assert reloader.poll() is None  # nothing changed
    edit(rules / "portal.yaml", portal_rule(2))
    engine = reloader.poll()
    assert engine is not None and versions(reloader) == {"portal": "2", "other": "1"}
    assert alerts == []


def test_a_broken_edit_keeps_the_last_good_version_of_that_file_and_alerts_with_file_line_key(rules: Path):
    alerts: list[str] = []
    reloader = RulesReloader(rules, alert=alerts.append)
    edit(rules / "portal.yaml", portal_rule(2))
    reloader.poll()
    edit(rules / "portal.yaml", BROKEN)
    edit(rules / "other.yaml", portal_rule(5).replace("portal", "other"))
    reloader.poll()
    assert versions(reloader) == {"portal": "2", "other": "5"}  # per file, not all or nothing
    assert len(alerts) == 1
    assert f"{rules / 'portal.yaml'}:7: fields.phone[0].regex: bad regular expression" in alerts[0]
    assert "the last good version (portal v2) stays in force" in alerts[0]
    assert [e.key for e in reloader.engine.rules.errors] == ["fields.phone[0].regex"]
    assert reloader.poll() is None and len(alerts) == 1  # one alert per broken edit
    edit(rules / "portal.yaml", portal_rule(3))
    reloader.poll()
    assert versions(reloader)["portal"] == "3" and not reloader.engine.rules.errors


def test_a_file_saved_half_written_is_looked_at_again_before_alerting(rules: Path):
    alerts: list[str] = []
    reloader = RulesReloader(rules, alert=alerts.append)
    (rules / "portal.yaml").write_text(BROKEN, encoding="utf-8")  # written just now
    assert reloader.poll() is None and alerts == []
    (rules / "portal.yaml").write_text(portal_rule(2), encoding="utf-8")  # the editor finished
    reloader.poll()
    assert versions(reloader)["portal"] == "2" and alerts == []


def test_new_and_removed_rule_files_come_and_go(rules: Path):
    reloader = RulesReloader(rules)
    edit(rules / "third.yaml", portal_rule(1).replace("portal", "third"))
    reloader.poll()
    assert set(versions(reloader)) == {"portal", "other", "third"}
    (rules / "other.yaml").unlink()
    reloader.poll()
    assert set(versions(reloader)) == {"portal", "third"}


def test_a_new_file_claiming_a_loaded_source_is_refused_and_alerted(rules: Path):
    alerts: list[str] = []
    reloader = RulesReloader(rules, alert=alerts.append)
    edit(rules / "copy.yaml", portal_rule(7))
    reloader.poll()
    assert versions(reloader)["portal"] == "1"
    assert "source `portal` is already defined in" in alerts[0]
    assert "never loaded" in alerts[0]


def test_a_broken_labels_or_scoring_file_keeps_the_last_good_one(rules: Path):
    alerts: list[str] = []
    reloader = RulesReloader(rules, alert=alerts.append)
    labels_version = reloader.engine.labels.version
    edit(rules / "labels.yaml", "version: 3\nfields:\n  phone: [Phone]\n  colour: [Hue]\n")
    edit(rules / "scoring.yaml", "tiers: {low_below: 90, hot_above: 10}\n")
    reloader.poll()
    assert reloader.engine.labels.version == labels_version and reloader.engine.labels
    assert reloader.engine.scoring.conditions
    assert len(alerts) == 2
    assert any("labels.yaml:4: fields.colour: unknown key" in a and f"vocabulary (v{labels_version}) stays" in a
               for a in alerts)
    assert any("scoring.yaml:1" in a and "the last good scoring stays in force" in a for a in alerts)
    edit(rules / "labels.yaml", "version: 3\nfields:\n  phone: [Phone, Handy]\n")
    reloader.poll()
    assert reloader.engine.labels.version == "3"


def test_a_service_reloads_through_its_job_and_alerts_through_its_alert_callable(
        rules: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture):
    from daemon.config import load_settings
    from daemon.service import Service

    config = tmp_path / "leadpipe.yaml"
    config.write_text(f"database_url: sqlite:///{tmp_path}/lp.db\nrules_dir: {rules}\n"
                      f"inbox_dir: {tmp_path}/inbox\n", encoding="utf-8")
    service = Service(load_settings(config))
    worker_engine = service.worker._engine
    edit(rules / "portal.yaml", portal_rule(2))
    service.reload_rules()
    assert worker_engine().rules.by_source("portal").version == "2"  # type: ignore[union-attr]
    edit(rules / "portal.yaml", BROKEN)
    with caplog.at_level(logging.ERROR):
        service.reload_rules()
    assert any(r.levelno == logging.ERROR and "ALERT" in r.getMessage() and "portal.yaml:7" in r.getMessage()
               for r in caplog.records)
    assert worker_engine().rules.by_source("portal").version == "2"  # type: ignore[union-attr]
    service.db.dispose()


# -- the promise, on a running daemon -------------------------------------------------------


class Daemon:
    """``leadpipe run --config leadpipe.yaml`` in ``workdir`` (directory inbox, SQLite)."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.log = workdir / "daemon.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEADPIPE_")}
        env.update(PYTHONUNBUFFERED="1",
                   PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])))
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "daemon.cli", "run", "--config", "leadpipe.yaml"],
                cwd=workdir, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.sent = 0

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def eventually(self, predicate: Callable[[], Any], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"waiting for {what}: gave up\n--- daemon log ---\n{self.text()[-5000:]}",
                            pytrace=False)
            time.sleep(0.05)

    def drop(self, eml: Path) -> str:
        """Put a copy of ``eml`` with a fresh Message-ID into the inbox; its Message-ID."""
        self.sent += 1
        mid = f"<reload.{self.sent}.{time.monotonic_ns()}@test.example>"
        data = eml.read_bytes()
        head, sep, body = data.partition(b"\n\n")
        lines = [ln for ln in head.split(b"\n") if not ln.lower().startswith(b"message-id:")]
        lines.insert(0, f"Message-ID: {mid}".encode())
        tmp = self.workdir / f".{self.sent}.tmp"
        tmp.write_bytes(b"\n".join(lines) + sep + body)
        tmp.rename(self.workdir / "inbox" / f"{self.sent}.eml")  # appears whole
        return mid

    def rule_version(self, message_id: str) -> str | None:
        with sqlite3.connect(self.workdir / "leadpipe.db") as db:
            row = db.execute("SELECT source, rule_version FROM leads WHERE message_id = ?",
                             (message_id,)).fetchone()
        return f"{row[0]} v{row[1]}" if row else None


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    workdir = tmp_path / "run"
    workdir.mkdir()
    shutil.copytree(REPO / "rules", workdir / "rules")
    (workdir / "inbox").mkdir()
    (workdir / "leadpipe.yaml").write_text("database_url: sqlite:///leadpipe.db\n", encoding="utf-8")
    d = Daemon(workdir)
    try:
        d.eventually(lambda: "leadpipe running" in d.text(), 30, "the daemon to start")
        yield d
        d.proc.send_signal(signal.SIGTERM)
        assert d.proc.wait(15) == 0
    finally:
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait(10)


def test_a_rule_edit_is_picked_up_by_a_running_daemon_within_5s(daemon: Daemon):
    rule = daemon.workdir / "rules" / "zillow.yaml"
    first = daemon.drop(ZILLOW_EMAIL)
    assert daemon.eventually(lambda: daemon.rule_version(first), 15, "the first lead") == "zillow v3"

    # The edit: the developer bumps the version. Emails keep arriving every 0.25 s.
    rule.write_text(rule.read_text(encoding="utf-8").replace("version: 3", "version: 4"), encoding="utf-8")
    edited = time.monotonic()
    sent: list[str] = []

    def new_version_seen() -> float | None:
        if not sent or time.monotonic() - edited > len(sent) * 0.25:
            sent.append(daemon.drop(ZILLOW_EMAIL))
        got = [daemon.rule_version(m) for m in sent]
        return time.monotonic() - edited if "zillow v4" in got else None

    took = daemon.eventually(new_version_seen, 10, "a lead with rule_version 4")
    print(f"rule edit → first lead with the new rule_version: {took:.2f}s")
    assert took <= 5.0
    assert "rules: reloaded" in daemon.text()

    # A broken edit: the last good version of zillow.yaml (v4) stays in force, and it alerts.
    text = rule.read_text(encoding="utf-8")
    broken = text.replace("version: 4", "version: 5").replace(
        "  phone:\n    - regex: '", "  phone:\n    - regex: '(['\n    - regex: '", 1)
    assert broken != text
    rule.write_text(broken, encoding="utf-8")
    line = broken.splitlines().index("    - regex: '(['") + 1
    daemon.eventually(lambda: f"zillow.yaml:{line}: fields.phone[0].regex" in daemon.text(), 10,
                      "the alert about the broken edit")
    alert = next(ln for ln in daemon.text().splitlines() if f"zillow.yaml:{line}" in ln)
    assert " ERROR " in alert and "ALERT" in alert and "zillow v4" in alert
    after = daemon.drop(ZILLOW_EMAIL)
    other = daemon.drop(TRULIA_EMAIL)
    assert daemon.eventually(lambda: daemon.rule_version(after), 10, "a lead after the broken edit") == "zillow v4"
    assert daemon.eventually(lambda: daemon.rule_version(other), 10, "a trulia lead") == "trulia v1"
