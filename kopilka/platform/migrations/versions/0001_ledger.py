"""Programs, members, the points ledger and purchases.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)

# On PostgreSQL the ledger refuses UPDATE and DELETE outright: a mistake is corrected by a
# reversing transfer, never by editing history.
APPEND_ONLY = """
CREATE FUNCTION kopilka_refuse_ledger_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'kopilka: % on % is refused: ledger rows are append-only',
        TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER transfers_append_only BEFORE UPDATE OR DELETE ON transfers
    FOR EACH ROW EXECUTE FUNCTION kopilka_refuse_ledger_change();
"""


def upgrade() -> None:
    op.create_table(
        "programs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code", sa.String(64), nullable=False, unique=True),
        sa.Column("current_version", sa.Integer, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_table(
        "program_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("program_id", sa.Integer, sa.ForeignKey("programs.id"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("document", sa.JSON, nullable=False),
        sa.Column("document_hash", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("program_id", "version"),
    )
    op.create_table(
        "members",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("program_id", sa.Integer, sa.ForeignKey("programs.id"), nullable=False),
        sa.Column("card", sa.String(32), nullable=False),
        sa.Column("external_id", sa.String(200)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("referrer_id", sa.Integer, sa.ForeignKey("members.id")),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("program_id", "card"),
        sa.UniqueConstraint("program_id", "external_id"),
    )
    op.create_table(
        "member_profiles",
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id"), primary_key=True),
        sa.Column("program_id", sa.Integer, sa.ForeignKey("programs.id"), nullable=False),
        sa.Column("phone", sa.String(20)),
        sa.Column("email", sa.String(320)),
        sa.Column("name", sa.String(200)),
        sa.Column("birthday", sa.Date),
        sa.UniqueConstraint("program_id", "phone"),
        sa.UniqueConstraint("program_id", "email"),
    )
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("program_id", sa.Integer, sa.ForeignKey("programs.id"), nullable=False),
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id")),
        sa.Column("owner", sa.String(32), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("debits_posted", sa.BigInteger, nullable=False),
        sa.Column("credits_posted", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("program_id", "owner", "code"),
    )
    op.create_table(
        "purchases",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("program_id", sa.Integer, sa.ForeignKey("programs.id"), nullable=False),
        sa.Column(
            "program_version_id", sa.Integer, sa.ForeignKey("program_versions.id"), nullable=False
        ),
        sa.Column("location", sa.String(64), nullable=False),
        sa.Column("receipt_id", sa.String(200), nullable=False),
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id")),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("answer", sa.JSON, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("program_id", "location", "receipt_id"),
    )
    op.create_table(
        "transfers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("program_id", sa.Integer, sa.ForeignKey("programs.id"), nullable=False),
        sa.Column("transfer_key", sa.String(200), nullable=False, unique=True),
        sa.Column("debit_account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("credit_account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.String(48), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("purchase_id", sa.Integer, sa.ForeignKey("purchases.id")),
        sa.Column("note", sa.Text),
        sa.Column("created_at", TZ, nullable=False),
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        sa.CheckConstraint("debit_account_id <> credit_account_id", name="two_accounts"),
    )
    op.create_index("ix_transfers_debit", "transfers", ["debit_account_id", "id"])
    op.create_index("ix_transfers_credit", "transfers", ["credit_account_id", "id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(APPEND_ONLY)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER transfers_append_only ON transfers")
        op.execute("DROP FUNCTION kopilka_refuse_ledger_change()")
    for table in ("transfers", "purchases", "accounts", "member_profiles", "members",
                  "program_versions", "programs"):  # fmt: skip
        op.drop_table(table)
