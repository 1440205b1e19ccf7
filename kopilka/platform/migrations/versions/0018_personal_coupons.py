"""Personal coupons a purchase gives (a stamp card's reward, a bounce-back): each code
may carry its own validity window, the purchase and mechanic that gave it, and when a
refund of that purchase revoked it.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("coupons") as batch:
        batch.add_column(sa.Column("valid_from", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("valid_until", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("source", sa.String(64)))
        batch.add_column(
            sa.Column(
                "source_purchase_id",
                sa.Integer,
                sa.ForeignKey("purchases.id", name="fk_coupons_source_purchase_id"),
            )
        )
        batch.add_column(sa.Column("revoked_at", sa.DateTime(timezone=True)))
    op.create_index("ix_coupons_source_purchase_id", "coupons", ["source_purchase_id"])


def downgrade() -> None:
    op.drop_index("ix_coupons_source_purchase_id", "coupons")
    with op.batch_alter_table("coupons") as batch:
        for name in ("revoked_at", "source_purchase_id", "source", "valid_until", "valid_from"):
            batch.drop_column(name)
