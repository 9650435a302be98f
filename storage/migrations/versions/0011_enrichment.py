"""enrichment: what a person-enrichment provider said about a lead's person, and its cache

Revision ID: 0011
Revises: 0010

- ``leads.enrichment``: JSON ``{provider, company, title, profiles: [{network, url}],
  likelihood}`` (``daemon.lead.Enrichment``); NULL until the provider found the person,
  and with no provider configured;
- ``enrichments``: every answer by ``(provider, email_key)`` — a hash of the normalized
  email, never the email — so one person is never asked twice of one provider (a "no
  match" is kept too). Its daily usage and deferred look-ups share ``provider_usage`` and
  ``provider_jobs`` (kind ``enrichment``) with the geocoder (0007).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("enrichment", sa.JSON(), nullable=True))
    op.create_table(
        "enrichments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=50), nullable=False),
        sa.Column("email_key", sa.String(length=64), nullable=False),
        sa.Column("found", sa.Boolean(), nullable=False),
        sa.Column("company", sa.String(length=300), nullable=True),
        sa.Column("title", sa.String(length=300), nullable=True),
        sa.Column("profiles", sa.JSON(), nullable=False),
        sa.Column("likelihood", sa.Integer(), nullable=True),
        sa.Column("created_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrichments")),
        sa.UniqueConstraint("provider", "email_key", name=op.f("uq_enrichments_provider_email_key")),
    )


def downgrade() -> None:
    op.drop_table("enrichments")
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.drop_column("enrichment")
