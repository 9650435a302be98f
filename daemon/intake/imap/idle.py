"""Waiting for mail on the open connection: IDLE until the server says anything, the
period ends, or ``stop`` is set."""

from __future__ import annotations

import select
import socket
import ssl
import threading
import time

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

#: how often a wait checks ``stop``; a stop is honoured within about this long
_STOP_CHECK = 0.5


def idle(client: IMAPClient, stop: threading.Event, seconds: float) -> None:
    """IDLE until the server says anything, ``seconds`` pass, or ``stop`` is set.

    The responses themselves are not parsed: any of them means "catch up by UID".
    Waiting is select() on the socket and the reply to DONE is read with blocking
    reads, never imapclient's non-blocking ``idle_check`` (it can fail on a response
    that arrives in pieces: ``unterminated line``).
    """
    if _start_idle(client):
        _wait_readable(client, stop, seconds)
    client.idle_done()


def _start_idle(client: IMAPClient) -> bool:
    """Send IDLE and read up to its continuation. False if the server already reported
    a change before it (imapclient's ``idle()`` would raise on that)."""
    imap = client._imap  # imaplib underneath: only its documented-in-source command helpers
    tag = imap._command("IDLE")
    client._idle_tag = tag
    quiet = True
    while True:
        resp = imap._get_response()
        if resp is None:
            return quiet  # the continuation: IDLE is on
        if imap.tagged_commands.get(tag):
            typ, data = imap.tagged_commands.pop(tag)
            raise IMAPClientError(f"IDLE refused: {typ} {data}")
        quiet = False


def _wait_readable(client: IMAPClient, stop: threading.Event, seconds: float) -> bool:
    """True as soon as the server has sent something; False on timeout or ``stop``."""
    deadline = time.monotonic() + seconds
    sock = client.socket()
    while not stop.is_set():
        if _buffered(client, sock):
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        ready, _, _ = select.select([sock], [], [], min(_STOP_CHECK, left))
        if ready:
            return True
    return False


def _buffered(client: IMAPClient, sock: socket.socket) -> bool:
    """Whether bytes already wait in TLS or imaplib's read buffer (select cannot see them)."""
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    # imaplib's buffered reader (private): a reply that arrived together with IDLE's
    # continuation line sits here, not on the socket.
    peek = getattr(getattr(client._imap, "file", None), "peek", None)
    if peek is None:
        return False
    timeout = sock.gettimeout()
    sock.settimeout(0.0)
    try:
        return bool(peek(1))
    except (BlockingIOError, ssl.SSLWantReadError, InterruptedError):
        return False
    finally:
        sock.settimeout(timeout)
