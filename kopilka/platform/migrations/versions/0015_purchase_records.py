"""Typed purchase records: a purchase's lines and what each mechanic gave on them, as rows.

Until now a purchase's figures lived only in its stored JSON answer, which refunds, hold
settlement, tier standing, the dashboard and `verify` parsed back. This revision adds
`purchase_lines`, `purchase_awards`, the purchase's own figures (`total`, `discount`,
`redeemed`, `paid`, `accrued`) and a refund's points (`redeemed_back`, `accrued_back`,
`accrued_burnt`) as columns, and back-fills them from the answers of the purchases and
refunds made before — the same rows the purchase pipeline now writes (the test upgrades a
database made by the previous release and compares them). Self-contained: it reads the
JSON as revision 0014 wrote it and imports nothing of the application.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

PURCHASE_FIGURES = ("total", "discount", "redeemed", "paid", "accrued")
REFUND_FIGURES = ("redeemed_back", "accrued_back", "accrued_burnt")
BATCH = 1000


def upgrade() -> None:
    op.create_table(
        "purchase_lines",
        sa.Column("purchase_id", sa.Integer(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("category", sa.String(64)),
        sa.Column("qty_micro", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("discount", sa.BigInteger(), nullable=False),
        sa.Column("redeemed", sa.BigInteger(), nullable=False),
        sa.Column("accrued", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("purchase_id", "n", name="pk_purchase_lines"),
        sa.ForeignKeyConstraint(
            ["purchase_id"], ["purchases.id"], name="fk_purchase_lines_purchase_id_purchases"
        ),
        sa.CheckConstraint("qty_micro > 0", name="ck_purchase_lines_qty_positive"),
    )
    op.create_table(
        "purchase_awards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("purchase_id", sa.Integer(), nullable=False),
        sa.Column("n", sa.Integer()),
        sa.Column("mechanic", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("source", sa.String(100)),
        sa.Column("unit", sa.String(16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("funded_by", sa.String(64), nullable=False),
        sa.Column("detail", sa.JSON()),
        sa.PrimaryKeyConstraint("id", name="pk_purchase_awards"),
        sa.ForeignKeyConstraint(
            ["purchase_id"], ["purchases.id"], name="fk_purchase_awards_purchase_id_purchases"
        ),
        sa.CheckConstraint("amount >= 0", name="ck_purchase_awards_amount_not_negative"),
    )
    op.create_index("ix_purchase_awards_purchase_id", "purchase_awards", ["purchase_id"])
    with op.batch_alter_table("purchases") as batch:
        for name in PURCHASE_FIGURES:
            batch.add_column(sa.Column(name, sa.BigInteger(), nullable=True))
    with op.batch_alter_table("refunds") as batch:
        for name in REFUND_FIGURES:
            batch.add_column(sa.Column(name, sa.BigInteger(), nullable=True))
    _fill_purchases()
    _fill_refunds()


def downgrade() -> None:
    with op.batch_alter_table("refunds") as batch:
        for name in REFUND_FIGURES:
            batch.drop_column(name)
    with op.batch_alter_table("purchases") as batch:
        for name in PURCHASE_FIGURES:
            batch.drop_column(name)
    op.drop_index("ix_purchase_awards_purchase_id", "purchase_awards")
    op.drop_table("purchase_awards")
    op.drop_table("purchase_lines")


def minor(amount: str | None) -> int:
    """ "16.80" → 1680: an answer's figure in the minor units it was written with."""
    if amount is None:
        return 0
    digits = len(amount.partition(".")[2])
    return int(Decimal(amount).scaleb(digits))


def _fill_purchases() -> None:
    bind = op.get_bind()
    query = sa.text(
        "SELECT id, answer, lines FROM purchases WHERE id > :after ORDER BY id LIMIT :n"
    ).columns(answer=sa.JSON, lines=sa.JSON)
    after = 0
    while rows := bind.execute(query, {"after": after, "n": BATCH}).all():
        after = rows[-1].id
        figures, lines, awards = [], [], []
        for row in rows:
            answer = row.answer
            figures.append({"id": row.id, **{name: minor(answer.get(name))
                                               for name in PURCHASE_FIGURES}})  # fmt: skip
            lines += line_rows(row.id, answer, row.lines or [])
            awards += award_rows(row.id, answer)
        bind.execute(
            sa.text("UPDATE purchases SET total = :total, discount = :discount, "
                    "redeemed = :redeemed, paid = :paid, accrued = :accrued WHERE id = :id"),
            figures,
        )  # fmt: skip
        if lines:
            bind.execute(sa.table("purchase_lines", *map(sa.column, lines[0])).insert(), lines)
        if awards:
            table = sa.table("purchase_awards", *map(sa.column, AWARD_COLUMNS[:-1]),
                             sa.column("detail", sa.JSON))  # fmt: skip
            bind.execute(table.insert(), awards)


def line_rows(purchase_id: int, answer: dict[str, Any], bought: list[Any]) -> list[Any]:
    """The purchase's lines: figures from the answer, quantity and category from the
    `lines` column (the receipt's, kept for refunds)."""
    kept = {line["n"]: line for line in bought}
    return [
        {
            "purchase_id": purchase_id,
            "n": line["n"],
            "sku": line["sku"],
            "category": kept.get(line["n"], {}).get("category"),
            "qty_micro": int(Decimal(kept.get(line["n"], {}).get("qty", "1")).scaleb(6)),
            "amount": minor(line["amount"]),
            "discount": minor(line["discount"]),
            "redeemed": minor(line["redeemed"]),
            "accrued": minor(line["accrued"]),
        }
        for line in answer.get("lines") or []
    ]


AWARD_COLUMNS = ("purchase_id", "n", "mechanic", "kind", "source", "unit", "amount",
                 "funded_by", "detail")  # fmt: skip


def award_rows(purchase_id: int, answer: dict[str, Any]) -> list[Any]:
    """What each mechanic gave, as `kopilka.checkout.records` writes it for a purchase
    (but for a cancelled hold's planned cashback: the cancel cleared it from the answer)."""
    coupons = {item["code"]: item["coupon"] for item in answer.get("discounts") or []
               if item.get("coupon")}  # fmt: skip
    rows: list[tuple[Any, ...]] = []
    for line in answer.get("lines") or []:
        n, explain = line["n"], line.get("explain") or []
        for entry in explain:
            if "discount" in entry:
                code = entry["discount"]
                coupon = coupons.get(code)
                rows.append((n, "coupons" if coupon else "discounts", "discount", code,
                             "money", minor(entry["amount"]),
                             {"coupon": coupon} if coupon else None))  # fmt: skip
        if minor(line["accrued"]):
            reasons = [entry for entry in explain if "discount" not in entry]
            rows.append((n, "points", "accrual", None, "points", minor(line["accrued"]),
                         {"explain": reasons}))  # fmt: skip
        if minor(line["redeemed"]):
            rows.append((n, "points", "redemption", None, "points", minor(line["redeemed"]),
                         None))  # fmt: skip
    for item in answer.get("coupons") or []:
        if item.get("applied") and minor(item.get("points")):
            rows.append((None, "coupons", "points", item["code"], "points",
                         minor(item["points"]), None))  # fmt: skip
    cashback = answer.get("cashback") or {}
    kind = "cashback.on_confirm" if cashback.get("status") == "on_confirm" else "cashback"
    for item in cashback.get("campaigns") or []:
        rows.append((None, "cashback", kind, item["campaign"], "money", minor(item["amount"]),
                     {"percent": item["percent"]}))  # fmt: skip
    return [
        dict(zip(AWARD_COLUMNS, (purchase_id, *row[:6], "program", row[6]), strict=True))
        for row in rows
    ]


def _fill_refunds() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, answer FROM refunds").columns(answer=sa.JSON)).all()
    figures = [{"id": row.id, **{name: minor(row.answer.get(name)) for name in REFUND_FIGURES}}
               for row in rows]  # fmt: skip
    if figures:
        bind.execute(
            sa.text("UPDATE refunds SET redeemed_back = :redeemed_back, accrued_back = "
                    ":accrued_back, accrued_burnt = :accrued_burnt WHERE id = :id"),
            figures,
        )  # fmt: skip
