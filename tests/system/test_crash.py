"""The crash promise, small enough for every CI run: ``leadpipe run`` SIGKILLed at random
moments and restarted loses and duplicates nothing.

The same code as ``bench/crash.py`` (which runs 1,000 emails, 20 kills, Dovecot, and the
PostgreSQL variants), here on 100 emails, 5 kills, pymap and SQLite, once with Follow Up
Boss and once with HubSpot.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "bench") not in sys.path:
    sys.path.insert(0, str(REPO / "bench"))

import crash  # noqa: E402


def test_sigkilled_daemon_stores_each_lead_once_and_posts_each_claim_once(capsys: object) -> None:
    """100 fixture emails (unique people, a quarter of them hot) arrive on IMAP while the
    daemon is SIGKILLed 5 times: every email is stored once with its expected outcome,
    each hot lead has one Slack claim message, each round-robin person one Follow Up Boss
    contact, and the at-least-once repeats stay within one per kill."""
    args = crash.parse_args(["--emails", "100", "--kills", "5", "--imap", "pymap", "--db", "sqlite",
                             "--max-gap", "1.0", "--settle", "60", "--quiet-for", "1",
                             "--seed", "20261121"])
    result = crash.run(args)
    assert result.passed, "\n" + result.table()


def test_sigkilled_daemon_makes_each_hubspot_contact_once(capsys: object) -> None:
    """The same run against the local HubSpot (its search lagging its writes by a second):
    each round-robin person is exactly one HubSpot contact (none twice, none that mixes
    two people), and the contact writes, notes and tasks repeat at most once per kill."""
    args = crash.parse_args(["--crm", "hubspot", "--emails", "100", "--kills", "5", "--imap", "pymap",
                             "--db", "sqlite", "--max-gap", "1.0", "--settle", "60", "--quiet-for", "1",
                             "--seed", "20261121"])
    result = crash.run(args)
    assert result.passed, "\n" + result.table()
