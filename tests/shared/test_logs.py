"""Logs (daemon/logs.py): no lead's phone or email in full at INFO, and JSON lines on request.

When these fail, every lead's contact details end up in the log aggregator, readable by
anyone with access to it and kept for as long as the logs are — or a log collector that
expects one JSON object per line cannot read the daemon's log.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
from pathlib import Path

import daemonkit
import pytest
import yaml
from slackserver import SlackServer

from daemon import logs
from daemon.config import load_settings
from daemon.service import Service

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "fixtures" / "emails"


def test_a_lead_through_the_whole_pipeline_logs_no_full_phone_or_email_at_info(
        tmp_path: Path, caplog: pytest.LogCaptureFixture):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(FIXTURES / "realtor" / "text_layout.eml", inbox / "lead.eml")
    # the same person, written so that normalizing refuses both: a dead letter whose detail
    # quotes what was found
    bad = (FIXTURES / "realtor" / "text_layout.eml").read_bytes()
    bad = bad.replace(b"amkreed@example.com", b"amkreed@example..com").replace(
        b"(804)555-0163", b"(804)555-016").replace(b"Message-ID: <", b"Message-ID: <bad.")
    (inbox / "bad.eml").write_bytes(bad)
    with SlackServer() as slack:
        config = tmp_path / "leadpipe.yaml"
        config.write_text(yaml.safe_dump({
            "database_url": f"sqlite:///{tmp_path}/lp.db", "rules_dir": str(REPO / "rules"),
            "inbox_dir": str(inbox), "agents": [{"name": "Ana Ruiz", "slack_user_id": "U0ANA"}],
            "slack": {"bot_token": "xoxb-secret-token-value", "base_url": slack.base_url,
                      "alerts_channel": "C0ALERTS"},
        }))
        service = Service(load_settings(config))
        with caplog.at_level(logging.INFO):
            results = service.run_once()  # parse, route, Slack DM and alert deliveries
        service.db.dispose()
    kinds = sorted(type(r.outcome).__name__ for r in results)
    assert kinds == ["DeadLetter", "Lead"]
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert any("dead letter" in line for line in lines) and any("ALERT" in line for line in lines)
    text = "\n".join(lines)
    for secret in ("amkreed@example.com", "amkreed@example..com", "+18045550163", "(804)555-0163",
                   "8045550163", "(804)555-016", "xoxb-secret-token-value"):
        assert secret not in text, f"{secret!r} is in the log"
    assert "`email` was 'a***@example..com'" in text  # masked, yet still says what was wrong


def test_redact_masks_emails_and_phones_but_not_dates_ids_or_times():
    text = ("lead #12 (email #340) at 2026-11-21 10:00:05: email 'Ana.Ruiz@example.com', "
            "phone (305) 555-0142 / +13055550142 / 305.555.0142; uid 4000123")
    out = logs.redact(text)
    assert out == ("lead #12 (email #340) at 2026-11-21 10:00:05: email 'A***@example.com', "
                   "phone ***0142 / ***0142 / ***0142; uid 4000123")


def test_log_format_json_writes_one_object_per_line():
    stream = io.StringIO()
    root = logging.getLogger()
    before = list(root.handlers), root.level
    try:
        logs.setup(logging.INFO, "json", stream=stream)
        logging.getLogger("daemon.test").info("lead #%s stored", 7, extra={"lead_id": 7})
        logging.getLogger("daemon.test").debug("not at INFO")
    finally:
        for h in list(root.handlers):
            if h not in before[0]:
                root.removeHandler(h)
        for h in before[0]:
            if h not in root.handlers:
                root.addHandler(h)
        root.setLevel(before[1])
    (line,) = stream.getvalue().splitlines()
    record = json.loads(line)
    assert record["message"] == "lead #7 stored" and record["level"] == "INFO"
    assert record["logger"] == "daemon.test" and record["lead_id"] == 7 and "time" in record


@pytest.mark.slow
@pytest.mark.parametrize("log_format", ["text", "json"])
def test_an_idle_daemon_logs_nothing_for_10_seconds_at_info(tmp_path: Path, log_format: str):
    """A real ``leadpipe run`` at ``log_level: INFO``, idle on its directory inbox with the
    web server up: after its start, not one line (the scheduler once logged each job run,
    twice a second, burying the alerts)."""
    import time

    workdir = tmp_path / "run"
    workdir.mkdir()
    shutil.copytree(REPO / "rules", workdir / "rules")
    (workdir / "leadpipe.yaml").write_text(yaml.safe_dump({
        "database_url": f"sqlite:///{workdir}/lp.db", "log_level": "INFO", "log_format": log_format,
        "web": {"host": "127.0.0.1", "port": 0},
        "health": {"heartbeat_interval": "1s", "heartbeat_stale_after": "5s"}}), encoding="utf-8")
    daemon = daemonkit.start(workdir)
    try:
        daemon.wait_for_log("web server listening")
        time.sleep(1)  # the start's own lines (warnings about the set-up) are all out
        started = len(daemon.log.read_bytes())
        time.sleep(10)
        idle = daemon.log.read_bytes()[started:].decode(errors="replace")
        assert daemon.proc.poll() is None, daemon.text()
    finally:
        daemon.stop()
    assert idle == "", f"an idle daemon logged:\n{idle[:3000]}"
