"""The coupons tables (issue 7): campaigns, batches of codes, codes, redemptions, gifts.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)


def _fk(table: str) -> sa.ForeignKey:
    return sa.ForeignKey(f"{table}.id")


def upgrade() -> None:
    op.create_table(
        "coupon_campaigns",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("program_id", sa.Integer, _fk("programs"), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("document", sa.JSON, nullable=False),
        sa.Column("valid_from", TIME),
        sa.Column("valid_until", TIME),
        sa.Column("paused", sa.Boolean, nullable=False),
        sa.Column("per_code", sa.Integer),
        sa.Column("per_member", sa.Integer),
        sa.Column("total", sa.Integer),
        sa.Column("budget", sa.BigInteger),
        sa.Column("codes", sa.BigInteger, nullable=False),
        sa.Column("uses", sa.BigInteger, nullable=False),
        sa.Column("discount", sa.BigInteger, nullable=False),
        sa.Column("points", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.UniqueConstraint("program_id", "code"),
    )
    op.create_table(
        "coupon_batches",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("program_id", sa.Integer, _fk("programs"), nullable=False),
        sa.Column("campaign_id", sa.Integer, _fk("coupon_campaigns"), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
    )
    op.create_index("ix_coupon_batches_campaign_id", "coupon_batches", ["campaign_id", "id"])
    op.create_table(
        "coupons",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("program_id", sa.Integer, _fk("programs"), nullable=False),
        sa.Column("campaign_id", sa.Integer, _fk("coupon_campaigns"), nullable=False),
        sa.Column("batch_id", sa.Integer, _fk("coupon_batches")),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("owner_member_id", sa.Integer, _fk("members")),
        sa.Column("channel", sa.String(16)),
        sa.Column("issued_at", TIME),
        sa.Column("uses", sa.Integer, nullable=False),
        sa.UniqueConstraint("program_id", "code"),
    )
    op.create_index("ix_coupons_campaign_id", "coupons", ["campaign_id", "id"])
    op.create_index("ix_coupons_owner_member_id", "coupons", ["owner_member_id", "id"])
    op.create_table(
        "coupon_redemptions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("program_id", sa.Integer, _fk("programs"), nullable=False),
        sa.Column("coupon_id", sa.Integer, _fk("coupons"), nullable=False),
        sa.Column("campaign_id", sa.Integer, _fk("coupon_campaigns"), nullable=False),
        sa.Column("purchase_id", sa.Integer, _fk("purchases"), nullable=False),
        sa.Column("member_id", sa.Integer, _fk("members")),
        sa.Column("discount", sa.BigInteger, nullable=False),
        sa.Column("points", sa.BigInteger, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("returned_at", TIME),
        sa.UniqueConstraint("purchase_id", "coupon_id"),
    )
    op.create_index("ix_coupon_redemptions_coupon_id", "coupon_redemptions", ["coupon_id"])
    op.create_index("ix_coupon_redemptions_campaign_id_member_id", "coupon_redemptions",
                    ["campaign_id", "member_id"])  # fmt: skip
    op.create_table(
        "coupon_gifts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("program_id", sa.Integer, _fk("programs"), nullable=False),
        sa.Column("coupon_id", sa.Integer, _fk("coupons"), nullable=False),
        sa.Column("from_member_id", sa.Integer, _fk("members"), nullable=False),
        sa.Column("to_member_id", sa.Integer, _fk("members"), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
    )
    op.create_index("ix_coupon_gifts_coupon_id", "coupon_gifts", ["coupon_id"])


def downgrade() -> None:
    for table in ("coupon_gifts", "coupon_redemptions", "coupons", "coupon_batches",
                  "coupon_campaigns"):  # fmt: skip
        op.drop_table(table)
