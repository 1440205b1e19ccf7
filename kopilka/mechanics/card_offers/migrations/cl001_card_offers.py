"""Card-linked offers' tables (issue 20): the catalog (merchants, locations, merchant
ids, descriptor rules, offers), cards and activations, the feed's transactions, purchases,
rewards and their changes, the review queue, and the cards' running state. A branch of
its own, forked from the platform revision that binds operators to partners.

Revision ID: cl001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "cl001"
down_revision = "0020"
branch_labels = ("card_offers",)

_NOW = sa.DateTime(timezone=True)
TABLES = (
    "clo_catalogs",
    "clo_merchants",
    "clo_locations",
    "clo_merchant_ids",
    "clo_rules",
    "clo_offers",
    "clo_cards",
    "clo_activations",
    "clo_transactions",
    "clo_purchases",
    "clo_rewards",
    "clo_reward_changes",
    "clo_card_offer_uses",
    "clo_card_merchants",
    "clo_reviews",
)


def _program() -> sa.Column[int]:
    return sa.Column("program_id", sa.Integer, sa.ForeignKey("programs.id"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "clo_catalogs",
        sa.Column("program_id", sa.Integer, sa.ForeignKey("programs.id"), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_table(
        "clo_merchants",
        sa.Column("id", sa.Integer, primary_key=True),
        _program(),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", _NOW, nullable=False),
        sa.UniqueConstraint("program_id", "code"),
    )
    op.create_table(
        "clo_locations",
        sa.Column("id", sa.Integer, primary_key=True),
        _program(),
        sa.Column("merchant_id", sa.Integer, sa.ForeignKey("clo_merchants.id"), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("descriptor", sa.String(200), nullable=False),
        sa.Column("mcc", sa.String(4)),
        sa.Column("latitude", sa.Numeric(9, 6)),
        sa.Column("longitude", sa.Numeric(9, 6)),
        sa.Column("address", sa.String(300)),
        sa.UniqueConstraint("program_id", "code"),
    )
    op.create_table(
        "clo_merchant_ids",
        sa.Column("id", sa.Integer, primary_key=True),
        _program(),
        sa.Column("scheme", sa.String(16), nullable=False),
        sa.Column("mid", sa.String(64), nullable=False),
        sa.Column("location_id", sa.Integer, sa.ForeignKey("clo_locations.id"), nullable=False),
        sa.UniqueConstraint("program_id", "scheme", "mid", "location_id"),
    )
    op.create_table(
        "clo_rules",
        sa.Column("id", sa.Integer, primary_key=True),
        _program(),
        sa.Column("words", sa.String(200), nullable=False),
        sa.Column("mcc", sa.String(4)),
        sa.Column("location_id", sa.Integer, sa.ForeignKey("clo_locations.id"), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("created_at", _NOW, nullable=False),
        sa.UniqueConstraint("program_id", "words", "mcc", "location_id"),
    )
    op.create_table(
        "clo_offers",
        sa.Column("id", sa.Integer, primary_key=True),
        _program(),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("merchant_id", sa.Integer, sa.ForeignKey("clo_merchants.id"), nullable=False),
        sa.Column("terms", sa.JSON, nullable=False),
        sa.Column("starts", sa.Date, nullable=False),
        sa.Column("until", sa.Date, nullable=False),
        sa.Column("budget", sa.BigInteger),
        sa.Column("spent", sa.BigInteger, nullable=False),
        sa.Column("budget_ended", sa.Boolean, nullable=False),
        sa.Column("created_at", _NOW, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.UniqueConstraint("program_id", "code"),
        sa.CheckConstraint("budget IS NULL OR spent <= budget", name="within_budget"),
    )
    op.create_table(
        "clo_cards",
        sa.Column("id", sa.Integer, primary_key=True),
        _program(),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("scheme", sa.String(16), nullable=False),
        sa.Column("first_six", sa.String(6), nullable=False),
        sa.Column("last_four", sa.String(4), nullable=False),
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id")),
        sa.Column("segments", sa.JSON, nullable=False),
        sa.Column("latitude", sa.Numeric(9, 6)),
        sa.Column("longitude", sa.Numeric(9, 6)),
        sa.Column("created_at", _NOW, nullable=False),
        sa.UniqueConstraint("program_id", "token"),
    )
    op.create_table(
        "clo_activations",
        sa.Column("card_id", sa.Integer, sa.ForeignKey("clo_cards.id"), primary_key=True),
        sa.Column("offer_id", sa.Integer, sa.ForeignKey("clo_offers.id"), primary_key=True),
        sa.Column("activated_at", _NOW, nullable=False),
    )
    op.create_table(
        "clo_transactions",
        sa.Column("id", sa.Integer, primary_key=True),
        _program(),
        sa.Column("transaction_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("card_id", sa.Integer, sa.ForeignKey("clo_cards.id"), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("at", _NOW, nullable=False),
        sa.Column("local_at", sa.String(32), nullable=False),
        sa.Column("scheme", sa.String(16), nullable=False),
        sa.Column("merchant_mid", sa.String(64)),
        sa.Column("descriptor", sa.String(200), nullable=False),
        sa.Column("mcc", sa.String(4)),
        sa.Column("original", sa.String(64)),
        sa.Column("location_id", sa.Integer, sa.ForeignKey("clo_locations.id")),
        sa.Column("rule", sa.String(100)),
        sa.Column("problem", sa.String(64)),
        sa.Column("verdicts", sa.JSON, nullable=False),
        sa.Column("body_hash", sa.String(64), nullable=False),
        sa.Column("answer", sa.JSON, nullable=False),
        sa.Column("received_at", _NOW, nullable=False),
        sa.UniqueConstraint("program_id", "transaction_id"),
    )
    op.create_index(
        "ix_clo_transactions_program_id_location_id",
        "clo_transactions",
        ["program_id", "location_id"],
    )
    op.create_table(
        "clo_purchases",
        sa.Column("id", sa.Integer, primary_key=True),
        _program(),
        sa.Column("purchase", sa.String(64), nullable=False),
        sa.Column("card_id", sa.Integer, sa.ForeignKey("clo_cards.id"), nullable=False),
        sa.Column("location_id", sa.Integer, sa.ForeignKey("clo_locations.id")),
        sa.Column("merchant", sa.String(64)),
        sa.Column("rule", sa.String(100)),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("cleared", sa.Boolean, nullable=False),
        sa.Column("released", sa.Boolean, nullable=False),
        sa.Column("offers", sa.JSON, nullable=False),
        sa.UniqueConstraint("program_id", "purchase"),
    )
    op.create_table(
        "clo_rewards",
        sa.Column("id", sa.Integer, primary_key=True),
        _program(),
        sa.Column("offer_id", sa.Integer, sa.ForeignKey("clo_offers.id"), nullable=False),
        sa.Column("purchase", sa.String(64), nullable=False),
        sa.Column("card_id", sa.Integer, sa.ForeignKey("clo_cards.id"), nullable=False),
        sa.Column("merchant", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("cashback", sa.BigInteger, nullable=False),
        sa.Column("fee", sa.BigInteger, nullable=False),
        sa.Column("granted", sa.BigInteger, nullable=False),
        sa.Column("refunded", sa.BigInteger, nullable=False),
        sa.Column("payable_at", _NOW),
        sa.Column("paid_at", _NOW),
        sa.UniqueConstraint("offer_id", "purchase"),
        sa.CheckConstraint("cashback >= 0 AND fee >= 0", name="not_negative"),
    )
    op.create_index("ix_clo_rewards_status_payable_at", "clo_rewards", ["status", "payable_at"])
    op.create_table(
        "clo_reward_changes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("reward_id", sa.Integer, sa.ForeignKey("clo_rewards.id"), nullable=False),
        sa.Column("transaction_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("cashback_delta", sa.BigInteger, nullable=False),
        sa.Column("fee_delta", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("at", _NOW, nullable=False),
    )
    op.create_index("ix_clo_reward_changes_reward_id", "clo_reward_changes", ["reward_id"])
    op.create_table(
        "clo_card_offer_uses",
        sa.Column("card_id", sa.Integer, sa.ForeignKey("clo_cards.id"), primary_key=True),
        sa.Column("offer_id", sa.Integer, sa.ForeignKey("clo_offers.id"), primary_key=True),
        sa.Column("uses", sa.Integer, nullable=False),
    )
    op.create_table(
        "clo_card_merchants",
        sa.Column("card_id", sa.Integer, sa.ForeignKey("clo_cards.id"), primary_key=True),
        sa.Column("merchant_id", sa.Integer, sa.ForeignKey("clo_merchants.id"), primary_key=True),
        sa.Column("first_at", _NOW, nullable=False),
        sa.Column("last_at", _NOW, nullable=False),
    )
    op.create_table(
        "clo_reviews",
        sa.Column("id", sa.Integer, primary_key=True),
        _program(),
        sa.Column(
            "transaction_row", sa.Integer, sa.ForeignKey("clo_transactions.id"), nullable=False
        ),
        sa.Column("descriptor", sa.String(200), nullable=False),
        sa.Column("mcc", sa.String(4)),
        sa.Column("suggestions", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("rule_id", sa.Integer, sa.ForeignKey("clo_rules.id")),
        sa.Column("decided_by", sa.String(200)),
        sa.Column("decided_at", _NOW),
    )
    op.create_index("ix_clo_reviews_program_id_status", "clo_reviews", ["program_id", "status"])


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
