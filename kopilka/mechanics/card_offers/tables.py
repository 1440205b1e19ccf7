"""Card-linked offers' tables, on the one schema `metadata` of `kopilka.platform.tables`.

The catalog (what matching reads, cached in memory by `clo_catalogs.version`):
- `clo_merchants`, `clo_locations` (descriptor, MCC, coordinates), `clo_merchant_ids`
  (a scheme's merchant id → a location; one id at several locations is a payment
  facilitator's), `clo_rules` (descriptor rules, from operators and review decisions),
  `clo_offers` (the terms as given, and the running budget: `spent`, `budget_ended`).

The cards: `clo_cards` (a token, first six and last four, never the number; the member
it is linked to, if any) and `clo_activations`.

The feed: `clo_transactions` (every message, as taken, with where it matched and why —
kept whether it matched or not), `clo_purchases` (what a purchase left for the messages
about it), `clo_rewards` (an offer's reward for a purchase, its status and amounts) and
`clo_reward_changes` (every change of a reward, never updated: the audit trail whose sums
are the rewards' amounts — a `verify` check), `clo_reviews` (the review queue).

Running state, so the hot path never sums a card's history: `clo_card_offer_uses` (a
card's qualified uses of an offer) and `clo_card_merchants` (its first and last purchase
at a merchant, for new and lapsed customers).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    UniqueConstraint,
)

from kopilka.platform.tables import Timestamp, metadata


def _program() -> Column[int]:
    return Column("program_id", Integer, ForeignKey("programs.id"), nullable=False)


clo_catalogs = Table(
    "clo_catalogs",
    metadata,
    Column("program_id", Integer, ForeignKey("programs.id"), primary_key=True),
    Column("version", Integer, nullable=False),  # bumped by every change to the catalog
)

clo_merchants = Table(
    "clo_merchants",
    metadata,
    Column("id", Integer, primary_key=True),
    _program(),
    Column("code", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("created_at", Timestamp(), nullable=False),
    UniqueConstraint("program_id", "code"),
)

clo_locations = Table(
    "clo_locations",
    metadata,
    Column("id", Integer, primary_key=True),
    _program(),
    Column("merchant_id", Integer, ForeignKey("clo_merchants.id"), nullable=False),
    Column("code", String(64), nullable=False),
    Column("descriptor", String(200), nullable=False),
    Column("mcc", String(4)),
    Column("latitude", Numeric(9, 6)),
    Column("longitude", Numeric(9, 6)),
    Column("address", String(300)),
    UniqueConstraint("program_id", "code"),
)

clo_merchant_ids = Table(
    "clo_merchant_ids",
    metadata,
    Column("id", Integer, primary_key=True),
    _program(),
    Column("scheme", String(16), nullable=False),
    Column("mid", String(64), nullable=False),
    Column("location_id", Integer, ForeignKey("clo_locations.id"), nullable=False),
    UniqueConstraint("program_id", "scheme", "mid", "location_id"),
)

clo_rules = Table(
    "clo_rules",
    metadata,
    Column("id", Integer, primary_key=True),
    _program(),
    Column("words", String(200), nullable=False),  # the normalised descriptor's first words
    Column("mcc", String(4)),
    Column("location_id", Integer, ForeignKey("clo_locations.id"), nullable=False),
    Column("source", String(16), nullable=False),  # "operator" or "review"
    Column("actor", String(200), nullable=False),
    Column("created_at", Timestamp(), nullable=False),
    UniqueConstraint("program_id", "words", "mcc", "location_id"),
)

clo_offers = Table(
    "clo_offers",
    metadata,
    Column("id", Integer, primary_key=True),
    _program(),
    Column("code", String(64), nullable=False),
    Column("merchant_id", Integer, ForeignKey("clo_merchants.id"), nullable=False),
    Column("terms", JSON, nullable=False),  # the offer as given (validated), for reading back
    Column("starts", Date, nullable=False),
    Column("until", Date, nullable=False),
    Column("budget", BigInteger),  # money minor units; NULL: none
    Column("spent", BigInteger, nullable=False),  # granted cashback, net of what came back
    Column("budget_ended", Boolean, nullable=False),
    Column("created_at", Timestamp(), nullable=False),
    Column("actor", String(200), nullable=False),
    UniqueConstraint("program_id", "code"),
    CheckConstraint("budget IS NULL OR spent <= budget", name="within_budget"),
)

clo_cards = Table(
    "clo_cards",
    metadata,
    Column("id", Integer, primary_key=True),
    _program(),
    Column("token", String(64), nullable=False),
    Column("scheme", String(16), nullable=False),
    Column("first_six", String(6), nullable=False),
    Column("last_four", String(4), nullable=False),
    Column("member_id", Integer, ForeignKey("members.id")),
    Column("segments", JSON, nullable=False),  # codes
    Column("latitude", Numeric(9, 6)),
    Column("longitude", Numeric(9, 6)),
    Column("created_at", Timestamp(), nullable=False),
    UniqueConstraint("program_id", "token"),
)

clo_activations = Table(
    "clo_activations",
    metadata,
    Column("card_id", Integer, ForeignKey("clo_cards.id"), primary_key=True),
    Column("offer_id", Integer, ForeignKey("clo_offers.id"), primary_key=True),
    Column("activated_at", Timestamp(), nullable=False),
)

clo_transactions = Table(
    "clo_transactions",
    metadata,
    Column("id", Integer, primary_key=True),  # the feed order online
    _program(),
    Column("transaction_id", String(64), nullable=False),  # the bank's: idempotency
    Column("kind", String(16), nullable=False),
    Column("card_id", Integer, ForeignKey("clo_cards.id"), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("at", Timestamp(), nullable=False),  # UTC
    Column("local_at", String(32), nullable=False),  # as sent, with its offset
    Column("scheme", String(16), nullable=False),
    Column("merchant_mid", String(64)),
    Column("descriptor", String(200), nullable=False),
    Column("mcc", String(4)),
    Column("original", String(64)),
    Column("location_id", Integer, ForeignKey("clo_locations.id")),
    Column("rule", String(100)),  # which rule matched it (None: unmatched)
    Column("problem", String(64)),
    Column("verdicts", JSON, nullable=False),  # [[offer, reason], …]
    Column("body_hash", String(64), nullable=False),  # a resend must be the same message
    Column("answer", JSON, nullable=False),
    Column("received_at", Timestamp(), nullable=False),
    UniqueConstraint("program_id", "transaction_id"),
    Index("ix_clo_transactions_program_id_location_id", "program_id", "location_id"),
)

clo_purchases = Table(
    "clo_purchases",
    metadata,
    Column("id", Integer, primary_key=True),
    _program(),
    Column("purchase", String(64), nullable=False),  # the purchase's transaction id
    Column("card_id", Integer, ForeignKey("clo_cards.id"), nullable=False),
    Column("location_id", Integer, ForeignKey("clo_locations.id")),
    Column("merchant", String(64)),
    Column("rule", String(100)),
    Column("amount", BigInteger, nullable=False),  # authorised, then cleared
    Column("cleared", Boolean, nullable=False),
    Column("released", Boolean, nullable=False),  # its authorisation was reversed
    Column("offers", JSON, nullable=False),  # the offers whose terms it met
    UniqueConstraint("program_id", "purchase"),
)

clo_rewards = Table(
    "clo_rewards",
    metadata,
    Column("id", Integer, primary_key=True),
    _program(),
    Column("offer_id", Integer, ForeignKey("clo_offers.id"), nullable=False),
    Column("purchase", String(64), nullable=False),
    Column("card_id", Integer, ForeignKey("clo_cards.id"), nullable=False),
    Column("merchant", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("cashback", BigInteger, nullable=False),
    Column("fee", BigInteger, nullable=False),
    Column("granted", BigInteger, nullable=False),
    Column("refunded", BigInteger, nullable=False),
    Column("payable_at", Timestamp()),
    Column("paid_at", Timestamp()),
    UniqueConstraint("offer_id", "purchase"),
    CheckConstraint("cashback >= 0 AND fee >= 0", name="not_negative"),
    Index("ix_clo_rewards_status_payable_at", "status", "payable_at"),
)

clo_reward_changes = Table(
    "clo_reward_changes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("reward_id", Integer, ForeignKey("clo_rewards.id"), nullable=False),
    Column("transaction_id", String(64), nullable=False),  # the message that made it
    Column("status", String(16), nullable=False),
    Column("cashback_delta", BigInteger, nullable=False),
    Column("fee_delta", BigInteger, nullable=False),
    Column("reason", String(64), nullable=False),
    Column("at", Timestamp(), nullable=False),
    Index("ix_clo_reward_changes_reward_id", "reward_id"),
)

clo_card_offer_uses = Table(
    "clo_card_offer_uses",
    metadata,
    Column("card_id", Integer, ForeignKey("clo_cards.id"), primary_key=True),
    Column("offer_id", Integer, ForeignKey("clo_offers.id"), primary_key=True),
    Column("uses", Integer, nullable=False),
)

clo_card_merchants = Table(
    "clo_card_merchants",
    metadata,
    Column("card_id", Integer, ForeignKey("clo_cards.id"), primary_key=True),
    Column("merchant_id", Integer, ForeignKey("clo_merchants.id"), primary_key=True),
    Column("first_at", Timestamp(), nullable=False),
    Column("last_at", Timestamp(), nullable=False),
)

clo_reviews = Table(
    "clo_reviews",
    metadata,
    Column("id", Integer, primary_key=True),
    _program(),
    Column("transaction_row", Integer, ForeignKey("clo_transactions.id"), nullable=False),
    Column("descriptor", String(200), nullable=False),
    Column("mcc", String(4)),
    Column("suggestions", JSON, nullable=False),  # [[location, score], …]
    Column("status", String(16), nullable=False),  # open, matched, dismissed
    Column("rule_id", Integer, ForeignKey("clo_rules.id")),
    Column("decided_by", String(200)),
    Column("decided_at", Timestamp()),
    Index("ix_clo_reviews_program_id_status", "program_id", "status"),
)

# `verify`'s checks: each reward's amounts are the sum of its changes; an offer's `spent`
# is its rewards' cashback (the database itself refuses a budget overspent).
CHECKS = (
    (
        "a card-linked reward's amounts are the sum of its changes",
        """
    select r.id, 'reward ' || r.id || ': cashback ' || r.cashback || ', fee ' || r.fee
           || ', its changes ' || coalesce(sum(c.cashback_delta), 0) || ' and '
           || coalesce(sum(c.fee_delta), 0)
    from clo_rewards r left join clo_reward_changes c on c.reward_id = r.id
    group by r.id, r.cashback, r.fee
    having r.cashback <> coalesce(sum(c.cashback_delta), 0)
        or r.fee <> coalesce(sum(c.fee_delta), 0)""",
    ),
    (
        "a card-linked offer's budget spent is its rewards' cashback",
        """
    select o.id, 'offer ' || o.code || ': spent ' || o.spent || ', rewards '
           || coalesce(sum(r.cashback), 0)
    from clo_offers o left join clo_rewards r on r.offer_id = o.id
    group by o.id, o.code, o.spent
    having o.spent <> coalesce(sum(r.cashback), 0)""",
    ),
)
