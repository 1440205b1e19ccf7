"""The coalition's tables (issue 19): the partner of each purchase, prepaid blocks,
closed statements and their lines, corrections, and liability moved at an exit. A
branch of its own, forked from the platform revision that binds keys to partners.

Revision ID: co001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "co001"
down_revision = "0019"
branch_labels = ("coalition",)

_NOW = sa.DateTime(timezone=True)


def _program() -> sa.Column[int]:
    return sa.Column("program_id", sa.Integer, sa.ForeignKey("programs.id"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "purchase_partners",
        sa.Column("purchase_id", sa.Integer, sa.ForeignKey("purchases.id"), primary_key=True),
        _program(),
        sa.Column("partner", sa.String(64), nullable=False),
        sa.Column("drawn", sa.BigInteger, nullable=False),
        sa.Column("drawn_back", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_purchase_partners_program_id_partner", "purchase_partners",
                    ["program_id", "partner"])  # fmt: skip
    op.create_table(
        "partner_blocks",
        sa.Column("id", sa.Integer, primary_key=True),
        _program(),
        sa.Column("partner", sa.String(64), nullable=False),
        sa.Column("points", sa.BigInteger, nullable=False),
        sa.Column("starts_at_point", sa.BigInteger, nullable=False),
        sa.Column("price", sa.BigInteger, nullable=False),
        sa.Column("reference", sa.String(200), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("bought_at", _NOW, nullable=False),
        sa.CheckConstraint("points > 0", name="ck_partner_blocks_points_positive"),
        sa.UniqueConstraint("program_id", "partner", "reference",
                            name="uq_partner_blocks_program_id_partner_reference"),
    )  # fmt: skip
    op.create_table(
        "partner_prepaid",
        sa.Column("program_id", sa.Integer, sa.ForeignKey("programs.id"), primary_key=True),
        sa.Column("partner", sa.String(64), primary_key=True),
        sa.Column("bought", sa.BigInteger, nullable=False),
        sa.Column("drawn", sa.BigInteger, nullable=False),
        sa.CheckConstraint(
            "bought = 0 or drawn <= bought", name="ck_partner_prepaid_within_bought"
        ),
    )
    op.create_table(
        "partner_statements",
        sa.Column("id", sa.Integer, primary_key=True),
        _program(),
        sa.Column("partner", sa.String(64), nullable=False),
        sa.Column("first_day", sa.Date, nullable=False),
        sa.Column("last_day", sa.Date, nullable=False),
        sa.Column("starts_at", _NOW, nullable=False),
        sa.Column("ends_at", _NOW, nullable=False),
        *(sa.Column(name, sa.BigInteger, nullable=False)
          for name in ("issued", "redeemed", "earned_here_spent_elsewhere",
                       "earned_elsewhere_spent_here", "opening", "closing")),
        sa.Column("terms", sa.JSON, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("closed_at", _NOW, nullable=False),
        sa.UniqueConstraint("program_id", "partner", "first_day",
                            name="uq_partner_statements_program_id_partner_first_day"),
    )  # fmt: skip
    op.create_table(
        "statement_lines",
        sa.Column("statement_id", sa.Integer, sa.ForeignKey("partner_statements.id"),
                  primary_key=True),
        sa.Column("n", sa.Integer, primary_key=True),
        sa.Column("what", sa.String(200), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
    )  # fmt: skip
    op.create_table(
        "partner_corrections",
        sa.Column("id", sa.Integer, primary_key=True),
        _program(),
        sa.Column("partner", sa.String(64), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("created_at", _NOW, nullable=False),
        sa.Column("statement_id", sa.Integer, sa.ForeignKey("partner_statements.id")),
        sa.CheckConstraint("amount <> 0", name="ck_partner_corrections_amount_not_zero"),
    )
    op.create_table(
        "liability_transfers",
        sa.Column("id", sa.Integer, primary_key=True),
        _program(),
        sa.Column("from_partner", sa.String(64), nullable=False),
        sa.Column("to_partner", sa.String(64)),
        sa.Column("points", sa.BigInteger, nullable=False),
        sa.Column("value", sa.BigInteger, nullable=False),
        sa.Column("lots", sa.JSON, nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("moved_at", _NOW, nullable=False),
        sa.UniqueConstraint("program_id", "from_partner",
                            name="uq_liability_transfers_program_id_from_partner"),
    )  # fmt: skip


def downgrade() -> None:
    for table in ("liability_transfers", "partner_corrections", "statement_lines",
                  "partner_statements", "partner_prepaid", "partner_blocks",
                  "purchase_partners"):  # fmt: skip
        op.drop_table(table)
