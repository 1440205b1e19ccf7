"""The console's tables (issue 8), on the one schema `metadata` of `kopilka.platform.tables`.

`program` is the program's code, as in `api_keys`: a program's first operator can exist
before the program itself is applied.
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, String, Table, UniqueConstraint

from kopilka.platform.tables import Timestamp, metadata

# People who sign in to the console. Only an argon2 hash of the password is kept; a
# disabled operator keeps its row, so the audit log can still name who did what.
operators = Table(
    "operators",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("program", String(64), nullable=False),
    Column("email", String(320), nullable=False),  # lower-cased
    Column("password_hash", String(200), nullable=False),
    Column("role", String(16), nullable=False),  # admin | support | analyst | marketer | partner
    Column("partner", String(64)),  # a partner operator's coalition partner (its only one)
    Column("created_at", Timestamp(), nullable=False),
    Column("disabled_at", Timestamp()),
    UniqueConstraint("program", "email"),
)

# Signed-in console sessions. The cookie carries a random token; only its SHA-256 is kept,
# so reading this table signs nobody in. Signing out ends the row: a copy of the cookie
# taken before is worth nothing after it.
operator_sessions = Table(
    "operator_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("operator_id", Integer, ForeignKey("operators.id"), nullable=False),
    Column("started_at", Timestamp(), nullable=False),
    Column("ended_at", Timestamp()),
    Index("ix_operator_sessions_operator_id", "operator_id"),
)

# What operators did in the console, newest last; rows are only ever inserted.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("program", String(64), nullable=False),
    Column("operator_id", Integer, ForeignKey("operators.id")),  # null: the system itself
    Column("action", String(64), nullable=False),  # member.adjustment, operator.login …
    Column("target", String(200), nullable=False),  # member:12, operator:3 …
    Column("details", JSON, nullable=False),
    Column("at", Timestamp(), nullable=False),
    Index("ix_audit_log_program_id", "program", "id"),
)
