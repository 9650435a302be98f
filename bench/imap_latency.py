"""IMAP watcher benchmark: APPEND → stored and APPEND → lead latency, and backlog rate
against a baseline.

    python bench/imap_latency.py [--messages 200] [--backlog 1000] [--rounds 3] [--servers pymap,dovecot]

For each server (pymap and Dovecot, started on loopback exactly as the tests start them):

* **latency**: with the daemon idling on IMAP, one email at a time is APPENDed and the
  time from the end of the APPEND (the server has it) to a *probe* is taken; p50/p99/max
  over ``--messages`` emails. The emails are the real Zillow fixtures
  (``fixtures/emails/zillow/*.eml``, in turn, each with a fresh Message-ID), so the rule
  engine does its real work. Two probes, each in its own run:

  - ``InboundProbe``: the commit of the ``inbound_emails`` row (a bare watcher whose
    ``store`` is hooked);
  - ``LeadProbe``: the commit of the ``leads`` row (issue 3's number). The watcher and
    the pipeline worker run as ``leadpipe run`` wires them, in ``daemon.service.Service``
    (the watcher stores a batch and sets ``wake``; the worker loop wakes and processes
    it); the probe is the worker's ``on_processed`` hook, which runs after the commit.

  Dovecot holds back IDLE notifications for 500 ms (``NOTIFY_DELAY_MSECS`` in its
  ``index-mailbox-check.c``) to coalesce changes, so its numbers start near 0.5 s.
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
import contextlib
import logging
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import mailparser  # noqa: E402
from benchkit import with_message_id  # noqa: E402
from imapservers import ImapServer, dovecot_binary, make_email, start_server  # noqa: E402

from daemon.config import Settings  # noqa: E402
from daemon.intake.imap import MailboxWatcher  # noqa: E402
from daemon.intake.inbox import accept_many, headers_of  # noqa: E402
from daemon.lead import Lead, RawEmail  # noqa: E402
from daemon.pipeline import Processed  # noqa: E402
from daemon.service import Service  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.inbound import Stored  # noqa: E402

ZILLOW = ROOT / "fixtures" / "emails" / "zillow"


class Probe(Protocol):
    """When an email (by Message-ID) reached the stage being measured."""

    def wait(self, message_id: str, timeout: float) -> float | None: ...


class _Arrivals:
    """Message-ID → ``perf_counter()`` of its arrival at the measured stage."""

    def __init__(self) -> None:
        self._done: dict[str, float] = {}
        self._cond = threading.Condition()

    def _arrived(self, message_ids: Sequence[str]) -> None:
        now = time.perf_counter()
        with self._cond:
            for m in message_ids:
                self._done[m] = now
            self._cond.notify_all()

    def wait(self, message_id: str, timeout: float) -> float | None:
        with self._cond:
            self._cond.wait_for(lambda: message_id in self._done, timeout)
            return self._done.get(message_id)


class InboundProbe(_Arrivals):
    """Done = its ``inbound_emails`` row is committed (wraps the watcher's ``store``)."""

    def store(self, db: Database, raws: Sequence[RawEmail]) -> list[Stored]:
        stored = accept_many(db, raws)
        self._arrived([headers_of(raw.data).message_id or "" for raw in raws])
        return stored


class LeadProbe(_Arrivals):
    """Done = the pipeline worker committed its ``leads`` row: ``Worker`` calls its
    ``on_processed`` hook (here ``processed``) after the transaction commits."""

    def __init__(self) -> None:
        super().__init__()
        self.not_leads = 0

    def processed(self, result: Processed) -> None:
        if isinstance(result.outcome, Lead):
            self._arrived([result.outcome.message_id or ""])
        else:
            self.not_leads += 1


def zillow_leads(n: int, tag: str) -> list[tuple[str, bytes]]:
    """``n`` real lead emails: the Zillow fixtures in turn, each with a fresh Message-ID."""
    sources = [p.read_bytes() for p in sorted(ZILLOW.glob("*.eml"))]
    out = []
    for i in range(n):
        message_id = f"<{tag}-{i}@bench.leadpipe.example>"
        out.append((message_id, with_message_id(sources[i % len(sources)], message_id)))
    return out


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


@contextlib.contextmanager
def bare_watcher(server: ImapServer, database_url: str) -> Iterator[Probe]:
    """A ``MailboxWatcher`` alone, idling; the probe sees each stored batch."""
    db = Database(database_url)
    db.upgrade()
    probe = InboundProbe()
    watcher = MailboxWatcher(server.settings(poll_interval="60s"), db, store=probe.store)
    stop = threading.Event()
    thread = threading.Thread(target=watcher.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield probe
    finally:
        stop.set()
        thread.join(10)
        db.dispose()


@contextlib.contextmanager
def daemon_service(server: ImapServer, database_url: str) -> Iterator[Probe]:
    """The watcher and the pipeline worker as ``leadpipe run`` runs them
    (``Service.run_forever``, here in a thread); the probe sees each committed lead."""
    probe = LeadProbe()
    settings = Settings(
        database_url=database_url,
        rules_dir=ROOT / "rules",
        mailboxes=[server.settings(poll_interval="60s")],
        web={"enabled": False},
    )
    service = Service(settings, console=probe.processed)
    thread = threading.Thread(target=service.run_forever, daemon=True)
    thread.start()
    try:
        yield probe
    finally:
        service.stop.set()
        service.wake.set()
        thread.join(15)
        service.db.dispose()
        if probe.not_leads:
            print(f"  {probe.not_leads} emails did not become leads", file=sys.stderr)


def measure_latency(
    server: ImapServer, emails: list[tuple[str, bytes]],
    running: contextlib.AbstractContextManager[Probe],
) -> list[float]:
    """APPEND each email in turn and wait for the probe; the first one only warms up
    (first run done, IDLE entered, rules compiled) and is not counted."""
    latencies: list[float] = []
    with running as probe, server.session() as client:
        time.sleep(1.0)  # connected and through the first run
        for i, (message_id, data) in enumerate(emails):
            client.append("INBOX", data)
            appended = time.perf_counter()
            done = probe.wait(message_id, 10)
            if done is None:
                print(f"  {message_id} not done within 10 s", file=sys.stderr)
                continue
            if i > 0:
                latencies.append(done - appended)
            time.sleep(0.02)
    return latencies


def print_latency(what: str, latencies: list[float]) -> None:
    if not latencies:
        print(f"{what}: no samples")
        return
    ms = [x * 1000 for x in latencies]
    print(
        f"{what}, {len(ms)} emails: p50 {statistics.median(ms):.1f} ms, "
        f"p99 {percentile(ms, 99):.1f} ms, max {max(ms):.1f} ms"
    )


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
        n = args.messages + 1  # the first one warms up
        stored = measure_latency(server, zillow_leads(n, f"in-{kind}"),
                                 bare_watcher(server, f"sqlite:///{workdir}/inbound-{kind}.db"))
        print_latency("APPEND → inbound row committed (watcher alone)", stored)
        leads = measure_latency(server, zillow_leads(n, f"lead-{kind}"),
                                daemon_service(server, f"sqlite:///{workdir}/leads-{kind}.db"))
        print_latency("APPEND → lead row committed (Service: watcher + worker)", leads)
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
