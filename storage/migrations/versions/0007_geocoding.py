"""geocoding: the geocoder's answer on leads, its cache, its daily usage, deferred lookups

Revision ID: 0007
Revises: 0006

- ``leads.property_latitude|longitude|county|geocode_quality|geocoder``: what the configured
  geocoder said about the lead's address (NULL until it answered, or with no geocoder);
- ``geocodes``: every answer by ``(provider, address_key)``, so one normalized address is
  never asked twice of one provider (a "no match" is kept too);
- ``provider_usage``: calls per provider per UTC day, so the daily quota is shared by every
  replica and survives a restart; ``alerted_at`` makes the "quota nearly used" alert once;
- ``provider_jobs``: lookups the pipeline did not wait for (slow, rate-limited, over quota,
  down), retried as rows like the outbox.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("property_latitude", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("property_longitude", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("property_county", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("property_geocode_quality", sa.String(length=50), nullable=True))
        batch_op.add_column(sa.Column("property_geocoder", sa.String(length=50), nullable=True))
        batch_op.create_index(batch_op.f("ix_leads_property_county"), ["property_county"], unique=False)

    op.create_table(
        "geocodes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=50), nullable=False),
        sa.Column("address_key", sa.String(length=500), nullable=False),
        sa.Column("found", sa.Boolean(), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("county", sa.String(length=200), nullable=True),
        sa.Column("quality", sa.String(length=50), nullable=True),
        sa.Column("matched_address", sa.Text(), nullable=True),
        sa.Column("created_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_geocodes")),
        sa.UniqueConstraint("provider", "address_key", name=op.f("uq_geocodes_provider_address_key")),
    )
    op.create_table(
        "provider_usage",
        sa.Column("provider", sa.String(length=50), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("alerted_at", storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("provider", "day", name=op.f("pk_provider_usage")),
    )
    op.create_table(
        "provider_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("provider", sa.String(length=50), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("done_at", storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"], name=op.f("fk_provider_jobs_lead_id_leads")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_jobs")),
        sa.UniqueConstraint("lead_id", "kind", name=op.f("uq_provider_jobs_lead_id_kind")),
    )
    with op.batch_alter_table("provider_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_provider_jobs_status_next_attempt_at", ["status", "next_attempt_at"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("provider_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_provider_jobs_status_next_attempt_at")
    op.drop_table("provider_jobs")
    op.drop_table("provider_usage")
    op.drop_table("geocodes")
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_leads_property_county"))
        for name in ("property_geocoder", "property_geocode_quality", "property_county",
                     "property_longitude", "property_latitude"):
            batch_op.drop_column(name)
