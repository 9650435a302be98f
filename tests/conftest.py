"""Fixtures every test may use: a fresh database per test, on SQLite and on PostgreSQL.

``database_url``  an empty database (no tables) per test, once per backend: ids
                  ``sqlite`` (``sqlite:///<tmp_path>/leadpipe.db``) and ``postgresql``
                  (a uniquely named database, created empty from ``template0`` and
                  dropped after the test). The ``postgresql`` case carries the
                  ``postgres`` mark, so ``-m "not postgres"`` runs SQLite only.
``db``            ``Database(database_url)`` with ``upgrade()`` already run, disposed
                  after the test. On PostgreSQL, when a test uses ``db``, its
                  ``database_url`` is copied from a database migrated once per session
                  (``postgres_migrated_template``), so ``upgrade()`` finds nothing to do;
                  on SQLite every test migrates its own file. Either way the test starts
                  on a migrated, otherwise empty database.
``sqlite_url``    a SQLite URL in the test's temp dir, for tests that need only SQLite.
``postgres_server`` (session) the PostgreSQL server the ``postgresql`` cases use:
                  ``LEADPIPE_TEST_DATABASE_URL`` if set (its role needs CREATEDB), else a
                  throwaway cluster started from the machine's binaries (see
                  ``pg_cluster.py``) and stopped at the end of the session. With neither,
                  the ``postgresql`` cases are skipped, except under ``CI=true``, where
                  they fail: CI must never pass without having run PostgreSQL.

A test that only makes sense on one backend narrows the parameter:
``@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_cluster import Server, TempCluster, find_bin_dir
from sqlalchemy.engine import make_url

from storage.db import Database

TEST_DATABASE_URL_ENV = "LEADPIPE_TEST_DATABASE_URL"


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def pytest_report_header(config: pytest.Config) -> str:
    if os.environ.get(TEST_DATABASE_URL_ENV):
        return f"postgresql: {TEST_DATABASE_URL_ENV} (per-test databases on that server)"
    bin_dir = find_bin_dir()
    if bin_dir is not None:
        return f"postgresql: throwaway cluster from {bin_dir}"
    verdict = "FAIL (CI=true)" if _in_ci() else "skipped"
    return f"postgresql: no server and no binaries found; postgresql cases {verdict}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Server]:
    env_url = os.environ.get(TEST_DATABASE_URL_ENV)
    if env_url:
        # Set on purpose, so a server that cannot be reached is an error, not a skip.
        server = Server(env_url)
        try:
            yield server
        finally:
            server.close()
        return
    bin_dir = find_bin_dir()
    if bin_dir is None:
        reason = (
            "PostgreSQL not available: no initdb/postgres on PATH or in "
            f"/usr/lib/postgresql/*/bin, and {TEST_DATABASE_URL_ENV} is not set. "
            "Install the 'postgresql' package or set the variable."
        )
        if _in_ci():
            pytest.fail(f"CI=true: {reason}", pytrace=False)
        pytest.skip(reason)
    cluster = TempCluster(bin_dir)
    try:
        cluster.start()
        server = Server(cluster.url())
        try:
            yield server
        finally:
            server.close()
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def postgres_migrated_template(postgres_server: Server) -> Iterator[str]:
    """The name of a database on ``postgres_server`` migrated to head, to copy per test."""
    url = postgres_server.create_database(prefix="leadpipe_template")
    database = Database(url)
    try:
        database.upgrade()
    finally:
        database.dispose()  # a template with open connections cannot be copied
    try:
        yield make_url(url).database or ""
    finally:
        postgres_server.drop_database(url)


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/leadpipe.db"
        return
    if request.param != "postgresql":
        raise ValueError(f"database_url: unknown backend {request.param!r}")
    # Looked up lazily: a run that selects no postgresql case never starts a server.
    server: Server = request.getfixturevalue("postgres_server")
    template = "template0"
    if "db" in request.fixturenames:
        # ``db`` would migrate it before the test starts anyway: copying an already
        # migrated database is quicker, and ``db``'s own upgrade() is then a no-op.
        template = request.getfixturevalue("postgres_migrated_template")
    url = server.create_database(template=template)
    try:
        yield url
    finally:
        server.drop_database(url)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.upgrade()
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    # Its own subdirectory, so a test that also takes ``database_url`` gets two databases.
    return f"sqlite:///{tmp_path}/sqlite/leadpipe.db"
