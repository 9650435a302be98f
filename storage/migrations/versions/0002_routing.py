"""routing: round-robin pointer, routing history, claim columns on leads

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    round_robin = op.create_table(
        "round_robin",
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("last_agent", sa.String(length=200), nullable=True),
        sa.Column("updated_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_round_robin")),
    )
    # The one pointer exists from the start, so routing only ever locks and updates it.
    op.bulk_insert(
        round_robin,
        [{"name": "default", "position": 0, "last_agent": None,
          "updated_at": storage.models.utcnow()}],
    )

    op.create_table(
        "routing_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("agent", sa.String(length=200), nullable=True),
        sa.Column("slack_user_id", sa.String(length=50), nullable=True),
        sa.Column("turn", sa.BigInteger(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("created_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["lead_id"], ["leads.id"], name=op.f("fk_routing_events_lead_id_leads")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_events")),
    )
    with op.batch_alter_table("routing_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_routing_events_lead_id"), ["lead_id"], unique=False)
        batch_op.create_index(
            "ix_routing_events_kind_created_at", ["kind", "created_at"], unique=False
        )

    with op.batch_alter_table("leads", schema=None) as batch_op:
        for name in ("assigned_at", "offered_at", "claim_deadline", "claimed_at"):
            batch_op.add_column(
                sa.Column(name, storage.models.UTCDateTime(timezone=True), nullable=True)
            )
        batch_op.add_column(sa.Column("repeat_of", sa.Integer(), nullable=True))
        batch_op.create_index(
            "ix_leads_status_claim_deadline", ["status", "claim_deadline"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.drop_index("ix_leads_status_claim_deadline")
        for name in ("repeat_of", "claimed_at", "claim_deadline", "offered_at", "assigned_at"):
            batch_op.drop_column(name)
    with op.batch_alter_table("routing_events", schema=None) as batch_op:
        batch_op.drop_index("ix_routing_events_kind_created_at")
        batch_op.drop_index(batch_op.f("ix_routing_events_lead_id"))
    op.drop_table("routing_events")
    op.drop_table("round_robin")
