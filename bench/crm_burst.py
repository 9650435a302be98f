"""A burst of leads into a rate-limited CRM: does the dispatcher pace it without a 429, and
does the queue drain at (nearly) the rate the CRM allows?

    python bench/crm_burst.py [--leads 1000] [--requests 100] [--per 10] [--threads 1]
                              [--database-url URL]

``--leads`` leads are routed at once, each becoming one Follow Up Boss event (one outbox
row). The local FUB server (``tests/crmservers.py``) enforces a sliding window of
``--requests`` calls per ``--per`` seconds and answers 429 beyond it; the notifier is
configured with the same ``rate_limit``. The dispatcher (``--threads`` threads sharing one
process's pacing) drains the queue; the clock runs from the first call to the last event.

The defaults are issue 6's case: 1,000 leads at 10 requests/s, which takes over 100 s.
Target: no 429, and a drain rate of at least 90 % of the allowed rate (the buckets fill at
95 % and bank at most half the other 5 %, leaving the rest for jitter against the CRM's
window). The test suite runs the same code on 100 leads at 25 per second
(tests/delivery/test_pacing.py).

Baseline, measured in the same run: the same dispatcher draining ``--baseline`` leads with
no limit at all, so the ratio shows that pacing, not leadpipe, sets the pace. Prints
results; asserts nothing. ``--database-url`` must name an empty database (SQLite in a
temporary folder by default; the baseline always uses one).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from crmkit import burst  # noqa: E402
from crmservers import FubServer  # noqa: E402

from storage.db import Database  # noqa: E402


def database(url: str) -> Database:
    db = Database(url)
    db.upgrade()
    return db


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--leads", type=int, default=1000)
    ap.add_argument("--requests", type=int, default=100, help="calls the CRM allows per window")
    ap.add_argument("--per", type=float, default=10.0, help="the sliding window, in seconds")
    ap.add_argument("--threads", type=int, default=1, help="dispatcher threads in the process")
    ap.add_argument("--baseline", type=int, default=300, help="leads drained with no limit")
    ap.add_argument("--database-url", help="an empty database; default: SQLite in a temporary folder")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    allowed = args.requests / args.per
    print(f"{args.leads} leads → Follow Up Boss allowing {args.requests} calls per sliding "
          f"{args.per:g} s ({allowed:g}/s); expected ≥ {args.leads / allowed:.0f} s", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        with FubServer() as fub:
            free = burst(database(f"sqlite:///{tmp}/baseline.db"), fub, leads=args.baseline,
                         requests=10**6, per=1.0)
        print(f"baseline (no limit, SQLite): {free.rate:8.1f} leads/s over {free.leads} leads")
        started = time.perf_counter()
        with FubServer() as fub:
            db = database(args.database_url or f"sqlite:///{tmp}/bench.db")
            paced = burst(db, fub, leads=args.leads, requests=args.requests, per=args.per,
                          threads=args.threads)
            db.dispose()
        print(f"paced ({args.threads} thread{'s' * (args.threads != 1)}):  {paced.rate:8.2f} leads/s "
              f"over {paced.seconds:.1f} s = {paced.share:.1%} of the allowed {allowed:g}/s")
        print(f"429s provoked: {paced.rejected}")
        print(f"ratio paced / baseline: {paced.rate / free.rate:.3f} "
              f"(pacing, not leadpipe, sets the pace when this is well below 1)")
        print(f"wall time {time.perf_counter() - started:.1f} s; "
              f"verdict: {'OK' if paced.rejected == 0 and paced.share >= 0.9 else 'MISSED'} "
              "(target: 0 × 429 and ≥ 90 % of the allowed rate)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
