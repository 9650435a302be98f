"""Slack: the claim message for hot leads, its updates, DMs to agents, and alerts.

Talks to the Web API with slack-sdk's ``WebClient`` (``base_url`` configurable, so tests
point it at a local server). The client's own retry handlers are switched off: a failed
call becomes a ``TransientDeliveryError`` (timeouts, 429 with its ``Retry-After``, 5xx,
Slack's own transient error codes) or a ``PermanentDeliveryError`` (bad token, unknown
channel, …), and the dispatcher schedules the retry as a row.

The hot-leads channel sees only what an agent needs to decide (first name, area or
property, budget, score, source, age); the full contact goes by DM to the agent who has
the lead.

A post is never made twice for one outbox row: each message (the claim message, a DM, an
alert) carries the row's idempotency key in its message metadata (``event_type``
``leadpipe_delivery``), and any attempt after the first — whose post may have been
accepted although its answer never came back: a timeout, or a sender killed after Slack
took it, whose lease then ran out — first reads ``conversations.history`` of the channel
from the row's creation on and, when a message with that key is there, counts it as the
delivery instead of posting again. That needs the bot scopes ``channels:history``
(``groups:history`` for a private channel) and ``im:history``; without them such a retry
is a permanent failure (dead and alerted) rather than a possible second message.
Ephemeral messages (``claim_taken``) are in no history and cannot be checked.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.error import URLError

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web import SlackResponse

from daemon.errors import (
    ConfigError,
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from daemon.lead import Lead, StoredLead
from notifiers.base import Action, Outcome, RateLimit, Routed, clip

log = logging.getLogger(__name__)

CLAIM_OFFER = "claim_offer"  # the Block Kit message with the Claim button
CLAIM_UPDATE = "claim_update"  # that message edited: claimed by whom, or timed out
CLAIM_TAKEN = "claim_taken"  # ephemeral to a late clicker: already claimed by @name
DM_AGENT = "dm_agent"  # the full contact, by DM to the agent who has the lead
DM_NOTICE = "dm_notice"  # one line by DM: a lead moved away from you, a team mate missed leads
ALERT = "alert"  # a line in the tech channel

#: the ``action_id`` of the Claim button; its ``value`` is the lead id
CLAIM_ACTION_ID = "claim_lead"
#: the ``action_id`` of the Accept button in an assignment DM; its ``value`` is the lead id
ACCEPT_ACTION_ID = "accept_lead"
#: the ``action_id`` of the "Away for today" button beside it: no more leads until tomorrow
AWAY_ACTION_ID = "away_today"

#: the message metadata ``event_type`` whose ``event_payload.key`` is the post's outbox key
MARKER_EVENT = "leadpipe_delivery"
#: a retry looks for its earlier post from this long before the row was written (clock skew)
LOOK_BACK = timedelta(minutes=10)
#: at most this many pages of 200 messages are read looking for it
HISTORY_PAGES = 10
#: what a missing history scope is told to add
HISTORY_SCOPES = "channels:history (groups:history for a private channel) and im:history"
#: the bot scopes ``check`` (``leadpipe doctor``) wants to see granted
REQUIRED_SCOPES = ("chat:write", "im:write", "channels:history", "im:history")

# Slack error codes worth trying again (everything else with ok=false is permanent).
_TRANSIENT_CODES = frozenset({
    "ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable",
    "request_timeout", "team_added_to_org", "message_limit_exceeded",
})


class Slack:
    """The Slack notifier. Raises ``DeliveryError`` subclasses; never sleeps."""

    name: ClassVar[str] = "slack"
    actions: ClassVar[frozenset[str]] = frozenset(
        {CLAIM_OFFER, CLAIM_UPDATE, CLAIM_TAKEN, DM_AGENT, DM_NOTICE, ALERT}
    )

    def __init__(
        self,
        token: str,
        *,
        base_url: str = "https://slack.com/api/",
        hot_leads_channel: str | None = None,
        alerts_channel: str | None = None,
        timeout: float = 10.0,
        region: str = "US",
        clock: Callable[[], datetime] | None = None,
    ):
        if not base_url.endswith("/"):
            base_url += "/"
        self.client = WebClient(token=token, base_url=base_url, timeout=max(1, round(timeout)),
                                retry_handlers=[])
        self.hot_leads_channel = hot_leads_channel
        self.alerts_channel = alerts_channel
        self.region = region  # default_region: its numbers are shown in national format
        self.clock = clock or (lambda: datetime.now(UTC))

    @classmethod
    def from_config(cls, options: Mapping[str, Any]) -> Slack:
        """Keys as in the ``slack:`` section, plus ``timeout`` in seconds and ``region``
        (``default_region``)."""
        token = options.get("bot_token")
        if not token:
            raise ConfigError("slack: bot_token (or bot_token_file) is required to post to Slack")
        return cls(
            token,
            base_url=options.get("base_url") or "https://slack.com/api/",
            hot_leads_channel=options.get("hot_leads_channel"),
            alerts_channel=options.get("alerts_channel"),
            timeout=float(options.get("timeout", 10.0)),
            region=str(options.get("region") or "US"),
        )

    # -- the interface ----------------------------------------------------------------

    #: not paced: Slack's limits are per method and channel, and its 429s name the wait
    rate_limits: Mapping[str, RateLimit] = {}

    def cost(self, action: str) -> Mapping[str, int]:
        return {}

    @classmethod
    def lead_actions(cls, routed: Routed) -> tuple[str, ...]:
        return ()  # its rows follow the claim flow (daemon/routing/assign.py)

    def deliver(self, lead: StoredLead | None, action: Action) -> Outcome:
        """Perform ``action``; raises ``TransientDeliveryError`` / ``PermanentDeliveryError``."""
        handler = {
            CLAIM_OFFER: self._claim_offer,
            CLAIM_UPDATE: self._claim_update,
            CLAIM_TAKEN: self._claim_taken,
            DM_NOTICE: self._dm_notice,
            DM_AGENT: self._dm_agent,
            ALERT: self._alert,
        }.get(action.name)
        if handler is None:
            raise PermanentDeliveryError(f"slack has no action {action.name!r}")
        if action.name not in (ALERT, DM_NOTICE) and lead is None:
            raise PermanentDeliveryError(f"slack {action.name} needs a lead")
        return handler(lead, action)

    def check(self) -> str:
        """``auth.test``: who the token belongs to, and that it has the scopes leadpipe
        uses (when Slack lists them, in ``X-OAuth-Scopes``). Raises ``DeliveryError``."""
        resp = self._call("auth_test")
        granted = next((str(v[0] if isinstance(v, list) else v) for k, v in (resp.headers or {}).items()
                        if k.lower() == "x-oauth-scopes"), None)
        if granted is not None:
            have = {x.strip() for x in granted.split(",") if x.strip()}
            missing = [x for x in REQUIRED_SCOPES if x not in have]
            if missing:
                raise PermanentDeliveryError(
                    f"slack: the bot token lacks the scopes {', '.join(missing)} (add them under "
                    "OAuth & Permissions and reinstall the app; the history scopes let a retry "
                    "check that a message was not posted already)")
        return f"Slack: bot {resp.get('user')} in workspace {resp.get('team')}"

    # -- actions ----------------------------------------------------------------------

    def _claim_offer(self, lead: StoredLead | None, action: Action) -> Outcome:
        assert lead is not None
        channel = action.params.get("channel") or self.hot_leads_channel
        if not channel:
            raise PermanentDeliveryError("slack: no hot_leads_channel configured")
        pond = bool(action.params.get("pond"))
        blocks = offer_blocks(lead, self.clock(), pond=pond)
        what = "Lead in the pond" if pond else "Hot lead"
        return self._post(action, channel, blocks=blocks,
                          text=f"{what}: {lead.lead.first_name or 'someone'} — claim it",
                          unfurl_links=False)

    def _claim_update(self, lead: StoredLead | None, action: Action) -> Outcome:
        assert lead is not None
        posted = action.earlier.get(CLAIM_OFFER)
        if not posted or not posted.get("ts"):
            # The update waits for the message it edits (the offer is still being retried).
            raise TransientDeliveryError("the claim message is not posted yet")
        line = update_line(action.params)
        blocks = offer_blocks(lead, self.clock(), with_button=False)
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": line}]})
        resp = self._call("chat_update", channel=posted["channel"], ts=posted["ts"],
                          blocks=blocks, text=line)
        return _delivered(resp, channel=resp.get("channel"), ts=resp.get("ts"))

    def _claim_taken(self, lead: StoredLead | None, action: Action) -> Outcome:
        p = action.params
        resp = self._call("chat_postEphemeral", channel=p.get("channel") or self.hot_leads_channel,
                          user=p["user"], text=p.get("text") or "This lead is already taken.")
        return _delivered(resp)

    def _dm_agent(self, lead: StoredLead | None, action: Action) -> Outcome:
        assert lead is not None
        opened = self._call("conversations_open", users=action.params["user"])
        channel = (opened.get("channel") or {}).get("id")
        if not channel:
            raise PermanentDeliveryError("conversations.open returned no channel")
        text = dm_text(lead, action.params, region=self.region)
        if not action.params.get("accept"):
            return self._post(action, channel, text=text, unfurl_links=False)
        blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}},
                  {"type": "actions", "block_id": f"accept_{lead.id}", "elements": [
                      {"type": "button", "action_id": ACCEPT_ACTION_ID, "value": str(lead.id),
                       "style": "primary", "text": {"type": "plain_text", "text": "Accept"}},
                      {"type": "button", "action_id": AWAY_ACTION_ID, "value": str(lead.id),
                       "text": {"type": "plain_text", "text": "Away for today"}}]}]
        return self._post(action, channel, text=text, blocks=blocks, unfurl_links=False)

    def _dm_notice(self, lead: StoredLead | None, action: Action) -> Outcome:
        opened = self._call("conversations_open", users=action.params["user"])
        channel = (opened.get("channel") or {}).get("id")
        if not channel:
            raise PermanentDeliveryError("conversations.open returned no channel")
        return self._post(action, channel, text=str(action.params.get("text", "")), unfurl_links=False)

    def _alert(self, lead: StoredLead | None, action: Action) -> Outcome:
        if not self.alerts_channel:
            raise PermanentDeliveryError("slack: no alerts_channel configured")
        return self._post(action, self.alerts_channel,
                          text=f":rotating_light: {action.params.get('text', '')}")

    # -- posting once -----------------------------------------------------------------

    def _post(self, action: Action, channel: str, **message: Any) -> Outcome:
        """``chat.postMessage`` with the row's key in the message metadata; after a first
        attempt, only when the channel has no message with that key yet."""
        key = action.idempotency_key
        if key and (action.attempt > 1 or action.tried_before):
            found = self._posted_already(channel, key, action)
            if found is not None:
                log.info("slack %s: attempt %d found the message an earlier attempt posted "
                         "(ts %s); not posting it again", action.name, action.attempt,
                         found.get("ts"))
                return Outcome.delivered(
                    status_code=200, response=f"already posted: {channel} {found.get('ts')}",
                    result={"channel": channel, "ts": found.get("ts"), "already_posted": True})
        metadata = {"event_type": MARKER_EVENT, "event_payload": {"key": key}} if key else None
        resp = self._call("chat_postMessage", channel=channel, metadata=metadata, **message)
        return _delivered(resp, channel=resp.get("channel") or channel, ts=resp.get("ts"))

    def _posted_already(self, channel: str, key: str, action: Action) -> Mapping[str, Any] | None:
        """The message in ``channel`` whose metadata carries ``key``, posted since the row
        was written (less ``LOOK_BACK``), or ``None``."""
        oldest = f"{(action.since - LOOK_BACK).timestamp():.6f}" if action.since else None
        cursor: str | None = None
        for _ in range(HISTORY_PAGES):
            try:
                resp = self._call("conversations_history", channel=channel, oldest=oldest,
                                  include_all_metadata=True, limit=200, cursor=cursor)
            except PermanentDeliveryError as exc:
                raise PermanentDeliveryError(
                    f"{exc} in conversations.history, which checks that an earlier attempt "
                    f"did not post the message already: give the bot the scopes "
                    f"{HISTORY_SCOPES}, then `leadpipe deliveries retry ID`",
                    status_code=exc.status_code, response=exc.response) from exc
            for message in resp.get("messages") or ():
                meta = message.get("metadata") or {}
                if (meta.get("event_type") == MARKER_EVENT
                        and (meta.get("event_payload") or {}).get("key") == key):
                    return dict(message)
            cursor = (resp.get("response_metadata") or {}).get("next_cursor") or None
            if not resp.get("has_more") or not cursor:
                return None
        log.warning("slack %s: no earlier post found in the last %d messages of %s; posting",
                    action.name, 200 * HISTORY_PAGES, channel)
        return None

    # -- the edge: Slack's errors become ours -----------------------------------------

    def _call(self, method: str, **kwargs: Any) -> SlackResponse:
        try:
            resp: SlackResponse = getattr(self.client, method)(**kwargs)
            return resp
        except SlackApiError as exc:
            raise self._translate(exc) from exc
        except (URLError, TimeoutError, ConnectionError, OSError) as exc:
            raise TransientDeliveryError(f"slack {method}: {exc}") from exc
        except (SlackClientError, ValueError) as exc:
            # an answer that is not JSON (a proxy's 502 page) and the like
            raise TransientDeliveryError(f"slack {method}: {exc}") from exc

    def _translate(self, exc: SlackApiError) -> DeliveryError:
        resp = exc.response
        status = getattr(resp, "status_code", None)
        data = resp.data if isinstance(getattr(resp, "data", None), dict) else {}
        code = str(data.get("error") or f"HTTP {status}")
        body = clip(_text(resp))
        if status == 429 or code in ("ratelimited", "rate_limited"):
            after = _retry_after(resp.headers, self.clock())
            return TransientDeliveryError(f"slack: rate limited ({code})", retry_after=after,
                                          status_code=status, response=body)
        if (status is not None and status >= 500) or code in _TRANSIENT_CODES:
            return TransientDeliveryError(f"slack: {code}", status_code=status, response=body)
        return PermanentDeliveryError(f"slack: {code}", status_code=status, response=body)


def _delivered(resp: SlackResponse, **result: Any) -> Outcome:
    return Outcome.delivered(status_code=resp.status_code, response=_text(resp),
                             result={k: v for k, v in result.items() if v is not None})


def _text(resp: Any) -> str:
    data = getattr(resp, "data", None)
    if isinstance(data, dict):
        return json.dumps(data, ensure_ascii=False)[:2048]
    if isinstance(data, bytes):
        return data[:2048].decode("utf-8", "replace")
    return str(data)[:2048]


def _retry_after(headers: Mapping[str, Any] | None, now: datetime) -> datetime | None:
    if not headers:
        return None
    value = None
    for k, v in headers.items():
        if k.lower() == "retry-after":
            value = v[0] if isinstance(v, list) and v else v
    try:
        return now + timedelta(seconds=float(str(value)))
    except (TypeError, ValueError):
        return None


# -- what the messages say ---------------------------------------------------------------


def offer_blocks(stored: StoredLead, now: datetime, *, with_button: bool = True,
                 pond: bool = False) -> list[dict[str, Any]]:
    """The claim message: enough to decide, never the contact (that goes by DM)."""
    lead = stored.lead
    fields = [
        ("Area / property", area(lead) or "—"),
        ("Budget", budget(lead) or "—"),
        ("Score", f"{lead.score} ({lead.tier})"),
        ("Source", lead.source),
        ("Lead age", age(lead.received_at or stored.created_at, now)),
    ]
    if lead.enrichment is not None and lead.enrichment.headline():
        # where they work, never their profiles: the offer is read by every agent
        fields.append(("Works as", str(lead.enrichment.headline())))
    blocks: list[dict[str, Any]] = [
        {"type": "section",
         "text": {"type": "mrkdwn", "text": (":fishing_pole_and_fish: *Lead in the pond: " if pond
                                             else ":fire: *Hot lead: ") + f"{_esc(lead.first_name or 'someone')}*"
                  + (f" wants to {lead.intent}" if lead.intent else "")},
         "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{_esc(v)}"} for k, v in fields]},
    ]
    if with_button:
        blocks.append({"type": "actions", "block_id": f"lead_{stored.id}", "elements": [
            {"type": "button", "action_id": CLAIM_ACTION_ID, "value": str(stored.id),
             "style": "primary", "text": {"type": "plain_text", "text": "Claim"}},
        ]})
    return blocks


def update_line(params: Mapping[str, Any]) -> str:
    """``Claimed by @name in 42 s`` or ``Unclaimed after 5m — assigned to X by round robin``."""
    who = f"<@{params['slack_user_id']}>" if params.get("slack_user_id") else _esc(str(params.get("agent")))
    if params.get("kind") == "claimed":
        return f":white_check_mark: Claimed by {who} in {duration(float(params.get('seconds', 0)))}"
    waited = duration(float(params.get("seconds", 0)))
    if not params.get("agent"):
        return f":warning: Unclaimed after {waited} — no active agent to assign it to"
    return f":hourglass: Unclaimed after {waited} — assigned to {who} by round robin"


def dm_text(stored: StoredLead, params: Mapping[str, Any], *, region: str = "US") -> str:
    lead = stored.lead
    why = {"claimed": "you claimed", "round_robin": "your round-robin turn",
           "flow": "a lead flow names you", "reassigned": "not accepted in time by another agent",
           "timeout": "unclaimed in the channel, your round-robin turn",
           "repeat": "a new inquiry from a person you already have"}.get(str(params.get("why")), "assigned to you")
    p = lead.property
    lines = [
        f"*New lead #{stored.id}* ({why}): *{_esc(lead.full_name or lead.first_name or 'no name')}*",
        f"Phone: {phone_link(lead.phone, region) if lead.phone else '—'}   Email: {lead.email or '—'}",
    ]
    if not p.is_empty():
        where = ", ".join(x for x in (p.address, p.city, p.state, p.postal_code) if x)
        extra = [f"${p.price:,.0f}" if p.price else "", f"MLS {p.mls_id}" if p.mls_id else "", p.url or ""]
        lines.append("Property: " + " · ".join(x for x in (where, *extra) if x))
    if budget(lead):
        lines.append(f"Budget: {budget(lead)}")
    if lead.message:
        lines.append(f"> {_esc(lead.message[:1500])}")
    if lead.enrichment is not None:
        lines.append(f"About them: {_esc(lead.enrichment.summary())}")
    lines.append(f"Source: {lead.source} · score {lead.score} ({lead.tier})")
    if params.get("repeat_of"):
        lines.append(f"Earlier lead of the same person: #{params['repeat_of']}")
    return "\n".join(lines)


def phone_link(phone: str, region: str = "US") -> str:
    """A tap-to-call link, ``<tel:+16155550166|(615) 555-0166>``: in the national format
    when the number shares ``region``'s country calling code, else international."""
    try:
        number = phonenumbers.parse(phone, region)
    except NumberParseException:
        return _esc(phone)
    home = phonenumbers.country_code_for_region(region.upper())
    style = PhoneNumberFormat.NATIONAL if number.country_code == home else PhoneNumberFormat.INTERNATIONAL
    shown = phonenumbers.format_number(number, style)
    dial = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    return f"<tel:{dial}|{_esc(shown)}>"


def area(lead: Lead) -> str | None:
    p = lead.property
    place = ", ".join(x for x in (p.city, p.state) if x) or p.postal_code
    if p.address:
        return f"{p.address}, {place}" if place else p.address
    return place


def budget(lead: Lead) -> str | None:
    lo, hi = lead.budget_min, lead.budget_max
    if lo is None and hi is None:
        return f"{money(lead.property.price)} (asking)" if lead.property.price else None
    if lo is not None and hi is not None and lo != hi:
        return f"{money(lo)}–{money(hi)}"
    return money(hi if hi is not None else lo)


def money(value: float | None) -> str:
    if value is None:
        return "—"
    if value >= 1_000_000:
        return f"${value / 1_000_000:.2f}M".replace(".00M", "M")
    if value >= 10_000:
        return f"${value / 1000:.0f}k"
    return f"${value:,.0f}"


def age(since: datetime | None, now: datetime) -> str:
    if since is None:
        return "—"
    return duration(max(0.0, (now - since).total_seconds()))


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f}m"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / 86400:.0f}d"


def _esc(text: str) -> str:
    # Slack mrkdwn: these three would be read as markup or mentions
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
