"""The bounce-back coupons given: a branch of its own.

Revision ID: b001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "b001"
down_revision = "0017"
branch_labels = ("bounce_back",)


def upgrade() -> None:
    op.create_table(
        "bounce_backs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("program_id", sa.Integer, sa.ForeignKey("programs.id"), nullable=False),
        sa.Column("purchase_id", sa.Integer, sa.ForeignKey("purchases.id"), nullable=False),
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id"), nullable=False),
        sa.Column("offer", sa.String(64), nullable=False),
        sa.Column("campaign", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("taken_back_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_bounce_backs_purchase_id", "bounce_backs", ["purchase_id"])
    op.create_index("ix_bounce_backs_program_id_offer", "bounce_backs", ["program_id", "offer"])


def downgrade() -> None:
    op.drop_table("bounce_backs")
