"""Slack Socket Mode: interactivity over a websocket, for brokerages without a public URL.

slack-sdk's ``SocketModeClient`` opens the connection with the app-level token
(``apps.connections.open`` on the configured ``base_url``) and hands us each envelope.
Each is acknowledged first (Slack wants that within 3 s), then settled by the same
``Router.handle_interaction`` that serves ``POST /slack/actions``. Slack authenticates
the websocket itself, so there is no signature to check here.
"""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.socket_mode import SocketModeClient
from slack_sdk.socket_mode.client import BaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from daemon.routing.assign import Router

log = logging.getLogger(__name__)


class SocketMode:
    """Listens for Claim clicks over Socket Mode while started."""

    def __init__(self, router: Router, *, app_token: str, base_url: str = "https://slack.com/api/"):
        self.router = router
        self.client = SocketModeClient(
            app_token=app_token,
            web_client=WebClient(base_url=base_url if base_url.endswith("/") else base_url + "/"),
            auto_reconnect_enabled=True,
        )
        self.client.socket_mode_request_listeners.append(self.on_request)

    def on_request(self, client: BaseSocketModeClient, req: SocketModeRequest) -> None:
        client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
        if req.type != "interactive":
            return
        try:
            self.router.handle_interaction(req.payload)
        except Exception:  # isolation boundary: one envelope's failure must not end the socket
            log.exception("socket mode: settling an interaction failed")

    def start(self) -> None:
        """Connect (slack-sdk keeps the connection and reconnects in its own threads)."""
        self.client.connect()
        log.info("Slack Socket Mode connected")

    def stop(self) -> None:
        self.client.close()
