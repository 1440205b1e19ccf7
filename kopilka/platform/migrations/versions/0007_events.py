"""Events: what happened to a member by itself — expiries, expiry warnings, triggers fired.

Each has an `occasion` unique per member and kind, so the work that records it is
idempotent (`ON CONFLICT DO NOTHING`): a warning for the points burning on a date, a
birthday of a year, are recorded once however often the worker runs.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("program_id", sa.Integer, sa.ForeignKey("programs.id"), nullable=False),
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id"), nullable=False),
        sa.Column("kind", sa.String(48), nullable=False),
        sa.Column("occasion", sa.String(100), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("member_id", "kind", "occasion", name="uq_events_occasion"),
    )
    op.create_index("ix_events_member_id", "events", ["member_id", "id"])
    # the expiry job looks for burnt-out lots by time
    op.create_index("ix_lots_available_expires_at", "lots", ["expires_at"],
                    postgresql_where=sa.text("status = 'available' AND remaining > 0"),
                    sqlite_where=sa.text("status = 'available' AND remaining > 0"))  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_lots_available_expires_at", "lots")
    op.drop_index("ix_events_member_id", "events")
    op.drop_table("events")
