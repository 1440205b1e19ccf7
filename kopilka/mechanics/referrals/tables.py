"""The referral tables, on the one schema `metadata` of `kopilka.platform.tables` (made
by this mechanic's own Alembic branch, `migrations/`).

- `referral_codes`: a member's personal code, unique per program.
- `referrals`: one per friend (a friend is referred once), its status and reasons, the
  friend's first qualifying purchase once found, and what each side was paid.
- `referral_fingerprints`: one-way hashes of the identities the fraud checks compare —
  phone, email and card at registration, devices and payment cards (BIN + last four)
  as they are seen — per member, with how many times each was seen. A purchase adds to
  it in its own write (`Sale.bumps`), so it costs the purchase no round trip.
- `referral_decisions`: every change of a referral's status — the worker's verdicts and
  people's approvals and rejections: who, when, what, why.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
)

from kopilka.kernel.reading import MAX_NOTE, MAX_TEXT
from kopilka.platform.statements import RunningTotal
from kopilka.platform.tables import Timestamp, metadata

referral_codes = Table(
    "referral_codes",
    metadata,
    Column("member_id", Integer, ForeignKey("members.id"), primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("code", String(32), nullable=False),  # normalised: upper case, no dashes
    Column("created_at", Timestamp(), nullable=False),
    UniqueConstraint("program_id", "code"),
)

referrals = Table(
    "referrals",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("referrer_id", Integer, ForeignKey("members.id"), nullable=False),
    Column("friend_id", Integer, ForeignKey("members.id"), nullable=False, unique=True),
    Column("code", String(32)),  # the code the friend came by; None: named as `referrer`
    Column("status", String(16), nullable=False),  # waiting | review | paid | rejected
    Column("reasons", JSON, nullable=False),  # ["self_referral_phone", …]
    Column("purchase_id", Integer, ForeignKey("purchases.id")),  # the first qualifying one
    Column("referrer_points", BigInteger),  # paid, minor units
    Column("friend_points", BigInteger),
    Column("created_at", Timestamp(), nullable=False),
    Column("decided_at", Timestamp()),  # when it left `waiting`
    Column("paid_at", Timestamp()),
    Index(None, "program_id", "status", "id"),
    Index(None, "referrer_id", "status"),
)

referral_fingerprints = Table(
    "referral_fingerprints",
    metadata,
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("kind", String(16), nullable=False),  # phone | email | card | payment_card | device
    Column("value", String(64), nullable=False),  # sha256 of the normalised identity, hex
    Column("member_id", Integer, ForeignKey("members.id"), nullable=False),
    Column("uses", BigInteger, nullable=False),  # times seen: registration, purchases
    PrimaryKeyConstraint("program_id", "kind", "value", "member_id"),
    Index(None, "member_id"),
)
FINGERPRINTS = RunningTotal(
    referral_fingerprints, ("program_id", "kind", "value", "member_id"), ("uses",)
)

referral_decisions = Table(
    "referral_decisions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("referral_id", Integer, ForeignKey("referrals.id"), nullable=False),
    Column("action", String(16), nullable=False),  # refer | judge | approve | reject
    Column("status", String(16), nullable=False),  # the referral's status after it
    Column("reasons", JSON, nullable=False),
    Column("note", String(MAX_NOTE)),
    Column("actor", String(MAX_TEXT), nullable=False),  # worker | key:3 | operator:5
    Column("at", Timestamp(), nullable=False),
    Index(None, "referral_id", "id"),
)
