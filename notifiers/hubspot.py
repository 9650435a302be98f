"""HubSpot: each routed lead is a contact (found or created), a note on it, and a task.

Three actions, three outbox rows with their own idempotency keys, sent in that order:

- ``contact`` — the contact the same person's earlier lead was delivered to, when there
  is one (``Action.person``; the search may not see it yet); else search by email or phone
  (one search: email match preferred); then read that contact fresh (``GET``: search
  results lag updates too) and update it by the field policies — or create one. A create
  answered 409 ``Contact already exists. Existing ID: N`` (the search lags writes by up to
  ~30 s) updates N. Its result, ``{"contact_id": …}``, is what the other two read from
  ``Action.earlier``. ``per_person``: the dispatcher sends one person's contact rows one at
  a time, so a second lead of the person waits for the first's contact and then reuses it.
- ``note`` — the inquiry, associated with the contact.
- ``task`` — a follow-up for the agent (``hubspot_owner_id`` = the agent's
  ``crm_user_id``), associated with the contact; not for drip leads.
- ``enrichment_note`` — only when the person's enrichment (company, title, profiles) came
  after the lead was sent (``update_actions``): a second note on the same contact.

A note or task whose contact is not delivered yet waits for it: its retries come
``delivery.lease``/64 later, doubling up to a whole lease (attempts 1–7 span about two
leases), so they outlast a contact row still leased by a killed process instead of using
up ``max_attempts`` in seconds and going dead.

No second contact after a crash: the contact row is looked up before every create, and a
create whose answer was lost (read timeout, dropped connection, 5xx) or whose process was
killed is retried no sooner than ``search_lag`` (a lost answer), or than the row's lease
(a killed process — ``delivery.lease`` must exceed ``search_lag`` + ``timeout``; the
dispatcher renews a row's lease right before its call), so the search then
sees the contact the lost request made. Email is unique in HubSpot, so a create for a
known email is a 409 anyway; the wait matters for leads with a phone only.

Field policy for an existing contact, per property (``fields:`` in config): ``crm_wins``
(never touch it; the default for the descriptive ``firstname``/``lastname``),
``fill_empty`` (write it only where HubSpot has none; the default for ``email``, ``phone``
and the owner) or ``lead_wins`` (always write the lead's value). A new contact gets all.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from daemon.errors import ConfigError, PermanentDeliveryError, TransientDeliveryError
from daemon.lead import Lead, StoredLead
from notifiers.base import Action, Outcome, RateLimit, Routed, agent_text
from notifiers.http import JsonApi, json_of, text_of
from notifiers.options import Options

CONTACT, NOTE, TASK = "contact", "note", "task"
#: a second note, when the person's enrichment arrived after the lead was sent
ENRICHMENT_NOTE = "enrichment_note"

POLICIES = ("crm_wins", "lead_wins", "fill_empty")
#: the contact properties leadpipe writes, with their default policy
DEFAULT_FIELDS: Mapping[str, str] = {
    "email": "fill_empty", "phone": "fill_empty", "firstname": "crm_wins",
    "lastname": "crm_wins", "hubspot_owner_id": "fill_empty",
}
#: HubSpot-defined association types
NOTE_TO_CONTACT, TASK_TO_CONTACT = 202, 204

#: documented limits: 100 requests per 10 s (the lowest plan), search 4 requests per second
DEFAULT_LIMIT = RateLimit(100, 10.0)
SEARCH_LIMIT = RateLimit(4, 1.0)

_EXISTING_ID = re.compile(r"Existing ID:\s*(\d+)")
_CONTACTS = "/crm/v3/objects/contacts"


class HubSpot:
    """The HubSpot notifier (a private app's access token). Raises ``DeliveryError``s."""

    name: ClassVar[str] = "hubspot"
    actions: ClassVar[frozenset[str]] = frozenset({CONTACT, NOTE, TASK, ENRICHMENT_NOTE})
    keys: ClassVar[frozenset[str]] = frozenset({
        "base_url", "access_token", "fields", "search_lag", "task_due", "search_rate_limit"})
    #: how many of a waiting note's or task's retries double up to a lease (see _contact_of)
    WAIT_STEPS: ClassVar[int] = 7
    #: one person's rows go one at a time, and ``contact`` gets the earlier leads' contact
    per_person: ClassVar[bool] = True

    def __init__(self, access_token: str, *, base_url: str = "https://api.hubapi.com",
                 fields: Mapping[str, str] | None = None, search_lag: float = 30.0,
                 task_due: float = 3600.0, timeout: float = 10.0,
                 connect_timeout: float | None = None, rate_limit: RateLimit = DEFAULT_LIMIT,
                 search_rate_limit: RateLimit = SEARCH_LIMIT, lease: float = 60.0,
                 clock: Callable[[], datetime] | None = None):
        self.fields = {**DEFAULT_FIELDS, **(fields or {})}
        self.search_lag = search_lag
        self.lease = lease  # delivery.lease: how long a killed process keeps the contact row
        self.task_due = timedelta(seconds=task_due)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.api = JsonApi("hubspot", base_url, timeout=timeout,
                           connect_timeout=connect_timeout or min(timeout, 10.0),
                           headers={"Authorization": f"Bearer {access_token}"}, clock=self.clock)
        self.rate_limits: Mapping[str, RateLimit] = {"requests": rate_limit, "search": search_rate_limit}

    @classmethod
    def from_config(cls, options: Mapping[str, Any]) -> HubSpot:
        """Keys: ``access_token`` (required), ``base_url``, ``fields`` (property → policy),
        ``search_lag`` (30s), ``task_due`` (1h), ``rate_limit``, ``search_rate_limit``,
        ``timeout``, ``connect_timeout``; ``lease`` (``delivery.lease``, put in by
        ``build_notifiers``). Raises ``ConfigError``; also when ``delivery.lease`` does not
        exceed ``search_lag`` + ``timeout``."""
        o = Options(cls.name, options, cls.keys)
        fields = options.get("fields") or {}
        if not isinstance(fields, Mapping):
            raise ConfigError(f"{o.where}: `fields` maps a contact property to one of {', '.join(POLICIES)}")
        for prop, policy in fields.items():
            if prop not in DEFAULT_FIELDS:
                raise ConfigError(f"{o.where}: fields: leadpipe does not write {prop!r}; "
                                  f"it writes {', '.join(DEFAULT_FIELDS)}")
            o.choice(f"fields.{prop}", policy, POLICIES)
        lag = o.seconds("search_lag", 30.0)
        timeout, connect = o.timeouts()
        if options.get("lease") is not None and o.seconds("lease", 60.0) <= lag + timeout:
            raise ConfigError(f"{o.where}: delivery.lease must be longer than search_lag + timeout "
                              f"({lag:g}s + {timeout:g}s): a create cut off by a crash is retried "
                              "when its lease ends, and the retry must find the contact it made")
        return cls(o.required("access_token", " (a private app's token with crm.objects.contacts.read/write)"),
                   base_url=o.text("base_url") or "https://api.hubapi.com", fields=dict(fields),
                   search_lag=lag, task_due=o.seconds("task_due", 3600.0), timeout=timeout,
                   connect_timeout=connect, rate_limit=o.rate_limit("rate_limit", DEFAULT_LIMIT),
                   search_rate_limit=o.rate_limit("search_rate_limit", SEARCH_LIMIT),
                   lease=o.seconds("lease", 60.0))

    # -- the interface ----------------------------------------------------------------

    def cost(self, action: str) -> Mapping[str, int]:
        if action == CONTACT:  # a search, a read, then a create or an update
            return {"requests": 3, "search": 1}
        return {"requests": 1}

    @classmethod
    def lead_actions(cls, routed: Routed) -> tuple[str, ...]:
        if routed.get("status") == "drip":
            return (CONTACT, NOTE)  # a drip campaign follows it up, not a person
        return (CONTACT, NOTE, TASK)

    @classmethod
    def update_actions(cls, changed: str) -> tuple[str, ...]:
        """A late enrichment is a second, short note on the contact (the first stays the
        record of what was sent); a late geocode changes nothing HubSpot is sent."""
        return (ENRICHMENT_NOTE,) if changed == "enrichment" else ()

    def deliver(self, lead: StoredLead | None, action: Action) -> Outcome:
        """Perform ``action``; raises ``TransientDeliveryError`` / ``PermanentDeliveryError``."""
        handler = {CONTACT: self._contact, NOTE: self._note, TASK: self._task,
                   ENRICHMENT_NOTE: self._enrichment_note}.get(action.name)
        if handler is None:
            raise PermanentDeliveryError(f"hubspot has no action {action.name!r}")
        if lead is None:
            raise PermanentDeliveryError(f"hubspot {action.name} needs a lead")
        return handler(lead, action)

    def check(self) -> str:
        """Reads one contact: the token works and has the contacts scope. Raises ``DeliveryError``."""
        self.api.call("GET", _CONTACTS, params={"limit": "1"})
        return "HubSpot: the access token can read contacts"

    # -- actions ----------------------------------------------------------------------

    def _contact(self, stored: StoredLead, action: Action) -> Outcome:
        wanted = contact_properties(stored.lead, action.params)
        # the contact the same person's latest earlier lead made or found (the search may
        # not show it yet); gone from HubSpot since (deleted), the person is looked up afresh
        known = next((str(r["contact_id"]) for r in action.person if r.get("contact_id")), None)
        fresh = self._read(known) if known else None
        if fresh is not None:
            contact_id, current = fresh
            changed = self._update(contact_id, current, wanted)
            return Outcome.delivered(status_code=200, response=f"the person's contact {contact_id}",
                                     result={"contact_id": contact_id, "created": False,
                                             "reused": True, "updated": changed})
        found = self._search(stored.lead)
        fresh = self._read(found) if found is not None else None
        if fresh is not None:
            contact_id, current = fresh
            changed = self._update(contact_id, current, wanted)
            return Outcome.delivered(status_code=200, response=f"found contact {contact_id}",
                                     result={"contact_id": contact_id, "created": False,
                                             "updated": changed})
        resp = self.api.call("POST", _CONTACTS, json_body={"properties": wanted}, handles=(409,),
                             settle=self.search_lag)
        if resp.status_code == 409:
            m = _EXISTING_ID.search(resp.text)
            if m is None:
                raise PermanentDeliveryError(f"hubspot: 409 without an existing id: {resp.text[:200]}",
                                             status_code=409, response=text_of(resp))
            contact_id = m.group(1)
            fresh = self._read(contact_id)
            if fresh is None:
                raise TransientDeliveryError(f"hubspot: contact {contact_id} named by a 409 is not found")
            contact_id, current = fresh
            changed = self._update(contact_id, current, wanted)
            return Outcome.delivered(status_code=409, response=text_of(resp),
                                     result={"contact_id": contact_id, "created": False,
                                             "conflict": True, "updated": changed})
        contact_id = str(json_of(resp).get("id") or "")
        if not contact_id:
            raise PermanentDeliveryError("hubspot: the created contact has no id",
                                         status_code=resp.status_code, response=text_of(resp))
        return Outcome.delivered(status_code=resp.status_code, response=text_of(resp),
                                 result={"contact_id": contact_id, "created": True})

    def _note(self, stored: StoredLead, action: Action) -> Outcome:
        contact_id = self._contact_of(action)
        props = {"hs_timestamp": _iso(stored.lead.received_at or self.clock()),
                 "hs_note_body": note_body(stored, action.params)}
        return self._engagement("note", props, action, contact_id, NOTE_TO_CONTACT)

    def _enrichment_note(self, stored: StoredLead, action: Action) -> Outcome:
        contact_id = self._contact_of(action)
        if stored.lead.enrichment is None:
            raise PermanentDeliveryError("hubspot enrichment_note: the lead has no enrichment")
        body = (f"<p><b>About them</b> (leadpipe lead #{stored.id}): "
                f"{html.escape(stored.lead.enrichment.summary())}</p>")
        props = {"hs_timestamp": _iso(self.clock()), "hs_note_body": body}
        return self._engagement("note", props, action, contact_id, NOTE_TO_CONTACT)

    def _task(self, stored: StoredLead, action: Action) -> Outcome:
        contact_id = self._contact_of(action)
        lead = stored.lead
        props = {
            "hs_timestamp": _iso(self.clock() + self.task_due),
            "hs_task_subject": f"Follow up: {lead.full_name or lead.email or lead.phone or 'new lead'} "
                               f"({lead.source}, {lead.tier})",
            "hs_task_body": note_body(stored, action.params),
            "hs_task_status": "NOT_STARTED",
            "hs_task_priority": "HIGH" if lead.tier == "hot" else "MEDIUM",
            "hs_task_type": "CALL" if lead.phone else "EMAIL",
        }
        return self._engagement("task", props, action, contact_id, TASK_TO_CONTACT)

    def _engagement(self, kind: str, props: dict[str, str], action: Action, contact_id: str,
                    association_type: int) -> Outcome:
        """Create a ``note`` or a ``task`` (``kind``) on the contact, owned by the agent's
        HubSpot user when the routing gives one; the result has its id as ``<kind>_id``."""
        if action.params.get("crm_user_id"):
            props["hubspot_owner_id"] = str(action.params["crm_user_id"])
        resp = self.api.call("POST", f"/crm/v3/objects/{kind}s",
                             json_body={"properties": props,
                                        "associations": [_association(contact_id, association_type)]})
        return Outcome.delivered(status_code=resp.status_code, response=text_of(resp),
                                 result={f"{kind}_id": json_of(resp).get("id"),
                                         "contact_id": contact_id})

    def _contact_of(self, action: Action) -> str:
        """The delivered contact's id; else a retry once the contact may be delivered."""
        contact_id = (action.earlier.get(CONTACT) or {}).get("contact_id")
        if not contact_id:
            # sent in order after the contact row; it is still being retried, or leased by
            # a process that was killed (then it is retried only when that lease ends): a
            # quick backoff would use up this row's attempts before that
            step = min(max(action.attempt, 1), self.WAIT_STEPS) - self.WAIT_STEPS
            wait = timedelta(seconds=self.lease * 2.0 ** step)
            raise TransientDeliveryError(f"hubspot {action.name}: waiting for the contact to be delivered",
                                         retry_after=self.clock() + wait)
        return str(contact_id)

    # -- contacts -----------------------------------------------------------------------

    def _search(self, lead: Lead) -> str | None:
        """The id of the contact with the lead's email, else of one with its phone (as the
        search index saw them up to ``search_lag`` ago)."""
        groups = [{"filters": [{"propertyName": prop, "operator": "EQ", "value": value}]}
                  for prop, value in (("email", lead.email), ("phone", lead.phone)) if value]
        if not groups:
            return None  # nothing to match on: a contact with a name only is created
        resp = self.api.call("POST", f"{_CONTACTS}/search",
                             json_body={"filterGroups": groups, "properties": list(self.fields),
                                        "limit": 10})
        results = [r for r in json_of(resp).get("results") or () if isinstance(r, dict) and r.get("id")]

        def props(r: dict[str, Any]) -> dict[str, Any]:
            return dict(r.get("properties") or {})

        email = (lead.email or "").lower()
        by_email = [r for r in results if email and str(props(r).get("email") or "").lower() == email]
        chosen = by_email or results
        return str(chosen[0]["id"]) if chosen else None

    def _read(self, contact_id: str) -> tuple[str, dict[str, Any]] | None:
        """The contact as it is now: its id (a merged contact answers with the one it was
        merged into) and properties; ``None`` when it is gone (404)."""
        resp = self.api.call("GET", f"{_CONTACTS}/{contact_id}", handles=(404,),
                             params={"properties": ",".join(self.fields)})
        if resp.status_code == 404:
            return None
        data = json_of(resp)
        return str(data.get("id") or contact_id), dict(data.get("properties") or {})

    def _update(self, contact_id: str, current: Mapping[str, Any], wanted: Mapping[str, str]) -> list[str]:
        changes = merge(current, wanted, self.fields)
        if changes:
            self.api.call("PATCH", f"{_CONTACTS}/{contact_id}", json_body={"properties": changes})
        return sorted(changes)


def merge(current: Mapping[str, Any], wanted: Mapping[str, str], policy: Mapping[str, str]) -> dict[str, str]:
    """The properties to write on an existing contact, by each property's policy."""
    changes = {}
    for prop, value in wanted.items():
        rule = policy.get(prop, "crm_wins")
        have = current.get(prop)
        if (rule == "lead_wins" and str(have or "") != value) or (rule == "fill_empty" and not have):
            changes[prop] = value
    return changes


def contact_properties(lead: Lead, routed: Routed) -> dict[str, str]:
    """The contact as the lead describes it; absent values left out."""
    first = lead.first_name or (lead.full_name if not lead.last_name else None)
    props = {"email": lead.email, "phone": lead.phone, "firstname": first,
             "lastname": lead.last_name,
             "hubspot_owner_id": str(routed["crm_user_id"]) if routed.get("crm_user_id") else None}
    return {k: v for k, v in props.items() if v}


def note_body(stored: StoredLead, routed: Routed) -> str:
    """The inquiry as a short HTML note."""
    lead = stored.lead
    e = html.escape
    lines = [f"<b>New {e(lead.tier)} lead</b> from {e(lead.source)} (score {lead.score}), "
             f"leadpipe lead #{stored.id}"]
    if lead.message:
        lines.append(e(lead.message[:3000]))
    p = lead.property
    where = ", ".join(x for x in (p.address, p.city, p.state, p.postal_code) if x)
    extra = [f"${p.price:,.0f}" if p.price else "", f"MLS {p.mls_id}" if p.mls_id else "", p.url or ""]
    if where or any(extra):
        lines.append("Property: " + e(" · ".join(x for x in (where, *extra) if x)))
    if lead.budget_min is not None or lead.budget_max is not None:
        lines.append("Budget: " + "–".join(f"${v:,.0f}" for v in (lead.budget_min, lead.budget_max)
                                          if v is not None))
    if lead.intent:
        lines.append(f"Wants to {e(lead.intent)}")
    if lead.enrichment is not None:
        lines.append(f"About them: {e(lead.enrichment.summary())}")
    if routed.get("agent"):
        lines.append(f"Assigned to {e(str(agent_text(routed)))} ({e(str(routed.get('why')))})")
    elif routed.get("status") == "drip":
        lines.append("Low tier: drip campaign, no agent")
    return "<p>" + "</p><p>".join(lines) + "</p>"


def _association(contact_id: str, type_id: int) -> dict[str, Any]:
    return {"to": {"id": contact_id},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}]}


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
