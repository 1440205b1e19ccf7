"""The cashback tables (issue 7), and every program's cashback accounts.

Programs applied from now on open `cashback.issuance` and `cashback.paid_out` with their
other accounts; the programs already there get them here. Members' cashback accounts are
opened when a member first gets cashback, so none are made here.

A downgrade drops the tables and the cashback accounts; it fails (a foreign key refuses)
once any cashback money has moved: ledger rows are never deleted.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
PROGRAM_CODES = ("cashback.issuance", "cashback.paid_out")


def upgrade() -> None:
    _accruals()
    _awards_and_budgets()
    _clawbacks()
    _payouts()
    for code in PROGRAM_CODES:
        op.execute(
            "INSERT INTO accounts (program_id, member_id, owner, code, debits_posted, "
            f"credits_posted) SELECT p.id, NULL, 'program', '{code}', 0, 0 FROM programs p "
            "WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.program_id = p.id "
            f"AND a.owner = 'program' AND a.code = '{code}')"
        )


def downgrade() -> None:
    op.execute("DELETE FROM accounts WHERE code LIKE 'cashback.%'")
    op.drop_index("ix_cashback_payouts_member_id", "cashback_payouts")
    op.drop_index("ix_cashback_payouts_program_id_status", "cashback_payouts")
    op.drop_table("cashback_payouts")
    op.drop_table("cashback_clawbacks")
    op.drop_table("cashback_budgets")
    op.drop_index("ix_cashback_awards_accrual_id", "cashback_awards")
    op.drop_index("ix_cashback_awards_program_id_campaign", "cashback_awards")
    op.drop_table("cashback_awards")
    op.drop_index("ix_cashback_accruals_member_id", "cashback_accruals")
    op.drop_index("ix_cashback_accruals_status_available_at", "cashback_accruals")
    op.drop_table("cashback_accruals")


def _accruals() -> None:
    op.create_table(
        "cashback_accruals",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("program_id", sa.Integer, sa.ForeignKey("programs.id"), nullable=False),
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id"), nullable=False),
        sa.Column("purchase_id", sa.Integer, sa.ForeignKey("purchases.id"), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("paid", sa.BigInteger, nullable=False),
        sa.Column("pending", sa.BigInteger, nullable=False),
        sa.Column("refunded", sa.BigInteger, nullable=False),
        sa.Column("clawed_back", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("available_at", TZ, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("answer", sa.JSON, nullable=False),
        sa.UniqueConstraint("purchase_id", name="uq_cashback_accruals_purchase_id"),
        sa.CheckConstraint(
            "pending >= 0 and pending <= amount", name="ck_cashback_accruals_pending"
        ),
        sa.CheckConstraint(
            "clawed_back >= 0 and clawed_back <= amount", name="ck_cashback_accruals_clawed_back"
        ),
    )
    op.create_index(
        "ix_cashback_accruals_status_available_at", "cashback_accruals", ["status", "available_at"]
    )
    op.create_index("ix_cashback_accruals_member_id", "cashback_accruals", ["member_id"])


def _awards_and_budgets() -> None:
    op.create_table(
        "cashback_awards",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("program_id", sa.Integer, sa.ForeignKey("programs.id"), nullable=False),
        sa.Column("accrual_id", sa.Integer, sa.ForeignKey("cashback_accruals.id"), nullable=False),
        sa.Column("campaign", sa.String(64), nullable=False),
        sa.Column("percent", sa.String(40), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_cashback_awards_program_id_campaign", "cashback_awards", ["program_id", "campaign"]
    )
    op.create_index("ix_cashback_awards_accrual_id", "cashback_awards", ["accrual_id"])
    op.create_table(
        "cashback_budgets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("program_id", sa.Integer, sa.ForeignKey("programs.id"), nullable=False),
        sa.Column("campaign", sa.String(64), nullable=False),
        sa.Column("spent", sa.BigInteger, nullable=False),
        sa.Column("last_grant", sa.BigInteger, nullable=False),
        sa.UniqueConstraint(
            "program_id", "campaign", name="uq_cashback_budgets_program_id_campaign"
        ),
    )


def _clawbacks() -> None:
    op.create_table(
        "cashback_clawbacks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("program_id", sa.Integer, sa.ForeignKey("programs.id"), nullable=False),
        sa.Column("accrual_id", sa.Integer, sa.ForeignKey("cashback_accruals.id"), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("refund_id", sa.Integer, sa.ForeignKey("refunds.id")),
        sa.Column("refunded", sa.BigInteger, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("debt", sa.BigInteger, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("accrual_id", "key", name="uq_cashback_clawbacks_accrual_id_key"),
    )


def _payouts() -> None:
    op.create_table(
        "cashback_payouts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("program_id", sa.Integer, sa.ForeignKey("programs.id"), nullable=False),
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id"), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("destination_type", sa.String(16), nullable=False),
        sa.Column("destination_number", sa.String(34), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_at", TZ, nullable=False),
        sa.Column("requested_by", sa.String(200), nullable=False),
        sa.Column("approved_at", TZ),
        sa.Column("approved_by", sa.String(200)),
        sa.Column("paid_at", TZ),
        sa.Column("paid_by", sa.String(200)),
        sa.Column("rejected_at", TZ),
        sa.Column("rejected_by", sa.String(200)),
        sa.Column("note", sa.Text),
        sa.CheckConstraint("amount > 0", name="ck_cashback_payouts_amount_positive"),
    )
    op.create_index(
        "ix_cashback_payouts_program_id_status", "cashback_payouts", ["program_id", "status", "id"]
    )
    op.create_index("ix_cashback_payouts_member_id", "cashback_payouts", ["member_id"])
