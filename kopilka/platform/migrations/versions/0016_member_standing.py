"""A member's standing kept as running totals: `member_days` and `member_totals`.

Until now every purchase with tiers summed the member's purchases in the window, and a
balance summed every transfer of the member's life for its lifetime figures: both grew
with the member's history. The purchase, refund and hold-confirmation writes now add to
these totals; this revision creates them and back-fills them from the purchases, refunds
and transfers made before (the day of a purchase in its program's time zone, as the
program file in force says). It reads the tables directly (with
`kopilka.platform.migrations.stored`) and imports nothing else of the application.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

from kopilka.platform.migrations.stored import moment, program_zones

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

BATCH = 5000
COUNTED = ("completed", "partially_refunded", "refunded")


def upgrade() -> None:
    op.create_table(
        "member_days",
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("spend", sa.BigInteger(), nullable=False),
        sa.Column("purchases", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("member_id", "day", name="pk_member_days"),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"],
                                name="fk_member_days_member_id_members"),
    )  # fmt: skip
    op.create_table(
        "member_totals",
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("spend", sa.BigInteger(), nullable=False),
        sa.Column("purchases", sa.Integer(), nullable=False),
        sa.Column("points_accrued", sa.BigInteger(), nullable=False),
        sa.Column("points_redeemed", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("member_id", name="pk_member_totals"),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"],
                                name="fk_member_totals_member_id_members"),
    )  # fmt: skip
    _fill()


def downgrade() -> None:
    op.drop_table("member_totals")
    op.drop_table("member_days")


def _fill() -> None:
    bind = op.get_bind()
    zones = program_zones(bind)
    days: dict[tuple[int, Any], list[int]] = {}
    totals: dict[int, list[int]] = {}
    query = sa.text(
        "SELECT p.id, p.program_id, p.member_id, p.created_at, p.status, "
        "coalesce(p.spend, 0) - coalesce((SELECT sum(r.spend) FROM refunds r "
        "WHERE r.purchase_id = p.id), 0) AS net "
        "FROM purchases p WHERE p.id > :after AND p.member_id IS NOT NULL "
        "AND p.status IN ('completed', 'partially_refunded', 'refunded') "
        "ORDER BY p.id LIMIT :n"
    )
    after = 0
    while rows := bind.execute(query, {"after": after, "n": BATCH}).all():
        after = rows[-1].id
        for row in rows:
            counted = 0 if row.status == "refunded" else 1
            day = moment(row.created_at).astimezone(zones.get(row.program_id, ZoneInfo("UTC")))
            for sums in (days.setdefault((row.member_id, day.date()), [0, 0]),
                         totals.setdefault(row.member_id, [0, 0, 0, 0])):  # fmt: skip
                sums[0] += int(row.net)
                sums[1] += counted
    points = sa.text(
        "SELECT a.member_id, t.reason, sum(t.amount) FROM transfers t "
        "JOIN accounts a ON a.id = t.credit_account_id OR a.id = t.debit_account_id "
        "WHERE a.member_id IS NOT NULL "
        "AND t.reason IN ('purchase.accrual', 'purchase.redemption') "
        "GROUP BY a.member_id, t.reason"
    )
    for member_id, reason, amount in bind.execute(points):
        sums = totals.setdefault(member_id, [0, 0, 0, 0])
        sums[2 if reason == "purchase.accrual" else 3] += int(amount)
    day_rows = [{"member_id": member, "day": day, "spend": spend, "purchases": count}
                for (member, day), (spend, count) in days.items()]  # fmt: skip
    total_rows = [{"member_id": member, "spend": spend, "purchases": count,
                   "points_accrued": accrued, "points_redeemed": redeemed}
                  for member, (spend, count, accrued, redeemed) in totals.items()]  # fmt: skip
    filled: tuple[tuple[str, list[dict[str, Any]]], ...] = (
        ("member_days", day_rows),
        ("member_totals", total_rows),
    )
    for table, values in filled:
        for start in range(0, len(values), BATCH):
            part = values[start : start + BATCH]
            bind.execute(sa.table(table, *map(sa.column, part[0])).insert(), part)
