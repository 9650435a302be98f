"""A burst of leads while the geocoder answers 429 and then goes silent: is every lead routed
as fast as with no geocoder at all, and is every one geocoded once the geocoder returns,
never faster than its rate limit?

    python bench/geocode_burst.py [--leads 1000] [--rate 200] [--rounds 2]

Each round runs the same burst twice on fresh SQLite databases, one after the other (these
VMs have stretches where the CPU runs ~2× slower, so only ratios from one run mean
anything): ``--leads`` lead emails stored and run through the worker, each routed by round
robin —

- **baseline**: no geocoder configured (the default);
- **geocoder**: the Census geocoder on the local stand-in (``tests/geoservers.py``), which
  answers 429 (``Retry-After: 1``) for the first half of the burst and then accepts
  connections without ever answering. The inline budget is 0.2 s; after a failure the
  geocoder is held as in production (1 s, doubling, capped at 60 s).

Then the stand-in answers again and the deferred look-ups are drained at ``--rate``
requests per second. Prints, per round and as the median over rounds: the routing time of
each run and their ratio (target: near 1), how often the pipeline asked the geocoder inline
(a handful: each time its hold let it), the time until every lead was geocoded (waiting out the hold that was running when
the geocoder came back, then draining at the rate), and the
most requests the stand-in saw in any second (target: at most ``--rate``). Asserts nothing.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from geokit import run_burst  # noqa: E402
from geoservers import GeoServer  # noqa: E402

from storage import leads, provider_jobs  # noqa: E402
from storage.db import Database  # noqa: E402


def database(folder: Path) -> Database:
    db = Database(f"sqlite:///{folder}/leadpipe.db")
    db.upgrade()
    return db


def routed(db: Database) -> int:
    with db.session() as s:
        return sum(1 for lead in leads.newest(s, limit=1_000_000) if lead.status != "new")


def one_round(n: int, rate: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        base_db = database(Path(a))
        started = time.perf_counter()
        run_burst(base_db, Path(a), None, n)
        baseline = time.perf_counter() - started
        assert routed(base_db) == n
        base_db.dispose()

        geo_db = database(Path(b))
        with GeoServer("census") as server:
            server.set_mode("429")
            server.retry_after = 1
            started = time.perf_counter()
            _, g, seen = run_burst(geo_db, Path(b), server, n, rate=rate, hold=(1.0, 60.0))
            with_geocoder = time.perf_counter() - started
            assert g is not None and routed(geo_db) == n
            asked = server.count
            server.set_mode("ok")
            started = time.perf_counter()
            g.drain(deadline=time.monotonic() + 600)
            drained = time.perf_counter() - started
            with geo_db.session() as s:
                done = provider_jobs.count_jobs(s, "geocode").get("done", 0)
            peak = server.max_in_window(1.0)
        geo_db.dispose()
    return {"baseline": baseline, "geocoder": with_geocoder, "ratio": with_geocoder / baseline,
            "asked": asked, "deferred": sum(1 for i in seen if i.deferred), "drained": drained,
            "done": done, "peak": peak}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--leads", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=200.0, help="the geocoder's rate limit, per second")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    logging.basicConfig(level=logging.CRITICAL)
    print(f"{args.leads} leads; the geocoder answers 429 for the first half of the burst, then "
          f"is silent; inline budget 0.2 s; deferred look-ups at {args.rate:g}/s")
    rounds = []
    for i in range(args.rounds):
        r = one_round(args.leads, args.rate)
        rounds.append(r)
        print(f"round {i + 1}: routing {r['baseline']:.2f} s with no geocoder, {r['geocoder']:.2f} s "
              f"with the geocoder down (ratio {r['ratio']:.2f}); asked inline {r['asked']:.0f}×, "
              f"{r['deferred']:.0f} deferred; all geocoded {r['drained']:.2f} s after it returned "
              f"({r['done']:.0f}/{args.leads}); peak {r['peak']:.0f} requests in a second")
    med = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    print(f"routing time, geocoder 429-then-silent / no geocoder: ratio {med['ratio']:.2f} "
          f"(median of {args.rounds}; target near 1.0)")
    print(f"inline asks during the burst: {med['asked']:.0f} of {args.leads} leads; "
          f"deferred: {med['deferred']:.0f}")
    print(f"geocoded after the geocoder returned: {med['done']:.0f}/{args.leads} in "
          f"{med['drained']:.2f} s ({args.leads / med['drained']:.0f}/s); peak {med['peak']:.0f} "
          f"requests in any second (limit {args.rate:g})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
