"""Tiers: a member's tier and its history; what a purchase and a refund count towards one.

`member_tiers` holds each member's tier as it stands (no row: the program's default
level), `tier_history` every change with its reason and actor. A purchase's qualifying
`spend` (money net of discounts) and a refund's part of it are columns, so a member's
spend and purchases in a window are one indexed aggregate over their purchases — a
refund takes back exactly what its purchase counted. Rows from before are filled in
from the answers they keep.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "member_tiers",
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id"), primary_key=True),
        sa.Column("program_id", sa.Integer, sa.ForeignKey("programs.id"), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("since", TZ, nullable=False),
        sa.Column("until", TZ),
        sa.Column("manual", sa.Boolean, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("downgrade_at", TZ),
        sa.Column("reviewed_at", TZ),
    )
    for column in ("reviewed_at", "downgrade_at"):
        op.create_index(
            f"ix_member_tiers_program_id_{column}", "member_tiers", ["program_id", column]
        )
    op.create_table(
        "tier_history",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("program_id", sa.Integer, sa.ForeignKey("programs.id"), nullable=False),
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id"), nullable=False),
        sa.Column("from_code", sa.String(64)),
        sa.Column("to_code", sa.String(64), nullable=False),
        sa.Column("manual", sa.Boolean, nullable=False),
        sa.Column("until", TZ),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("purchase_id", sa.Integer, sa.ForeignKey("purchases.id")),
        sa.Column("occasion", sa.String(100)),
        sa.Column("changed_at", TZ, nullable=False),
        sa.UniqueConstraint("member_id", "occasion", name="uq_tier_history_occasion"),
    )
    op.create_index("ix_tier_history_member_id", "tier_history", ["member_id", "id"])
    with op.batch_alter_table("purchases") as batch:
        batch.add_column(sa.Column("spend", sa.BigInteger, nullable=True))
    with op.batch_alter_table("refunds") as batch:
        batch.add_column(sa.Column("spend", sa.BigInteger, nullable=True))
    op.create_index("ix_purchases_member_id_created_at", "purchases", ["member_id", "created_at"])
    _fill_spend()


def downgrade() -> None:
    op.drop_index("ix_purchases_member_id_created_at", "purchases")
    with op.batch_alter_table("refunds") as batch:
        batch.drop_column("spend")
    with op.batch_alter_table("purchases") as batch:
        batch.drop_column("spend")
    op.drop_index("ix_tier_history_member_id", "tier_history")
    op.drop_table("tier_history")
    for column in ("reviewed_at", "downgrade_at"):
        op.drop_index(f"ix_member_tiers_program_id_{column}", "member_tiers")
    op.drop_table("member_tiers")


def _fill_spend() -> None:
    """Spend of the purchases and refunds made before: a purchase's is its lines' amounts
    (the answer's `total` less its `discount`, decimal text with the currency's digits);
    a refund's is each refunded line's amount in proportion to the quantity returned,
    counted on the quantity returned so far (as refunds count points), so refunds that
    return a whole line give back exactly its amount."""
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        text = "replace(answer->>'{0}', '.', '')::bigint"
    else:
        text = "CAST(replace(json_extract(answer, '$.{0}'), '.', '') AS INTEGER)"
    op.execute(f"UPDATE purchases SET spend = {text.format('total')} - {text.format('discount')}")
    rows = bind.execute(
        sa.text(
            "SELECT r.id, r.lines AS returned, p.id AS purchase_id, p.lines AS bought, "
            "p.answer FROM refunds r JOIN purchases p ON p.id = r.purchase_id "
            "ORDER BY r.purchase_id, r.id"
        ).columns(returned=sa.JSON, bought=sa.JSON, answer=sa.JSON)
    ).all()
    spent: list[dict[str, int]] = []
    before: dict[int, Decimal] = {}
    purchase_id = None
    for row in rows:
        if row.purchase_id != purchase_id:
            purchase_id, before = row.purchase_id, {}
        spent.append({"refund": row.id, "spend": _refund_spend(row, before)})
    if spent:
        bind.execute(sa.text("UPDATE refunds SET spend = :spend WHERE id = :refund"), spent)


def _refund_spend(row: Any, before: dict[int, Decimal]) -> int:
    bought = {line["n"]: Decimal(line["qty"]) for line in row.bought or []}
    amounts = {line["n"]: _minor(line["amount"]) for line in row.answer["lines"]}
    spend = 0
    for line in row.returned:
        n, qty = line["n"], Decimal(line["qty"])
        total, earlier = bought.get(n), before.get(n, Decimal(0))
        if not total:
            continue
        spend += int(amounts[n] * Fraction(earlier + qty) / Fraction(total)) - int(
            amounts[n] * Fraction(earlier) / Fraction(total)
        )
        before[n] = earlier + qty
    return spend


def _minor(text: str) -> int:
    return int(text.replace(".", ""))
