"""read → qualify: one stored email or webhook body to a lead, a dead letter or an
ignored verdict.

``parse_email`` and ``parse_webhook`` are pure: bytes and the engine in, an outcome out;
they never raise. A rule is the most trusted reading (``daemon.reading.parsing``); an email
no rule recognises is read by the reader and judged by triage (``daemon.reading``); what is
found is normalized and scored (``daemon.qualifying``) and checked against the fields its
source requires.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from daemon.errors import DeliveryError
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
from daemon.pipeline.engine import Engine
from daemon.qualifying import inquiry, normalize
from daemon.reading import grounding, reader, triage
from daemon.reading.mappings import WEBHOOKS_DIR, WebhookMapping, read_webhook
from daemon.reading.mappings import source_of as webhook_source
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
from daemon.reading.rules import Rule, refused_files
from daemon.reading.senders import FREEMAIL, Parties, registrable, source_of
from daemon.reading.sources import SourceFile

log = logging.getLogger(__name__)


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
    problem = missing_required(rule, lead, found.fields, {t.field: t.tried for t in found.missing},
                               empty=msg.is_empty())
    if problem is not None:
        return problem
    return qualified(lead, engine, context=msg.subject)


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
        return _ask_model(msg, engine, outer, received_at, source, DeadLetter(
            DeadLetterReason.NO_MATCHING_RULE,
            f"no rule matches this email (from {sender}, subject {msg.subject or '(none)'!r}) and {verdict.reason}; "
            f"the reader found: {seen}. Draft a rule from it: leadpipe rules new {source} --dlq ID",
            rule=by_sender.name if by_sender is not None else None,
            fields_found=dict(reading.fields),
            source=source,
        ))
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
    lead = normalize.normalize_fields(
        fields, source=source, rule_version=version, message_id=outer.message_id,
        received_at=outer.date or received_at, region=engine.region,
        warnings=(*notes, *reading.warnings))
    if lead.email is None and lead.phone is None:
        return _ask_model(msg, engine, outer, received_at, source, DeadLetter(
            DeadLetterReason.MISSING_REQUIRED_FIELD,
            f"the reader found a contact that does not normalize: {reader.describe(reading.chosen.values())}",
            rule=by_sender.name if by_sender is not None else None, fields_found=dict(fields)))
    # the message read for intent, the subject ("New rental inquiry") as its context
    return qualified(lead, engine, context=msg.subject)


def qualified(lead: Lead, engine: Engine, *, context: str | None = None) -> Lead:
    """``lead`` with what its message says (``daemon/qualifying/intent.py``; ``context`` is
    what else is known of where it came from, e.g. the subject), then scored. A model
    configured for ``intent`` reads the message too; where it answers, its findings stand
    (a rule's intent field still wins), and where it does not, the built-in reading does."""
    read = inquiry.with_inquiry(lead, context=context)
    model = engine.model
    if model is not None and "intent" in model.uses and lead.message:
        today = (lead.received_at or datetime.now(UTC)).date().isoformat()
        try:
            answer = model.read_inquiry(lead.message, today=today)
        except DeliveryError as exc:
            log.warning("model: no intent reading of message %s: %s", lead.message_id, exc)
            read = dataclasses.replace(read, warnings=(
                *read.warnings, f"the model {model.model} did not read the message ({exc}); the built-in reading stands"))
        else:
            read = inquiry.with_model_inquiry(read, answer, rule_intent=lead.intent, who=f"the model {model.model}")
    return engine.scoring.score(read)


def _ask_model(msg: Message, engine: Engine, outer: Message, received_at: Any, source: str,
               dead: DeadLetter) -> ParseOutcome:
    """The last resort for an email neither a rule nor the reader could read: the model's
    reading (``daemon/providers/model.py``), each value kept only where the email itself
    holds it (``daemon/reading/grounding.py``). Without a model, or when it does not answer,
    does not read a lead, or finds no contact the email holds: ``dead``, saying so."""
    model = engine.model
    if model is None or "reading" not in model.uses:
        return dead
    text = _shown_to_model(msg)
    try:
        answer = model.read_lead(text)
    except DeliveryError as exc:
        log.warning("model: no reading of message %s: %s", outer.message_id, exc)
        return dataclasses.replace(dead, detail=f"{dead.detail} (the model did not answer: {exc})")
    if not answer.pop("is_lead", False):
        return dataclasses.replace(dead, detail=f"{dead.detail} (the model does not read a lead in it either)")
    got = grounding.ground({k: _as_text(v) for k, v in answer.items()}, text, who=f"the model {model.model}")
    for warning in got.dropped:
        log.warning("message %s: %s", outer.message_id, warning)
    lead = normalize.normalize_fields(
        got.fields, source=source, rule_version=f"model-{model.model}", message_id=outer.message_id,
        received_at=outer.date or received_at, region=engine.region,
        warnings=(f"read by the model {model.model}: no rule and not the reader could read this email; "
                  f"check the lead, then draft its rule: leadpipe rules new {source} --lead ID", *got.dropped))
    if lead.email is None and lead.phone is None:
        why = "; ".join(got.dropped) or "it found no email address or phone number"
        return dataclasses.replace(dead, detail=f"{dead.detail} (the model's reading has no contact the email holds: {why})")
    return qualified(lead, engine, context=msg.subject)


def _shown_to_model(msg: Message) -> str:
    """The email as a model is shown it: who wrote, the subject, and the text."""
    head = [f"{name}: {value}" for name, value in (("From", msg.header("From")), ("Reply-To", msg.header("Reply-To")),
                                                  ("Subject", msg.subject)) if value]
    return "\n".join([*head, "", msg.text])


def _as_text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# -- webhook bodies -----------------------------------------------------------------------


def parse_stored_webhook(raw: RawEmail, engine: Engine) -> ParseOutcome:
    """A stored webhook body's lead or dead letter, with the engine's mapping for its source."""
    source = webhook_source(raw)
    mapping = engine.webhooks.get(source)
    if mapping is None:
        return DeadLetter(DeadLetterReason.NO_MATCHING_RULE,
                          f"no webhook mapping rules/{WEBHOOKS_DIR}/{source}.yaml is in force",
                          rule=None)
    return parse_webhook(raw.data, mapping, engine, received_at=raw.received_at)


def parse_webhook(data: bytes, mapping: WebhookMapping, engine: Engine, *,
                  received_at: datetime | None = None) -> Lead | DeadLetter:
    """Turn one JSON body into a lead or a dead letter. Never raises."""
    try:
        found = read_webhook(data, mapping, engine.regex_timeout)
        if isinstance(found, DeadLetter):
            return found
        lead = normalize.normalize_fields(
            found.fields, source=mapping.source, rule_version=mapping.version,
            message_id=found.event_id, received_at=received_at, region=engine.region)
        problem = missing_required(mapping, lead, found.fields, found.tried, sep=", ")
        if problem is not None:
            return problem
        return qualified(lead, engine)
    except RuleTimeout as exc:
        return DeadLetter(DeadLetterReason.RULE_TIMEOUT, str(exc), rule=mapping.name)
    except Exception as exc:  # isolation boundary: one body's failure is its dead letter
        log.exception("webhook %s: parser error", mapping.source)
        return DeadLetter(DeadLetterReason.PARSER_ERROR,
                          f"the parser failed: {type(exc).__name__}: {exc}", rule=mapping.name)


# -- the fields a source requires --------------------------------------------------------


def _value(lead: Lead, name: str) -> Any:
    p = lead.property
    return {
        "address": p.address, "city": p.city, "state": p.state, "postal_code": p.postal_code,
        "price": p.price, "mls_id": p.mls_id, "url": p.url,
        "budget": lead.budget_min if lead.budget_min is not None else lead.budget_max,
    }.get(name, getattr(lead, name, None))


def missing_required(source: SourceFile, lead: Lead, found: Mapping[str, str],
                     tried: Mapping[str, Sequence[str]], *, sep: str = "; ",
                     empty: bool = False) -> DeadLetter | None:
    """The dead letter of a lead that lacks a field its source file requires (``required``,
    ``require_any``), saying what was found and what was tried; ``None`` when it has them.
    ``empty``: the email had no text at all."""
    missing: list[str] = [n for n in source.required if _value(lead, n) is None]
    for group in source.require_any:
        if all(_value(lead, n) is None for n in group):
            missing.append(" or ".join(group))
    if not missing:
        return None
    parts = []
    for name in missing:
        sentence = f"required field `{name}` not found"
        for single in name.split(" or "):
            if single in found:
                # it was extracted but normalizing refused it (bad phone, bad email)
                sentence += f"; `{single}` was {found[single]!r} but is not valid"
            elif single in tried:
                sentence += f"; {single}: tried {sep.join(tried[single])}"
        parts.append(sentence)
    reason = DeadLetterReason.EMPTY_BODY if empty else DeadLetterReason.MISSING_REQUIRED_FIELD
    detail = f"{source.name}: " + ("the email has no text. " if empty else "") + ". ".join(parts)
    return DeadLetter(reason, detail, rule=source.name, fields_found=dict(found),
                      fields_missing=tuple(missing))
