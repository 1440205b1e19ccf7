"""The exchange's tables (kopilka/mechanics/exchange/tables.py), and its three program
accounts (`exchange.held`, `exchange.clearing`, `exchange.fees`) opened for every program
that exists — programs made later open them with the rest — a branch of its own, forked
from the platform's revision whose programs, members and accounts it needs.

Revision ID: x001
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "x001"
down_revision = "0018"  # the platform's head when the exchange came
branch_labels = ("exchange",)
depends_on = None

TZ = sa.DateTime(timezone=True)
ACCOUNTS = ("exchange.held", "exchange.clearing", "exchange.fees")


def _program() -> sa.Column[int]:
    return sa.Column("program_id", sa.Integer, sa.ForeignKey("programs.id"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "exchanges",
        sa.Column("id", sa.Integer, primary_key=True),
        _program(),
        sa.Column("transaction_id", sa.String(200), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("pair", sa.String(64), nullable=False),
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id"), nullable=False),
        sa.Column("is_remote", sa.Boolean, nullable=False),
        sa.Column("to_program", sa.String(64), nullable=False),
        sa.Column("to_member", sa.String(200), nullable=False),
        sa.Column("points", sa.BigInteger, nullable=False),
        sa.Column("fee", sa.BigInteger, nullable=False),
        sa.Column("credit", sa.BigInteger, nullable=False),
        sa.Column("credited", sa.BigInteger),
        sa.Column("target_digits", sa.Integer, nullable=False),
        sa.Column("lots", sa.JSON, nullable=False),
        sa.Column("ledger_key", sa.String(200), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(200)),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("deadline", TZ, nullable=False),
        sa.Column("settled_at", TZ),
        sa.UniqueConstraint("program_id", "transaction_id"),
    )
    op.create_index("ix_exchanges_state_deadline", "exchanges", ["state", "deadline"])
    op.create_index("ix_exchanges_member_id_id", "exchanges", ["member_id", "id"])
    op.create_index("ix_exchanges_program_id_day", "exchanges", ["program_id", "day"])
    op.create_table(
        "exchange_credits",
        sa.Column("id", sa.Integer, primary_key=True),
        _program(),
        sa.Column("source", sa.String(80), nullable=False),
        sa.Column("transaction_id", sa.String(200), nullable=False),
        sa.Column("request_hash", sa.String(64)),
        sa.Column("pair", sa.String(64)),
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id")),
        sa.Column("to_member", sa.String(200)),
        sa.Column("ledger_key", sa.String(200)),
        sa.Column("points", sa.BigInteger, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(200)),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("program_id", "source", "transaction_id"),
    )
    op.create_index("ix_exchange_credits_program_id_day", "exchange_credits",
                    ["program_id", "day"])  # fmt: skip
    op.create_table(
        "exchange_days",
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id"), nullable=False),
        sa.Column("pair", sa.String(64), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        _program(),
        sa.Column("points", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("member_id", "pair", "day"),
    )
    op.create_table(
        "exchange_nonces",
        _program(),
        sa.Column("partner", sa.String(64), nullable=False),
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("seen_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("program_id", "partner", "nonce"),
    )
    op.create_index("ix_exchange_nonces_seen_at", "exchange_nonces", ["seen_at"])
    for code in ACCOUNTS:
        op.execute(sa.text(
            "INSERT INTO accounts (program_id, member_id, owner, code, debits_posted, "
            "credits_posted) SELECT p.id, NULL, 'program', :code, 0, 0 FROM programs p "
            "WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.program_id = p.id "
            "AND a.owner = 'program' AND a.code = :code)"
        ).bindparams(code=code))  # fmt: skip


def downgrade() -> None:
    op.drop_table("exchange_nonces")
    op.drop_table("exchange_days")
    op.drop_table("exchange_credits")
    op.drop_table("exchanges")
