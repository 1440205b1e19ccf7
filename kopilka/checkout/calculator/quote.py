"""The bonus calculator: a receipt and a member in, a fully explained quote out.

    accrual(line)    = amount(line) × base_accrual% × K1 × K2 × K3
    redeemable(line) = amount(line) × min(base_redemption%, P1, P2, P3)

Order of work for one receipt:
1. each line's plan (its deciding rules) from the compiled indexes, memoised;
2. the redeemable points per line, and the receipt's caps (lines, balance,
   total − min_payable); the requested redemption is checked against the least;
3. the redemption spread over the lines in proportion to their redeemable
   points, by largest remainder;
4. each line's exact accrual — on the part paid with money, or on the whole
   line (program setting) — capped by its rules' `max_points`, then by the program's
   `accrual.max_percent` of that base; the receipt's exact sum capped by
   `accrual.max_points_per_receipt`, rounded once (program rounding), then spread back
   over the lines by largest remainder, so the lines always add up to the receipt.
All arithmetic is on integers of minor units; nothing is rounded twice.
"""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from math import lcm

from kopilka.checkout.calculator.index import CompiledProgram
from kopilka.checkout.calculator.memo import remember
from kopilka.checkout.calculator.results import CapEntry, Quote, QuoteLine, RedeemCaps
from kopilka.checkout.calculator.selection import LinePlan, Selector
from kopilka.kernel.errors import InsufficientPoints
from kopilka.kernel.money import apportion, divide_rounded, format_minor
from kopilka.kernel.program import AccrueOn, Program
from kopilka.kernel.receipt import Line, MemberContext, Receipt
from kopilka.mechanics.discounts.model import DiscountSettings, Offers, Pricing, price

MAX_PERCENT = "accrual.max_percent"
MAX_PER_RECEIPT = "accrual.max_points_per_receipt"
NO_MEMBER_NOTE = "no_member: a receipt without a member accrues and redeems nothing"
_CAP_NAMES = {
    "balance": "the member's available points",
    "lines": "the part of the lines that may be paid with points",
    "min_payable": "the receipt total less the part that must be paid with money",
}


class Calculator:
    """Quotes receipts for one program version; build once, call from any thread."""

    def __init__(self, program: Program) -> None:
        self.program = program
        self.index = CompiledProgram(program)
        self._line_plans: dict[tuple[int, str, str | None], LinePlan] = {}
        money_to_points = Fraction(
            10**program.points.precision, 10**program.money_digits
        ) / Fraction(program.points.value)
        self._selector = Selector(program, money_to_points)
        self._to_points = (money_to_points.numerator, money_to_points.denominator)
        self._accrue_on_paid = program.accrual.on is AccrueOn.PAID
        self._rounding = program.points.rounding
        max_percent = program.accrual.max_percent
        # a line's most points per money minor unit of its accrual base (None: no cap)
        self._line_cap = (
            None if max_percent is None else Fraction(max_percent) / 100 * money_to_points
        )

    def forget(self) -> None:
        """Drop every memo (line plans, masks); the next quotes rebuild them."""
        self._selector.forget()
        self._line_plans.clear()
        self.index.forget()

    def quote(self, receipt: Receipt, member: MemberContext | None, offers: Offers = ()) -> Quote:
        """The answer for `receipt` after the program's discounts and `offers` (coupons',
        or a step that makes them from the discounted lines: the receipt is priced once);
        `InsufficientPoints` for a redemption beyond the caps."""
        pricing = None
        if self.program.discounts is not None or offers:
            pricing = self.price(receipt, member, offers)
            receipt = replace(receipt, lines=_discounted_lines(receipt.lines, pricing))
        lines = receipt.lines
        net = discount = 0
        for line in lines:
            net += line.amount
            discount += line.discount
        receipt_mask = self.index.receipt_mask(
            location=receipt.location,
            at=receipt.at,
            total=net,
            tier=member.tier if member else None,
            segments=member.segments if member else (),
            refs=member.refs if member else (),
            clubs=member.clubs if member else (),
        )
        plans = [self._line_plan(receipt_mask, line.sku, line.category) for line in lines]
        redeemable = [
            line.amount * plan.limit_numerator // plan.limit_denominator
            for line, plan in zip(lines, plans, strict=True)
        ]
        caps = self._caps(net, redeemable, member)
        max_redeemable = caps.least
        redeem = self._requested(receipt, caps, max_redeemable)
        if redeem:
            redeemed = apportion([redeem * r for r in redeemable], caps.lines, redeem)
            paid_with_points = (
                redeemed
                if self._to_points == (1, 1)
                else [self._points_to_money(points) for points in redeemed]
            )
        else:
            redeemed = paid_with_points = [0] * len(lines)
        if member:
            accrued, capped = self._accrue(lines, plans, paid_with_points)
        else:
            accrued, capped = [0] * len(lines), [()] * len(lines)
        shares = pricing.shares if pricing else ((),) * len(lines)
        return Quote(
            receipt_id=receipt.receipt_id,
            member=receipt.member,
            total=net + discount,
            discount=discount,
            redeemed=redeem,
            paid=net - sum(paid_with_points),
            accrued=sum(accrued),
            max_redeemable=max_redeemable,
            caps=caps,
            lines=tuple(
                map(
                    QuoteLine,
                    lines,
                    redeemable,
                    redeemed,
                    accrued,
                    [p.explain for p in plans],
                    shares,
                    capped,
                )
            ),
            notes=(*(pricing.notes if pricing else ()), *(() if member else (NO_MEMBER_NOTE,))),
            discounts=pricing.applied if pricing else (),
        )

    def price(self, receipt: Receipt, member: MemberContext | None, offers: Offers = ()) -> Pricing:
        """The receipt's lines after the program's discounts, then `offers`."""
        program = self.program
        location = receipt.location
        partner = program.locations[location].partner if location else None
        return price(
            program.discounts or NO_DISCOUNTS,
            [(line.sku, line.category, line.qty, line.amount + line.discount, line.amount)
             for line in receipt.lines],
            lineage=self.index.lineage, place=(location, partner), at=receipt.at,
            shopper=member, offers=offers, money_digits=program.money_digits,
        )  # fmt: skip

    def _line_plan(self, receipt_mask: int, sku: str, category: str | None) -> LinePlan:
        """The plan of a line in a receipt whose receipt-level matches are `receipt_mask`."""
        key = (receipt_mask, sku, category)
        plan = self._line_plans.get(key)
        if plan is None:
            candidates = receipt_mask & self.index.line_mask(sku, category)
            plan = self._selector.plan(candidates, self.index.lineage(category))
            remember(self._line_plans, key, plan)
        return plan

    def _caps(self, net: int, redeemable: list[int], member: MemberContext | None) -> RedeemCaps:
        to_points_numerator, to_points_denominator = self._to_points
        payable = max(0, net - self.program.redemption.min_payable)
        return RedeemCaps(
            lines=sum(redeemable),
            balance=(member.balance if member else 0),
            min_payable=payable * to_points_numerator // to_points_denominator,
        )

    def _requested(self, receipt: Receipt, caps: RedeemCaps, max_redeemable: int) -> int:
        if receipt.redeem == "max":
            return max_redeemable
        if receipt.redeem > max_redeemable:
            digits = self.program.points.precision
            raise InsufficientPoints(
                f"redeem {format_minor(receipt.redeem, digits)} is more than this receipt allows: "
                f"at most {format_minor(max_redeemable, digits)} ({_CAP_NAMES[caps.binding]})"
            )
        return receipt.redeem

    def _points_to_money(self, points: int) -> int:
        """Money minor units that `points` pay for, rounded half-up."""
        numerator, denominator = self._to_points
        return (2 * points * denominator + numerator) // (2 * numerator)

    def _accrue(
        self, lines: tuple[Line, ...], plans: list[LinePlan], paid_with_points: list[int]
    ) -> tuple[list[int], list[tuple[CapEntry, ...]]]:
        """Exact accrual per line over one common denominator, capped per line; the
        receipt's sum capped, rounded once, then apportioned. Also each line's cap entries."""
        numerators: list[int] = []
        denominators: list[int] = []
        capped: list[tuple[CapEntry, ...]] = []
        on_paid = self._accrue_on_paid
        line_cap = self._line_cap
        for line, plan, by_points in zip(lines, plans, paid_with_points, strict=True):
            base = line.amount + line.earning - (by_points if on_paid else 0)
            if plan.points_per_unit is not None:
                qty_numerator, denominator = line.qty.as_integer_ratio()
                numerator = plan.points_per_unit * qty_numerator
                if line.reward:  # units given free by a discount or coupon earn nothing
                    paid = line.amount + line.earning
                    numerator *= paid
                    denominator *= paid + line.reward
            else:
                numerator, denominator = base * plan.rate_numerator, plan.rate_denominator
            if plan.cap is not None and numerator > plan.cap * denominator:
                numerator = plan.cap * denominator
            entries: tuple[CapEntry, ...] = ()
            if (
                line_cap is not None
                and numerator * line_cap.denominator
                > (limit := max(0, base) * line_cap.numerator) * denominator
            ):
                entries = (self._cap_entry(MAX_PERCENT, numerator, denominator),)
                numerator, denominator = limit, line_cap.denominator
            numerators.append(numerator)
            denominators.append(denominator)
            capped.append(entries)
        common = denominators[0]
        if denominators.count(common) != len(denominators):
            common = lcm(*denominators)
            numerators = [n * (common // d) for n, d in zip(numerators, denominators, strict=True)]
        exact = sum(numerators)
        receipt_cap = self.program.accrual.max_points_per_receipt
        if receipt_cap is not None and exact > receipt_cap * common:
            # the exact sum is cut to the cap before rounding (a whole cap stays whole),
            # and the cap is spread over the lines in proportion to their exact points
            capped = [
                (*entries, self._cap_entry(MAX_PER_RECEIPT, n, common)) if n else entries
                for n, entries in zip(numerators, capped, strict=True)
            ]
            return apportion([n * receipt_cap for n in numerators], exact, receipt_cap), capped
        return apportion(numerators, common, divide_rounded(exact, common, self._rounding)), capped

    def _cap_entry(self, cap: str, numerator: int, denominator: int) -> CapEntry:
        """How `cap` lowered a line that had numerator / denominator points before it."""
        accrual = self.program.accrual
        return CapEntry(
            cap,
            uncapped=divide_rounded(numerator, denominator, self._rounding),
            max_percent=accrual.max_percent if cap == MAX_PERCENT else None,
            max_points=accrual.max_points_per_receipt if cap == MAX_PER_RECEIPT else None,
        )


NO_DISCOUNTS = DiscountSettings()


def _discounted_lines(lines: tuple[Line, ...], pricing: Pricing) -> tuple[Line, ...]:
    return tuple(
        replace(line, discount=priced.gross - priced.amount, amount=priced.amount,
                earning=priced.earning,
                reward=line.amount - priced.amount - priced.earning)
        for line, priced in zip(lines, pricing.lines, strict=True)
    )  # fmt: skip
