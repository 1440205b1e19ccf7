"""The coupon tables (issue 7), on the one schema `metadata` of `kopilka.platform.tables`.

A campaign keeps its document (the API's JSON, re-read into a `Campaign` when a purchase
needs it) and, as columns, what the database itself must check or count: the limits a
redemption's conditional UPDATE compares with, and the running totals it adds to. Codes
are unique per program — a unique campaign's generated ones and a public campaign's one
alike — so a code names one coupon of one program.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
)

from kopilka.platform.tables import Timestamp, metadata

coupon_campaigns = Table(
    "coupon_campaigns",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("code", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # unique | public
    Column("document", JSON, nullable=False),  # the campaign as the API shows it
    Column("valid_from", Timestamp()),
    Column("valid_until", Timestamp()),
    Column("paused", Boolean, nullable=False),
    Column("per_code", Integer),  # limits, as the redemption's UPDATE checks them
    Column("per_member", Integer),
    Column("total", Integer),
    Column("budget", BigInteger),  # money minor units
    Column("codes", BigInteger, nullable=False),  # generated so far
    Column("uses", BigInteger, nullable=False),  # redemptions not given back
    Column("discount", BigInteger, nullable=False),  # money minor units given, not given back
    Column("points", BigInteger, nullable=False),  # point minor units credited
    Column("actor", String(200), nullable=False),
    Column("created_at", Timestamp(), nullable=False),
    Column("updated_at", Timestamp(), nullable=False),
    UniqueConstraint("program_id", "code"),
)

coupon_batches = Table(
    "coupon_batches",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("campaign_id", Integer, ForeignKey("coupon_campaigns.id"), nullable=False),
    Column("count", Integer, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("created_at", Timestamp(), nullable=False),
    Index("ix_coupon_batches_campaign_id", "campaign_id", "id"),
)

# One row per code: a million-code batch is a million rows, so the row stays narrow.
coupons = Table(
    "coupons",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("campaign_id", Integer, ForeignKey("coupon_campaigns.id"), nullable=False),
    Column("batch_id", Integer, ForeignKey("coupon_batches.id")),  # null: a public code
    Column("code", String(32), nullable=False),
    Column("owner_member_id", Integer, ForeignKey("members.id")),
    Column("channel", String(16)),  # how it was issued: sms | email | push | partner_site | pos
    Column("issued_at", Timestamp()),
    Column("uses", Integer, nullable=False),
    # a personal coupon a purchase gave (a stamp card's reward, a bounce-back): its own
    # window within the campaign's, who gave it and with which purchase, and when a
    # refund of that purchase took it back unused
    Column("valid_from", Timestamp()),
    Column("valid_until", Timestamp()),
    Column("source", String(64)),
    Column(
        "source_purchase_id",
        Integer,
        ForeignKey("purchases.id", name="fk_coupons_source_purchase_id"),
    ),
    Column("revoked_at", Timestamp()),
    UniqueConstraint("program_id", "code"),
    Index("ix_coupons_campaign_id", "campaign_id", "id"),
    Index("ix_coupons_owner_member_id", "owner_member_id", "id"),
    Index("ix_coupons_source_purchase_id", "source_purchase_id"),
)

# A redemption in a purchase; `returned_at` is set when a whole refund or a cancelled
# hold gives the coupon back (the row stays: what happened is never deleted).
coupon_redemptions = Table(
    "coupon_redemptions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("coupon_id", Integer, ForeignKey("coupons.id"), nullable=False),
    Column("campaign_id", Integer, ForeignKey("coupon_campaigns.id"), nullable=False),
    Column("purchase_id", Integer, ForeignKey("purchases.id"), nullable=False),
    Column("member_id", Integer, ForeignKey("members.id")),
    Column("discount", BigInteger, nullable=False),  # money minor units
    Column("points", BigInteger, nullable=False),  # point minor units
    Column("created_at", Timestamp(), nullable=False),
    Column("returned_at", Timestamp()),
    UniqueConstraint("purchase_id", "coupon_id"),
    Index("ix_coupon_redemptions_coupon_id", "coupon_id"),
    Index("ix_coupon_redemptions_campaign_id_member_id", "campaign_id", "member_id"),
)

# A coupon given by one member to another (the audit of who had it when).
coupon_gifts = Table(
    "coupon_gifts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("coupon_id", Integer, ForeignKey("coupons.id"), nullable=False),
    Column("from_member_id", Integer, ForeignKey("members.id"), nullable=False),
    Column("to_member_id", Integer, ForeignKey("members.id"), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("created_at", Timestamp(), nullable=False),
    Index("ix_coupon_gifts_coupon_id", "coupon_id"),
)

__all__ = [
    "coupon_batches",
    "coupon_campaigns",
    "coupon_gifts",
    "coupon_redemptions",
    "coupons",
    "metadata",
]
