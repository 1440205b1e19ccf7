"""The bounce-back coupons given, on the one schema `metadata`: a row per coupon a
purchase earned (the coupon itself is the coupons mechanic's), marked when a refund of
that purchase took it back — the console's figures per offer."""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, Integer, String, Table

from kopilka.platform.tables import Timestamp, metadata

bounce_backs = Table(
    "bounce_backs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("purchase_id", Integer, ForeignKey("purchases.id"), nullable=False),
    Column("member_id", Integer, ForeignKey("members.id"), nullable=False),
    Column("offer", String(64), nullable=False),
    Column("campaign", String(64), nullable=False),
    Column("created_at", Timestamp(), nullable=False),
    Column("taken_back_at", Timestamp()),
    Index("ix_bounce_backs_purchase_id", "purchase_id"),
    Index("ix_bounce_backs_program_id_offer", "program_id", "offer"),
)

GIVEN_COLUMNS = ("program_id", "member_id", "offer", "campaign", "created_at")
