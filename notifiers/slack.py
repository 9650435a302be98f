"""Slack: the claim message for hot leads, its updates, DMs to agents, and alerts.

Talks to the Web API with slack-sdk's ``WebClient`` (``base_url`` configurable, so tests
point it at a local server). The client's own retry handlers are switched off: a failed
call becomes a ``TransientDeliveryError`` (timeouts, 429 with its ``Retry-After``, 5xx,
Slack's own transient error codes) or a ``PermanentDeliveryError`` (bad token, unknown
channel, …), and the dispatcher schedules the retry as a row.

The hot-leads channel sees only what an agent needs to decide (first name, area or
property, budget, score, source, age); the full contact goes by DM to the agent who has
the lead.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.error import URLError

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
ALERT = "alert"  # a line in the tech channel

#: the ``action_id`` of the Claim button; its ``value`` is the lead id
CLAIM_ACTION_ID = "claim_lead"

# Slack error codes worth trying again (everything else with ok=false is permanent).
_TRANSIENT_CODES = frozenset({
    "ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable",
    "request_timeout", "team_added_to_org", "message_limit_exceeded",
})


class Slack:
    """The Slack notifier. Raises ``DeliveryError`` subclasses; never sleeps."""

    name: ClassVar[str] = "slack"
    actions: ClassVar[frozenset[str]] = frozenset(
        {CLAIM_OFFER, CLAIM_UPDATE, CLAIM_TAKEN, DM_AGENT, ALERT}
    )

    def __init__(
        self,
        token: str,
        *,
        base_url: str = "https://slack.com/api/",
        hot_leads_channel: str | None = None,
        alerts_channel: str | None = None,
        timeout: float = 10.0,
        clock: Callable[[], datetime] | None = None,
    ):
        if not base_url.endswith("/"):
            base_url += "/"
        self.client = WebClient(token=token, base_url=base_url, timeout=max(1, round(timeout)),
                                retry_handlers=[])
        self.hot_leads_channel = hot_leads_channel
        self.alerts_channel = alerts_channel
        self.clock = clock or (lambda: datetime.now(UTC))

    @classmethod
    def from_config(cls, options: Mapping[str, Any]) -> Slack:
        """Keys as in the ``slack:`` section, plus ``timeout`` in seconds."""
        token = options.get("bot_token")
        if not token:
            raise ConfigError("slack: bot_token (or bot_token_file) is required to post to Slack")
        return cls(
            token,
            base_url=options.get("base_url") or "https://slack.com/api/",
            hot_leads_channel=options.get("hot_leads_channel"),
            alerts_channel=options.get("alerts_channel"),
            timeout=float(options.get("timeout", 10.0)),
        )

    # -- the interface ----------------------------------------------------------------

    #: not paced: Slack's limits are per method and channel, and its 429s name the wait
    rate_limits: Mapping[str, RateLimit] = {}

    def cost(self, action: str) -> Mapping[str, int]:
        return {}

    @classmethod
    def lead_actions(cls, routed: Routed) -> tuple[str, ...]:
        return ()  # its rows follow the claim flow (daemon/assign.py)

    def deliver(self, lead: StoredLead | None, action: Action) -> Outcome:
        """Perform ``action``; raises ``TransientDeliveryError`` / ``PermanentDeliveryError``."""
        handler = {
            CLAIM_OFFER: self._claim_offer,
            CLAIM_UPDATE: self._claim_update,
            CLAIM_TAKEN: self._claim_taken,
            DM_AGENT: self._dm_agent,
            ALERT: self._alert,
        }.get(action.name)
        if handler is None:
            raise PermanentDeliveryError(f"slack has no action {action.name!r}")
        if action.name != ALERT and lead is None:
            raise PermanentDeliveryError(f"slack {action.name} needs a lead")
        return handler(lead, action)

    def check(self) -> str:
        """``auth.test``: who the token belongs to. Raises ``DeliveryError``."""
        resp = self._call("auth_test")
        return f"Slack: bot {resp.get('user')} in workspace {resp.get('team')}"

    # -- actions ----------------------------------------------------------------------

    def _claim_offer(self, lead: StoredLead | None, action: Action) -> Outcome:
        assert lead is not None
        channel = action.params.get("channel") or self.hot_leads_channel
        if not channel:
            raise PermanentDeliveryError("slack: no hot_leads_channel configured")
        blocks = offer_blocks(lead, self.clock())
        resp = self._call("chat_postMessage", channel=channel, blocks=blocks,
                          text=f"Hot lead: {lead.lead.first_name or 'someone'} — claim it",
                          unfurl_links=False)
        return _delivered(resp, channel=resp.get("channel"), ts=resp.get("ts"))

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
        text = dm_text(lead, action.params)
        resp = self._call("chat_postMessage", channel=channel, text=text, unfurl_links=False)
        return _delivered(resp, channel=channel, ts=resp.get("ts"))

    def _alert(self, lead: StoredLead | None, action: Action) -> Outcome:
        if not self.alerts_channel:
            raise PermanentDeliveryError("slack: no alerts_channel configured")
        resp = self._call("chat_postMessage", channel=self.alerts_channel,
                          text=f":rotating_light: {action.params.get('text', '')}")
        return _delivered(resp, channel=resp.get("channel"), ts=resp.get("ts"))

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


def offer_blocks(stored: StoredLead, now: datetime, *, with_button: bool = True) -> list[dict[str, Any]]:
    """The claim message: enough to decide, never the contact (that goes by DM)."""
    lead = stored.lead
    fields = [
        ("Area / property", area(lead) or "—"),
        ("Budget", budget(lead) or "—"),
        ("Score", f"{lead.score} ({lead.tier})"),
        ("Source", lead.source),
        ("Lead age", age(lead.received_at or stored.created_at, now)),
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "section",
         "text": {"type": "mrkdwn", "text": f":fire: *Hot lead: {_esc(lead.first_name or 'someone')}*"
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


def dm_text(stored: StoredLead, params: Mapping[str, Any]) -> str:
    lead = stored.lead
    why = {"claimed": "you claimed", "round_robin": "your round-robin turn",
           "timeout": "unclaimed in the channel, your round-robin turn",
           "repeat": "a new inquiry from a person you already have"}.get(str(params.get("why")), "assigned to you")
    p = lead.property
    lines = [
        f"*New lead #{stored.id}* ({why}): *{_esc(lead.full_name or lead.first_name or 'no name')}*",
        f"Phone: {lead.phone or '—'}   Email: {lead.email or '—'}",
    ]
    if not p.is_empty():
        where = ", ".join(x for x in (p.address, p.city, p.state, p.postal_code) if x)
        extra = [f"${p.price:,.0f}" if p.price else "", f"MLS {p.mls_id}" if p.mls_id else "", p.url or ""]
        lines.append("Property: " + " · ".join(x for x in (where, *extra) if x))
    if budget(lead):
        lines.append(f"Budget: {budget(lead)}")
    if lead.message:
        lines.append(f"> {_esc(lead.message[:1500])}")
    lines.append(f"Source: {lead.source} · score {lead.score} ({lead.tier})")
    if params.get("repeat_of"):
        lines.append(f"Earlier lead of the same person: #{params['repeat_of']}")
    return "\n".join(lines)


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
