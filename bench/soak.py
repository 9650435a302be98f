"""Soak: tens of thousands of emails through one long-running daemon; does its memory stay flat?

    python bench/soak.py [--emails 50000] [--db sqlite|postgresql] [--every 5000]

``leadpipe run --config leadpipe.yaml`` runs in a subprocess on the directory inbox, with
the local Slack Web API server (``tests/slackserver.py``) and three agents, so every email
goes the whole way: stored, parsed, scored, routed, and its Slack message delivered from
the outbox. The fixture emails (``fixtures/emails``, hostile ones included) are dropped
into the inbox in batches with unique Message-IDs, keeping at most ``--backlog`` waiting;
every ``--every`` processed emails it prints the daemon's RSS (``VmRSS`` of
``/proc/PID/status``) and the rate. Processed files are deleted as it goes.

Target (issue 9): RSS flat after warm-up (the last sample under 10 % above the first
one after warm-up) and under 250 MB. Prints a verdict; exits 1 when missed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from benchkit import with_message_id  # noqa: E402
from slackserver import SlackServer  # noqa: E402
from sqlalchemy import create_engine, func, select  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

from storage.db import Database  # noqa: E402
from storage.models import InboundEmail, OutboxRow  # noqa: E402

FIXTURES = REPO / "fixtures" / "emails"


def rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    m = re.search(r"VmRSS:\s+(\d+) kB", text)
    return int(m.group(1)) / 1024 if m else float("nan")


def counts(engine: object) -> tuple[int, int]:
    """(emails finished by the pipeline, outbox rows not delivered yet)."""
    with engine.connect() as c:  # type: ignore[attr-defined]
        done = c.execute(select(func.count()).select_from(InboundEmail)
                         .where(InboundEmail.status != "pending")).scalar_one()
        unsent = c.execute(select(func.count()).select_from(OutboxRow)
                           .where(OutboxRow.status.in_(("pending", "sending")))).scalar_one()
    return done, unsent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--emails", type=int, default=50_000)
    ap.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--every", type=int, default=5000, help="print RSS every this many emails")
    ap.add_argument("--batch", type=int, default=250, help="files dropped into the inbox at once")
    ap.add_argument("--backlog", type=int, default=1000, help="most emails waiting in the inbox")
    args = ap.parse_args()
    templates = [p.read_bytes() for p in sorted(FIXTURES.rglob("*.eml"))]
    tag = f"soak{int(time.time())}"
    samples: list[tuple[int, float, float]] = []
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="leadpipe-soak-")))
        slack = stack.enter_context(SlackServer())
        if args.db == "postgresql":
            from crash import Postgres  # the same throwaway cluster as the crash test

            url = stack.enter_context(Postgres().database())
        else:
            url = f"sqlite:///{tmp}/soak.db"
        Database(url).upgrade()
        shutil.copytree(REPO / "rules", tmp / "rules")
        inbox = tmp / "inbox"
        inbox.mkdir()
        config = {
            "database_url": url,
            "inbox_dir": str(inbox),
            "slack": {"bot_token": "xoxb-soak", "base_url": slack.base_url, "hot_leads_channel": "C0HOT",
                      "alerts_channel": "C0ALERTS", "claim_timeout": "1h"},
            "agents": [{"name": f"Agent {k}", "slack_user_id": f"U0AG{k}"} for k in range(3)],
            "routing": {"repeat_window": "0s"},
            "web": {"enabled": False},
            "silence": {"enabled": False},
            "log_level": "WARNING",
        }
        (tmp / "leadpipe.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEADPIPE_")}
        log = open(tmp / "daemon.log", "wb")  # noqa: SIM115 - closed with the stack
        stack.callback(log.close)
        proc = subprocess.Popen([sys.executable, "-m", "daemon.cli", "run", "--config", "leadpipe.yaml"],
                                cwd=tmp, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        def stop_daemon() -> None:
            if proc.poll() is None:
                proc.kill()

        stack.callback(stop_daemon)
        u = make_url(url)
        engine = create_engine(u.set(drivername="postgresql+psycopg") if u.drivername == "postgresql" else u,
                               poolclass=NullPool)
        print(f"{args.emails} emails through leadpipe run (directory inbox, {args.db}, Slack delivery); "
              f"daemon pid {proc.pid}, RSS at start {rss_mb(proc.pid):.0f} MB", flush=True)
        started = last_t = time.monotonic()
        dropped = done = 0
        next_sample = args.every
        while done < args.emails:
            if proc.poll() is not None:
                print((tmp / "daemon.log").read_text(errors="replace")[-4000:])
                raise SystemExit(f"the daemon exited with status {proc.returncode}")
            done, unsent = counts(engine)
            if dropped < args.emails and dropped - done < args.backlog:
                for _ in range(min(args.batch, args.emails - dropped)):
                    data = with_message_id(templates[dropped % len(templates)], f"<{tag}.{dropped}@soak.example>")
                    part = inbox / f".{dropped}.tmp"
                    part.write_bytes(data)
                    part.rename(inbox / f"{dropped:06d}.eml")  # whole files only
                    dropped += 1
            while done >= next_sample:
                now = time.monotonic()
                rss = rss_mb(proc.pid)
                rate = args.every / (now - last_t)
                samples.append((next_sample, rss, rate))
                print(f"{next_sample:>7} emails  RSS {rss:6.1f} MB  {rate:6.1f} emails/s  "
                      f"outbox waiting {unsent}", flush=True)
                last_t = now
                next_sample += args.every
                shutil.rmtree(inbox / "processed", ignore_errors=True)
            time.sleep(0.2)
        elapsed = time.monotonic() - started
        proc.send_signal(signal.SIGTERM)
        status = proc.wait(30)
        engine.dispose()
    print(f"{done} emails in {elapsed:.0f} s ({done / elapsed:.1f}/s); daemon exit status {status}")
    warm = samples[1:] if len(samples) > 2 else samples
    growth = (warm[-1][1] - warm[0][1]) / warm[0][1] if warm else 0.0
    peak = max(s[1] for s in samples) if samples else 0.0
    ok = growth < 0.10 and peak < 250
    print(f"RSS after warm-up {warm[0][1]:.1f} → {warm[-1][1]:.1f} MB ({growth:+.1%}), peak {peak:.1f} MB; "
          f"target growth < 10 % and < 250 MB: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
