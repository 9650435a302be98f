"""Prometheus metrics (daemon/ops/metrics.py): ``GET /metrics`` after a run of known emails.

When these fail, the dashboard says all is well while leads pile up as dead letters,
deliveries die, or agents stop claiming hot leads.
"""

from __future__ import annotations

import shutil
import urllib.request
from collections import Counter
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families
from slackserver import SlackServer

from daemon.config import load_settings
from daemon.ops.metrics import Metrics
from daemon.service import Service
from daemon.web.app import WebServer, make_app
from storage import outbox

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "fixtures" / "emails"
EMAILS = ["trulia/html_definition_list", "realtor/text_layout", "zillow/" + sorted(
    p.stem for p in (FIXTURES / "zillow").glob("*.eml"))[0], "_hostile/empty_body",
    "_hostile/zillow_no_phone_no_email"]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``{(sample name, sorted labels): value}`` of an exposition."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def predicted() -> tuple[Counter[tuple[str, str]], Counter[tuple[str, str]]]:
    """Leads by (source, tier) and dead letters by (source, reason), from the golden files."""
    lead_counts: Counter[tuple[str, str]] = Counter()
    dead_counts: Counter[tuple[str, str]] = Counter()
    for name in EMAILS:
        golden = yaml.safe_load((FIXTURES / f"{name}.expected.yaml").read_text(encoding="utf-8"))
        if "lead" in golden:
            lead_counts[(golden["lead"]["source"], golden["lead"]["tier"])] += 1
        else:
            rule = golden["dead_letter"]["rule"]
            dead_counts[(rule.split(" v")[0] if rule else "unknown", golden["dead_letter"]["reason"])] += 1
    return lead_counts, dead_counts


def test_the_metrics_change_as_a_run_of_known_emails_predicts(database_url: str, tmp_path: Path):
    lead_counts, dead_counts = predicted()
    assert sum(lead_counts.values()) == 3 and sum(dead_counts.values()) == 2
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for i, name in enumerate(EMAILS):
        shutil.copy(FIXTURES / f"{name}.eml", inbox / f"{i}.eml")
    with SlackServer() as slack:
        config = tmp_path / "leadpipe.yaml"
        config.write_text(yaml.safe_dump({
            "database_url": database_url, "rules_dir": str(REPO / "rules"), "inbox_dir": str(inbox),
            "agents": [{"name": "Ana Ruiz", "slack_user_id": "U0ANA"},
                       {"name": "Ben Okafor", "slack_user_id": "U0BEN"}],
            "slack": {"bot_token": "xoxb-test", "base_url": slack.base_url,
                      "hot_leads_channel": "C0HOT", "alerts_channel": "C0ALERTS"},
        }))
        service = Service(load_settings(config))
        server = WebServer(make_app(service.router, None, routers=service.web_routers()), "127.0.0.1", 0).start()
        try:
            before = samples(scrape(server))
            assert before[("leadpipe_outbox_depth", ())] == 0
            assert not [k for k in before if k[0] == "leadpipe_leads_total"]

            results = service.run_once()  # stores, parses, routes, delivers
            hot = next(r for r in results if getattr(r.outcome, "tier", None) == "hot")
            assert hot.lead_id is not None
            claim = service.router.claim(hot.lead_id, "U0BEN")
            assert claim.verdict == "won"
            service.dispatcher.drain()
            after = samples(scrape(server))
            with service.db.session() as s:
                delivered = len(outbox.listing(s, status="delivered", limit=None))
        finally:
            server.stop()
            service.db.dispose()

    assert after[("leadpipe_emails_received_total", (("origin", "directory"),))] == len(EMAILS)
    got_leads = {(dict(k[1])["source"], dict(k[1])["tier"]): v for k, v in after.items()
                 if k[0] == "leadpipe_leads_total"}
    assert got_leads == dict(lead_counts)
    got_dead = {(dict(k[1])["source"], dict(k[1])["reason"]): v for k, v in after.items()
                if k[0] == "leadpipe_dead_letters_total"}
    assert got_dead == dict(dead_counts)
    assert after[("leadpipe_deliveries_total", (("notifier", "slack"), ("outcome", "delivered")))] == delivered
    assert delivered >= 3  # the claim offer, the DMs, the dead-letter alerts
    assert after[("leadpipe_arrival_to_routed_seconds_count", ())] == 3
    assert after[("leadpipe_offer_to_claim_seconds_count", ())] == 1
    assert after[("leadpipe_claims_total", (("verdict", "won"),))] == 1
    assert after[("leadpipe_outbox_depth", ())] == 0
    assert after[("leadpipe_outbox_oldest_due_age_seconds", ())] == 0
    assert after[("leadpipe_dead_letters_open", ())] == 2
    assert after[("leadpipe_database_up", ())] == 1


def scrape(server: WebServer) -> str:
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain")
        return resp.read().decode()


def test_each_app_counts_in_its_own_registry():
    """Two services in one process (tests, benchmarks) never add to each other's counts."""
    a, b = Metrics(), Metrics()
    a.webhook("form", 200)
    assert samples(a.exposition().decode())[
        ("leadpipe_webhook_requests_total", (("source", "form"), ("status", "200")))] == 1
    assert not [k for k in samples(b.exposition().decode()) if k[0] == "leadpipe_webhook_requests_total"]
