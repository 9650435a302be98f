"""Slack Socket Mode (daemon/web/socket_mode.py): each envelope is acknowledged, then settled by
the same claim code as ``POST /slack/actions``.

No websocket here (that needs Slack, or a websocket server the suite does not ship): the
envelope is handed to ``on_request`` as slack-sdk's client would hand it over, with a
stand-in for slack-sdk's client that records the acknowledgements. When these fail,
brokerages without a public URL cannot claim leads.
"""

from __future__ import annotations

from typing import Any

from routingkit import add_lead, make_lead, make_router
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from daemon.web.socket_mode import SocketMode
from storage import leads
from storage.db import Database


class RecordingClient:
    """Stands in for slack-sdk's SocketModeClient: records what would go back on the socket."""

    def __init__(self) -> None:
        self.sent: list[SocketModeResponse] = []

    def send_socket_mode_response(self, response: SocketModeResponse) -> None:
        self.sent.append(response)


def envelope(lead_id: int, user: str, n: int) -> SocketModeRequest:
    payload: dict[str, Any] = {
        "type": "block_actions", "user": {"id": user}, "channel": {"id": "C0HOT"},
        "actions": [{"action_id": "claim_lead", "value": str(lead_id), "action_ts": f"{n}.0"}],
    }
    return SocketModeRequest(type="interactive", envelope_id=f"env-{n}", payload=payload)


def test_a_claim_over_socket_mode_is_acknowledged_and_settled_like_http(db: Database):
    router = make_router(db)
    lead_id = add_lead(db, router, make_lead(1, "hot"))
    listener = SocketMode(router, app_token="xapp-test", base_url="http://127.0.0.1:9/api/")
    client = RecordingClient()
    listener.on_request(client, envelope(lead_id, "U0BEN", 1))  # type: ignore[arg-type]
    listener.on_request(client, envelope(lead_id, "U0ANA", 2))  # type: ignore[arg-type]
    assert [r.envelope_id for r in client.sent] == ["env-1", "env-2"]
    with db.session() as s:
        row = leads.get(s, lead_id)
    assert row is not None and (row.status, row.claimed_by) == ("claimed", "Ben Okafor")


def test_other_envelopes_are_acknowledged_and_ignored(db: Database):
    router = make_router(db)
    listener = SocketMode(router, app_token="xapp-test", base_url="http://127.0.0.1:9/api/")
    client = RecordingClient()
    listener.on_request(client, SocketModeRequest(type="events_api", envelope_id="e", payload={}))  # type: ignore[arg-type]
    assert [r.envelope_id for r in client.sent] == ["e"]
