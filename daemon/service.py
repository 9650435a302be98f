"""The daemon: wires sources, the pipeline worker and periodic jobs, and handles signals.

This module only assembles parts and decides when they run; the work itself lives in
``inbox``, ``pipeline`` and the sources.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from apscheduler.schedulers.background import BackgroundScheduler

from daemon.config import ProviderSettings, Settings, load_settings, locate_error
from daemon.delivery.alerts import Alerts
from daemon.delivery.dispatch import Dispatcher, RetryPolicy, build_notifiers, lead_destinations
from daemon.errors import ConfigError, MailboxError, StorageError
from daemon.intake.imap import MailboxWatcher
from daemon.intake.inbox import DirectoryInbox, accept_many
from daemon.intake.inbox_watch import Completion, InboxWatch
from daemon.lead import RawEmail
from daemon.logs import redact
from daemon.ops.drift import DriftMonitor
from daemon.ops.heartbeat import Beater
from daemon.ops.metrics import Metrics
from daemon.ops.silence import SilenceMonitor
from daemon.pipeline import Processed, Worker
from daemon.pipeline.reload import RulesReloader
from daemon.providers.asking import Asking
from daemon.providers.enrichment import Enriching
from daemon.providers.geocoding import Geocoding
from daemon.providers.model import ChatModel
from daemon.routing.assign import Router
from daemon.routing.decide import Roster
from daemon.routing.flows import load_plan
from storage import mailboxes
from storage.db import Database
from storage.inbound import Stored

if TYPE_CHECKING:
    from fastapi import APIRouter, FastAPI

    from daemon.web.app import WebServer
    from daemon.web.socket_mode import SocketMode

log = logging.getLogger(__name__)

A = TypeVar("A", bound=Asking[Any])

#: how long after SIGTERM/SIGINT a stopping daemon waits for its watchers, in all: a
#: watcher normally stops within half a second, and this leaves room inside the 10 s a
#: container stop allows for the worker's batch in hand and the interpreter's exit
_JOIN_WATCHERS = 5.0


class Service:
    """One running leadpipe: the database, the rules, the worker and the sources."""

    def __init__(self, settings: Settings, *, console: Callable[[Processed], None] | None = None,
                 config_path: str | Path | None = None):
        self.settings = settings
        #: re-read for ``agents:`` when it changes (``reload_agents``)
        self.config_path = Path(config_path) if config_path is not None else None
        self._config_stamp = _stamp(self.config_path)
        self.db = Database(settings.database_url)
        self.db.upgrade()
        # The rules follow edits of the rules folder while the daemon runs (reload_rules);
        # the worker reads self.engine for each email. Alerts go through self.alert.
        self.rules_reloader = RulesReloader(settings.rules_dir, region=settings.default_region,
                                            regex_timeout=settings.regex_timeout,
                                            alert=lambda text: self.alert(text),
                                            model=ChatModel.from_settings(settings.model))
        self.engine = self.rules_reloader.engine
        self.drift = DriftMonitor(lambda text: self.alert(text))
        for e in self.engine.rules.errors:
            log.error("rule file not loaded: %s", e)
        self.stop = threading.Event()
        self._stop_requested: float | None = None  # time.monotonic() of the signal
        # Set when a source stored something, so the worker starts at once instead of
        # at its next poll.
        self.wake = threading.Event()
        # Set when an outbox row was written, so the dispatcher sends it at once.
        self.deliver_wake = threading.Event()
        self.notifiers = build_notifiers(settings)
        slack_on = "slack" in self.notifiers
        self.alerts = Alerts(self.db, to_slack=slack_on and bool(settings.slack.alerts_channel),
                             wake=self.deliver_wake.set)
        self.router = Router.from_settings(self.db, settings, alerts=self.alerts, slack=slack_on,
                                           wake=self.deliver_wake.set)
        d = settings.delivery
        self.dispatcher = Dispatcher(
            self.db, self.notifiers, alerts=self.alerts, lease=d.lease,
            policy=RetryPolicy(max_attempts=d.max_attempts, base=d.backoff_base, cap=d.backoff_cap))
        self._console = console
        # The geocoder and the person enricher, if configured: each asked inline within its
        # budget, else later by its own runner thread (never the dispatcher's), so neither
        # can stall a lead.
        self.geocoding = self._provider(Geocoding, settings.geocoder, "geocoder")
        self.enrichment = self._provider(Enriching, settings.enrichment, "enrichment")
        self.askers: list[Asking[Any]] = [a for a in (self.geocoding, self.enrichment) if a]
        #: set when a lead was stored, so each provider's runner looks for deferred rows
        self.provider_wakes = {a.kind: threading.Event() for a in self.askers}
        self.worker = Worker(self.db, lambda: self.engine, on_processed=self._processed,
                             router=self.router, geocoding=self.geocoding,
                             enrichment=self.enrichment)
        # Metrics (GET /metrics) are fed by hooks where things happen; silence is a job.
        self.metrics = Metrics(self.db)
        self.dispatcher.on_sent = self.metrics.sent
        self.router.on_claim = self.metrics.claimed
        self.silence = SilenceMonitor(self.db, settings.silence, self.alert)
        self.inbox = DirectoryInbox(settings.inbox_dir) if not settings.mailboxes else None
        self.watchers = [MailboxWatcher(m, self.db, store=self._store_and_wake) for m in settings.mailboxes]
        self._threads: dict[str, threading.Thread] = {}
        #: this daemon's row in ``heartbeats``, written while ``run_forever`` runs
        self.heartbeat = Beater(self.db)

    def _provider(self, kind: type[A], settings: ProviderSettings, section: str) -> A | None:
        """The provider ``settings`` configure, or ``None``; a bad provider name or a missing
        key is a ``ConfigError`` naming its line in the config file."""
        try:
            return kind.from_settings(self.db, settings, alerts=self.alerts,
                                      destinations=lead_destinations(self.settings),
                                      wake_dispatcher=self.deliver_wake.set)
        except ConfigError as exc:  # an unknown provider, a key it needs: name the line
            raise locate_error(self.settings, (section,), exc) from exc

    def _processed(self, result: Processed) -> None:
        # After the commit: the outbox rows it wrote are visible to the dispatcher now.
        self.deliver_wake.set()
        for wake in self.provider_wakes.values():
            wake.set()
        self.drift.observe(result)
        self.metrics.processed(result)
        if self._console is not None:
            self._console(result)

    def alert(self, text: str, *, key: str | None = None) -> None:
        """Tell people: logged, and posted to the Slack alerts channel through the outbox."""
        alerts: Alerts | None = getattr(self, "alerts", None)
        if alerts is None:  # called while __init__ is still building the parts
            log.error("ALERT %s", redact(text))
            return
        alerts(text, key=key)

    def reload_agents(self) -> bool:
        """Put the configuration file's ``agents:`` in force when the file changed (other
        keys take effect on restart). A file that no longer loads keeps the roster in force
        and alerts. True when the roster changed."""
        stamp = _stamp(self.config_path)
        if self.config_path is None or stamp == self._config_stamp:
            return False
        self._config_stamp = stamp
        try:
            fresh = load_settings(self.config_path)
        except ConfigError as exc:
            self.alert(f"{self.config_path} changed but does not load; the agents in force are "
                       f"kept: {exc}")
            return False
        try:
            plan = load_plan(fresh)  # the teams and flows name the agents: reloaded with them
        except ConfigError as exc:
            self.alert(f"{self.config_path} changed but its routing does not load; the agents, "
                       f"teams and flows in force are kept: {exc}")
            return False
        roster = Roster.of(fresh.agents)
        if roster == self.router.roster and plan == self.router.plan:
            return False
        self.router.roster, self.router.plan = roster, plan
        log.info("agents reloaded from %s: %s", self.config_path,
                 ", ".join(f"{a.name}{'' if a.active else ' (inactive)'}" for a in roster.agents) or "none")
        return True

    def reload_rules(self) -> None:
        """The rules job (every second): put edited rule files in force, a file that no
        longer loads keeping its last good version and alerting (``RulesReloader``); and
        send the drift alerts their rate limit held back (``DriftMonitor``)."""
        try:
            engine = self.rules_reloader.poll()
            if engine is not None:
                self.engine = engine
            self.drift.flush()
        except Exception:  # isolation boundary: a scheduled job logs and runs again
            log.exception("the rules reload job failed")

    def expire_offers(self) -> None:
        """The claim-timeout job: offers past their deadline fall back to round robin, and
        leads not accepted by their deadline move to the team's next agent."""
        try:
            self.router.expire_offers()
            self.router.expire_deadlines()
        except Exception as exc:  # isolation boundary: a scheduled job logs and alerts
            log.exception("the claim-timeout job failed")
            try:
                self.alert(f"the claim-timeout job failed: {type(exc).__name__}: {exc}",
                           key=f"claim_timeouts:{int(time.time() // 600)}")
            except Exception:  # isolation boundary: the database itself may be what failed
                log.exception("the alert about it failed too")

    def _reload_agents_job(self) -> None:
        try:
            self.reload_agents()
        except Exception:  # isolation boundary: a scheduled job logs and carries on
            log.exception("reloading the agents failed")

    def _store_and_wake(self, db: Database, raws: Sequence[RawEmail]) -> list[Stored]:
        stored = accept_many(db, raws)
        self.wake.set()
        return stored

    def run_once(self) -> list[Processed]:
        """Take in what is waiting, process every pending email, and return the outcomes."""
        if self.inbox is not None:
            log.info("reading the directory inbox %s", self.inbox.root.resolve())
            self.inbox.collect(self.db)
        for watcher in self.watchers:
            try:
                taken = watcher.run_once()
                log.info("mailbox %s: %d new emails taken in", watcher.settings.name, taken)
            except MailboxError as exc:
                log.error("%s", exc)
        results: list[Processed] = []
        while batch := self.worker.run_pending():
            results.extend(batch)
        self.router.expire_offers()
        self.router.expire_deadlines()
        for asker in self.askers:
            # bounded by one look-up's timeout: a silent provider must not hold `run --once`;
            # what is left is looked up by the next run
            asker.drain(deadline=time.monotonic() + asker.timeout)
        sent = self.dispatcher.drain()
        if sent:
            log.info("%d deliveries attempted: %d delivered", len(sent),
                     sum(1 for x in sent if x.fate == "delivered"))
        return results

    def run_forever(self) -> None:
        """Run until SIGTERM or SIGINT; the email in hand is finished before exiting."""
        self._install_signals()
        where = self.inbox.root.resolve() if self.inbox else ", ".join(m.name for m in self.settings.mailboxes)
        log.info("leadpipe running: database %s, watching %s", self.db.describe(), where)
        interval = self.settings.poll_interval.total_seconds()
        self._threads = {w.settings.name: self._start(w) for w in self.watchers}
        inbox, inbox_watch = self._watch_inbox()
        self.heartbeat.start()
        scheduler = BackgroundScheduler(timezone=UTC)
        scheduler.add_job(self.heartbeat.beat, "interval", id="heartbeat", max_instances=1,
                          coalesce=True, seconds=self.settings.health.heartbeat_interval.total_seconds())
        # Periodic work runs beside the loop: a watcher that died or hangs while still
        # looking alive is the classic silent failure of IMAP watchers.
        scheduler.add_job(self.check_watchers, "interval", seconds=30, id="watchers",
                          max_instances=1, coalesce=True)
        scheduler.add_job(self._reload_agents_job, "interval", seconds=2, id="agents",
                          max_instances=1, coalesce=True)
        scheduler.add_job(self.reload_rules, "interval", seconds=1, id="rules",
                          max_instances=1, coalesce=True)
        scheduler.add_job(self.expire_offers, "interval", id="claim_timeouts",
                          seconds=self.settings.routing.timeout_check_interval.total_seconds(),
                          max_instances=1, coalesce=True)
        if self.settings.silence.enabled:
            scheduler.add_job(self.check_silence, "interval", id="silence",
                              seconds=self.settings.silence.check_interval.total_seconds(),
                              max_instances=1, coalesce=True)
        scheduler.start()
        slack_side = self._start_slack_side()
        dispatcher = threading.Thread(target=self.dispatcher.run, args=(self.stop, self.deliver_wake),
                                      name="dispatcher", daemon=True)
        dispatcher.start()
        runners = [threading.Thread(target=a.run, args=(self.stop, self.provider_wakes[a.kind]),
                                    name=a.words.doing, daemon=True) for a in self.askers]
        for runner in runners:
            runner.start()
        while not self.stop.is_set():
            try:
                if inbox is not None:
                    inbox.collect(self.db)
                while not self.stop.is_set() and self.worker.run_pending(limit=20, stop=self.stop.is_set):
                    pass
            except StorageError as exc:
                log.error("database unavailable, retrying in %.0fs: %s", interval, exc)
            except Exception:  # isolation boundary: one loop's failure is logged and retried
                log.exception("the processing loop failed; retrying in %.0fs", interval)
            self.wake.wait(interval)
            self.wake.clear()
        scheduler.shutdown(wait=False)
        if inbox_watch is not None:
            inbox_watch.stop()
        self.heartbeat.stop()
        self.deliver_wake.set()
        for part in slack_side:
            part.stop()
        dispatcher.join(timeout=2)
        for wake in self.provider_wakes.values():
            wake.set()
        for runner in runners:
            runner.join(timeout=2)  # daemon=True: a call in flight is retried from its row
        # One deadline for all watchers, counted from the signal: the worker may have
        # spent some of the 10 s finishing its batch.
        deadline = (self._stop_requested or time.monotonic()) + _JOIN_WATCHERS
        for t in self._threads.values():
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        late = [t.name for t in self._threads.values() if t.is_alive()]
        if late:
            log.warning("%s still busy (e.g. waiting for a silent server); exiting without them: "
                        "what they stored is kept and the rest is fetched again on the next start",
                        ", ".join(late))
        log.info("leadpipe stopped")

    def _watch_inbox(self) -> tuple[DirectoryInbox | None, InboxWatch | None]:
        """The directory inbox as the running daemon reads it: a file only once it is
        complete (daemon/intake/inbox_watch.py), woken at once by inotify where it can be."""
        if self.inbox is None:
            return None, None
        completion = Completion(self.settings.inbox_settle.total_seconds())
        watch = InboxWatch(self.inbox.root, completion, on_ready=self.wake.set)
        return dataclasses.replace(self.inbox, completion=completion), (watch if watch.start() else None)

    def web_app(self) -> FastAPI:
        """The web server's app: Slack interactivity, and the admin pages when ``admin:``
        has a user or a token (they read the rules in force, and route replayed leads)."""
        from daemon.web.app import make_app

        admin = None
        if self.settings.admin.enabled:
            from daemon.web.admin.pages import admin_router
            from daemon.web.admin.site import Admin

            admin = admin_router(Admin(self.db, self.settings, engine=lambda: self.engine,
                                       router=self.router, wake=self.deliver_wake.set))
        return make_app(self.router, self.settings.slack.signing_secret, admin=admin,
                        routers=self.web_routers())

    def web_routers(self) -> list[APIRouter]:
        """``POST /webhooks/{source}``, ``GET /readyz`` and ``GET /metrics``."""
        from daemon.intake.webhooks import Webhooks, webhook_router
        from daemon.ops.health import health_router
        from daemon.ops.metrics import metrics_router

        hooks = Webhooks(self.db, lambda: self.engine, self.worker, self.settings.webhooks,
                         metrics=self.metrics)
        return [webhook_router(hooks), health_router(self.db, self.settings),
                metrics_router(self.metrics)]

    def check_silence(self) -> None:
        """The source-silence job (daemon/ops/silence.py)."""
        try:
            self.silence.check()
        except Exception:  # isolation boundary: a scheduled job logs and runs again
            log.exception("the source-silence check failed")

    def _start_slack_side(self) -> list[WebServer | SocketMode]:
        """The ways Claim clicks come back: the web server (``POST /slack/actions``, when
        a signing secret is set) and Socket Mode (when an app-level token is set)."""
        from daemon.web.app import WebServer
        from daemon.web.socket_mode import SocketMode

        parts: list[WebServer | SocketMode] = []
        slack = self.settings.slack
        web = self.settings.web
        if web.enabled:  # Slack interactivity, webhooks, health, metrics, admin pages
            parts.append(WebServer(self.web_app(), web.host, web.port).start())
        if slack.app_token:
            socket_mode = SocketMode(self.router, app_token=slack.app_token, base_url=slack.base_url)
            try:
                socket_mode.start()
                parts.append(socket_mode)
            except Exception as exc:  # isolation boundary: the daemon runs on without it
                self.alert(f"Slack Socket Mode could not connect: {exc}")
        if self.router.offer_hot and not parts:
            log.warning("hot leads are offered in Slack, but no click can come back: set "
                        "slack.signing_secret (and web.enabled) or slack.app_token; until then "
                        "every offer falls back to round robin after %s", slack.claim_timeout)
        if not self.router.roster.agents:
            log.warning("no agents configured: leads are stored but not routed")
        return parts

    def _start(self, watcher: MailboxWatcher) -> threading.Thread:
        # daemon=True: a watcher blocked in a network call (a server that accepted the
        # connection but never answers holds it for the whole `timeout`) must not keep the
        # process alive after SIGTERM. Leaving it mid-batch is safe: a batch is marked on
        # the server only after it is committed, so the next start fetches it again.
        t = threading.Thread(target=watcher.run, args=(self.stop,), name=f"mailbox-{watcher.settings.name}",
                             daemon=True)
        t.start()
        return t

    def check_watchers(self) -> list[str]:
        """Restart a watcher thread that died, and alert on a mailbox not reached for
        longer than its ``alert_after`` that its watcher has not reported as down.
        Returns the alerts it raised."""
        alerts: list[str] = []
        now = datetime.now(UTC)
        with self.db.session() as s:
            states = {(x.mailbox, x.folder): x for x in mailboxes.all_states(s)}
        for w in self.watchers:
            m = w.settings
            thread = self._threads.get(m.name)
            if thread is not None and not thread.is_alive() and not self.stop.is_set():
                alerts.append(f"mailbox {m.name}: its watcher stopped unexpectedly; restarted")
                self._threads[m.name] = self._start(w)
            state = states.get((m.name, m.folder))
            contact = state.last_contact_at if state else None
            silent = contact is None or now - contact > m.alert_after
            if silent and state is not None and state.down_since is None and state.alerted_at is None:
                # The watcher reports the outages it sees itself; this is the one it cannot see.
                since = "never" if contact is None else f"{int((now - contact).total_seconds())}s ago"
                alerts.append(f"mailbox {m.name}: no contact with the server since {since} "
                              f"(alert_after {m.alert_after}), and no error reported")
                with self.db.session() as s:
                    mailboxes.record_alert(s, m.name, m.folder, now)
        for a in alerts:
            self.alert(a)
        return alerts

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def handle(signum: int, _frame: Any) -> None:
            log.info("received %s; finishing the email in hand", signal.Signals(signum).name)
            if self._stop_requested is None:
                self._stop_requested = time.monotonic()
            self.stop.set()
            self.wake.set()
            self.deliver_wake.set()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)


def _stamp(path: Path | None) -> tuple[float, int] | None:
    if path is None:
        return None
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime, st.st_size)


def health(settings: Settings) -> dict[str, Any]:
    """What ``leadpipe status`` shows: the readiness checks of ``GET /readyz`` (daemon/ops/health.py)."""
    from daemon.ops.health import status

    return status(settings)
