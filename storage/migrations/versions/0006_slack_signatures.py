"""slack_signatures: Slack request signatures already accepted, so a replay gets 401

Revision ID: 0006
Revises: 0005

``POST /slack/actions`` inserts each good signature before it acts on the request; a
second insert of the same signature (the same bytes sent again, to this replica or
another, before or after a restart) fails on the primary key and is refused. A row goes
once its ``expires_at`` (the request's timestamp plus 5 minutes) is past: by then the
timestamp check refuses the request anyway.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slack_signatures",
        sa.Column("signature", sa.String(length=100), nullable=False),
        sa.Column("seen_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("signature", name=op.f("pk_slack_signatures")),
    )
    with op.batch_alter_table("slack_signatures", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_slack_signatures_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("slack_signatures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_slack_signatures_expires_at"))
    op.drop_table("slack_signatures")
