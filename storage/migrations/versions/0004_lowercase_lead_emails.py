"""leads.email wholly lower-cased, so repeat-inquiry lookups can use its index

Revision ID: 0004
Revises: 0003

Leads have always been stored through ``normalize_email``, which lower-cases the whole
address; this makes that true of every row, whatever wrote it, because
``storage.routing.previous_owner`` now compares ``email = ?`` (indexed) instead of
``lower(email) = ?`` (a read of every lead in the repeat window). Not reversible: the
original case of an address carries no meaning leadpipe uses.
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE leads SET email = lower(email) WHERE email <> lower(email)")


def downgrade() -> None:
    pass  # lower-cased addresses stay lower-cased; nothing depends on the old case
