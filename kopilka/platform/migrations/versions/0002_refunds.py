"""Refunds, and the refund each transfer belongs to.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "refunds",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("purchase_id", sa.Integer, sa.ForeignKey("purchases.id"), nullable=False),
        sa.Column("refund_id", sa.String(200), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("lines", sa.JSON, nullable=False),
        sa.Column("answer", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("purchase_id", "refund_id"),
    )
    with op.batch_alter_table("purchases") as batch:
        batch.alter_column("status", type_=sa.String(24), existing_type=sa.String(16))
        # what a refund needs of each line: [{"n": 0, "qty": "2"}]; older rows have none
        batch.add_column(sa.Column("lines", sa.JSON, nullable=True))
    with op.batch_alter_table("transfers") as batch:
        batch.add_column(sa.Column("refund_id", sa.Integer, nullable=True))
        batch.create_foreign_key("fk_transfers_refund_id_refunds", "refunds", ["refund_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("transfers") as batch:
        batch.drop_constraint("fk_transfers_refund_id_refunds", type_="foreignkey")
        batch.drop_column("refund_id")
    op.drop_table("refunds")
    with op.batch_alter_table("purchases") as batch:
        batch.drop_column("lines")
        batch.alter_column("status", type_=sa.String(16), existing_type=sa.String(24))
