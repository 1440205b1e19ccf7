"""The JSON wire format of shared/API.md, shared by the command line and the HTTP API.

Money and points go out as decimal strings ("9.60"). Errors go out as RFC 9457 problem
documents with a stable `code`: `kopilka.platform.problems.problem_json`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from kopilka.checkout.calculator import CapEntry, ExplainEntry, Quote, QuoteLine
from kopilka.checkout.calculator.memo import remember
from kopilka.kernel.money import format_minor, format_ratio
from kopilka.kernel.program import Program
from kopilka.mechanics.discounts.model import AppliedDiscount

JSON = dict[str, Any]


def quote_json(
    quote: Quote,
    program: Program,
    *,
    status: str,
    purchase_id: str | None = None,
    member: str | None = None,
    balance: int | None = None,
) -> JSON:
    """The purchase answer; `balance` is the member's available points before this receipt."""
    money = program.money_digits
    points = program.points.precision
    accrues_now = program.accrual.pending_days == 0
    return {
        "purchase_id": purchase_id,
        "status": status,
        "receipt_id": quote.receipt_id,
        "member": member if member is not None else quote.member,
        "total": format_minor(quote.total, money),
        "discount": format_minor(quote.discount, money),
        "redeemed": format_minor(quote.redeemed, points),
        "paid": format_minor(quote.paid, money),
        "accrued": format_minor(quote.accrued, points),
        "accrued_status": _accrued_status(quote, accrues_now),
        "max_redeemable": format_minor(quote.max_redeemable, points),
        "balance": _balance_after(quote, balance, accrues_now, points),
        "lines": [_line_json(line, money, points) for line in quote.lines],
        "discounts": [_discount_json(applied, money) for applied in quote.discounts],
        "coupons": [],
        "cashback": None,
        "redeem_caps": {
            "lines": format_minor(quote.caps.lines, points),
            "balance": None
            if quote.caps.balance is None
            else format_minor(quote.caps.balance, points),
            "min_payable": format_minor(quote.caps.min_payable, points),
        },
        "notes": list(quote.notes),
    }


def _accrued_status(quote: Quote, accrues_now: bool) -> str | None:
    if quote.member is None:
        return None
    return "available" if accrues_now else "pending"


def _balance_after(
    quote: Quote, balance: int | None, accrues_now: bool, digits: int
) -> JSON | None:
    if balance is None:
        return None
    available = balance - quote.redeemed + (quote.accrued if accrues_now else 0)
    return {
        "available": format_minor(available, digits),
        "pending": format_minor(0 if accrues_now else quote.accrued, digits),
        "held": format_minor(0, digits),
    }


def _line_json(line: QuoteLine, money: int, points: int) -> JSON:
    return {
        "n": line.n,
        "sku": line.sku,
        "amount": format_minor(line.amount, money),
        "discount": format_minor(line.discount, money),
        "redeemed": format_minor(line.redeemed, points),
        "accrued": format_minor(line.accrued, points),
        "redeemable": format_minor(line.redeemable, points),
        "explain": [
            *(
                {"discount": share.code, "amount": format_minor(share.amount, money)}
                for share in line.discounts
            ),
            *reasons_json(line, points),
        ],
    }


def reasons_json(line: QuoteLine, points: int) -> list[JSON]:
    """Why the line earned what it did: the rules and their coefficients, then the caps."""
    return [
        *_rules_json(line.explain, points),
        *(_cap_json(entry, points) for entry in line.capped),
    ]


# A line's rules come from its plan, which the calculator keeps for every line alike
# (`Calculator._line_plan`): the same tuple, rendered once. Keyed by the tuple's id and
# holding the tuple, so the id can't be another's while it is here; the entries are
# shared by the answers that use them, which are written out and never changed.
_rendered_rules: dict[tuple[int, int], tuple[tuple[ExplainEntry, ...], tuple[JSON, ...]]] = {}


def _rules_json(explain: tuple[ExplainEntry, ...], points: int) -> tuple[JSON, ...]:
    known = _rendered_rules.get((id(explain), points))
    if known is not None and known[0] is explain:
        return known[1]
    rendered = tuple(_explain_json(entry, points) for entry in explain)
    remember(_rendered_rules, (id(explain), points), (explain, rendered))
    return rendered


def _discount_json(applied: AppliedDiscount, money: int) -> JSON:
    item: JSON = {"code": applied.code, "name": applied.name,
                  "amount": format_minor(applied.amount, money)}  # fmt: skip
    if applied.coupon is not None:
        item["coupon"] = applied.coupon
    return item


def _explain_json(entry: ExplainEntry, points: int) -> JSON:
    item: JSON = {"rule": entry.rule, "kind": entry.kind.value}
    if entry.coefficient is not None:
        item["coefficient"] = format_ratio(entry.coefficient)
    if entry.points_per_unit is not None:
        item["points_per_unit"] = format_minor(entry.points_per_unit, points)
    if entry.max_points is not None:
        item["max_points"] = format_minor(entry.max_points, points)
    if entry.redeem_percent is not None:
        item["redeem_percent"] = _plain(entry.redeem_percent)
    return item


def _cap_json(entry: CapEntry, points: int) -> JSON:
    """A program cap's entry: its key, its setting, and the line's points before it."""
    item: JSON = {"cap": entry.cap}
    if entry.max_percent is not None:
        item["max_percent"] = _plain(entry.max_percent)
    if entry.max_points is not None:
        item["max_points_per_receipt"] = format_minor(entry.max_points, points)
    item["uncapped"] = format_minor(entry.uncapped, points)
    return item


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")
