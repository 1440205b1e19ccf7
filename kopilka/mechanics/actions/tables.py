"""The actions mechanic's tables, on the one schema `metadata` of `kopilka.platform.tables`
(made by this package's migration branch, `migrations/`).

- `action_reports`: every report, credited or refused, once per (program, action,
  external id) — the row a repeat is answered from (its `request_hash` tells a repeat
  from another report under the same id), and what support reads;
- `action_counts`: the running counts the limits are weighed against — per member,
  action and period (`ever`, or the period's kind and first day: `month:2026-12-01`),
  with the points they gave; raised in the report's own transaction under a row lock,
  so two reports at once can't both pass a limit of 1.
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
    UniqueConstraint,
)

from kopilka.platform.tables import Timestamp, metadata

__all__ = ["action_counts", "action_reports", "metadata"]

action_reports = Table(
    "action_reports",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("member_id", Integer, ForeignKey("members.id"), nullable=False),
    Column("action", String(64), nullable=False),
    Column("external_id", String(200), nullable=False),
    Column("request_hash", String(64), nullable=False),  # the body's fingerprint
    Column("status", String(16), nullable=False),  # credited | refused
    Column("points", BigInteger, nullable=False),  # given (0 when refused)
    Column("refused_by", String(16)),  # per_member | per_period | valid
    Column("balance", BigInteger),  # the member's available points after the credit
    Column("reported_by", String(64), nullable=False),  # key:<id> | callback
    Column("location", String(64)),  # a pos key's location
    Column("occurred_at", Timestamp()),  # as the reporter says
    Column("received_at", Timestamp(), nullable=False),
    Column("answer", JSON, nullable=False),  # the answer, to repeat it
    UniqueConstraint("program_id", "action", "external_id", name="uq_action_reports_external_id"),
    CheckConstraint("points >= 0", name="points"),
    Index("ix_action_reports_member_id", "member_id", "id"),
    Index("ix_action_reports_program_id_action", "program_id", "action"),
)

action_counts = Table(
    "action_counts",
    metadata,
    Column("member_id", Integer, ForeignKey("members.id"), primary_key=True),
    Column("action", String(64), primary_key=True),
    Column("period", String(32), primary_key=True),  # ever | <period>:<first day>
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("count", Integer, nullable=False),
    Column("points", BigInteger, nullable=False),
    CheckConstraint("count >= 0 and points >= 0", name="counts"),
)
