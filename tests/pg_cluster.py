"""PostgreSQL for the test session: a throwaway cluster, and a fresh database per test.

``find_bin_dir`` looks for ``initdb``/``postgres`` on ``PATH`` and then in Debian's
``/usr/lib/postgresql/<version>/bin`` (the ``postgresql`` package does not put them on
``PATH``). ``TempCluster`` runs ``initdb`` into a new temporary directory and starts a
server that listens on 127.0.0.1 only, on a free port, with its unix socket inside that
directory; ``stop`` shuts it down and deletes the directory.

PostgreSQL refuses to run as root, so when the tests run as root the cluster belongs to
and runs as an unprivileged user (Debian's ``postgres``, else ``nobody``).

Durability is off (``fsync``, ``synchronous_commit``, ``full_page_writes``) and the
cluster lives on ``/dev/shm`` when it has room: the data is thrown away at the end of
the session, and this keeps ``CREATE DATABASE`` per test around 10 ms.
The server is asked to die with the process that started it, so a test run that is
killed does not leave a postmaster behind.

``Server`` wraps any reachable server (the throwaway one, or ``LEADPIPE_TEST_DATABASE_URL``)
and creates and drops uniquely named, empty databases on it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url

#: the role that owns the throwaway cluster (``initdb -U``) and that tests connect as
SUPERUSER = "postgres"
_PR_SET_PDEATHSIG = 1
#: free space ``/dev/shm`` must have to hold the cluster (a few databases and its WAL)
_SHM_NEEDS = 1 << 30
_PREFIX = "leadpipe-pg-"


class ClusterError(RuntimeError):
    """Raised when the throwaway cluster cannot be initialised or started."""


def find_bin_dir() -> Path | None:
    """The directory holding ``initdb`` and ``postgres``, newest version first; else ``None``."""
    initdb = shutil.which("initdb")
    if initdb:
        bin_dir = Path(os.path.realpath(initdb)).parent
        if (bin_dir / "postgres").is_file():
            return bin_dir
    candidates = []
    for bin_dir in Path("/usr/lib/postgresql").glob("*/bin"):
        if (bin_dir / "initdb").is_file() and (bin_dir / "postgres").is_file():
            match = re.match(r"\d+", bin_dir.parent.name)
            candidates.append((int(match.group()) if match else 0, bin_dir))
    return max(candidates)[1] if candidates else None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class TempCluster:
    """A PostgreSQL cluster in a temporary directory, from ``initdb`` to ``stop``."""

    bin_dir: Path
    root: Path = field(init=False)
    port: int = field(init=False, default=0)
    _run_as: pwd.struct_passwd | None = field(init=False, default=None)
    _proc: subprocess.Popen[bytes] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        parent = _parent_dir()
        _remove_dead_clusters(Path(parent))
        self.root = Path(tempfile.mkdtemp(prefix=_PREFIX, dir=parent))
        if os.geteuid() == 0:
            self._run_as = _unprivileged_user()
            os.chown(self.root, self._run_as.pw_uid, self._run_as.pw_gid)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def start(self, attempts: int = 3, timeout: float = 60.0) -> None:
        """``initdb`` and start the server. Raises ``ClusterError`` with the server's log."""
        init = subprocess.run(
            [
                str(self.bin_dir / "initdb"),
                "-D", str(self.data_dir),
                "-U", SUPERUSER,
                "-A", "trust",
                "-E", "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            **self._popen_kwargs(),
        )  # fmt: skip
        if init.returncode != 0:
            raise ClusterError(f"initdb exited with {init.returncode}:\n{init.stdout}{init.stderr}")
        # free_port() can race with another process taking the port: then retry with another.
        for _ in range(attempts):
            self.port = free_port()
            if self._start_server(timeout):
                return
            if "could not bind" not in self._log_tail():
                break
        raise ClusterError(f"PostgreSQL did not start; its log ends:\n{self._log_tail()}")

    def _start_server(self, timeout: float) -> bool:
        with open(self.log_file, "ab") as log:
            self._proc = subprocess.Popen(
                [
                    str(self.bin_dir / "postgres"),
                    "-D", str(self.data_dir),
                    "-c", "listen_addresses=127.0.0.1",
                    "-c", f"port={self.port}",
                    "-c", f"unix_socket_directories={self.root}",
                    "-c", "fsync=off",
                    "-c", "synchronous_commit=off",
                    "-c", "full_page_writes=off",
                    "-c", "wal_level=minimal",
                    "-c", "max_wal_senders=0",
                    "-c", "max_wal_size=256MB",
                    "-c", "max_connections=200",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
                **self._popen_kwargs(),
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._proc = None
                return False
            try:
                psycopg.connect(
                    host="127.0.0.1", port=self.port, user=SUPERUSER, dbname="postgres",
                    connect_timeout=2,
                ).close()  # fmt: skip
                return True
            except psycopg.OperationalError:
                time.sleep(0.05)
        self.stop(remove=False)
        raise ClusterError(f"PostgreSQL not ready after {timeout}s:\n{self._log_tail()}")

    def stop(self, *, remove: bool = True) -> None:
        """Stop the server (immediate shutdown: nothing in it is worth a checkpoint)."""
        try:
            if self._proc is not None and self._proc.poll() is None:
                self._proc.send_signal(signal.SIGQUIT)
                try:
                    self._proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
            self._proc = None
        finally:
            if remove:
                shutil.rmtree(self.root, ignore_errors=True)

    def _popen_kwargs(self) -> dict[str, Any]:
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        env.pop("PGDATA", None)
        kwargs: dict[str, Any] = {"cwd": self.root, "env": env, "stdin": subprocess.DEVNULL}
        if self._run_as is not None:
            kwargs.update(user=self._run_as.pw_uid, group=self._run_as.pw_gid, extra_groups=[])
        return kwargs

    def _log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Server:
    """A reachable PostgreSQL server on which tests get their own databases.

    ``admin_url`` names a database to connect to for ``CREATE``/``DROP DATABASE``; its role
    needs the ``CREATEDB`` privilege.
    """

    def __init__(self, admin_url: str):
        url = make_url(admin_url)
        if url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername="postgresql+psycopg")
        self.admin_url: URL = url
        self._conn = psycopg.connect(
            host=url.host or None,
            port=url.port or None,
            user=url.username or None,
            password=url.password or None,
            dbname=url.database or "postgres",
            autocommit=True,
            connect_timeout=10,
            **{str(k): str(v) for k, v in url.query.items()},
        )
        version = self._conn.info.server_version
        # PostgreSQL 15's default, WAL_LOG, writes the whole copy (~8 MB) to the WAL;
        # FILE_COPY (the only way before 15) copies files and keeps the WAL small.
        self._strategy = " STRATEGY FILE_COPY" if version >= 150000 else ""
        self._force = " WITH (FORCE)" if version >= 130000 else ""

    def url(self, database: str) -> str:
        return self.admin_url.set(database=database).render_as_string(hide_password=False)

    def create_database(self, *, template: str = "template0", prefix: str = "leadpipe_test") -> str:
        """Create a uniquely named copy of ``template`` (by default empty); return its URL.

        ``template`` must have no open connections while it is copied.
        """
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        self._conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}" + self._strategy).format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop the database of ``url``, closing whatever connections a test left open."""
        name = make_url(url).database
        if name:
            self._conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {}" + self._force).format(sql.Identifier(name))
            )

    def close(self) -> None:
        with contextlib.suppress(psycopg.Error):
            self._conn.close()


def _die_with_parent() -> None:
    # Runs in the child between fork and exec (after the switch of user): the kernel sends
    # SIGQUIT, PostgreSQL's immediate shutdown, to the server when the test process dies.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGQUIT, 0, 0, 0)


def _parent_dir() -> str:
    """Where to put the cluster: ``/dev/shm`` when it has room, else the temp dir.

    Copying a database for each test is ~10 ms on tmpfs and often over 100 ms on a
    virtual disk. Docker gives containers a 64 MB ``/dev/shm``: too small, so the size
    is checked. Any candidate must let other users through when the cluster runs as
    another user.
    """
    shm = Path("/dev/shm")
    try:
        st = os.statvfs(shm)
        if (
            os.access(shm, os.W_OK)
            and st.f_bavail * st.f_frsize >= _SHM_NEEDS
            and _traversable(shm)
        ):
            return str(shm)
    except OSError:
        pass
    tmp = Path(tempfile.gettempdir()).resolve()
    return str(tmp) if os.geteuid() != 0 or _traversable(tmp) else "/tmp"


def _remove_dead_clusters(parent: Path, min_age: float = 300.0) -> None:
    """Delete what killed test runs left behind (their server died with them, see
    ``_die_with_parent``; on ``/dev/shm`` the files would hold memory until reboot).

    A cluster of a running session always has ``data/postmaster.pid``; ``min_age`` spares
    one whose ``initdb`` is still running.
    """
    for root in parent.glob(_PREFIX + "*"):
        try:
            if (root / "data" / "postmaster.pid").exists():
                continue
            if time.time() - root.stat().st_mtime < min_age:
                continue
        except OSError:
            continue
        shutil.rmtree(root, ignore_errors=True)


def _traversable(path: Path) -> bool:
    return all(p.stat().st_mode & 0o001 for p in [path, *path.parents])


def _unprivileged_user() -> pwd.struct_passwd:
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise ClusterError("running as root and neither a 'postgres' nor a 'nobody' user exists")
