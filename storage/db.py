"""The database: engine, sessions, and bringing the schema up to date with Alembic.

SQLite by default (no setup), PostgreSQL (``postgresql+psycopg://``) in production.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from daemon.errors import StorageError

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
#: pg_advisory_lock key held while migrating, so replicas starting together take turns.
MIGRATION_LOCK = 7_146_825_001


class Database:
    """An engine and a session factory for one database URL.

    Raises ``StorageError`` for a URL it cannot use.
    """

    def __init__(self, url: str, *, echo: bool = False, create: bool = True):
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise StorageError(f"database_url {url!r} is not a database URL: {exc}") from exc
        if parsed.drivername == "postgresql":
            # psycopg 3 is the driver we ship; plain postgresql:// would ask for psycopg2.
            parsed = parsed.set(drivername="postgresql+psycopg")
        self.url = parsed
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if parsed.get_backend_name() == "sqlite":
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
            if parsed.database and parsed.database != ":memory:":
                if create:
                    Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
                else:
                    kwargs["creator"] = _existing_sqlite(parsed.database)
        else:
            kwargs["pool_pre_ping"] = True
        try:
            self.engine: Engine = create_engine(parsed, **kwargs)
        except (ArgumentError, ImportError) as exc:
            raise StorageError(f"cannot use database_url {url!r}: {exc}") from exc
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
            # pysqlite's own transaction handling defers BEGIN; take over so that
            # BEGIN IMMEDIATE can serialise writers (see ``write_session``).
            event.listen(self.engine, "begin", _sqlite_begin)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._probe_engine: Engine | None = None  # see ``probe``

    @classmethod
    def existing(cls, url: str) -> Database:
        """The database at ``url`` as it is, for commands that only read: never created
        nor migrated. Raises ``StorageError`` naming the path when a SQLite file is missing,
        and saying what to run when the schema is not the one this leadpipe reads."""
        db = cls(url, create=False)
        try:
            if db.is_sqlite and db.url.database and db.url.database != ":memory:":
                path = Path(db.url.database).resolve()
                if not path.is_file():
                    raise StorageError(
                        f"no database at {path} (database_url {db.describe()}): start the daemon "
                        "(leadpipe run) or run leadpipe db upgrade to create it, or set "
                        "database_url to the daemon's database")
            try:
                revision = db.probe()
            except StorageError as exc:
                db.ping()  # the clearer message: "cannot reach the database …"
                try:  # or no schema at all (an empty file, a new PostgreSQL database)
                    revision = db.current_revision()
                except SQLAlchemyError:
                    raise exc from None
                if revision is not None:
                    raise
            head = head_revision()
            if revision != head:
                raise StorageError(
                    f"the database {db.describe()} is at revision {revision or 'none'}, this "
                    f"leadpipe reads revision {head}: run leadpipe db upgrade (or start the daemon)")
        except BaseException:
            db.dispose()
            raise
        return db

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    @property
    def is_postgres(self) -> bool:
        return self.url.get_backend_name() == "postgresql"

    def describe(self) -> str:
        """The URL without its password, for logs and ``doctor``."""
        return self.url.render_as_string(hide_password=True)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in a transaction: committed on success, rolled back on error."""
        with self._sessions() as s, s.begin():
            yield s

    def ping(self) -> None:
        """Raises ``StorageError`` when the database cannot be reached."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            raise StorageError(
                f"cannot reach the database {self.describe()}: {_first_line(exc)}"
            ) from exc

    def upgrade(self) -> None:
        """Bring the schema to the newest migration. Raises ``StorageError`` on failure."""
        from alembic import command

        try:
            with self.engine.connect() as conn:
                if self.is_postgres:
                    conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
                    conn.commit()
                try:
                    cfg = alembic_config(self)
                    cfg.attributes["connection"] = conn
                    command.upgrade(cfg, "head")
                    conn.commit()
                finally:
                    if self.is_postgres:
                        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
                        conn.commit()
        except OperationalError as exc:
            raise StorageError(
                f"cannot reach the database {self.describe()}: {_first_line(exc)}"
            ) from exc
        except SQLAlchemyError as exc:
            raise StorageError(f"migrating {self.describe()} failed: {_first_line(exc)}") from exc

    def probe(self, timeout: float = 3.0) -> str | None:
        """The schema revision, read over a new connection rather than one from the pool: a
        SQLite file renamed or deleted under a running daemon still answers on the pool's
        open handle, and a dropped PostgreSQL database on a pooled connection until it is
        reused. Raises ``StorageError`` when the database cannot be read."""
        try:
            if self.is_sqlite:
                return self._probe_sqlite(timeout)
            if self._probe_engine is None:
                self._probe_engine = create_engine(
                    self.url, poolclass=NullPool, connect_args={"connect_timeout": max(1, int(timeout))})
            with self._probe_engine.connect() as conn:
                return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except (SQLAlchemyError, sqlite3.Error) as exc:
            raise StorageError(
                f"cannot read the database {self.describe()}: {_first_line(exc)}"
            ) from exc

    def _probe_sqlite(self, timeout: float) -> str | None:
        path = self.url.database
        if not path or path == ":memory:":
            with self.engine.connect() as c:
                return c.execute(text("SELECT version_num FROM alembic_version")).scalar()
        # mode=rw: a missing file is an error, not a new empty database
        conn = sqlite3.connect(f"file:{quote(str(Path(path).resolve()))}?mode=rw", uri=True,
                               timeout=timeout)
        try:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        finally:
            conn.close()
        return None if row is None else str(row[0])

    def current_revision(self) -> str | None:
        with self.engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()

    def dispose(self) -> None:
        self.engine.dispose()
        if self._probe_engine is not None:
            self._probe_engine.dispose()


def head_revision() -> str | None:
    """The newest migration's revision: the schema this code reads and writes."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg).get_current_head()


def _existing_sqlite(path: str) -> Any:
    """A connect function that opens ``path`` only if it exists (``mode=rw``): SQLite would
    otherwise create an empty database, and its ``-wal`` and ``-shm``, at a mistyped or
    moved path."""
    uri = f"file:{quote(str(Path(path).resolve()))}?mode=rw"

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(uri, uri=True, timeout=30, check_same_thread=False)

    return connect


def alembic_config(db: Database) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option(
        "sqlalchemy.url", db.url.render_as_string(hide_password=False).replace("%", "%%")
    )
    return cfg


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    # IMMEDIATE takes the write lock at BEGIN, so two writers queue on busy_timeout
    # instead of one failing with "database is locked" when it upgrades a read lock.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
