"""Crash test: the whole daemon SIGKILLed at random moments loses and duplicates nothing.

    python bench/crash.py [--emails 1000] [--kills 20] [--db sqlite|postgresql]
                          [--replicas 1|2] [--restart-postgres] [--imap dovecot|pymap]
                          [--crm followupboss|hubspot]

``leadpipe run --config leadpipe.yaml`` runs in subprocesses against a real IMAP server on
loopback (Dovecot; pymap with ``--imap pymap``), the local Slack Web API server
(``tests/slackserver.py``) and a local CRM (``tests/crmservers.py``): Follow Up Boss, or
HubSpot with ``--crm hubspot`` (its search lagging its writes by 1 s; the notifier's
``search_lag`` 1 s, timeout 3 s, under the 10 s lease). Three agents: hot leads are
offered in Slack for claiming, the others go round robin, and every routed lead becomes a
Follow Up Boss event, or a HubSpot contact with a note (and a task, unless drip).
``--emails`` emails, built from the
fixture emails with unique Message-IDs and a unique person each (the lead's email address
and phone number rewritten), are appended to the mailbox in batches while the daemon runs
and is SIGKILLed ``--kills`` times at random moments (each replica, with ``--replicas
2``), restarted each time. ``--restart-postgres`` also stops and starts the PostgreSQL
cluster a few times mid-run.

At the end, once everything is processed and delivered, it checks: every email stored
exactly once (by Message-ID) with the outcome the in-process parser (for the fixture
originals: the golden files) says; exactly one CRM contact per person (a Follow Up Boss
person, or a HubSpot contact whose email and phone are exactly that person's: none twice,
none for nobody, none missing for a round-robin lead); exactly one Slack claim message per
hot lead. Slack posts and CRM calls are at-least-once by design (issue 5: a process killed
between the HTTP call and recording it repeats it once), so repeats are counted separately
and checked against the kills: repeated FUB events; for HubSpot, a contact written (created,
409-updated or patched) more than once, and a second note or task on a contact. Prints a
PASS/FAIL table; exits 1 on FAIL. ``tests/system/test_crash.py`` runs a small version of each CRM
in the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from benchkit import with_message_id  # noqa: E402
from crmservers import FubServer, HubSpotServer  # noqa: E402
from imapservers import ImapServer, start_server  # noqa: E402
from slackserver import SlackServer  # noqa: E402
from sqlalchemy import create_engine, func, select  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

from daemon.lead import Lead  # noqa: E402
from daemon.pipeline import Engine, parse_email  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.models import DeadLetterRow, InboundEmail, LeadRow, OutboxRow  # noqa: E402

FIXTURES = REPO / "fixtures" / "emails"
HOT_CHANNEL = "C0HOTLEADS"
#: how long the local HubSpot's search lags its writes, and the notifier's search_lag
HUBSPOT_SEARCH_LAG = 1.0


# -- the emails -------------------------------------------------------------------------


@dataclass(frozen=True)
class Email:
    message_id: str
    data: bytes
    kind: str  # lead | dead_letter | ignored
    tier: str | None = None
    person: tuple[str | None, str | None] = (None, None)  # (email, phone) of the lead
    hostile: bool = False


def _new_person(data: bytes, email: str | None, phone: str | None, n: int) -> bytes:
    """Rewrite the lead's email address (``local+pN@``) and the last four digits of its
    phone number wherever they appear literally in the raw email."""
    if email:
        local, _, domain = email.partition("@")
        data = re.sub(re.escape(email).encode(), f"{local}+p{n}@{domain}".encode(), data, flags=re.I)
    if phone and phone.startswith("+1") and len(phone) == 12:
        a, b, c = phone[2:5], phone[5:8], phone[8:]
        pattern = rf"(\(?{a}\)?[\s.\-]*{b}[\s.\-]*){c}".encode()
        data = re.sub(pattern, lambda m: m.group(1) + f"{n % 10000:04d}".encode(), data)
    return data


def make_rules(into: Path) -> Path:
    """The shipped rules with the hot tier starting above 55 instead of 75: about a
    quarter of the fixture leads are then hot (offered in Slack), the rest round robin."""
    shutil.copytree(REPO / "rules", into)
    scoring = into / "scoring.yaml"
    text = scoring.read_text(encoding="utf-8")
    assert "hot_above: 75" in text, "rules/scoring.yaml changed: adjust bench/crash.py"
    scoring.write_text(text.replace("hot_above: 75", "hot_above: 55"), encoding="utf-8")
    return into


def build_emails(count: int, tag: str, rng: random.Random, rules: Path) -> list[Email]:
    """``count`` emails: every hostile fixture once (outcome from its golden file), the
    rest lead fixtures with a new person each, kept only when the parser sees exactly that
    new person (so each lead's (email, phone) is unique across the run)."""
    engine = Engine.load(rules)
    hostile: list[Email] = []
    templates: list[tuple[Path, bytes, dict[str, Any]]] = []
    for eml in sorted(FIXTURES.rglob("*.eml")):
        golden = yaml.safe_load(eml.with_name(eml.stem + ".expected.yaml").read_text(encoding="utf-8"))
        kind = next(k for k in ("lead", "dead_letter", "ignored") if k in golden)
        if eml.parent.name == "_hostile" or kind != "lead":
            mid = f"<{tag}.h{len(hostile)}.{eml.stem}@crash.example>"
            lead = golden.get("lead") or {}
            raw = with_message_id(eml.read_bytes(), mid)
            got = parse_email(raw, engine)  # the tier under this run's scoring
            hostile.append(Email(mid, raw, kind, got.tier if isinstance(got, Lead) else None,
                                 (lead.get("email"), lead.get("phone")), hostile=eml.parent.name == "_hostile"))
        else:
            templates.append((eml, eml.read_bytes(), golden["lead"]))
    out = hostile[: max(0, count // 20)] if count < len(hostile) * 20 else hostile
    people: set[tuple[str | None, str | None]] = set()
    n = 0
    useless: Counter[Path] = Counter()
    while len(out) < count and templates:
        path, data, want = templates[n % len(templates)]
        n += 1
        if useless[path] >= 3:
            continue
        mid = f"<{tag}.{n}.{path.parent.name}.{path.stem}@crash.example>"
        raw = with_message_id(_new_person(data, want.get("email"), want.get("phone"), 1000 + n), mid)
        got = parse_email(raw, engine)
        if not isinstance(got, Lead) or (got.email, got.phone) in people or (got.email is None and got.phone is None) \
                or (got.email is not None and got.email == want.get("email")) \
                or (got.phone is not None and got.phone == want.get("phone")):
            useless[path] += 1
            continue
        people.add((got.email, got.phone))
        out.append(Email(mid, raw, "lead", got.tier, (got.email, got.phone)))
    if len(out) < count:
        raise SystemExit(f"could only build {len(out)} distinct emails")
    rng.shuffle(out)
    return out


# -- the world --------------------------------------------------------------------------


@dataclass
class Replica:
    workdir: Path
    name: str
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    kills: int = 0

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEADPIPE_")}
        env["PYTHONUNBUFFERED"] = "1"
        self.starts += 1
        with open(self.workdir / f"{self.name}.log", "ab") as out:
            out.write(f"\n==== start {self.starts} ====\n".encode())
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "daemon.cli", "run", "--config", "leadpipe.yaml"],
                cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def wait_running(self, timeout: float) -> None:
        """Until this start of the daemon has logged that it runs (or ``timeout``)."""
        log = self.workdir / f"{self.name}.log"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace")
            if "leadpipe running" in text[text.rfind("==== start"):]:
                return
            time.sleep(0.05)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
            self.kills += 1

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return None


@dataclass
class Postgres:
    """A throwaway cluster, restartable on the same port."""

    cluster: Any = None
    restarts: int = 0

    @contextlib.contextmanager
    def database(self) -> Iterator[str]:
        from pg_cluster import Server, TempCluster, find_bin_dir

        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise SystemExit("PostgreSQL not installed (no initdb/postgres)")
        self.cluster = TempCluster(bin_dir)
        self.cluster.start()
        try:
            server = Server(self.cluster.url())
            url = server.create_database(prefix="leadpipe_crash")
            server.close()
            yield url
        finally:
            self.cluster.stop()

    def restart(self, down: float) -> None:
        self.cluster.stop(remove=False)
        time.sleep(down)
        if not self.cluster._start_server(60):
            raise SystemExit("PostgreSQL did not come back")
        self.restarts += 1


@dataclass
class Result:
    rows: list[tuple[str, bool, str]] = field(default_factory=list)

    def check(self, name: str, ok: bool, detail: str) -> None:
        self.rows.append((name, ok, detail))

    @property
    def passed(self) -> bool:
        return all(ok for _, ok, _ in self.rows)

    def table(self) -> str:
        width = max(len(n) for n, _, _ in self.rows)
        return "\n".join(f"{'PASS' if ok else 'FAIL'}  {n:<{width}}  {d}" for n, ok, d in self.rows)


def _engine(url: str) -> Any:
    u = make_url(url)
    if u.drivername == "postgresql":
        u = u.set(drivername="postgresql+psycopg")
    return create_engine(u, poolclass=NullPool)


def _quiet(engine: Any) -> tuple[int, int, int]:
    """(inbound rows, still pending inbound, outbox rows not finished)."""
    with engine.connect() as c:
        total = c.execute(select(func.count()).select_from(InboundEmail)).scalar_one()
        pending = c.execute(select(func.count()).select_from(InboundEmail)
                            .where(InboundEmail.status == "pending")).scalar_one()
        unsent = c.execute(select(func.count()).select_from(OutboxRow)
                           .where(OutboxRow.status.in_(("pending", "sending")))).scalar_one()
    return total, pending, unsent


def run(args: argparse.Namespace) -> Result:
    rng = random.Random(args.seed)
    tag = f"c{int(time.time())}"
    scratch = Path(tempfile.mkdtemp(prefix="leadpipe-crash-rules-"))
    rules = make_rules(scratch / "rules")
    emails = build_emails(args.emails, tag, rng, rules)
    print(f"{len(emails)} emails ({sum(e.kind == 'lead' for e in emails)} leads, "
          f"{sum(e.tier == 'hot' for e in emails if e.kind == 'lead')} hot), "
          f"{args.kills} kills per replica, {args.replicas} replica(s), {args.db}, {args.imap}, {args.crm}",
          flush=True)
    pg = Postgres()
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="leadpipe-crash-")))
        imap: ImapServer = stack.enter_context(start_server(args.imap))
        slack = stack.enter_context(SlackServer())
        crm: FubServer | HubSpotServer
        if args.crm == "hubspot":
            crm = stack.enter_context(HubSpotServer(search_lag=HUBSPOT_SEARCH_LAG))
            notifier = {"type": "hubspot", "base_url": crm.base_url, "access_token": "pat-crash",
                        "search_lag": f"{HUBSPOT_SEARCH_LAG:g}s", "timeout": "3s",
                        "rate_limit": {"requests": 1000, "per": "1s"},
                        "search_rate_limit": {"requests": 1000, "per": "1s"}}
        else:
            crm = stack.enter_context(FubServer())
            notifier = {"type": "followupboss", "base_url": crm.base_url, "api_key": "fub-crash",
                        "rate_limit": {"requests": 1000, "per": "1s"}}
        url = stack.enter_context(pg.database()) if args.db == "postgresql" else f"sqlite:///{tmp}/crash.db"
        Database(url).upgrade()
        config = {
            "database_url": url,
            "mailboxes": [{"name": "leads", "host": imap.host, "port": imap.port, "security": "none",
                           "username": imap.username, "password": imap.password, "start_from": "all",
                           "processed_folder": "Processed", "poll_interval": "2s", "timeout": "5s",
                           "fetch_batch": 25}],
            "slack": {"bot_token": "xoxb-crash", "base_url": slack.base_url, "hot_leads_channel": HOT_CHANNEL,
                      "alerts_channel": "C0ALERTS", "claim_timeout": "1h"},
            "agents": [{"name": f"Agent {k}", "email": f"agent{k}@brokerage.example",
                        "slack_user_id": f"U0AG{k}", "crm_user_id": str(10 + k)} for k in range(3)],
            "notifiers": [notifier],
            "delivery": {"backoff_base": "200ms", "backoff_cap": "2s", "lease": "10s"},
            "web": {"enabled": False},
            "silence": {"enabled": False},
        }
        replicas = []
        for r in range(args.replicas):
            wd = tmp / f"replica{r}"
            wd.mkdir()
            shutil.copytree(rules, wd / "rules")
            (wd / "leadpipe.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
            replicas.append(Replica(wd, f"replica{r}"))
        rows = _engine(url)
        started = time.monotonic()

        # the mail arrives in batches while the daemon runs (and dies)
        def feed() -> None:
            batch = max(1, len(emails) // 40)
            for i in range(0, len(emails), batch):
                for attempt in range(20):
                    try:
                        imap.append([e.data for e in emails[i:i + batch]])
                        break
                    except Exception:  # the server is busy: try again
                        time.sleep(0.2 * (attempt + 1))
                time.sleep(rng.uniform(0.05, 0.4))

        feeder = threading.Thread(target=feed, daemon=True)
        for rep in replicas:
            rep.start()
        feeder.start()
        pg_restart_at = sorted(rng.sample(range(args.kills), min(3, args.kills))) if args.restart_postgres else []
        for k in range(args.kills):
            for rep in replicas:
                if rng.random() > 0.2:
                    rep.wait_running(30)
                time.sleep(rng.uniform(0.05, args.max_gap))
                rep.kill()
                rep.start()
            if k in pg_restart_at:
                pg.restart(rng.uniform(0.5, 2.0))
            try:
                print(f"kill round {k + 1}/{args.kills}: stored/pending/unsent {_quiet(rows)}", flush=True)
            except Exception as exc:  # the database is restarting: it is only progress output
                print(f"kill round {k + 1}/{args.kills}: ({type(exc).__name__})", flush=True)
        feeder.join()
        # quiescence: all stored, nothing pending, nothing to deliver, for --quiet-for seconds
        deadline = time.monotonic() + args.settle
        quiet_since = None
        state = (0, 0, 0)
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                state = _quiet(rows)
            if state[0] >= len(emails) and state[1] == 0 and state[2] == 0:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since > args.quiet_for:
                    break
            else:
                quiet_since = None
            time.sleep(0.5)
        elapsed = time.monotonic() - started
        for rep in replicas:  # a SIGTERM while the last restart still imports would kill it
            rep.wait_running(30)  # before its handler is installed (exit status -15)
        stops = [rep.stop() for rep in replicas]
        kills = sum(rep.kills for rep in replicas)
        print(f"quiet after {elapsed:.0f} s: stored/pending/unsent {state}; exit statuses at SIGTERM {stops}",
              flush=True)
        result = Result()
        _verify(result, emails, rows, slack, crm, kills, pg.restarts)
        result.check("daemon stopped cleanly", all(s == 0 for s in stops), f"SIGTERM exit statuses {stops}")
        if not result.passed:
            for rep in replicas:
                log = (rep.workdir / f"{rep.name}.log").read_text(errors="replace")
                print(f"--- {rep.name} log: tracebacks ---")
                print("\n".join(re.findall(r"(?m)^Traceback.*(?:\n[ \t].*)*\n.*", log)[-5:]) or "(none)")

        if args.keep:
            keep = Path(tempfile.mkdtemp(prefix="leadpipe-crash-kept-"))
            for rep in replicas:
                shutil.copy(rep.workdir / f"{rep.name}.log", keep)
            print(f"logs kept in {keep}")
        rows.dispose()
    shutil.rmtree(scratch, ignore_errors=True)
    return result


def _verify(result: Result, emails: list[Email], engine: Any, slack: SlackServer,
            crm: FubServer | HubSpotServer, kills: int, pg_restarts: int) -> None:
    with engine.connect() as c:
        inbound = list(c.execute(select(InboundEmail.id, InboundEmail.message_id, InboundEmail.status)))
        leads = list(c.execute(select(LeadRow.id, LeadRow.inbound_email_id, LeadRow.email, LeadRow.phone,
                                      LeadRow.tier)))
        dead = list(c.execute(select(DeadLetterRow.inbound_email_id, DeadLetterRow.reason)))
        outbox = list(c.execute(select(OutboxRow.notifier, OutboxRow.action, OutboxRow.status)))
    by_mid = Counter(r.message_id for r in inbound)
    mid_of = {r.id: r.message_id for r in inbound}
    want = {e.message_id: e for e in emails}
    twice = [m for m, n in by_mid.items() if n > 1]
    missing = [m for m in want if m not in by_mid]
    result.check("every email stored exactly once", not twice and not missing and len(by_mid) == len(want),
                 f"{len(by_mid)} Message-IDs for {len(want)} emails; {len(twice)} twice, {len(missing)} missing")
    leads_of = Counter(mid_of[r.inbound_email_id] for r in leads)
    lead_twice = [m for m, n in leads_of.items() if n > 1]
    wrong_kind = []
    for m, e in want.items():
        has_lead = leads_of.get(m, 0) > 0
        if (e.kind == "lead") != has_lead:
            wrong_kind.append(m)
    n_leads = sum(e.kind == "lead" for e in emails)
    result.check("every lead exactly once", not lead_twice and not wrong_kind,
                 f"{len(leads)} lead rows for {n_leads} expected leads; {len(lead_twice)} duplicated, "
                 f"{len(wrong_kind)} with the wrong outcome")
    dead_mids = {mid_of[d.inbound_email_id] for d in dead}
    bad_dead = sorted(m for m in dead_mids if want[m].kind != "dead_letter")
    missed_dead = sorted(m for m, e in want.items() if e.kind == "dead_letter" and m not in dead_mids)
    result.check("no dead letter that should not be", not bad_dead and not missed_dead,
                 f"{len(dead)} dead letters ({sum(e.hostile for e in emails if e.message_id in dead_mids)} "
                 f"hostile fixtures); {len(bad_dead)} unexpected {bad_dead[:3]}, {len(missed_dead)} missing")
    wrong_person = [r for r in leads if (r.email, r.phone) != want[mid_of[r.inbound_email_id]].person]
    result.check("each lead is its own person", not wrong_person,
                 f"{len(wrong_person)} leads with another person "
                 f"{[(mid_of[r.inbound_email_id], r.email, r.phone) for r in wrong_person[:2]]}")
    undelivered = Counter((o.notifier, o.action, o.status) for o in outbox if o.status != "delivered")
    result.check("every outbox row delivered", not undelivered,
                 f"{len(outbox)} outbox rows; not delivered: {dict(undelivered) or 'none'}")

    # Slack: one claim message per hot lead
    hot_ids = {r.id for r in leads if r.tier == "hot"}
    claims: Counter[int] = Counter()
    for call in slack.named("chat.postMessage"):
        if call.body.get("channel") != HOT_CHANNEL:
            continue
        for block in call.body.get("blocks") or ():
            for el in block.get("elements") or ():
                if isinstance(el, dict) and el.get("value"):
                    claims[int(el["value"])] += 1
    no_claim = hot_ids - set(claims)
    stray = set(claims) - hot_ids
    repeats = sum(n - 1 for n in claims.values())
    result.check("one Slack claim message per hot lead", not no_claim and not stray,
                 f"{len(hot_ids)} hot leads, {len(claims)} with a claim message; {len(no_claim)} without, "
                 f"{len(stray)} for a lead not hot")
    result.check("Slack repeats ≤ 1 per kill (at-least-once)", repeats <= kills + pg_restarts,
                 f"{repeats} repeated claim posts over {kills} kills, {pg_restarts} PostgreSQL restarts")

    expected_people = {want[mid_of[r.inbound_email_id]].person for r in leads}
    # hot leads reach the CRM only once claimed (nobody claims here); drip (low) leads are
    # sent too, but only the round-robin ones must be there
    routed = {want[mid_of[r.inbound_email_id]].person for r in leads if r.tier == "standard"}
    if isinstance(crm, HubSpotServer):
        _verify_hubspot(result, crm, expected_people, routed, kills, pg_restarts)
    else:
        _verify_fub(result, crm, expected_people, routed, kills, pg_restarts)


Person = tuple[str | None, str | None]


def _verify_fub(result: Result, fub: FubServer, expected_people: set[Person], routed: set[Person],
                kills: int, pg_restarts: int) -> None:
    """Follow Up Boss: one person per person, events repeated at most once per kill."""
    per_person: Counter[Person | None] = Counter()
    for p in fub.people:
        emails_, phones = p["emails"], p["phones"]
        key = next((who for who in expected_people
                    if (who[0] and who[0].lower() in emails_) or (who[1] and who[1] in phones)), None)
        per_person[key] += 1
    crm_twice = [k for k, n in per_person.items() if n > 1 and k is not None]
    strangers = per_person.get(None, 0)
    absent = routed - set(per_person)
    result.check("exactly one CRM contact per person", not crm_twice and not strangers and not absent,
                 f"{len(fub.people)} FUB people for {len(routed)} round-robin leads; {len(crm_twice)} people twice, "
                 f"{strangers} unknown, {len(absent)} missing")
    events: Counter[int] = Counter(e["personId"] for e in fub.events)
    crm_repeats = sum(n - 1 for n in events.values())
    result.check("CRM repeats ≤ 1 per kill (at-least-once)", crm_repeats <= kills + pg_restarts,
                 f"{len(fub.events)} FUB events, {crm_repeats} repeated over {kills} kills")


def _verify_hubspot(result: Result, hubspot: HubSpotServer, expected_people: set[Person],
                    routed: set[Person], kills: int, pg_restarts: int) -> None:
    """HubSpot: one contact per person; repeated contact writes, notes and tasks (a second
    one for the same contact) at most one per kill, all together."""
    def exact(email: Any, phone: Any) -> Person:
        return (str(email).lower() if email else None, str(phone) if phone else None)

    # a contact is someone's only if its email and phone are exactly that person's: a
    # contact that mixes two people (or has one's email only) is nobody's
    by_exact = {exact(*who): who for who in expected_people}
    person_of = {cid: by_exact.get(exact(c["properties"].get("email"), c["properties"].get("phone")))
                 for cid, c in hubspot.contacts.items()}
    per_person: Counter[Person | None] = Counter(person_of.values())
    crm_twice = [k for k, n in per_person.items() if n > 1 and k is not None]
    strangers = per_person.get(None, 0)
    absent = routed - set(per_person)
    unknown = [exact(c["properties"].get("email"), c["properties"].get("phone"))
               for cid, c in hubspot.contacts.items() if person_of[cid] is None]
    result.check("exactly one CRM contact per person", not crm_twice and not strangers and not absent,
                 f"{len(hubspot.contacts)} HubSpot contacts for {len(routed)} round-robin leads; "
                 f"{len(crm_twice)} people twice, {strangers} unknown {unknown[:2]}, {len(absent)} missing; "
                 f"{len(hubspot.aborted)} requests cut off by a kill (not carried out)")

    # writes of a contact: creates it answered 201 or 409 (found by the request's email or
    # phone), and PATCHes; the first is the create, any more is a repeat
    writes: Counter[str] = Counter()
    cid_of = {exact(c["properties"].get("email"), c["properties"].get("phone")): cid
              for cid, c in hubspot.contacts.items()}
    by_email = {e: cid for (e, _), cid in cid_of.items() if e}
    by_phone = {p: cid for (_, p), cid in cid_of.items() if p}
    for req in hubspot.named("create"):
        if req.status in (201, 409):
            props = (req.body or {}).get("properties") or {}
            email, phone = exact(props.get("email"), props.get("phone"))
            writes[(email and by_email.get(email)) or (phone and by_phone.get(phone)) or "?"] += 1
    for req in hubspot.named("update", 200):
        writes[req.path.rsplit("/", 1)[-1]] += 1
    notes: Counter[str] = Counter(a["to"]["id"] for n in hubspot.notes for a in n["associations"])
    tasks: Counter[str] = Counter(a["to"]["id"] for t in hubspot.tasks for a in t["associations"])
    repeats = {what: sum(n - 1 for n in counts.values())
               for what, counts in (("writes", writes), ("notes", notes), ("tasks", tasks))}
    crm_repeats = sum(repeats.values())
    result.check("CRM repeats ≤ 1 per kill (at-least-once)", crm_repeats <= kills + pg_restarts,
                 f"{sum(writes.values())} contact writes, {len(hubspot.notes)} notes, "
                 f"{len(hubspot.tasks)} tasks; {crm_repeats} repeated ({repeats['writes']} writes, "
                 f"{repeats['notes']} notes, {repeats['tasks']} tasks) over {kills} kills")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--emails", type=int, default=1000)
    ap.add_argument("--kills", type=int, default=20, help="SIGKILLs per replica")
    ap.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--replicas", type=int, choices=(1, 2), default=1)
    ap.add_argument("--restart-postgres", action="store_true")
    ap.add_argument("--imap", choices=("dovecot", "pymap"), default="dovecot")
    ap.add_argument("--crm", choices=("followupboss", "hubspot"), default="followupboss",
                    help="the CRM the routed leads go to")
    ap.add_argument("--max-gap", type=float, default=3.0, help="longest run between kills, seconds")
    ap.add_argument("--settle", type=float, default=300.0, help="seconds to wait for quiescence")
    ap.add_argument("--quiet-for", type=float, default=3.0,
                    help="seconds with nothing left to do that count as quiescence")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the daemons' logs")
    args = ap.parse_args(argv)
    if args.restart_postgres or args.replicas == 2:
        args.db = "postgresql"
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"seed {args.seed}", flush=True)
    result = run(args)
    print(result.table())
    print("PASS" if result.passed else "FAIL")
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
