"""The thanks mechanic's table: a branch of its own, forked from the platform's revision
whose members and purchases it needs.

Revision ID: t001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "t001"
down_revision = "0014"  # the platform's members, purchases and programs
branch_labels = ("thanks",)


def upgrade() -> None:
    op.create_table(
        "thanks_given",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("program_id", sa.Integer, sa.ForeignKey("programs.id"), nullable=False),
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id"), nullable=False),
        sa.Column(
            "purchase_id", sa.Integer, sa.ForeignKey("purchases.id"), nullable=False, unique=True
        ),
        sa.Column("points", sa.BigInteger, nullable=False),
        sa.Column("taken_back", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("thanks_given")
