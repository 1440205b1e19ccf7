"""The stamp cards' tables: a branch of its own, forked from the platform's revision
whose members' standing it builds beside.

Revision ID: s001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "s001"
down_revision = "0017"
branch_labels = ("stamps",)


def upgrade() -> None:
    op.create_table(
        "member_stamps",
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id"), primary_key=True),
        sa.Column("card", sa.String(64), primary_key=True),
        sa.Column("held", sa.BigInteger, nullable=False),
        sa.Column("earned", sa.BigInteger, nullable=False),
        sa.Column("rewards", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "purchase_stamps",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("program_id", sa.Integer, sa.ForeignKey("programs.id"), nullable=False),
        sa.Column("purchase_id", sa.Integer, sa.ForeignKey("purchases.id"), nullable=False),
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id"), nullable=False),
        sa.Column("card", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("stamps", sa.BigInteger, nullable=False),
        sa.Column("rewards", sa.BigInteger, nullable=False),
        sa.Column("points", sa.BigInteger, nullable=False),
        sa.Column("stamps_back", sa.BigInteger, nullable=False),
        sa.Column("rewards_back", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_purchase_stamps_purchase_id", "purchase_stamps", ["purchase_id"])
    op.create_index("ix_purchase_stamps_member_id_card", "purchase_stamps", ["member_id", "card"])


def downgrade() -> None:
    op.drop_table("purchase_stamps")
    op.drop_table("member_stamps")
