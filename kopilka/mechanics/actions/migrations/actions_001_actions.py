"""The actions mechanic's tables: its reports and the running counts its limits weigh.

A branch of its own (docs/architecture.md, "Adding a mechanic"), forked from the
platform's newest revision; it reads nothing of the application.

Revision ID: actions_001
Revises: 0017
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "actions_001"
down_revision = "0017"  # the platform's programs and members
branch_labels = ("actions",)
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "action_reports",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("program_id", sa.Integer, sa.ForeignKey("programs.id"), nullable=False),
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id"), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("external_id", sa.String(200), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("points", sa.BigInteger, nullable=False),
        sa.Column("refused_by", sa.String(16)),
        sa.Column("balance", sa.BigInteger),
        sa.Column("reported_by", sa.String(64), nullable=False),
        sa.Column("location", sa.String(64)),
        sa.Column("occurred_at", TZ),
        sa.Column("received_at", TZ, nullable=False),
        sa.Column("answer", sa.JSON, nullable=False),
        sa.UniqueConstraint(
            "program_id", "action", "external_id", name="uq_action_reports_external_id"
        ),
        sa.CheckConstraint("points >= 0", name="ck_action_reports_points"),
    )
    op.create_index("ix_action_reports_member_id", "action_reports", ["member_id", "id"])
    op.create_index("ix_action_reports_program_id_action", "action_reports",
                    ["program_id", "action"])  # fmt: skip
    op.create_table(
        "action_counts",
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id"), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("period", sa.String(32), nullable=False),
        sa.Column("program_id", sa.Integer, sa.ForeignKey("programs.id"), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("points", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("member_id", "action", "period", name="pk_action_counts"),
        sa.CheckConstraint("count >= 0 and points >= 0", name="ck_action_counts_counts"),
    )


def downgrade() -> None:
    op.drop_table("action_counts")
    op.drop_index("ix_action_reports_program_id_action", "action_reports")
    op.drop_index("ix_action_reports_member_id", "action_reports")
    op.drop_table("action_reports")
