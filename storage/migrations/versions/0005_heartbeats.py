"""heartbeats: one row per running daemon (host, pid, version, started, last beat)

Revision ID: 0005
Revises: 0004

Each ``leadpipe run`` inserts its row at start and refreshes ``beat_at`` every few
seconds; a clean stop sets ``stopped_at``. ``/readyz`` and ``leadpipe status`` read the
newest beat to tell a running daemon from a stopped or hung one (a process that died
without stopping leaves a row whose beat simply grows old).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "heartbeats",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("started_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("beat_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_heartbeats")),
    )
    with op.batch_alter_table("heartbeats", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_heartbeats_beat_at"), ["beat_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("heartbeats", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_heartbeats_beat_at"))
    op.drop_table("heartbeats")
