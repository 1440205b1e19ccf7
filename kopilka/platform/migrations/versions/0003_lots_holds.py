"""Lots, holds, Idempotency-Key answers, member debts and erasure.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "lots",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("program_id", sa.Integer, sa.ForeignKey("programs.id"), nullable=False),
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("remaining", sa.BigInteger, nullable=False),
        sa.Column("earned_at", TZ, nullable=False),
        sa.Column("available_at", TZ, nullable=False),
        sa.Column("expires_at", TZ),
        sa.Column("purchase_id", sa.Integer, sa.ForeignKey("purchases.id")),
        sa.Column("reason", sa.String(48), nullable=False),
        sa.CheckConstraint("remaining >= 0 and remaining <= amount", name="ck_lots_remaining"),
    )
    op.create_index("ix_lots_member_id_status", "lots", ["member_id", "status"])
    op.create_index("ix_lots_status_available_at", "lots", ["status", "available_at"])
    op.create_table(
        "holds",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("program_id", sa.Integer, sa.ForeignKey("programs.id"), nullable=False),
        sa.Column("purchase_id", sa.Integer, sa.ForeignKey("purchases.id"), nullable=False),
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id"), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("accrued", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("settled_at", TZ),
        sa.Column("answer", sa.JSON),
        sa.UniqueConstraint("purchase_id", name="uq_holds_purchase_id"),
    )
    op.create_index("ix_holds_status_expires_at", "holds", ["status", "expires_at"])
    op.create_table(
        "idempotency_keys",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("program_id", sa.Integer, sa.ForeignKey("programs.id"), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("operation", sa.String(64), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("answer", sa.JSON, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("program_id", "key", name="uq_idempotency_keys_program_id_key"),
    )
    with op.batch_alter_table("purchases") as batch:
        # the lots a redemption consumed, in order: [[lot_id, amount], …]; refunds restore them
        batch.add_column(sa.Column("lots_used", sa.JSON, nullable=True))
    with op.batch_alter_table("members") as batch:
        batch.add_column(sa.Column("erased_at", TZ, nullable=True))
    # every member gets a debt account, at zero
    op.execute(
        "INSERT INTO accounts (program_id, member_id, owner, code, debits_posted, credits_posted) "
        "SELECT program_id, id, 'member:' || id, 'debt', 0, 0 FROM members"
    )
    # every member's points so far become one lot, without expiry (history has none)
    op.execute(
        "INSERT INTO lots (program_id, member_id, status, amount, remaining, earned_at, "
        "available_at, reason) "
        "SELECT a.program_id, a.member_id, 'available', a.credits_posted - a.debits_posted, "
        "a.credits_posted - a.debits_posted, m.created_at, m.created_at, 'migration' "
        "FROM accounts a JOIN members m ON m.id = a.member_id "
        "WHERE a.code = 'available' AND a.credits_posted > a.debits_posted"
    )
    op.execute(
        "INSERT INTO lots (program_id, member_id, status, amount, remaining, earned_at, "
        "available_at, reason) "
        "SELECT a.program_id, a.member_id, 'pending', a.credits_posted - a.debits_posted, "
        "a.credits_posted - a.debits_posted, m.created_at, m.created_at, 'migration' "
        "FROM accounts a JOIN members m ON m.id = a.member_id "
        "WHERE a.code = 'pending' AND a.credits_posted > a.debits_posted"
    )


def downgrade() -> None:
    op.execute("DELETE FROM accounts WHERE code = 'debt'")
    with op.batch_alter_table("members") as batch:
        batch.drop_column("erased_at")
    with op.batch_alter_table("purchases") as batch:
        batch.drop_column("lots_used")
    op.drop_table("idempotency_keys")
    op.drop_index("ix_holds_status_expires_at", "holds")
    op.drop_table("holds")
    op.drop_index("ix_lots_status_available_at", "lots")
    op.drop_index("ix_lots_member_id_status", "lots")
    op.drop_table("lots")
