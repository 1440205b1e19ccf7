"""Paid discount cards held by members (issue 7).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "member_discount_cards",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("program_id", sa.Integer, sa.ForeignKey("programs.id"), nullable=False),
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id"), nullable=False),
        sa.Column("card", sa.String(64), nullable=False),
        sa.Column("fee", sa.BigInteger, nullable=False),
        sa.Column("payment_ref", sa.String(200)),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True)),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_member_discount_cards_member_id", "member_discount_cards",
                    ["member_id", "valid_until"])  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_member_discount_cards_member_id", "member_discount_cards")
    op.drop_table("member_discount_cards")
