"""The challenges' and badges' tables: a branch of its own.

Revision ID: c001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c001"
down_revision = "0017"
branch_labels = ("challenges",)


def upgrade() -> None:
    op.create_table(
        "member_challenges",
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id"), primary_key=True),
        sa.Column("challenge", sa.String(64), primary_key=True),
        sa.Column("period", sa.String(16), primary_key=True),
        sa.Column("progress", sa.BigInteger, nullable=False),
        sa.Column("marker", sa.BigInteger, nullable=False),
        sa.Column("spare", sa.BigInteger, nullable=False),
        sa.Column("completions", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "member_categories",
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id"), primary_key=True),
        sa.Column("category", sa.String(64), primary_key=True),
        sa.Column("purchases", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "purchase_challenges",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("program_id", sa.Integer, sa.ForeignKey("programs.id"), nullable=False),
        sa.Column("purchase_id", sa.Integer, sa.ForeignKey("purchases.id"), nullable=False),
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id"), nullable=False),
        sa.Column("challenge", sa.String(64), nullable=False),
        sa.Column("period", sa.String(16), nullable=False),
        sa.Column("progress", sa.BigInteger, nullable=False),
        sa.Column("completed", sa.Integer, nullable=False),
        sa.Column("points", sa.BigInteger, nullable=False),
        sa.Column("taken_back", sa.BigInteger, nullable=False),
        sa.Column("reward_back", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_purchase_challenges_purchase_id", "purchase_challenges", ["purchase_id"])
    op.create_table(
        "member_badges",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("program_id", sa.Integer, sa.ForeignKey("programs.id"), nullable=False),
        sa.Column("purchase_id", sa.Integer, sa.ForeignKey("purchases.id"), nullable=False),
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id"), nullable=False),
        sa.Column("badge", sa.String(64), nullable=False),
        sa.Column("challenge", sa.String(64), nullable=False),
        sa.Column("earned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_member_badges_member_id", "member_badges", ["member_id"])
    op.create_index("ix_member_badges_purchase_id", "member_badges", ["purchase_id"])


def downgrade() -> None:
    for name in ("member_badges", "purchase_challenges", "member_categories",
                 "member_challenges"):  # fmt: skip
        op.drop_table(name)
