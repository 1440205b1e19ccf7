"""The schema. Amounts are BIGINT minor units (kopecks, hundredths of a point), never floats.

Money rows (accounts, transfers) hold no personal data: names, phones, emails and
birthdays live in `member_profiles`, which erasure deletes while the ledger stays whole.
Ledger rows (`transfers`) are append-only: no code updates or deletes them, and on
PostgreSQL a trigger refuses it (see the first migration).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class Timestamp(TypeDecorator[datetime]):
    """An aware UTC datetime on every database (SQLite hands back naive ones otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(
        self,
        value: datetime | None,
        dialect: Dialect,  # noqa: ARG002
    ) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("timestamps must be aware")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(
        self,
        value: datetime | None,
        dialect: Dialect,  # noqa: ARG002
    ) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

programs = Table(
    "programs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("code", String(64), nullable=False, unique=True),
    Column("current_version", Integer, nullable=False),
    Column("created_at", Timestamp(), nullable=False),
)

program_versions = Table(
    "program_versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("document", JSON, nullable=False),  # the program file, numbers as strings
    Column("document_hash", String(64), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("created_at", Timestamp(), nullable=False),
    UniqueConstraint("program_id", "version"),
)

members = Table(
    "members",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("card", String(32), nullable=False),
    Column("external_id", String(200)),
    Column("status", String(16), nullable=False),  # active | blocked | erased
    Column("referrer_id", Integer, ForeignKey("members.id")),
    Column("created_at", Timestamp(), nullable=False),
    Column("erased_at", Timestamp()),
    UniqueConstraint("program_id", "card"),
    UniqueConstraint("program_id", "external_id"),
)

# Personal data, apart from money: erasure deletes the row.
member_profiles = Table(
    "member_profiles",
    metadata,
    Column("member_id", Integer, ForeignKey("members.id"), primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("phone", String(20)),  # E.164
    Column("email", String(320)),  # lower-cased
    Column("name", String(200)),
    Column("birthday", Date),
    UniqueConstraint("program_id", "phone"),
    UniqueConstraint("program_id", "email"),
)

# A member's consents, each change a row (the latest per channel is in force): proof of
# when a member agreed to personal data processing (152-FZ) and to messages on each
# channel (38-FZ requires prior consent to advertising). Deleted with the profile on erasure.
member_consents = Table(
    "member_consents",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("member_id", Integer, ForeignKey("members.id"), nullable=False),
    Column("channel", String(32), nullable=False),  # personal_data | sms | email | push | calls
    Column("granted", Boolean, nullable=False),
    Column("source", String(32), nullable=False),  # registration | profile | import
    Column("changed_at", Timestamp(), nullable=False),
    Index("ix_member_consents_member_id", "member_id", "id"),
)

# TigerBeetle-style accounts: running totals, kept in the transaction of their transfers.
accounts = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("member_id", Integer, ForeignKey("members.id")),  # null for the program's own accounts
    Column("owner", String(32), nullable=False),  # "program" or "member:<id>"
    Column("code", String(32), nullable=False),
    Column("debits_posted", BigInteger, nullable=False, default=0),
    Column("credits_posted", BigInteger, nullable=False, default=0),
    UniqueConstraint("program_id", "owner", "code"),
)

transfers = Table(
    "transfers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("transfer_key", String(200), nullable=False, unique=True),  # the idempotency id
    Column("debit_account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("credit_account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("reason", String(48), nullable=False),  # the why: purchase.accrual, adjustment …
    Column("actor", String(200), nullable=False),
    Column("purchase_id", Integer, ForeignKey("purchases.id")),
    Column("refund_id", Integer, ForeignKey("refunds.id")),
    Column("note", Text),
    Column("created_at", Timestamp(), nullable=False),
    CheckConstraint("amount > 0", name="amount_positive"),
    CheckConstraint("debit_account_id <> credit_account_id", name="two_accounts"),
)
Index("ix_accounts_member_id", accounts.c.member_id)
Index("ix_transfers_debit", transfers.c.debit_account_id, transfers.c.id)
Index("ix_transfers_credit", transfers.c.credit_account_id, transfers.c.id)
Index("ix_transfers_purchase_id", transfers.c.purchase_id)

purchases = Table(
    "purchases",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("program_version_id", Integer, ForeignKey("program_versions.id"), nullable=False),
    Column("location", String(64), nullable=False),  # "" when the receipt names none
    Column("receipt_id", String(200), nullable=False),
    Column("member_id", Integer, ForeignKey("members.id")),
    Column("request_hash", String(64), nullable=False),
    Column("status", String(24), nullable=False),  # completed | partially_refunded | refunded
    Column("answer", JSON, nullable=False),
    Column("lines", JSON),  # [{"n": 0, "qty": "2"}]: what refunds need besides the answer
    Column("lots_used", JSON),  # [[lot_id, amount], …] in the order the redemption took them
    Column("created_at", Timestamp(), nullable=False),
    UniqueConstraint("program_id", "location", "receipt_id"),
)

refunds = Table(
    "refunds",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("purchase_id", Integer, ForeignKey("purchases.id"), nullable=False),
    Column("refund_id", String(200), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("lines", JSON, nullable=False),  # [{"n": 0, "qty": "1"}] as refunded
    Column("answer", JSON, nullable=False),
    Column("created_at", Timestamp(), nullable=False),
    UniqueConstraint("purchase_id", "refund_id"),
)

# Points by when they were earned, for FIFO expiry: an index over the member's available
# and pending balances (`kopilka verify` checks the sums), kept in the transaction of the
# transfers that move them. `remaining` is what is left of the lot.
lots = Table(
    "lots",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("member_id", Integer, ForeignKey("members.id"), nullable=False),
    Column("status", String(16), nullable=False),  # pending | available
    Column("amount", BigInteger, nullable=False),
    Column("remaining", BigInteger, nullable=False),
    Column("earned_at", Timestamp(), nullable=False),
    Column("available_at", Timestamp(), nullable=False),
    Column("expires_at", Timestamp()),
    Column("purchase_id", Integer, ForeignKey("purchases.id")),
    Column("reason", String(48), nullable=False),
    # the last day its points can be spent, in the program's time zone (`expires_at`
    # less a microsecond): the day `member_expiring` counts them on
    Column("expiry_day", Date),
    CheckConstraint("remaining >= 0 and remaining <= amount", name="remaining"),
)
Index("ix_lots_member_id_status", lots.c.member_id, lots.c.status)
Index("ix_lots_status_available_at", lots.c.status, lots.c.available_at)
Index("ix_lots_purchase_id", lots.c.purchase_id)

# Two-phase purchases: points reserved (`held`) until confirmed, cancelled or timed out.
holds = Table(
    "holds",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("purchase_id", Integer, ForeignKey("purchases.id"), nullable=False, unique=True),
    Column("member_id", Integer, ForeignKey("members.id"), nullable=False),
    Column("amount", BigInteger, nullable=False),  # the points reserved
    Column("accrued", BigInteger, nullable=False),  # the points to accrue on confirm
    Column("status", String(16), nullable=False),  # held | confirmed | cancelled | expired
    Column("expires_at", Timestamp(), nullable=False),
    Column("settled_at", Timestamp()),
    Column("answer", JSON),  # the confirm/cancel answer, replayed as it was
)
Index("ix_holds_status_expires_at", holds.c.status, holds.c.expires_at)

# An `Idempotency-Key` seen with any POST: the same key and body answer the first result.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("key", String(200), nullable=False),
    Column("operation", String(64), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("answer", JSON, nullable=False),
    Column("created_at", Timestamp(), nullable=False),
    UniqueConstraint("program_id", "key"),
)

# Access keys. A key is shown once and stored only as its SHA-256 (a key carries ≥ 190
# random bits, so a fast hash is safe: there is nothing to guess that a slow one would
# protect). `program` is the program's code, so a program's first admin key can exist
# before the program itself is applied over the API.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("program", String(64), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),  # the first characters, to recognise a key
    Column("role", String(16), nullable=False),
    Column("location", String(64)),  # a pos key acts at this location only
    Column("partner", String(64)),  # a coalition partner's key acts for that partner only
    Column("label", String(200)),
    Column("created_at", Timestamp(), nullable=False),
    Column("revoked_at", Timestamp()),
)

# What happened to a member by itself: expiries, expiry warnings, triggers fired. The
# `occasion` (a date, a year, a trigger's spell) is unique per member and kind, so the
# worker records each once however often it runs; messaging and analytics read them.
events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("member_id", Integer, ForeignKey("members.id"), nullable=False),
    Column("kind", String(48), nullable=False),  # expiry | expiry.warning | trigger.<code>
    Column("occasion", String(100), nullable=False),
    Column("data", JSON, nullable=False),
    Column("occurred_at", Timestamp(), nullable=False),
    UniqueConstraint("member_id", "kind", "occasion", name="uq_events_occasion"),
    Index("ix_events_member_id", "member_id", "id"),
)
Index(
    "ix_lots_available_expires_at",
    lots.c.expires_at,
    postgresql_where=text("status = 'available' AND remaining > 0"),
    sqlite_where=text("status = 'available' AND remaining > 0"),
)

# Tiers (issue 6). A member's tier as it stands; no row: the program's default level.
# `downgrade_at` is a downgrade pending at the end of a grace period; `reviewed_at` the
# last review held for the member (a review is held once per member per review period).
member_tiers = Table(
    "member_tiers",
    metadata,
    Column("member_id", Integer, ForeignKey("members.id"), primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("code", String(64), nullable=False),
    Column("since", Timestamp(), nullable=False),
    Column("until", Timestamp()),  # a tier set by hand: no review lowers it before then
    Column("manual", Boolean, nullable=False),
    Column("reason", Text),
    Column("downgrade_at", Timestamp()),
    Column("reviewed_at", Timestamp()),
    # what a review looks for: members not reviewed since, downgrades fallen due
    Index("ix_member_tiers_program_id_reviewed_at", "program_id", "reviewed_at"),
    Index("ix_member_tiers_program_id_downgrade_at", "program_id", "downgrade_at"),
)

# Every change of a member's tier, with why and who; `occasion` (a review, a purchase) is
# unique per member, so no change is ever applied twice however many workers run.
tier_history = Table(
    "tier_history",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("member_id", Integer, ForeignKey("members.id"), nullable=False),
    Column("from_code", String(64)),
    Column("to_code", String(64), nullable=False),
    Column("manual", Boolean, nullable=False),
    Column("until", Timestamp()),
    Column("reason", Text, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("purchase_id", Integer, ForeignKey("purchases.id")),
    Column("occasion", String(100)),
    Column("changed_at", Timestamp(), nullable=False),
    UniqueConstraint("member_id", "occasion", name="uq_tier_history_occasion"),
    Index("ix_tier_history_member_id", "member_id", "id"),
)
# qualifying spend and purchases are summed over a member's purchases in a window
purchases.append_column(Column("spend", BigInteger))  # money net of discounts, minor units
refunds.append_column(Column("spend", BigInteger))  # the part of `spend` refunded
Index("ix_purchases_member_id_created_at", purchases.c.member_id, purchases.c.created_at)

# Typed purchase records (issue 16): what a purchase was and what each mechanic gave or
# took on each line, as rows — refunds, hold settlement, tier standing, the dashboard and
# `verify` read these; the stored `answer` is kept only to repeat a replay byte for byte.
# The purchase's own figures, minor units: money (total, discount, paid), points
# (redeemed, accrued — for a hold, what its confirm accrues).
for _name in ("total", "discount", "redeemed", "paid", "accrued"):
    purchases.append_column(Column(_name, BigInteger))
# A refund's points: returned to the member, taken back, and of those already burnt.
for _name in ("redeemed_back", "accrued_back", "accrued_burnt"):
    refunds.append_column(Column(_name, BigInteger))

# A purchase's lines as the receipt gave them and the calculator priced them.
purchase_lines = Table(
    "purchase_lines",
    metadata,
    Column("purchase_id", Integer, ForeignKey("purchases.id"), primary_key=True),
    Column("n", Integer, primary_key=True),  # the line's number in the receipt, from 0
    Column("sku", String(64), nullable=False),
    Column("category", String(64)),
    Column("qty_micro", BigInteger, nullable=False),  # qty × 10⁶ (QTY_DIGITS = 6)
    Column("amount", BigInteger, nullable=False),  # money: qty × price − discount
    Column("discount", BigInteger, nullable=False),  # money: the receipt's and the program's
    Column("redeemed", BigInteger, nullable=False),  # points that paid for this line
    Column("accrued", BigInteger, nullable=False),  # points the rules gave this line
    CheckConstraint("qty_micro > 0", name="qty_positive"),
)

# What a mechanic gave or took with a purchase: on a line (`n`), or on the whole receipt
# (`n` null) — the rules' points (`detail`: the rules and their coefficients), points
# paid, each discount's share, a coupon's points, cashback. `unit` is `points` or
# `money`; `funded_by` who pays for it (the program now; a partner with the coalition).
purchase_awards = Table(
    "purchase_awards",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("purchase_id", Integer, ForeignKey("purchases.id"), nullable=False),
    Column("n", Integer),
    Column("mechanic", String(32), nullable=False),  # points | discounts | coupons | cashback …
    Column("kind", String(32), nullable=False),  # accrual | redemption | discount | points …
    Column("source", String(100)),  # the rule, discount, coupon or campaign that gave it
    Column("unit", String(16), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("funded_by", String(64), nullable=False),
    Column("detail", JSON),
    CheckConstraint("amount >= 0", name="amount_not_negative"),
    Index("ix_purchase_awards_purchase_id", "purchase_id"),
)

# A member's standing kept as running totals (issue 17), added to by the writes of the
# purchases, refunds and hold confirmations that change it, so that nothing on the hot
# path sums a member's history. `member_days`: spend (money net of discounts and of
# refunds) and purchases (a purchase refunded in full is none) per day in the program's
# time zone, by the day the purchase was made; a window reads at most one row per day of
# it. `member_totals`: the same over the member's life, and the points their purchases
# earned (`points_accrued`, transfers of reason purchase.accrual) and paid
# (`points_redeemed`, purchase.redemption). `verify` checks both against the rows.
member_days = Table(
    "member_days",
    metadata,
    Column("member_id", Integer, ForeignKey("members.id"), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("spend", BigInteger, nullable=False),
    Column("purchases", Integer, nullable=False),
)

member_totals = Table(
    "member_totals",
    metadata,
    Column("member_id", Integer, ForeignKey("members.id"), primary_key=True),
    Column("spend", BigInteger, nullable=False),
    Column("purchases", Integer, nullable=False),
    Column("points_accrued", BigInteger, nullable=False),
    Column("points_redeemed", BigInteger, nullable=False),
)

# The points a member can still spend that burn, per last day they can be spent: the
# available lots' `remaining` by `expiry_day`, kept by triggers on `lots` (revision
# 0017) whoever writes them — a purchase, a refund, the expiry worker — so that a
# balance reads a row per day instead of every lot. `verify` checks it against the lots.
member_expiring = Table(
    "member_expiring",
    metadata,
    Column("member_id", Integer, ForeignKey("members.id"), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("points", BigInteger, nullable=False),
)

# Signed webhooks waiting to be sent, or sent (kopilka.platform.webhooks, docs/webhooks.md):
# a mechanic adds a row in the transaction of the state change it reports, so a webhook
# exists if and only if the change committed; the worker sends it later, outside any
# transaction. `event_key` is the sender's idempotency key (a feed message retried adds
# nothing); `body` is the JSON text exactly as signed and sent.
webhook_outbox = Table(
    "webhook_outbox",
    metadata,
    Column("id", Integer, primary_key=True),  # X-Kopilka-Delivery: the receiver's dedup key
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("endpoint", String(64), nullable=False),  # whose URL and secret: "bank" …
    Column("event", String(64), nullable=False),  # transaction.confirmed …
    Column("event_key", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", Timestamp(), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),  # sends whose outcome was recorded
    # when it may be sent (next): moved forward by a lease while a worker sends it
    Column("next_attempt_at", Timestamp(), nullable=False),
    Column("delivered_at", Timestamp()),
    Column("given_up_at", Timestamp()),
    Column("last_error", String(500)),  # the last failure: a status or an exception, no secret
    UniqueConstraint("program_id", "event_key"),
)
# what the worker asks for: the undelivered rows due by now, oldest first
Index(
    "ix_webhook_outbox_due",
    webhook_outbox.c.next_attempt_at,
    postgresql_where=text("delivered_at IS NULL AND given_up_at IS NULL"),
    sqlite_where=text("delivered_at IS NULL AND given_up_at IS NULL"),
)

# Each mechanic's tables live beside its code, on this one metadata (issue 7 onwards).
from kopilka.mechanics.cashback import tables as _cashback  # noqa: E402, F401
from kopilka.mechanics.coupons import tables as _coupons  # noqa: E402, F401
from kopilka.mechanics.discounts import tables as _discounts  # noqa: E402, F401
from kopilka.members import link_tables as _links  # noqa: E402, F401
from kopilka.operators import tables as _operators  # noqa: E402, F401
