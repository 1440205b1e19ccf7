"""The cashback tables (issue 7), on the one schema `metadata` of `kopilka.platform.tables`.

The money itself is in the ledger (`accounts` owned by "cashback:<id>", `transfers`);
these rows say what the ledger's sums are made of, as `lots` do for points, and
`kopilka verify` checks they agree:
- `cashback_accruals`: what each purchase gave (one row per purchase), how much of it is
  still pending, and how much refunds took back — the pending balance is their sum;
- `cashback_awards`: each campaign's part of an accrual (a campaign's spend is their sum);
- `cashback_budgets`: what a campaign with a budget has granted so far, raised by a
  conditional UPDATE so concurrent purchases never grant more than the budget;
- `cashback_clawbacks`: each refund's take, by its key (a replayed refund takes nothing);
- `cashback_payouts`: payout requests and who moved them on (requested → approved →
  paid, or rejected): the requested balance is the sum of those still open.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from kopilka.platform.tables import Timestamp, metadata

__all__ = [
    "cashback_accruals",
    "cashback_awards",
    "cashback_budgets",
    "cashback_clawbacks",
    "cashback_payouts",
    "metadata",
]

cashback_accruals = Table(
    "cashback_accruals",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("member_id", Integer, ForeignKey("members.id"), nullable=False),
    Column("purchase_id", Integer, ForeignKey("purchases.id"), nullable=False, unique=True),
    Column("amount", BigInteger, nullable=False),  # given, money minor units
    Column("paid", BigInteger, nullable=False),  # the purchase's money it was given on
    Column("pending", BigInteger, nullable=False),  # the part not yet available
    Column("refunded", BigInteger, nullable=False),  # money refunded so far
    Column("clawed_back", BigInteger, nullable=False),  # cashback refunds took back so far
    Column("status", String(16), nullable=False),  # pending | available
    Column("available_at", Timestamp(), nullable=False),
    Column("created_at", Timestamp(), nullable=False),
    Column("answer", JSON, nullable=False),  # the purchase answer's `cashback`, as given
    CheckConstraint("pending >= 0 and pending <= amount", name="pending"),
    CheckConstraint("clawed_back >= 0 and clawed_back <= amount", name="clawed_back"),
    Index("ix_cashback_accruals_status_available_at", "status", "available_at"),
    Index("ix_cashback_accruals_member_id", "member_id"),
)

cashback_awards = Table(
    "cashback_awards",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("accrual_id", Integer, ForeignKey("cashback_accruals.id"), nullable=False),
    Column("campaign", String(64), nullable=False),
    Column("percent", String(40), nullable=False),  # decimal text: exact on every database
    Column("amount", BigInteger, nullable=False),  # granted (after the budget)
    Index("ix_cashback_awards_program_id_campaign", "program_id", "campaign"),
    Index("ix_cashback_awards_accrual_id", "accrual_id"),
)

cashback_budgets = Table(
    "cashback_budgets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("campaign", String(64), nullable=False),
    Column("spent", BigInteger, nullable=False),
    Column("last_grant", BigInteger, nullable=False),  # what the latest UPDATE granted
    UniqueConstraint("program_id", "campaign"),
)

cashback_clawbacks = Table(
    "cashback_clawbacks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("accrual_id", Integer, ForeignKey("cashback_accruals.id"), nullable=False),
    Column("key", String(200), nullable=False),
    Column("refund_id", Integer, ForeignKey("refunds.id")),
    Column("refunded", BigInteger, nullable=False),  # the money this refund returned
    Column("amount", BigInteger, nullable=False),  # cashback taken back (incl. debt)
    Column("debt", BigInteger, nullable=False),  # … of which the member now owes
    Column("created_at", Timestamp(), nullable=False),
    UniqueConstraint("accrual_id", "key"),
)

cashback_payouts = Table(
    "cashback_payouts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("member_id", Integer, ForeignKey("members.id"), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("destination_type", String(16), nullable=False),  # card | account
    Column("destination_number", String(34), nullable=False),
    Column("status", String(16), nullable=False),  # requested | approved | paid | rejected
    Column("requested_at", Timestamp(), nullable=False),
    Column("requested_by", String(200), nullable=False),
    Column("approved_at", Timestamp()),
    Column("approved_by", String(200)),
    Column("paid_at", Timestamp()),
    Column("paid_by", String(200)),
    Column("rejected_at", Timestamp()),
    Column("rejected_by", String(200)),
    Column("note", Text),  # why it was rejected, or the payment's reference
    CheckConstraint("amount > 0", name="amount_positive"),
    Index("ix_cashback_payouts_program_id_status", "program_id", "status", "id"),
    Index("ix_cashback_payouts_member_id", "member_id"),
)
