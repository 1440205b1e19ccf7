"""The discount tables (issue 7), on the one schema `metadata` of `kopilka.platform.tables`."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, String, Table

from kopilka.platform.tables import Timestamp, metadata

# Paid discount cards (seed 004): a member paid a one-time fee for a card that unlocks
# the discounts whose `when.cards` names it, from `valid_from` until `valid_until`.
member_discount_cards = Table(
    "member_discount_cards",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("member_id", Integer, ForeignKey("members.id"), nullable=False),
    Column("card", String(64), nullable=False),
    Column("fee", BigInteger, nullable=False),  # money minor units, as paid
    Column("payment_ref", String(200)),  # the till's or the shop's payment id
    Column("valid_from", Timestamp(), nullable=False),
    Column("valid_until", Timestamp()),  # null: for good
    Column("actor", String(200), nullable=False),
    Column("created_at", Timestamp(), nullable=False),
    Index("ix_member_discount_cards_member_id", "member_id", "valid_until"),
)
