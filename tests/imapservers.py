"""Real IMAP servers on loopback for the tests: pymap and Dovecot, each in a temp dir.

``imap_server`` (a fixture, parametrized ``pymap`` / ``dovecot``) starts a fresh server per
test and stops it afterwards:

- **pymap**: ``pymap … dict`` in a subprocess, one user (``leads`` / a random password),
  mail in memory (so a restart starts from an empty mailbox with a new UIDVALIDITY).
- **Dovecot** (Debian's ``dovecot-imapd``): ``dovecot -F -c <dir>/dovecot.conf`` with a
  configuration written here: listening on 127.0.0.1 only, a passwd-file user, maildir
  in the temp dir. As root, mail is owned by ``nobody`` and the login process runs as
  Debian's ``dovenull``; Dovecot refuses to run either as root. Optionally with TLS
  (``tls=True``: a self-signed certificate made with ``openssl``, ssl on one port and
  STARTTLS on the other).

A missing ``dovecot`` binary skips the Dovecot cases with the reason, except under
``CI=true``, where it fails them: CI must never pass without having run Dovecot.

Both servers get a port that was free a moment before (pymap cannot report a port-0
bind, Dovecot cannot bind port 0 at all) and keep it across ``restart()``, so a watcher
configured with it can reconnect.

Run as a script (``python tests/imapservers.py '<json>'``) this module is a watcher in a
child process, for the tests that SIGKILL it; see ``child_main``.
"""

from __future__ import annotations

import contextlib
import grp
import http.server
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from daemon.config import MailboxSettings  # noqa: E402


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}", pytrace=False)
        time.sleep(interval)


def make_email(n: int, tag: str = "t", *, size: int = 2000, html: bool = False) -> bytes:
    """A lead-like notification email with a unique Message-ID; ``size`` bytes of body."""
    date = format_datetime(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    filler = ("Buyer is interested in the property and asked for a showing. " * 200)[:size]
    headers = (
        f"From: Zillow <leads@zillow.example>\r\n"
        f"To: leads@brokerage.example\r\n"
        f"Subject: New lead {tag}-{n}: 123 Main St\r\n"
        f"Date: {date}\r\n"
        f"Message-ID: <{tag}-{n}@zillow.example>\r\n"
        "MIME-Version: 1.0\r\n"
    )
    if not html:
        body = f"Name: Buyer {n}\r\nPhone: 305-555-{n % 10000:04d}\r\n\r\n{filler}\r\n"
        return (headers + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body).encode()
    # Shaped like a portal's notification: multipart/alternative, both parts
    # quoted-printable, the HTML a table layout with inline styles.
    from email.charset import QP, Charset
    from email.mime.multipart import MIMEMultipart
    from email.mime.text import MIMEText

    cs = Charset("utf-8")
    cs.body_encoding = QP
    text = f"Name: Buyer {n}\nPhone: 305-555-{n % 10000:04d}\nEmail: buyer{n}@example.com\n\n{filler[: size // 8]}\n"
    cell = '<td style="padding:8px 12px;font-family:Helvetica,Arial,sans-serif;font-size:14px;color:#2a2a33;border-bottom:1px solid #e6e6e6">'
    rows = "".join(
        f"<tr>{cell}Detail {i} \u2014</td>{cell}{filler[(i * 37) % 500 : (i * 37) % 500 + 90]}</td></tr>\n"
        for i in range(size // 420)
    )
    html_body = (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><style>a{color:#006aff}</style></head>'
        '<body style="margin:0;padding:0;background:#f4f4f4"><table width="100%" cellpadding="0" '
        f'cellspacing="0" role="presentation"><tr><td align="center"><h1 style="font-size:20px">New lead: Buyer {n}</h1>'
        f'<table width="600" style="background:#fff">{rows}</table>'
        f'<p><a href="https://example.com/lead/{n}?utm_source=email&amp;utm_medium=notification">Reply</a></p>'
        "</td></tr></table></body></html>"
    )
    msg = MIMEMultipart("alternative")
    for part in (MIMEText(text, "plain", cs), MIMEText(html_body, "html", cs)):  # type: ignore[arg-type]
        msg.attach(part)
    mime = msg.as_bytes().split(b"\n\n", 1)[1].replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    boundary = msg.get_boundary()
    return (
        headers + f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'
    ).encode() + mime


class ImapServer:
    """One IMAP server process on 127.0.0.1, with a single user."""

    kind = "imap"

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.host = "127.0.0.1"
        self.port = free_port()
        self.username = "leads"
        self.password = secrets.token_hex(8)
        self.proc: subprocess.Popen[bytes] | None = None

    # -- lifecycle --------------------------------------------------------------------

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        log = open(self.workdir / f"{self.kind}.out", "ab")  # noqa: SIM115 - closed in stop()
        self._log = log
        self.proc = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
            start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited at start:\n{self.output()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as s:
                    if s.recv(100).startswith(b"* OK"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.kind} did not start:\n{self.output()}")
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        self._log.close()
        # Wait until the port is really closed, so a restart can take it again.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection((self.host, self.port), timeout=0.2).close()
            except OSError:
                return
            time.sleep(0.05)

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()

    def output(self) -> str:
        path = self.workdir / f"{self.kind}.out"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    # -- talking to it as a test ------------------------------------------------------

    def client(self) -> IMAPClient:
        c = IMAPClient(self.host, port=self.port, ssl=False, timeout=15)
        # imaplib writes an APPEND literal and its final CRLF separately; without
        # NODELAY pymap waits ~50 ms per APPEND on a delayed ACK.
        c.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.login(self.username, self.password)
        return c

    @contextlib.contextmanager
    def session(self) -> Iterator[IMAPClient]:
        c = self.client()
        try:
            yield c
        finally:
            with contextlib.suppress(Exception):
                c.logout()

    def append(self, messages: list[bytes], folder: str = "INBOX") -> None:
        with self.session() as c:
            for m in messages:
                c.append(folder, m)

    def uids(self, folder: str = "INBOX") -> list[int]:
        with self.session() as c:
            if not c.folder_exists(folder):
                return []
            c.select_folder(folder, readonly=True)
            return sorted(c.search(["ALL"]))

    def message_ids(self, folder: str = "INBOX") -> list[str]:
        with self.session() as c:
            if not c.folder_exists(folder):
                return []
            c.select_folder(folder, readonly=True)
            uids = c.search(["ALL"])
            if not uids:
                return []
            got = c.fetch(uids, [b"BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
            out = []
            for item in got.values():
                raw = next(v for k, v in item.items() if k.startswith(b"BODY["))
                out.append(raw.decode().split(":", 1)[1].strip())
            return sorted(out)

    def with_keyword(self, keyword: str, folder: str = "INBOX") -> list[int]:
        with self.session() as c:
            c.select_folder(folder, readonly=True)
            return sorted(c.search(["KEYWORD", keyword]))

    def create_folder(self, folder: str) -> None:
        with self.session() as c:
            if not c.folder_exists(folder):
                c.create_folder(folder)

    def recreate_folder(self, folder: str) -> None:
        """Delete ``folder`` and create it again: a new UIDVALIDITY, UIDs from 1."""
        with self.session() as c:
            c.delete_folder(folder)
            c.create_folder(folder)

    def uidvalidity(self, folder: str = "INBOX") -> int:
        with self.session() as c:
            return int(c.folder_status(folder, ["UIDVALIDITY"])[b"UIDVALIDITY"])

    def settings(self, **overrides: Any) -> MailboxSettings:
        return MailboxSettings(**self.settings_values(**overrides))

    def settings_values(self, **overrides: Any) -> dict[str, Any]:
        values: dict[str, Any] = {
            "name": "leads",
            "host": self.host,
            "port": self.port,
            "security": "none",
            "username": self.username,
            "password": self.password,
            "folder": "INBOX",
            "processed_folder": "Processed",
            "start_from": "new",
            "poll_interval": "30s",
            "timeout": "5s",
            "fetch_batch": 50,
        }
        values.update(overrides)
        return values


class PymapServer(ImapServer):
    kind = "pymap"

    def command(self) -> list[str]:
        return [
            sys.executable, "-c", "import sys; from pymap.main import main; sys.exit(main())",
            "--host", self.host, "--port", str(self.port), "--no-tls",
            "dict", "--demo-user", self.username, "--demo-password", self.password,
        ]


def dovecot_binary() -> str | None:
    found = shutil.which("dovecot")
    if found:
        return found
    return "/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None


class DovecotServer(ImapServer):
    kind = "dovecot"

    def __init__(self, workdir: Path, *, tls: bool = False, oauth2_url: str | None = None):
        super().__init__(workdir)
        self.binary = dovecot_binary() or "dovecot"
        self.tls = tls
        self.oauth2_url = oauth2_url
        self.ssl_port = free_port() if tls else 0
        self._configure()

    def _configure(self) -> None:
        d = self.workdir
        # Dovecot's unprivileged processes must reach these paths.
        os.chmod(d, 0o755)
        for sub in ("run", "state", "mail", "home"):
            (d / sub).mkdir(exist_ok=True)
        if os.geteuid() == 0:
            mail_user, mail_group = "nobody", "nogroup"
            login_user, internal_user = _first_user("dovenull", "nobody"), _first_user("dovecot", "nobody")
            nobody = pwd.getpwnam("nobody")
            for sub in ("mail", "home"):
                os.chown(d / sub, nobody.pw_uid, nobody.pw_gid)
        else:
            me = pwd.getpwuid(os.geteuid())
            mail_user = login_user = internal_user = me.pw_name
            mail_group = grp.getgrgid(me.pw_gid).gr_name
        internal_group = grp.getgrgid(pwd.getpwnam(internal_user).pw_gid).gr_name
        (d / "passwd").write_text(f"{self.username}:{{PLAIN}}{self.password}::::::\n")
        os.chmod(d / "passwd", 0o600)
        tls = "ssl = no"
        imaps = "  inet_listener imaps {\n    port = 0\n  }"
        if self.tls:
            self._make_certificate()
            tls = f"ssl = yes\nssl_cert = <{d}/cert.pem\nssl_key = <{d}/key.pem"
            imaps = (
                f"  inet_listener imaps {{\n    address = {self.host}\n"
                f"    port = {self.ssl_port}\n    ssl = yes\n  }}"
            )
        auth_mechanisms = "plain login"
        oauth2_passdb = ""
        if self.oauth2_url:
            # XOAUTH2 as Gmail and Microsoft 365 do it: the token is checked by asking an
            # introspection endpoint (here a local HTTP server) whose user it is.
            auth_mechanisms += " xoauth2 oauthbearer"
            (d / "oauth2.conf.ext").write_text(
                f"introspection_mode = auth\nintrospection_url = {self.oauth2_url}\n"
                "username_attribute = username\n"
            )
            oauth2_passdb = (
                f"passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n"
                f"  args = {d}/oauth2.conf.ext\n}}\n"
            )
        (d / "dovecot.conf").write_text(
            f"""# written by tests/imapservers.py
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
listen = {self.host}
protocols = imap
{tls}
disable_plaintext_auth = no
auth_mechanisms = {auth_mechanisms}
auth_failure_delay = 0
default_internal_user = {internal_user}
default_internal_group = {internal_group}
default_login_user = {login_user}
first_valid_uid = 0
first_valid_gid = 0
mail_location = maildir:{d}/mail/%u
{oauth2_passdb}passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/passwd
}}
userdb {{
  driver = static
  args = uid={mail_user} gid={mail_group} home={d}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = {self.host}
    port = {self.port}
  }}
{imaps}
}}
service auth {{
  user = {"root" if os.geteuid() == 0 else mail_user}
}}
service auth-worker {{
  user = {"root" if os.geteuid() == 0 else mail_user}
}}
service anvil {{
  # no growing delay after failed logins: the tests log in wrongly on purpose
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""
        )

    def _make_certificate(self) -> None:
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-keyout", str(self.workdir / "key.pem"), "-out", str(self.workdir / "cert.pem"),
                "-subj", f"/CN={self.host}", "-addext", f"subjectAltName=IP:{self.host}",
            ],
            check=True, capture_output=True,
        )

    @property
    def cafile(self) -> Path:
        return self.workdir / "cert.pem"

    def command(self) -> list[str]:
        return [self.binary, "-F", "-c", str(self.workdir / "dovecot.conf")]

    def output(self) -> str:
        log = self.workdir / "dovecot.log"
        text = log.read_text(errors="replace")[-4000:] if log.exists() else ""
        return super().output() + text


def _first_user(*names: str) -> str:
    for n in names:
        try:
            pwd.getpwnam(n)
            return n
        except KeyError:
            continue
    raise RuntimeError(f"none of the users {names} exists")


def _dovecot_or_skip() -> None:
    if dovecot_binary() is not None:
        return
    reason = (
        "Dovecot not installed (no `dovecot` on PATH or in /usr/sbin); "
        "install Debian's dovecot-imapd to run the Dovecot cases"
    )
    if in_ci():
        pytest.fail(f"CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


@contextlib.contextmanager
def _workdir(kind: str) -> Iterator[Path]:
    # Not pytest's tmp_path: its parents are 0700, and Dovecot's unprivileged
    # processes must reach the configuration and the maildir.
    d = Path(tempfile.mkdtemp(prefix=f"leadpipe-{kind}-"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def start_server(kind: str, **kwargs: Any) -> contextlib.AbstractContextManager[ImapServer]:
    @contextlib.contextmanager
    def run() -> Iterator[ImapServer]:
        if kind == "dovecot":
            _dovecot_or_skip()
        with _workdir(kind) as d:
            server: ImapServer = DovecotServer(d, **kwargs) if kind == "dovecot" else PymapServer(d)
            server.start()
            try:
                yield server
            finally:
                server.close()

    return run()


@pytest.fixture(params=["pymap", "dovecot"])
def imap_server(request: pytest.FixtureRequest) -> Iterator[ImapServer]:
    """A fresh, running IMAP server for one test, once per kind."""
    with start_server(request.param) as server:
        yield server


@pytest.fixture
def dovecot_tls() -> Iterator[DovecotServer]:
    """Dovecot with a self-signed certificate: ``port`` speaks STARTTLS, ``ssl_port`` TLS."""
    with start_server("dovecot", tls=True) as server:
        assert isinstance(server, DovecotServer)
        yield server


class TokenIntrospection:
    """An OAuth2 userinfo endpoint on 127.0.0.1:0: ``token`` belongs to ``username``."""

    def __init__(self, username: str):
        self.username = username
        self.token = "ya29." + secrets.token_urlsafe(24)
        self.requests = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests += 1
                if self.headers.get("Authorization", "") == f"Bearer {outer.token}":
                    status, body = 200, {"username": outer.username}
                else:
                    status, body = 401, {"error": "invalid_token"}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_POST = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/userinfo"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def dovecot_oauth2() -> Iterator[tuple[DovecotServer, TokenIntrospection]]:
    """Dovecot that accepts XOAUTH2 tokens checked against a local introspection endpoint."""
    tokens = TokenIntrospection("leads")
    try:
        with start_server("dovecot", oauth2_url=tokens.url) as server:
            assert isinstance(server, DovecotServer)
            yield server, tokens
    finally:
        tokens.close()


# -- a watcher in a child process, for the SIGKILL tests ---------------------------------


def child_main(argv: list[str]) -> None:
    """Run a watcher with the settings and database in ``argv[0]`` (JSON).

    ``die_after``: the process SIGKILLs itself right after that many emails were
    committed by ``inbox.accept_many`` — after "stored", before "marked on the server".
    """
    import logging

    from daemon.intake.imap import Backoff, MailboxWatcher
    from daemon.intake.inbox import accept_many
    from storage.db import Database

    logging.basicConfig(level=logging.INFO, format="child %(levelname)s %(message)s")
    spec = json.loads(argv[0])
    die_after = spec.get("die_after")
    calls = 0

    def store(db: Database, raws: Any) -> Any:
        nonlocal calls
        stored = accept_many(db, raws)
        calls += len(raws)
        if die_after is not None and calls >= die_after:
            os.kill(os.getpid(), signal.SIGKILL)
        return stored

    db = Database(spec["database_url"])
    watcher = MailboxWatcher(
        MailboxSettings(**spec["settings"]), db, store=store, backoff=Backoff(0.05, 0.5)
    )
    watcher.run(threading.Event())


def spawn_child(settings: dict[str, Any], database_url: str, *, die_after: int | None = None,
                log: Path | None = None) -> subprocess.Popen[bytes]:
    spec = json.dumps({"settings": settings, "database_url": database_url, "die_after": die_after})
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - the child owns it
    return subprocess.Popen([sys.executable, str(Path(__file__).resolve()), spec],
                            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO)


if __name__ == "__main__":
    child_main(sys.argv[1:])
