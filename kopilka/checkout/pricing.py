"""Pricing a receipt with its coupons: the program's discounts first, then each coupon
checked against the receipt as they leave it, then the quote with the coupons' discounts.

A quote lists a coupon that does not apply with `applied: false` and its `reason`; a
purchase with one is refused (`422 coupon_invalid`, nothing written). A coupon's points
are not a line's accrual: they are credited apart (`coupon_points`), with their own reason.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from kopilka.checkout.calculator import Quote
from kopilka.kernel.errors import CouponInvalid
from kopilka.kernel.money import format_minor
from kopilka.kernel.program import Conditions
from kopilka.kernel.receipt import MemberContext, Receipt
from kopilka.mechanics.coupons.handlers import load_coupons
from kopilka.mechanics.coupons.model import CouponCheck, check_coupon
from kopilka.mechanics.discounts.model import (
    AmountOff,
    Discount,
    Effect,
    FreeUnit,
    Offer,
    PercentOff,
)
from kopilka.programs.handlers import LoadedProgram


@dataclass(frozen=True)
class Priced:
    quote: Quote
    checks: tuple[CouponCheck, ...]
    coupons: list[dict[str, Any]]  # the answer's `coupons`
    applied: list[tuple[CouponCheck, int, int]]  # (check, discount, points) to redeem

    @property
    def coupon_points(self) -> int:
        return sum(points for _, _, points in self.applied)

    def refuse_invalid(self) -> None:
        """A purchase takes every coupon it names, or none: the first that does not apply."""
        for check in self.checks:
            if check.reason is not None:
                raise CouponInvalid(f"coupon {check.code!r} does not apply: {check.detail}",
                                    coupon=check.code, reason=check.reason)  # fmt: skip


def price_receipt(
    connection: Connection, program: LoadedProgram, receipt: Receipt,
    member: MemberContext | None, member_id: int | None, now: datetime,
) -> Priced:  # fmt: skip
    """The quote for `receipt` with the program's discounts and the receipt's coupons.
    A coupon is valid or not at the server's time `now` (a terminal's clock can't bring
    an expired campaign back)."""
    calculator = program.calculator
    if not receipt.coupons:
        return Priced(calculator.quote(receipt, member), (), [], [])
    settings = calculator.program
    states = load_coupons(connection, program.program_id, receipt.coupons, member_id)
    before = calculator.price(receipt, member)
    lines = [(line.sku, line.category, line.amount) for line in before.lines]
    checks = _one_per_campaign([
        check_coupon(state, code, program=settings, lines=lines, location=receipt.location,
                     member_id=member_id, tier=member.tier if member else None,
                     segments=member.segments if member else frozenset(), at=now)
        for state, code in zip(states, receipt.coupons, strict=True)
    ])  # fmt: skip
    offers = [offer for check in checks if (offer := coupon_offer(check)) is not None]
    quote = calculator.quote(receipt, member, offers)
    given = {applied.coupon: applied.amount for applied in quote.discounts if applied.coupon}
    answers, applied, final = [], [], []
    digits = (settings.money_digits, settings.points.precision)
    for check in checks:
        discount = given.get(check.code, 0)
        points = (check.effect.points or 0) if check.reason is None and check.effect else 0
        if check.reason is None and not discount and not points:
            check = replace(check, reason="conditions_not_met", detail=NOTHING_LEFT)
        final.append(check)
        answers.append(_coupon_json(check, discount, points, digits))
        if check.reason is None:
            applied.append((check, discount, points))
    return Priced(quote, tuple(final), answers, applied)


NOTHING_LEFT = "nothing is left for it to take off: the discounts before it reached the limits"


def _one_per_campaign(checks: list[CouponCheck]) -> list[CouponCheck]:
    """A receipt takes one coupon of a campaign (so a quote can't promise two that the
    campaign's limits and budget would not both allow) and each coupon once."""
    coupons: set[int] = set()
    campaigns: set[str] = set()
    kept = []
    for check in checks:
        if check.reason is None and check.coupon_id in coupons:
            check = replace(check, reason="used", detail="the coupon is on the receipt twice")
        elif check.reason is None and check.campaign in campaigns:
            check = replace(check, reason="limit_reached", detail=f"one coupon of campaign "
                            f"{check.campaign} per receipt")  # fmt: skip
        if check.reason is None:
            coupons.add(check.coupon_id or 0)
            campaigns.add(check.campaign or "")
        kept.append(check)
    return kept


def coupon_offer(check: CouponCheck) -> Offer | None:
    """The discount an applicable coupon gives, or None (it gives points only, or none)."""
    effect = check.effect
    if check.reason is not None or effect is None:
        return None
    discount: Effect
    if effect.percent is not None:
        discount = PercentOff(effect.percent)
    elif effect.amount is not None:
        discount = AmountOff(effect.amount)
    elif effect.free_sku is not None:
        discount = FreeUnit(effect.free_sku)
    else:
        return None
    return Offer(
        Discount(f"coupon:{check.campaign}", discount,
                 Conditions(skus=effect.skus, categories=effect.categories),
                 max_amount=check.budget_left, earn_points=effect.earn_points),
        coupon=check.code,
    )  # fmt: skip


def _coupon_json(
    check: CouponCheck, discount: int, points: int, digits: tuple[int, int]
) -> dict[str, Any]:
    money, point_digits = digits
    item: dict[str, Any] = {"code": check.code, "applied": check.reason is None,
                            "campaign": check.campaign}  # fmt: skip
    if check.reason is not None:
        item["reason"] = check.reason
        item["detail"] = check.detail
        return item
    item["discount"] = format_minor(discount, money)
    item["points"] = format_minor(points, point_digits)
    return item
