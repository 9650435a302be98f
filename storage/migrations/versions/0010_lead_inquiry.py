"""lead_inquiry: what the inquiry reader found in a lead's message (issue 18)

Revision ID: 0010
Revises: 0009

- ``leads.inquiry``: JSON ``{intent, urgency, pre_approved, cash, investor, timeline_days,
  evidence}`` from ``daemon/qualifying/intent.py``; NULL for a lead stored before this
  migration (read back as an inquiry with every finding null: those leads are not re-read).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("inquiry", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.drop_column("inquiry")
