"""The claims mechanic's tables: claims and their events
(kopilka/mechanics/claims/tables.py) — a branch of its own, forked from the platform's
revision whose programs, members and purchases it needs.

Revision ID: m001
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "m001"
down_revision = "0018"  # the platform's head when claims came
branch_labels = ("claims",)
depends_on = None

TZ = sa.DateTime(timezone=True)


def _program() -> sa.Column[int]:
    return sa.Column("program_id", sa.Integer, sa.ForeignKey("programs.id"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "claims",
        sa.Column("id", sa.Integer, primary_key=True),
        _program(),
        sa.Column("location", sa.String(64), nullable=False),
        sa.Column("receipt_id", sa.String(200), nullable=False),
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id"), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("receipt", sa.JSON, nullable=False),
        sa.Column("total", sa.BigInteger, nullable=False),
        sa.Column("program_version", sa.Integer, nullable=False),
        sa.Column("note", sa.String(1000)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("filed_by", sa.String(200), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("due_at", TZ, nullable=False),
        sa.Column("decided_by", sa.String(200)),
        sa.Column("decided_at", TZ),
        sa.Column("reason", sa.String(1000)),
        sa.Column("purchase_id", sa.Integer, sa.ForeignKey("purchases.id")),
        sa.Column("points", sa.BigInteger),
        sa.Column("processed_at", TZ),
        sa.UniqueConstraint(
            "program_id", "location", "receipt_id", name="uq_claims_program_id_location_receipt_id"
        ),
    )
    op.create_index(
        "ix_claims_program_id_status_due_at", "claims", ["program_id", "status", "due_at"]
    )
    op.create_table(
        "claim_events",
        sa.Column("id", sa.Integer, primary_key=True),
        _program(),
        sa.Column("claim_id", sa.Integer, sa.ForeignKey("claims.id"), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("note", sa.String(1000)),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("at", TZ, nullable=False),
    )
    op.create_index("ix_claim_events_claim_id_id", "claim_events", ["claim_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_claim_events_claim_id_id", "claim_events")
    op.drop_table("claim_events")
    op.drop_index("ix_claims_program_id_status_due_at", "claims")
    op.drop_table("claims")
