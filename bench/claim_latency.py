"""Hot-lead claim latency: email arrival → the claim message received by Slack.

    python bench/claim_latency.py [--leads 200] [--database-url URL]

The daemon runs as ``leadpipe run`` wires it (``daemon.service.Service.run_forever`` in a
thread: worker loop, dispatcher thread, claim-timeout job), with slack-sdk pointed at a
local server speaking the Web API (``tests/slackserver.py``). Each of ``--leads`` hot
leads — the real Trulia fixture ``fixtures/emails/trulia/html_definition_list.eml`` (score
80, hot) with a fresh Message-ID — *arrives* the way the IMAP watcher hands over a fetched
batch (``Service._store_and_wake``: commit the raw email, wake the worker); the clock stops
when the local Slack server receives the ``chat.postMessage`` to the hot-leads channel.
One lead at a time, so each number is one lead's own path: parse, score, route (pointer
lock, outbox row) in one transaction, dispatcher wake, Slack call.

Baseline, measured in the same run and interleaved: the bare ``chat.postMessage`` call
from slack-sdk to the same server, so the ratio is leadpipe's own overhead. The IMAP side
(~0.5 s of IDLE notification delay on Dovecot, ~2 ms on pymap; see SOURCES.md) comes on
top and is measured by ``bench/imap_latency.py``.

Target (issue 5): p99 under 1 s. Prints results; asserts nothing.
"""

from __future__ import annotations

import argparse
import logging
import re
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from slack_sdk import WebClient  # noqa: E402
from slackserver import SlackServer  # noqa: E402

from daemon.config import Settings  # noqa: E402
from daemon.lead import Origin, RawEmail  # noqa: E402
from daemon.service import Service  # noqa: E402

FIXTURE = REPO / "fixtures" / "emails" / "trulia" / "html_definition_list.eml"
HOT_CHANNEL = "C0HOTLEADS"


def fresh(data: bytes, n: int) -> bytes:
    return re.sub(rb"(?m)^Message-ID: <[^>]+>", f"Message-ID: <bench.{n}.{time.time_ns()}@trulia.example>".encode(),
                  data, count=1)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def line(name: str, ms: list[float]) -> str:
    return (f"{name:<34} p50 {pct(ms, 50):7.1f} ms   p99 {pct(ms, 99):7.1f} ms   "
            f"max {max(ms):7.1f} ms   mean {statistics.fmean(ms):7.1f} ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--leads", type=int, default=200)
    ap.add_argument("--database-url", help="default: SQLite in a temporary folder")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    data = FIXTURE.read_bytes()
    with tempfile.TemporaryDirectory() as tmp, SlackServer() as slack:
        settings = Settings(
            database_url=args.database_url or f"sqlite:///{tmp}/bench.db",
            rules_dir=REPO / "rules", inbox_dir=Path(tmp) / "inbox",
            agents=[{"name": f"Agent {k}", "slack_user_id": f"U0AG{k}"} for k in range(3)],
            slack={"bot_token": "xoxb-bench", "base_url": slack.base_url,
                   "hot_leads_channel": HOT_CHANNEL, "alerts_channel": "C0ALERTS"},
            web={"enabled": False},
            # every lead is the same person: without this they would be repeat inquiries
            routing={"repeat_window": "0s"},
        )
        service = Service(settings)
        runner = threading.Thread(target=service.run_forever, name="daemon", daemon=True)
        runner.start()
        bare = WebClient(token="xoxb-bench", base_url=slack.base_url, retry_handlers=[])
        pipeline_ms: list[float] = []
        baseline_ms: list[float] = []
        try:
            for n in range(5):  # warm-up: imports, connections, first queries
                _one(service, slack, fresh(data, -n - 1))
            for n in range(args.leads):
                pipeline_ms.append(_one(service, slack, fresh(data, n)))
                started = time.perf_counter()
                bare.chat_postMessage(channel="C0BASE", text="baseline")
                baseline_ms.append((time.perf_counter() - started) * 1000)
        finally:
            service.stop.set()
            service.wake.set()
            service.deliver_wake.set()
            runner.join(timeout=10)
    print(f"{args.leads} hot leads, one at a time; database {service.db.describe()}")
    print(line("email arrival → claim message", pipeline_ms))
    print(line("baseline: bare chat.postMessage", baseline_ms))
    print(f"ratio p50 {pct(pipeline_ms, 50) / pct(baseline_ms, 50):.1f}×, "
          f"p99 {pct(pipeline_ms, 99) / pct(baseline_ms, 99):.1f}×; "
          f"target p99 < 1000 ms: {'met' if pct(pipeline_ms, 99) < 1000 else 'NOT met'}")
    return 0


def _one(service: Service, slack: SlackServer, data: bytes) -> float:
    before = len([c for c in slack.named("chat.postMessage") if c.body.get("channel") == HOT_CHANNEL])
    raw = RawEmail(data=data, origin=Origin.IMAP, received_at=datetime.now(UTC), mailbox="bench",
                   folder="INBOX", uidvalidity=1, uid=time.time_ns() // 1000)
    got = threading.Event()
    arrived: list[float] = []

    def on_call(call: object) -> None:
        body = getattr(call, "body", {})
        if getattr(call, "method", "") == "chat.postMessage" and body.get("channel") == HOT_CHANNEL:
            arrived.append(getattr(call, "at", 0.0))
            got.set()

    slack.on_call = on_call
    started = time.perf_counter()
    service._store_and_wake(service.db, [raw])
    if not got.wait(30):
        raise SystemExit(f"no claim message within 30 s (posted so far: {before})")
    slack.on_call = None
    return (arrived[0] - started) * 1000


if __name__ == "__main__":
    sys.exit(main())
