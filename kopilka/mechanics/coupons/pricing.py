"""The coupons' step in the price of a receipt: after the program's discounts, each
coupon is checked against the receipt as they leave it, and the ones that apply offer
their discounts — in the one pricing of the receipt (`Coupons.offering`).

A quote lists a coupon that does not apply with `applied: false` and its `reason`; a
purchase with one is refused (`422 coupon_invalid`, nothing written: `Coupons.admit`).
A coupon's points are not a line's accrual: they are credited apart, with their own
reason.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from kopilka.checkout.calculator import Quote
from kopilka.checkout.offers import (
    AmountOff,
    Discount,
    Effect,
    FreeUnit,
    Offer,
    OfferStep,
    PercentOff,
    PricedLine,
)
from kopilka.checkout.pricing import PricingContext
from kopilka.kernel.money import format_minor
from kopilka.kernel.program import Conditions
from kopilka.mechanics.coupons.handlers import load_coupons
from kopilka.mechanics.coupons.model import CouponCheck, check_coupon

NOTHING_LEFT = "nothing is left for it to take off: the discounts before it reached the limits"


@dataclass(frozen=True)
class CouponsPriced:
    """The receipt's coupons once it is priced."""

    checks: tuple[CouponCheck, ...]
    answers: list[dict[str, Any]]  # the answer's `coupons`
    applied: list[tuple[CouponCheck, int, int]]  # (check, discount, points) to redeem

    @property
    def points(self) -> int:
        return sum(points for _, _, points in self.applied)


def coupon_step(context: PricingContext, checks: list[CouponCheck]) -> OfferStep | None:
    """The coupons' offers for the receipt's lines as the program's discounts leave them;
    the checks made land in `checks`. None: the receipt names no coupon."""
    receipt, member = context.receipt, context.member
    if not receipt.coupons:
        return None
    states = load_coupons(context.connection, context.program.program_id, receipt.coupons,
                          context.member_id)  # fmt: skip
    settings = context.program.calculator.program

    def offers(lines: tuple[PricedLine, ...]) -> list[Offer]:
        left = [(line.sku, line.category, line.amount) for line in lines]
        checks[:] = _one_per_campaign([
            check_coupon(state, code, program=settings, lines=left, location=receipt.location,
                         member_id=context.member_id, tier=member.tier if member else None,
                         segments=member.segments if member else frozenset(), at=context.now)
            for state, code in zip(states, receipt.coupons, strict=True)
        ])  # fmt: skip
        return [offer for check in checks if (offer := coupon_offer(check)) is not None]

    return offers


def settle(checks: list[CouponCheck], quote: Quote, digits: tuple[int, int]) -> CouponsPriced:
    """What each coupon gave once the receipt is priced: a coupon that applies but that the
    discounts before it left nothing to take off (and that gives no points) does not."""
    given = {applied.coupon: applied.amount for applied in quote.discounts if applied.coupon}
    answers, applied, final = [], [], []
    for check in checks:
        discount = given.get(check.code, 0)
        points = (check.effect.points or 0) if check.reason is None and check.effect else 0
        if check.reason is None and not discount and not points:
            check = replace(check, reason="conditions_not_met", detail=NOTHING_LEFT)
        final.append(check)
        answers.append(_coupon_json(check, discount, points, digits))
        if check.reason is None:
            applied.append((check, discount, points))
    return CouponsPriced(tuple(final), answers, applied)


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
