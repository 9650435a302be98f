"""IMAP watcher benchmark: APPEND → stored latency, and backlog rate against a baseline.

    python bench/imap_latency.py [--messages 200] [--backlog 1000] [--rounds 3] [--servers pymap,dovecot]

For each server (pymap and Dovecot, started on loopback exactly as the tests start them):

* **latency**: with the watcher idling, one email at a time is APPENDed and the time from
  the end of the APPEND (the server has it) to the commit of its ``inbound_emails`` row
  is taken; p50/p99/max over ``--messages`` emails. What counts as "done" is a *probe*:
  ``InboundProbe`` hooks the watcher's ``store``. Measuring to the lead row is a second
  probe that waits for the pipeline worker's result (see ``Probe``).
* **backlog**: ``--backlog`` emails (~31 KB, multipart/alternative) in a folder, taken in
  by ``MailboxWatcher.run_once`` with ``start_from: all`` (fetch, store, MOVE), against a
  baseline measured in the same run on an identical folder: plain imapclient
  ``FETCH BODY.PEEK[]`` in batches of the same size plus ``mailparser.parse_from_bytes``
  on every message. Runs are interleaved (this VM has stretches at half speed), and the
  ratio is printed per round and overall.

Prints results; asserts nothing.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import mailparser  # noqa: E402
from imapservers import ImapServer, dovecot_binary, make_email, start_server  # noqa: E402

from daemon.imap import MailboxWatcher  # noqa: E402
from daemon.inbox import accept_many, headers_of  # noqa: E402
from daemon.lead import RawEmail  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.inbound import Stored  # noqa: E402


class Probe(Protocol):
    """When an email (by Message-ID) reached the stage being measured."""

    def wait(self, message_id: str, timeout: float) -> float | None: ...


class InboundProbe:
    """Done = its ``inbound_emails`` row is committed (wraps the watcher's ``store``).

    A lead-row probe would instead run the pipeline worker beside the watcher and
    record, per Message-ID, when the worker committed the lead.
    """

    def __init__(self) -> None:
        self._done: dict[str, float] = {}
        self._cond = threading.Condition()

    def store(self, db: Database, raws: Sequence[RawEmail]) -> list[Stored]:
        stored = accept_many(db, raws)
        now = time.perf_counter()
        with self._cond:
            for raw in raws:
                self._done[headers_of(raw.data).message_id or ""] = now
            self._cond.notify_all()
        return stored

    def wait(self, message_id: str, timeout: float) -> float | None:
        with self._cond:
            self._cond.wait_for(lambda: message_id in self._done, timeout)
            return self._done.get(message_id)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def measure_latency(server: ImapServer, n: int, workdir: Path) -> list[float]:
    db = Database(f"sqlite:///{workdir}/latency-{server.kind}.db")
    db.upgrade()
    probe = InboundProbe()
    watcher = MailboxWatcher(server.settings(poll_interval="60s"), db, store=probe.store)
    stop = threading.Event()
    thread = threading.Thread(target=watcher.run, args=(stop,), daemon=True)
    thread.start()
    latencies: list[float] = []
    try:
        time.sleep(1.0)  # first run done, IDLE entered
        with server.session() as client:
            for i in range(n):
                data = make_email(i, f"lat{server.kind}", size=3000)
                client.append("INBOX", data)
                appended = time.perf_counter()
                done = probe.wait(f"<lat{server.kind}-{i}@zillow.example>", 10)
                if done is None:
                    print(f"  message {i} not stored within 10 s", file=sys.stderr)
                    continue
                latencies.append(done - appended)
                time.sleep(0.02)
    finally:
        stop.set()
        thread.join(10)
        db.dispose()
    return latencies


def fill(server: ImapServer, folder: str, messages: list[bytes]) -> None:
    server.create_folder(folder)
    with server.session() as c:
        for m in messages:
            c.append(folder, m)


def baseline(server: ImapServer, folder: str, batch: int) -> int:
    """Plain imapclient FETCH BODY.PEEK[] in batches + mail-parser on each message."""
    n = 0
    with server.session() as c:
        c.select_folder(folder, readonly=True)
        uids = sorted(c.search(["ALL"]))
        for i in range(0, len(uids), batch):
            resp = c.fetch(uids[i : i + batch], [b"BODY.PEEK[]"])
            for item in resp.values():
                mailparser.parse_from_bytes(item[b"BODY[]"])
                n += 1
    return n


def watcher_backlog(server: ImapServer, folder: str, batch: int, db_path: Path) -> int:
    db = Database(f"sqlite:///{db_path}")
    db.upgrade()
    try:
        settings = server.settings(
            folder=folder, processed_folder=f"{folder}-done", start_from="all", fetch_batch=batch
        )
        return MailboxWatcher(settings, db).run_once()
    finally:
        db.dispose()


def timed(fn: Callable[[], int]) -> tuple[int, float]:
    start = time.perf_counter()
    n = fn()
    return n, time.perf_counter() - start


def bench_server(kind: str, args: argparse.Namespace, workdir: Path) -> None:
    with start_server(kind) as server:
        print(f"\n== {kind} ==")
        lat = measure_latency(server, args.messages, workdir)
        if lat:
            ms = [x * 1000 for x in lat]
            print(
                f"APPEND → inbound row committed, {len(ms)} emails: "
                f"p50 {statistics.median(ms):.1f} ms, p99 {percentile(ms, 99):.1f} ms, "
                f"max {max(ms):.1f} ms"
            )
        messages = [make_email(i, f"bl{kind}", size=31000, html=True) for i in range(args.backlog)]
        base_rates, watch_rates = [], []
        for r in range(args.rounds):
            fill(server, f"Base{r}", messages)
            fill(server, f"Watch{r}", [m.replace(b"@zillow", f"-w{r}@zillow".encode()) for m in messages])
            runs = [
                ("baseline", lambda r=r: baseline(server, f"Base{r}", args.batch)),
                ("watcher", lambda r=r: watcher_backlog(server, f"Watch{r}", args.batch, workdir / f"bl-{kind}-{r}.db")),
            ]
            if r % 2:
                runs.reverse()
            result: dict[str, float] = {}
            for name, fn in runs:
                n, took = timed(fn)
                result[name] = n / took
            base_rates.append(result["baseline"])
            watch_rates.append(result["watcher"])
            print(
                f"backlog round {r + 1}: baseline {result['baseline']:.0f} emails/s, "
                f"watcher {result['watcher']:.0f} emails/s, "
                f"ratio {result['watcher'] / result['baseline']:.2f}"
            )
        b, w = statistics.median(base_rates), statistics.median(watch_rates)
        ratio = statistics.median(x / y for x, y in zip(watch_rates, base_rates, strict=True))
        print(
            f"backlog of {args.backlog} × ~31 KB, batch {args.batch}: baseline (FETCH + "
            f"mail-parser) {b:.0f} emails/s; watcher (FETCH + store + MOVE) {w:.0f} emails/s; "
            f"watcher/baseline {ratio:.2f} (median of the ratios of {args.rounds} interleaved rounds)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=200, help="latency samples per server")
    parser.add_argument("--backlog", type=int, default=1000, help="emails in the backlog")
    parser.add_argument("--batch", type=int, default=100, help="fetch batch size")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved backlog rounds")
    parser.add_argument("--servers", default="pymap,dovecot")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="leadpipe-bench-") as tmp:
        for kind in args.servers.split(","):
            if kind == "dovecot" and dovecot_binary() is None:
                print("\n== dovecot == skipped: not installed (apt-get install dovecot-imapd)")
                continue
            bench_server(kind, args, Path(tmp))


if __name__ == "__main__":
    main()
