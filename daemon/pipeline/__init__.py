"""parse → normalize → score, and the worker that runs it over stored emails.

``parse_email`` is pure: bytes and rules in, a ``Lead``, ``DeadLetter`` or ``Ignored``
out. ``Worker`` takes pending rows from ``inbound_emails``, runs ``parse_email`` and
stores the outcome in the same transaction that marks the email done, so a crash at
any point leaves the email pending and it is simply processed again.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import OperationalError

from daemon.errors import RuleError, StorageError
from daemon.lead import (
    DIRECT_SOURCE,
    UNMATCHED,
    DeadLetter,
    DeadLetterReason,
    Ignored,
    Lead,
    Origin,
    ParseOutcome,
    RawEmail,
)
from daemon.logs import redact
from daemon.qualifying import normalize
from daemon.qualifying.scoring import Scoring, load_scoring
from daemon.reading import reader, triage
from daemon.reading.mappings import MappingSet, load_mappings, parse_stored_webhook
from daemon.reading.message import Message, UnreadableEmail
from daemon.reading.parsing import (
    DRIFT_MARK,
    Extraction,
    RuleTimeout,
    extract,
    find_rule,
    near_matches,
    timeout_seconds,
)
from daemon.reading.rules import LABELS_FILE, Rule, RuleSet, load_rules, refused_files
from daemon.reading.senders import FREEMAIL, Parties, registrable, source_of
from daemon.reading.vocabulary import Vocabulary, load_vocabulary
from storage import dead_letters, inbound, leads
from storage.db import Database

if TYPE_CHECKING:
    from daemon.routing.assign import Router

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Engine:
    """Everything ``parse_email`` needs: the rules, the scoring, the label vocabulary and
    two settings."""

    rules: RuleSet
    scoring: Scoring
    region: str = "US"
    regex_timeout: timedelta = timedelta(seconds=1)
    labels: Vocabulary = field(default_factory=Vocabulary)
    #: the webhook mappings (``rules/webhooks/``); their errors are also in ``rules.errors``
    webhooks: MappingSet = field(default_factory=MappingSet)

    @classmethod
    def load(cls, rules_dir: Path, *, region: str = "US",
             regex_timeout: timedelta = timedelta(seconds=1)) -> Engine:
        """Load rules, scoring and the label vocabulary from ``rules_dir``. Broken rule
        files and a broken ``labels.yaml`` are in ``rules.errors`` (without the vocabulary,
        the reader reads without its words); a broken scoring file raises
        ``RuleError``."""
        rules = load_rules(rules_dir)
        try:
            labels = load_vocabulary(Path(rules_dir) / LABELS_FILE)
        except RuleError as exc:
            labels = Vocabulary()
            rules = dataclasses.replace(rules, errors=(*rules.errors, exc, *exc.also))
        webhooks = load_mappings(rules_dir)
        if webhooks.errors:
            rules = dataclasses.replace(rules, errors=(*rules.errors, *webhooks.errors))
        return cls(
            rules=rules,
            scoring=load_scoring(Path(rules_dir) / "scoring.yaml"),
            region=region,
            regex_timeout=regex_timeout,
            labels=labels,
            webhooks=webhooks,
        )


def parse_stored(raw: RawEmail, engine: Engine) -> ParseOutcome:
    """The outcome of one stored inbound row: a webhook body goes through its source's
    mapping (daemon/reading/mappings.py), anything else is an email. Never raises."""
    if raw.origin is Origin.WEBHOOK:
        return parse_stored_webhook(raw, engine)
    return parse_email(raw.data, engine, received_at=raw.received_at)


def parse_email(data: bytes, engine: Engine, *, received_at: Any = None) -> ParseOutcome:
    """Turn one raw email into a lead, a dead letter or an ignored verdict. Never raises.

    An unexpected failure is a ``parser_error`` dead letter naming the rule that was
    running (``zillow v3``), if one had been chosen, so ``dlq replay --source`` finds it.
    """
    running = _Running()
    try:
        return _parse(data, engine, received_at, running)
    except Exception as exc:  # isolation boundary: one email's failure is its dead letter
        log.exception("parser error")
        return DeadLetter(DeadLetterReason.PARSER_ERROR, f"the parser failed: {type(exc).__name__}: {exc}",
                          rule=running.rule.name if running.rule is not None else None)


@dataclass
class _Running:
    """The rule ``_parse`` is running, if any: what a ``parser_error`` dead letter names."""

    rule: Rule | None = None


def _parse(data: bytes, engine: Engine, received_at: Any, running: _Running) -> ParseOutcome:
    if not data.strip():
        return DeadLetter(DeadLetterReason.EMPTY_BODY, "the email is empty (0 bytes of content)")
    try:
        msg = Message(data)
    except UnreadableEmail as exc:
        return DeadLetter(DeadLetterReason.UNREADABLE_EMAIL, f"the email cannot be read: {exc}")
    if not msg.has_headers():
        return DeadLetter(DeadLetterReason.UNREADABLE_EMAIL,
                          f"the data is not an email: no email headers (From, Subject, Date, …) in its "
                          f"{len(data):,} bytes")
    timeout = timeout_seconds(engine.regex_timeout)
    outer = msg
    originals = [msg]  # the email, then the originals it forwards
    by_sender: Rule | None = None
    try:
        rule = running.rule = find_rule(msg, engine.rules, timeout)
        if rule is None:
            # A brokerage forwarding "as attachment": the lead is the attached original.
            originals += [m for m in (*msg.attached_messages(), msg.inline_forward()) if m is not None]
            while len(originals) < 5 and (deeper := originals[-1].inline_forward()) is not None:
                originals.append(deeper)  # forwarded twice: the innermost is the lead
            for inner in originals[1:]:
                rule = running.rule = find_rule(inner, engine.rules, timeout)
                if rule is not None:
                    msg = inner
                    break
        if rule is None:
            salvaged = _near_match(originals, engine, outer, received_at, running)
            if salvaged is not None:
                return salvaged
            by_sender = _sender_rule(originals, engine)
    except RuleTimeout as exc:
        return DeadLetter(DeadLetterReason.RULE_TIMEOUT, str(exc), rule=exc.rule)
    if rule is None:
        return _read_without_rule(originals, engine, outer, received_at, running, by_sender)
    try:
        found = extract(msg, rule, timeout, labels=engine.labels, region=engine.region,
                        parties=_parties(msg, originals))
    except RuleTimeout as exc:
        return DeadLetter(DeadLetterReason.RULE_TIMEOUT, str(exc), rule=rule.name)
    return _finish(found, msg, outer, engine, received_at)


def _parties(msg: Message, originals: list[Message]) -> Parties:
    """Who sent and received ``msg``; the emails around a forwarded original add their people."""
    return Parties.of(msg, *(m for m in originals if m is not msg))


def _sender_rule(originals: list[Message], engine: Engine) -> Rule | None:
    """The rule whose sender pattern matches (the original of a forward first), when its
    subject or body condition no longer does: the provider changed its template."""
    for msg in [*originals[1:], originals[0]]:
        for rule in engine.rules:
            m = rule.match
            if m.from_ and (m.subject or m.body) and _names_its_sender(m.from_) and rule.sender_matches(
                    msg.from_address or ""):
                return rule
    return None


def _names_its_sender(globs: list[str]) -> bool:
    """Whether a rule's ``from`` names a sender of its own (``*@zillow.com``), not anyone
    (``*``, ``*@gmail.com``): only such a rule may claim an email by its sender alone."""
    for glob in globs:
        domain = glob.rpartition("@")[2].lower()
        if not domain or "*" in registrable(domain.replace("*.", "")) or registrable(domain) in FREEMAIL:
            return False
    return True


def _finish(found: Extraction, msg: Message, outer: Message, engine: Engine, received_at: Any,
            ) -> Lead | DeadLetter:
    """Normalize what a rule found, check its required fields, and score the lead."""
    rule = found.rule
    lead = normalize.normalize_fields(
        found.fields,
        source=rule.source,
        rule_version=rule.version,
        # the email we received, not the original inside a forward
        message_id=outer.message_id,
        received_at=outer.date or received_at,
        region=engine.region,
        warnings=found.warnings,
    )
    problem = _missing_required(rule, lead, found, msg)
    if problem is not None:
        return problem
    return engine.scoring.score(lead)


def _near_match(originals: list[Message], engine: Engine, outer: Message, received_at: Any,
                running: _Running) -> Lead | None:
    """The lead of a rule that matches on sender and subject but not body (or sender and
    body but not subject), if it extracts every required field: the provider probably
    changed its template. Anything less is not trusted. Raises ``RuleTimeout``; while a
    near match runs, it is ``running.rule``."""
    timeout = timeout_seconds(engine.regex_timeout)
    for msg in originals:
        for near in near_matches(msg, engine.rules, timeout):
            running.rule = near.rule
            parties = _parties(msg, originals)
            reading = reader.read(msg, engine.labels, engine.region, parties=parties)
            if triage.known_sender(msg, reading).kind == "ignored":
                running.rule = None
                continue  # the sender's newsletter, not a lead in a changed template
            found = extract(msg, near.rule, timeout, labels=engine.labels, region=engine.region,
                            parties=parties, reading=reading)
            found = dataclasses.replace(found, warnings=(near.warning, *found.warnings))
            outcome = _finish(found, msg, outer, engine, received_at)
            if isinstance(outcome, Lead):
                return outcome
            running.rule = None  # not trusted: no rule is chosen
    return None


def _read_without_rule(originals: list[Message], engine: Engine, outer: Message, received_at: Any,
                       running: _Running, by_sender: Rule | None) -> ParseOutcome:
    """An email no rule recognises, read by the reader (``daemon/reading/reader.py``) and judged by
    ``daemon/reading/triage.py``: a lead, ``ignored`` (not a lead, with the kind of mail it is), or a
    dead letter when it looks like a lead and still cannot be read."""
    hard = triage.by_headers(outer)
    if hard is not None:
        return Ignored(hard)
    for msg in originals:
        refused = next((r for r in refused_files(engine.rules) if r.matches(msg.from_address or "")), None)
        if refused is not None:
            # the rule written for this sender does not load: the email waits for its fix
            source = refused.source or source_of(msg.from_address)
            return DeadLetter(
                DeadLetterReason.NO_MATCHING_RULE,
                f"the rule for this sender ({msg.from_address}), {refused.file}, does not load: {refused.error}. "
                f"Fix it (leadpipe rules check), then leadpipe dlq replay --source {source}",
                source=source)
    if all(m.is_empty() for m in originals):
        return DeadLetter(DeadLetterReason.EMPTY_BODY, "the email has no text and no rule recognises its sender")
    # a forward: the original inside decides; the note around it is the forwarder's
    msg = originals[-1]
    parties = _parties(msg, originals)
    reading = reader.read(msg, engine.labels, engine.region, parties=parties)
    # a sender a rule knows: its lead unless plainly not one; anyone else: judged on evidence
    verdict = triage.known_sender(msg, reading) if by_sender is not None else triage.judge(msg, reading, parties)
    if verdict.kind == "ignored":
        return Ignored(verdict.reason)
    source = by_sender.source if by_sender is not None else (
        source_of(msg.from_address) if not parties.from_is_prospect else DIRECT_SOURCE) or UNMATCHED
    sender = msg.from_address or "no sender"
    if verdict.kind == "dead":
        seen = reader.describe(reading.chosen.values()) or "nothing"
        return DeadLetter(
            DeadLetterReason.NO_MATCHING_RULE,
            f"no rule matches this email (from {sender}, subject {msg.subject or '(none)'!r}) and {verdict.reason}; "
            f"the reader found: {seen}. Draft a rule from it: leadpipe rules new {source} --dlq ID",
            rule=by_sender.name if by_sender is not None else None,
            fields_found=dict(reading.fields),
            source=source,
        )
    if by_sender is not None:
        running.rule = by_sender
        timeout = timeout_seconds(engine.regex_timeout)
        found = extract(msg, by_sender, timeout, labels=engine.labels, region=engine.region, parties=parties,
                        reading=reading)
        m = by_sender.match
        what = " and ".join(k for k, v in (("subject", m.subject), ("body", m.body)) if v)
        warning = (f"{by_sender.name}: matched on sender only; its {what} conditions no longer match "
                   f"(subject {msg.subject or ''!r}) {DRIFT_MARK}")
        found = dataclasses.replace(found, warnings=(warning, *found.warnings))
        outcome = _finish(found, msg, outer, engine, received_at)
        if isinstance(outcome, Lead):
            return outcome
        fields, version, first = {**reading.fields, **found.fields}, by_sender.version, warning
    else:
        fields, version = dict(reading.fields), f"reader-{engine.labels.version}"
        first = (f"{reader.NEW_SENDER} {sender} (subject {msg.subject or '(none)'!r}); read by the reader. "
                 f"Draft its rule: leadpipe rules new {source} --lead ID")
    notes = [first]
    if not any(n in fields for n in ("full_name", "first_name", "last_name")):
        notes.append("reader: no name found")
    intent = normalize.parse_intent(" ".join(filter(None, (msg.subject, fields.get("message")))))
    if intent is not None and "intent" not in fields:
        fields["intent"] = intent
    lead = normalize.normalize_fields(
        fields, source=source, rule_version=version, message_id=outer.message_id,
        received_at=outer.date or received_at, region=engine.region,
        warnings=(*notes, *reading.warnings))
    if lead.email is None and lead.phone is None:
        return DeadLetter(DeadLetterReason.MISSING_REQUIRED_FIELD,
                          f"the reader found a contact that does not normalize: {reader.describe(reading.chosen.values())}",
                          rule=by_sender.name if by_sender is not None else None, fields_found=dict(fields))
    return engine.scoring.score(lead)


def _value(lead: Lead, name: str) -> Any:
    p = lead.property
    return {
        "address": p.address, "city": p.city, "state": p.state, "postal_code": p.postal_code,
        "price": p.price, "mls_id": p.mls_id, "url": p.url,
        "budget": lead.budget_min if lead.budget_min is not None else lead.budget_max,
    }.get(name, getattr(lead, name, None))


def _missing_required(rule: Rule, lead: Lead, found: Extraction, msg: Message) -> DeadLetter | None:
    missing: list[str] = [n for n in rule.required if _value(lead, n) is None]
    for group in rule.require_any:
        if all(_value(lead, n) is None for n in group):
            missing.append(" or ".join(group))
    if not missing:
        return None
    tried = {t.field: t.tried for t in found.missing}
    parts = []
    for name in missing:
        sentence = f"required field `{name}` not found"
        for single in name.split(" or "):
            if single in found.fields:
                # it was extracted but normalizing refused it (bad phone, bad email)
                sentence += f"; `{single}` was {found.fields[single]!r} but is not valid"
            elif single in tried:
                sentence += f"; {single}: tried {'; '.join(tried[single])}"
        parts.append(sentence)
    reason = DeadLetterReason.EMPTY_BODY if msg.is_empty() else DeadLetterReason.MISSING_REQUIRED_FIELD
    detail = f"{rule.name}: " + ". ".join(parts)
    if reason is DeadLetterReason.EMPTY_BODY:
        detail = f"{rule.name}: the email has no text. " + ". ".join(parts)
    return DeadLetter(
        reason,
        detail,
        rule=rule.name,
        fields_found=dict(found.fields),
        fields_missing=tuple(missing),
    )


@dataclass(frozen=True)
class Processed:
    """What the worker did with one stored email."""

    inbound_id: int
    outcome: ParseOutcome
    lead_id: int | None = None
    dead_letter_id: int | None = None
    #: where the email came from (``Origin``'s value) and when it arrived; set by the Worker
    origin: str | None = None
    arrived_at: datetime | None = None


class Worker:
    """Runs the pipeline over pending stored emails and stores each outcome."""

    def __init__(self, db: Database, engine: Callable[[], Engine],
                 on_processed: Callable[[Processed], None] | None = None,
                 router: Router | None = None):
        self.db = db
        self._engine = engine  # a callable, so reloaded rules take effect on the next email
        self.on_processed = on_processed
        #: routes each new lead in the transaction that stores it; None: leads stay ``new``
        self.router = router

    def run_pending(self, limit: int = 100, *, stop: Callable[[], bool] | None = None) -> list[Processed]:
        """Process up to ``limit`` pending emails, oldest first; between emails, return
        early once ``stop()`` is true (a shutdown finishes only the email in hand)."""
        done = []
        with self.db.session() as s:
            ids = inbound.claim_pending(s, limit)
        for inbound_id in ids:
            if stop is not None and stop():
                break
            result = self.process(inbound_id)
            if result is not None:
                done.append(result)
        return done

    def process(self, inbound_id: int) -> Processed | None:
        """Parse one stored email and store the outcome; ``None`` if another worker has it.

        Raises ``StorageError`` only when the database cannot be reached; any other
        failure to store this email's outcome makes it a dead letter, so one bad email can
        never be retried forever or stop the daemon.
        """
        engine = self._engine()
        raw: RawEmail | None = None
        parsed: ParseOutcome | None = None
        try:
            if self.db.is_sqlite:
                # SQLite's one write lock is taken at BEGIN: parsing inside that
                # transaction held it nearly all the time under a backlog, and the
                # dispatcher (same lock) fell minutes behind. The stored bytes never
                # change, so parse first and only store under the lock.
                with self.db.session() as s:
                    early = inbound.lock_one(s, inbound_id)
                if early is None:
                    return None
                parsed = parse_stored(early, engine)
            with self.db.session() as s:
                raw = inbound.lock_one(s, inbound_id)
                if raw is None:
                    return None
                outcome = parsed if parsed is not None else parse_stored(raw, engine)
                result = store_outcome(s, inbound_id, raw, outcome, router=self.router)
        except OperationalError as exc:
            raise StorageError(f"cannot reach the database: {exc.orig or exc}") from exc
        except StorageError:
            raise
        except Exception as exc:  # isolation boundary: this email's outcome would not store or route
            log.exception("email #%s: storing its outcome failed", inbound_id)
            result = self._store_failure(inbound_id, exc)
        if raw is not None:
            result = dataclasses.replace(result, origin=raw.origin.value, arrived_at=raw.received_at)
        _log(result)
        if self.on_processed is not None:
            try:
                self.on_processed(result)
            except Exception:  # isolation boundary: a reporting hook must not undo the work
                log.exception("email #%s: the on_processed hook failed", inbound_id)
        return result

    def _store_failure(self, inbound_id: int, exc: Exception) -> Processed:
        dead = DeadLetter(
            DeadLetterReason.PARSER_ERROR,
            f"the outcome of this email could not be stored: {type(exc).__name__}: "
            f"{str(getattr(exc, 'orig', None) or exc).splitlines()[0][:300]}",
        )
        with self.db.session() as s:
            dl_id = dead_letters.insert(s, dead, inbound_email_id=inbound_id, source_hint=None)
            inbound.mark(s, inbound_id, "dead")
        return Processed(inbound_id, dead, dead_letter_id=dl_id)


def store_outcome(s: Any, inbound_id: int, raw: RawEmail, outcome: ParseOutcome,
                  router: Router | None = None) -> Processed:
    """Write the lead, dead letter or ignored mark for ``inbound_id`` in session ``s``.

    With a ``router``, a lead is routed (its round-robin turn taken, its outbox rows
    written) and a dead letter alerted in the same transaction: all of it commits with the
    email marked done, or none of it does.
    """
    if isinstance(outcome, Lead):
        lead_id = leads.insert(s, outcome, inbound_email_id=inbound_id)
        if router is not None:
            router.route(s, lead_id, outcome)
        inbound.mark(s, inbound_id, "done")
        return Processed(inbound_id, outcome, lead_id=lead_id)
    if isinstance(outcome, Ignored):
        inbound.mark(s, inbound_id, "ignored", ignored_reason=outcome.reason)
        return Processed(inbound_id, outcome)
    dl_id = dead_letters.insert(s, outcome, inbound_email_id=inbound_id, source_hint=outcome.source_hint)
    if router is not None:
        router.dead_letter(s, dl_id, outcome)
    inbound.mark(s, inbound_id, "dead")
    return Processed(inbound_id, outcome, dead_letter_id=dl_id)


def _log(result: Processed) -> None:
    o = result.outcome
    if isinstance(o, Lead):
        log.info("email #%s → lead #%s (%s, %s, score %s)", result.inbound_id, result.lead_id,
                 o.source, o.tier, o.score)
    elif isinstance(o, Ignored):
        log.info("email #%s ignored: %s", result.inbound_id, o.reason)
    else:
        log.warning("email #%s → dead letter #%s: %s: %s", result.inbound_id, result.dead_letter_id,
                    o.reason.value, redact(o.detail))


@dataclass(frozen=True)
class Replayed:
    """The result of replaying one dead letter against the current rules."""

    dead_letter_id: int
    outcome: ParseOutcome
    lead_id: int | None = None
    already_resolved: bool = False


def replay(db: Database, engine: Engine, dead_letter_id: int,
           router: Router | None = None) -> Replayed | None:
    """Re-run one dead letter's email through the pipeline with today's rules.

    A lead resolves the dead letter and links it; a second replay finds the lead that
    exists and creates no other. Nothing is deleted. ``None`` if there is no such id.
    """
    with db.session() as s:
        stored = dead_letters.get(s, dead_letter_id)
        if stored is None:
            return None
        existing = leads.by_inbound(s, stored.inbound_email_id)
        if existing is not None:
            if stored.status == "open":
                dead_letters.record_replay(s, dead_letter_id, resolved_lead_id=existing.id)
            return Replayed(dead_letter_id, existing.lead, existing.id, already_resolved=True)
        raw = inbound.get_raw(s, stored.inbound_email_id)
        assert raw is not None  # foreign key
        outcome = parse_stored(raw, engine)
        if isinstance(outcome, Lead):
            lead_id = leads.insert(s, outcome, inbound_email_id=stored.inbound_email_id)
            if router is not None:
                router.route(s, lead_id, outcome)
            inbound.mark(s, stored.inbound_email_id, "done")
            dead_letters.record_replay(s, dead_letter_id, resolved_lead_id=lead_id)
            log.info("dead letter #%s replayed → lead #%s", dead_letter_id, lead_id)
            return Replayed(dead_letter_id, outcome, lead_id)
        if isinstance(outcome, Ignored):
            inbound.mark(s, stored.inbound_email_id, "ignored", ignored_reason=outcome.reason)
            dead_letters.record_replay(s, dead_letter_id, resolved_lead_id=None, status="ignored")
            return Replayed(dead_letter_id, outcome)
        hint = outcome.source_hint
        dead_letters.update_reason(s, dead_letter_id, outcome, hint)
        dead_letters.record_replay(s, dead_letter_id, resolved_lead_id=None)
        return Replayed(dead_letter_id, outcome)
