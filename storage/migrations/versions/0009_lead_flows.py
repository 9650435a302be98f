"""lead_flows: flows and teams on leads and routing events, accepting, agents set away

Revision ID: 0009
Revises: 0008

- ``leads.flow`` / ``leads.team``: the flow that routed the lead and the team it went to
  (NULL: the default flow, the whole office; and for leads stored before this migration);
- ``leads.accepted_at``: when the agent who has the lead clicked Accept (or claimed it);
- ``leads.accept_deadline``: unaccepted by then, the lead moves to the next agent of its
  team (the deadline job, ``daemon/routing/response.py``); NULL: no deadline;
- ``routing_events.flow``: the flow behind each routing step;
- ``agent_away``: agents set away (``leadpipe agents away NAME --until …``), until when.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("flow", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("team", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("accepted_at", storage.models.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column("accept_deadline", storage.models.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.create_index(batch_op.f("ix_leads_accept_deadline"), ["accept_deadline"], unique=False)
    with op.batch_alter_table("routing_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("flow", sa.String(length=100), nullable=True))
    op.create_table(
        "agent_away",
        sa.Column("agent", sa.String(length=200), nullable=False),
        sa.Column("until", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("set_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("set_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("agent", name=op.f("pk_agent_away")),
    )


def downgrade() -> None:
    op.drop_table("agent_away")
    with op.batch_alter_table("routing_events", schema=None) as batch_op:
        batch_op.drop_column("flow")
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_leads_accept_deadline"))
        batch_op.drop_column("accept_deadline")
        batch_op.drop_column("accepted_at")
        batch_op.drop_column("team")
        batch_op.drop_column("flow")
