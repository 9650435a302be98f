"""Shared pieces of the command-line tests: ``leadpipe ARGS`` run as a user runs it (a
subprocess), a work folder holding a copy of ``rules/`` and ``fixtures/``, a small email,
and the keys of the lead contract (DESIGN.md) that ``--json`` prints."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CONTRACT_KEYS = {
    "source", "rule_version", "message_id", "received_at", "full_name", "first_name",
    "last_name", "email", "phone", "property", "budget_min", "budget_max", "intent",
    "message", "inquiry", "enrichment", "score", "tier", "warnings",
}
PROPERTY_KEYS = {"address", "city", "state", "postal_code", "price", "mls_id", "url",
                 "address_verified", "address_check", "address_usps",
                 "latitude", "longitude", "county", "geocode_quality", "geocoder"}
INQUIRY_KEYS = {"intent", "urgency", "pre_approved", "cash", "investor", "timeline_days"}
STORED_KEYS = CONTRACT_KEYS | {"id", "status", "agent", "claimed_by"}


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``leadpipe ARGS`` in ``cwd``; the package is found from the repo, installed or not."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADPIPE_")}
    env.update(COLUMNS="250", NO_COLOR="1", PYTHONIOENCODING="utf-8",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, "-m", "daemon.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def workdir(base: Path) -> Path:
    base.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO / "rules", base / "rules")
    shutil.copytree(REPO / "fixtures", base / "fixtures")
    return base


def email_bytes(sender: str, subject: str, body: str, n: int) -> bytes:
    m = EmailMessage()
    m["From"] = sender
    m["To"] = "inbox@brokerage.example"
    m["Subject"] = subject
    m["Message-ID"] = f"<cli.{n}@test.example>"
    m["Date"] = "Tue, 03 Nov 2026 14:22:05 -0500"
    m.set_content(body)
    return bytes(m)
