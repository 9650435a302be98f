"""address_verification: the offline address check on leads

Revision ID: 0008
Revises: 0007

- ``leads.property_address_verified``: true (the address's ZIP code, city and state agree
  with the USPS ZIP code database), false (they contradict each other or it), NULL (nothing
  to check, or a lead stored before this migration);
- ``leads.property_address_check``: the reason, one sentence (``ZIP 33145 is in Miami, FL``);
- ``leads.property_address_usps``: the street line in USPS style, beside the street as given.

Leads stored before it keep NULL in all three: they are not re-checked.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("property_address_verified", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("property_address_check", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("property_address_usps", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("leads", schema=None) as batch_op:
        for name in ("property_address_usps", "property_address_check", "property_address_verified"):
            batch_op.drop_column(name)
