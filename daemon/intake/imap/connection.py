"""Connecting and logging in, the ``doctor`` probe, selecting the watched folder, and the
wording of every socket, TLS and IMAP error as a ``MailboxError`` that says what to do."""

from __future__ import annotations

import contextlib
import socket
import ssl
from dataclasses import dataclass

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError

from daemon.config import MailboxSettings
from daemon.errors import MailboxError
from daemon.intake.imap.oauth import oauth2_token


@dataclass(frozen=True)
class MailboxReport:
    """What ``check`` found: enough for ``leadpipe doctor`` to print."""

    name: str
    host: str
    port: int
    security: str
    folder: str
    capabilities: tuple[str, ...]
    messages: int
    uidvalidity: int | None
    uidnext: int | None
    idle: bool
    move: bool
    uidplus: bool
    keywords: bool
    processed_folder: str | None
    processed_folder_exists: bool | None

    def summary(self) -> str:
        marking = (
            f"moved to {self.processed_folder!r}"
            + ("" if self.processed_folder_exists else " (will be created)")
            if self.processed_folder
            else "marked with a keyword" if self.keywords else "tracked by UID only"
        )
        return (
            f"{self.name}: {self.host}:{self.port} ({self.security}), folder {self.folder!r}: "
            f"{self.messages} messages; IDLE {'yes' if self.idle else 'no (polling)'}; "
            f"processed emails {marking}"
        )


@dataclass(frozen=True)
class Folder:
    """The selected folder as the server reported it."""

    uidvalidity: int
    uidnext: int | None
    exists: int
    keywords: bool  # custom keywords are kept (PERMANENTFLAGS has \* )


def connect(settings: MailboxSettings, *, ssl_context: ssl.SSLContext | None = None) -> IMAPClient:
    """A logged-in ``IMAPClient`` for ``settings``. Raises ``MailboxError`` saying what failed."""
    stage = "connecting"
    client: IMAPClient | None = None
    try:
        context = ssl_context or ssl.create_default_context()
        client = IMAPClient(
            settings.host,
            port=settings.effective_port,
            ssl=settings.security == "ssl",
            ssl_context=context,
            timeout=settings.timeout.total_seconds(),
        )
        client.normalise_times = False
        sock = client.socket()
        # Our commands are small and latency matters more than packet count.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if settings.security == "starttls":
            stage = "starting TLS"
            if not client.has_capability("STARTTLS"):
                raise MailboxError(
                    f"mailbox {settings.name}: {settings.host} does not offer STARTTLS; "
                    "use security: ssl (usually port 993)"
                )
            client.starttls(context)
        stage = "logging in"
        if settings.password:
            client.login(settings.username, settings.password)
        else:
            stage = "logging in with XOAUTH2"
            client.oauth2_login(settings.username, oauth2_token(settings))
        return client
    except BaseException as exc:
        if client is not None:
            close(client)
        if isinstance(exc, IMAPClientError | OSError):
            raise describe(settings, exc, stage) from exc
        raise


def check(settings: MailboxSettings, *, ssl_context: ssl.SSLContext | None = None) -> MailboxReport:
    """Log in, examine the folder read-only, and report. Raises ``MailboxError``."""
    client = connect(settings, ssl_context=ssl_context)
    try:
        folder = select_folder(client, settings, readonly=True)
        stage = "listing folders"
        try:
            caps = tuple(c.decode("ascii", "replace") for c in client.capabilities())
            pf_exists = (
                client.folder_exists(settings.processed_folder)
                if settings.processed_folder
                else None
            )
        except (IMAPClientError, OSError) as exc:
            raise describe(settings, exc, stage) from exc
    finally:
        close(client)
    return MailboxReport(
        name=settings.name,
        host=settings.host,
        port=settings.effective_port,
        security=settings.security,
        folder=settings.folder,
        capabilities=caps,
        messages=folder.exists,
        uidvalidity=folder.uidvalidity,
        uidnext=folder.uidnext,
        idle="IDLE" in caps,
        move="MOVE" in caps,
        uidplus="UIDPLUS" in caps,
        keywords=folder.keywords,
        processed_folder=settings.processed_folder,
        processed_folder_exists=pf_exists,
    )


def select_folder(client: IMAPClient, settings: MailboxSettings, *, readonly: bool = False) -> Folder:
    """Select (or examine) the watched folder; a missing one is a ``MailboxError`` naming
    the folders that do exist."""
    try:
        resp = client.select_folder(settings.folder, readonly=readonly)
    except IMAPClientError as exc:
        try:
            names = [f[2] for f in client.list_folders()]
        except (IMAPClientError, OSError):
            names = None
        if names is not None and settings.folder not in names:
            shown = ", ".join(repr(n) for n in names[:20]) + (" …" if len(names) > 20 else "")
            raise MailboxError(
                f"mailbox {settings.name}: folder {settings.folder!r} does not exist on "
                f"{settings.host}; the folders there are {shown}; check `folder`"
            ) from exc
        raise describe(settings, exc, f"selecting {settings.folder!r}") from exc
    except OSError as exc:
        raise describe(settings, exc, f"selecting {settings.folder!r}") from exc
    permanent = resp.get(b"PERMANENTFLAGS", ())
    uidnext = resp.get(b"UIDNEXT")
    return Folder(
        uidvalidity=int(resp[b"UIDVALIDITY"]),
        uidnext=int(uidnext) if uidnext is not None else None,
        exists=int(resp.get(b"EXISTS", 0)),
        keywords=b"\\*" in permanent
        or settings.processed_keyword.encode() in permanent,
    )


def describe(settings: MailboxSettings, exc: BaseException, stage: str) -> MailboxError:
    """Translate a socket, TLS or IMAP exception into a ``MailboxError`` that says what to do."""
    if isinstance(exc, MailboxError):
        return exc
    host, where = settings.host, f"{settings.host}:{settings.effective_port}"
    if isinstance(exc, socket.gaierror):
        what = f"cannot resolve host {host!r} ({exc.strerror}); check `host` and DNS"
    elif isinstance(exc, ConnectionRefusedError):
        what = f"connection refused by {where}; is the server up, and is `port` right?"
    elif isinstance(exc, TimeoutError):
        what = f"no answer from {where} within {settings.timeout.total_seconds():g}s while {stage}"
    elif isinstance(exc, ssl.SSLCertVerificationError):
        what = f"the TLS certificate of {host} is not trusted: {exc.verify_message}"
    elif isinstance(exc, ssl.SSLError):
        what = (
            f"TLS with {where} failed while {stage} ({exc.reason or exc}); does port "
            f"{settings.effective_port} speak security: {settings.security}? "
            "(993 is usually ssl, 143 starttls)"
        )
    elif isinstance(exc, LoginError):
        secret = "password" if settings.password else "OAuth2 token"
        what = (
            f"{host} refused the login of {settings.username!r}: {_text(exc)}; "
            f"check the {secret}"
        )
    elif isinstance(exc, IMAPClientAbortError | OSError):
        what = f"connection to {where} lost while {stage}: {_text(exc) or type(exc).__name__}"
    else:
        what = f"{host} answered an error while {stage}: {_text(exc)}"
    return MailboxError(f"mailbox {settings.name}: {what}")


def _text(exc: BaseException) -> str:
    parts = []
    for a in exc.args:
        parts.append(a.decode("utf-8", "replace") if isinstance(a, bytes) else str(a))
    text = " ".join(parts).strip()
    if text.startswith("b'") or text.startswith('b"'):
        text = text[2:-1]
    return text


def close(client: IMAPClient) -> None:
    try:
        client.logout()
    except Exception:  # isolation boundary: a broken connection is dropped either way
        with contextlib.suppress(Exception):  # isolation boundary: nothing left to close
            client.shutdown()
