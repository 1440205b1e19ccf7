"""The exchange's tables, on the one schema `metadata` of `kopilka.platform.tables` (made
by this mechanic's own Alembic branch, `migrations/`).

- `exchanges`: the saga at the source, one row per exchange, unique per source program
  and transaction id: what the member gives, the fee, what the target credits, the
  lots the hold took (given back to them by a reversal), the state and why.
- `exchange_credits`: the target's side, one row per transaction a source asked it to
  credit (or to give up on), unique per target program, source and transaction id.
- `exchange_days`: running state, the points each member sent through each pair on each
  local day (gross, fee included) — what the daily limit weighs, never a sum.
- `exchange_nonces`: the single-use nonces of signed requests from outside programs, kept
  for the timestamp window (then purged by the worker).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
)

from kopilka.kernel.reading import MAX_TEXT
from kopilka.platform.tables import Timestamp, metadata

exchanges = Table(
    "exchanges",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("transaction_id", String(MAX_TEXT), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("pair", String(64), nullable=False),
    Column("member_id", Integer, ForeignKey("members.id"), nullable=False),
    Column("is_remote", Boolean, nullable=False),
    Column("to_program", String(64), nullable=False),  # a program's code, or a partner's id
    Column("to_member", String(MAX_TEXT), nullable=False),
    Column("points", BigInteger, nullable=False),  # given, gross (source minor units)
    Column("fee", BigInteger, nullable=False),
    Column("credit", BigInteger, nullable=False),  # asked of the target (its minor units)
    Column("credited", BigInteger),  # what the target says it credited, once known
    Column("target_digits", Integer, nullable=False),
    Column("lots", JSON, nullable=False),  # [[lot id, points], …] the hold took
    Column("ledger_key", String(MAX_TEXT), nullable=False),  # its transfers' key, less ":step"
    Column("state", String(16), nullable=False),  # held | confirmed | reversed
    Column("reason", String(MAX_TEXT)),  # why it was reversed
    Column("day", Date, nullable=False),  # the program's local day it was asked
    Column("actor", String(MAX_TEXT), nullable=False),
    Column("created_at", Timestamp(), nullable=False),
    Column("deadline", Timestamp(), nullable=False),  # the credit's time-out
    Column("settled_at", Timestamp()),
    UniqueConstraint("program_id", "transaction_id"),
    Index(None, "state", "deadline"),
    Index(None, "member_id", "id"),
    Index(None, "program_id", "day"),
)

exchange_credits = Table(
    "exchange_credits",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("source", String(80), nullable=False),  # "program:<code>" | "partner:<id>"
    Column("transaction_id", String(MAX_TEXT), nullable=False),
    Column("request_hash", String(64)),  # None for a transaction given up before its credit
    Column("pair", String(64)),
    Column("member_id", Integer, ForeignKey("members.id")),
    Column("to_member", String(MAX_TEXT)),
    Column("ledger_key", String(MAX_TEXT)),  # the credit's transfer key, when credited
    Column("points", BigInteger, nullable=False),  # credited (this program's minor units)
    Column("state", String(16), nullable=False),  # credited | refused | reversed
    Column("reason", String(MAX_TEXT)),
    Column("day", Date, nullable=False),
    Column("created_at", Timestamp(), nullable=False),
    UniqueConstraint("program_id", "source", "transaction_id"),
    Index(None, "program_id", "day"),
)

exchange_days = Table(
    "exchange_days",
    metadata,
    Column("member_id", Integer, ForeignKey("members.id"), nullable=False),
    Column("pair", String(64), nullable=False),
    Column("day", Date, nullable=False),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("points", BigInteger, nullable=False),
    PrimaryKeyConstraint("member_id", "pair", "day"),
)

exchange_nonces = Table(
    "exchange_nonces",
    metadata,
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("partner", String(64), nullable=False),
    Column("nonce", String(64), nullable=False),
    Column("seen_at", Timestamp(), nullable=False),
    PrimaryKeyConstraint("program_id", "partner", "nonce"),
    Index(None, "seen_at"),
)
