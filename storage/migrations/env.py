"""Alembic environment: runs on the connection ``storage.db.Database.upgrade`` passes in."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from storage.models import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is None:  # `alembic` run by hand with sqlalchemy.url set
        engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
        with engine.connect() as connection:
            _migrate(connection)
            connection.commit()
        return
    _migrate(connection)


def _migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
