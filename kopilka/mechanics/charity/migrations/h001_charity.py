"""The charity's tables: a branch of its own, forked from the platform's revision whose
programs, members and purchases it needs.

Revision ID: h001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "h001"
down_revision = "0018"  # the platform's head when charity came
branch_labels = ("charity",)


def upgrade() -> None:
    op.create_table(
        "charity_choices",
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id"), primary_key=True),
        sa.Column("program_id", sa.Integer, sa.ForeignKey("programs.id"), nullable=False),
        sa.Column("charity", sa.String(24), nullable=False),
        sa.Column("chosen_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "charity_donations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("program_id", sa.Integer, sa.ForeignKey("programs.id"), nullable=False),
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id"), nullable=False),
        sa.Column("charity", sa.String(24), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("points", sa.BigInteger, nullable=False),
        sa.Column("purchase_id", sa.Integer, sa.ForeignKey("purchases.id")),
        sa.Column("transfer_key", sa.String(200)),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_charity_donations_program_day", "charity_donations",
                    ["program_id", "day"])  # fmt: skip
    op.create_index("ix_charity_donations_member_id", "charity_donations", ["member_id"])
    op.create_index("ix_charity_donations_purchase_id", "charity_donations", ["purchase_id"])


def downgrade() -> None:
    op.drop_table("charity_donations")
    op.drop_table("charity_choices")
