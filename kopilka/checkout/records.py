"""A purchase's typed records: its lines and what each mechanic gave or took on them.

The pipeline writes them with the purchase (in the purchase's own statement on
PostgreSQL), and refunds, hold settlement, tier standing, the dashboard and `verify`
read them; the stored JSON answer is kept only to repeat a replay byte for byte.

An `Award` is one mechanic's part: the rules' points on a line (`detail` names the rules
and their coefficients, as the answer's `explain` does), points that paid for a line,
each discount's share of a line, a coupon's points, a cashback campaign's money. Who
funds it is `funded_by` — the program for now; a coalition partner later.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Connection, insert, select, update

from kopilka.checkout.calculator import Quote
from kopilka.checkout.wire import reasons_json
from kopilka.kernel.program import Program
from kopilka.kernel.receipt import QTY_DIGITS, Receipt
from kopilka.platform.statements import COMMIT, driver_rows, driver_rows_pipelined, record_columns
from kopilka.platform.tables import purchase_awards, purchase_lines, purchases

PROGRAM = "program"  # who funds what the program itself gives
POINTS, MONEY = "points", "money"


@dataclass(frozen=True)
class Award:
    """What one mechanic gave (or, for a redemption, took) with a purchase."""

    mechanic: str  # points | discounts | coupons | cashback | a registered mechanic's name
    kind: str  # accrual | redemption | discount | points | cashback | cashback.on_confirm …
    amount: int  # minor units of `unit`, never negative
    unit: str = POINTS  # points | money
    n: int | None = None  # the line; None: the whole receipt
    source: str | None = None  # the rule, discount, coupon or campaign that gave it
    funded_by: str = PROGRAM
    detail: dict[str, Any] | None = None

    def row(self, purchase_id: int | None = None) -> dict[str, Any]:
        # by hand, not `asdict`: that deep-copies every value, ~100 µs a purchase
        values = {"mechanic": self.mechanic, "kind": self.kind, "amount": self.amount,
                  "unit": self.unit, "n": self.n, "source": self.source,
                  "funded_by": self.funded_by, "detail": self.detail}  # fmt: skip
        return values if purchase_id is None else {"purchase_id": purchase_id, **values}


def line_rows(quote: Quote, receipt: Receipt) -> list[dict[str, Any]]:
    """The purchase's lines, without their purchase's id (the write fills it in)."""
    bought = {line.n: line for line in receipt.lines}
    return [
        {
            "n": line.n,
            "sku": line.sku,
            "category": bought[line.n].category,
            "qty_micro": int(bought[line.n].qty.scaleb(QTY_DIGITS)),
            "amount": line.amount,
            "discount": line.discount,
            "redeemed": line.redeemed,
            "accrued": line.accrued,
        }
        for line in quote.lines
    ]


def priced_awards(quote: Quote, program: Program) -> list[Award]:
    """What the receipt's price gave on each line: discounts' shares (a coupon's discount
    as the coupons'), the rules' points and the points that paid."""
    coupons = {applied.code: applied.coupon for applied in quote.discounts if applied.coupon}
    points = program.points.precision
    awards: list[Award] = []
    for line in quote.lines:
        for share in line.discounts:
            coupon = coupons.get(share.code)
            awards.append(Award("coupons" if coupon else "discounts", "discount", share.amount,
                                MONEY, line.n, share.code,
                                detail={"coupon": coupon} if coupon else None))  # fmt: skip
        if line.accrued:
            awards.append(Award("points", "accrual", line.accrued, POINTS, line.n,
                                detail={"explain": reasons_json(line, points)}))  # fmt: skip
        if line.redeemed:
            awards.append(Award("points", "redemption", line.redeemed, POINTS, line.n))
    return awards


AWARD_COLUMNS = tuple(c.name for c in purchase_awards.c if c.name not in ("id", "purchase_id"))


def write_late(
    connection: Connection, purchase_id: int, answer: dict[str, Any] | None,
    awards: Sequence[Award], *, commit: bool = False,
) -> None:  # fmt: skip
    """What the mechanics added once the purchase was written — its stored answer (None:
    unchanged) and awards known only then (a budget's cashback) — in one statement on
    PostgreSQL, and nothing at all when there is nothing. `commit`: nothing follows in the
    transaction, so the statement carries the COMMIT (PostgreSQL; one round trip)."""
    if not awards and answer is None:
        return
    if connection.dialect.name != "postgresql":
        if awards:
            connection.execute(insert(purchase_awards), [a.row(purchase_id) for a in awards])
        if answer is not None:
            connection.execute(update(purchases).where(purchases.c.id == purchase_id)
                               .values(answer=answer))  # fmt: skip
        return
    rows = [{name: getattr(award, name) for name in AWARD_COLUMNS} for award in awards]
    values = {"purchase_id": purchase_id, "answer": None if answer is None else _json(answer),
              "awards": _json(rows)}  # fmt: skip
    if commit:
        driver_rows_pipelined(connection, [(_late_sql(), values), (COMMIT, {})])
    else:
        driver_rows(connection, _late_sql(), values)


@cache
def _late_sql() -> str:
    columns = ", ".join(AWARD_COLUMNS)
    picked = ", ".join(f"c.{name}" for name in AWARD_COLUMNS)
    return f"""
WITH late AS (
    INSERT INTO purchase_awards (purchase_id, {columns})
    SELECT %(purchase_id)s, {picked}
    FROM json_to_recordset(%(awards)s::json)
         AS c({record_columns(purchase_awards, AWARD_COLUMNS)})
)
UPDATE purchases SET answer = %(answer)s::json
WHERE id = %(purchase_id)s AND %(answer)s::json IS NOT NULL"""  # the CTE runs either way


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def awards_of(connection: Connection, purchase_id: int) -> list[Award]:
    """Everything the mechanics gave with a purchase, in the order it was written."""
    rows = connection.execute(
        select(purchase_awards).where(purchase_awards.c.purchase_id == purchase_id)
        .order_by(purchase_awards.c.id)
    ).all()  # fmt: skip
    return [
        Award(
            row.mechanic,
            row.kind,
            int(row.amount),
            row.unit,
            row.n,
            row.source,
            row.funded_by,
            row.detail,
        )
        for row in rows
    ]


def total(awards: Iterable[Award], mechanic: str, kind: str) -> int:
    """The sum of a mechanic's awards of one kind."""
    return sum(a.amount for a in awards if a.mechanic == mechanic and a.kind == kind)


def lines_of(connection: Connection, purchase_id: int) -> list[Any]:
    """A purchase's lines in receipt order."""
    return list(
        connection.execute(
            select(purchase_lines).where(purchase_lines.c.purchase_id == purchase_id)
            .order_by(purchase_lines.c.n)
        )
    )  # fmt: skip
