"""What a quote answers: typed, immutable results that carry their own explanation.

Amounts are integers in minor units (money: the currency's; points: the program's).
They are NamedTuples rather than dataclasses because thousands are made per second
on the purchase path and a tuple is the cheapest immutable record Python has.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import NamedTuple

from kopilka.kernel.program import RuleKind
from kopilka.kernel.receipt import Line
from kopilka.mechanics.discounts.model import AppliedDiscount, DiscountShare


class ExplainEntry(NamedTuple):
    """One rule's part in a line's figures: the coefficient or limit it gave."""

    rule: str
    kind: RuleKind
    coefficient: Fraction | None = None  # K from multiplier / percent / accrue: false
    points_per_unit: int | None = None  # point minor units per unit
    max_points: int | None = None  # point minor units, the cap this rule put on the line
    redeem_percent: Decimal | None = None  # the redemption limit this rule set


class CapEntry(NamedTuple):
    """A program-level cap that lowered a line's accrual, and what the line had before it."""

    cap: str  # the program-file key: "accrual.max_percent" or "accrual.max_points_per_receipt"
    uncapped: int  # point minor units: the line's points before this cap, rounded as the program
    max_percent: Decimal | None = None  # accrual.max_percent, for its entry
    max_points: int | None = None  # accrual.max_points_per_receipt (point minor units)


class QuoteLine(NamedTuple):
    line: Line  # the receipt's line: n, sku, amount (qty × price − discount), discount
    redeemable: int  # points: the most of this line payable with points
    redeemed: int  # points
    accrued: int  # points
    explain: tuple[ExplainEntry, ...]
    discounts: tuple[DiscountShare, ...] = ()  # which discount took what off this line
    capped: tuple[CapEntry, ...] = ()  # the program's caps that lowered `accrued`

    @property
    def n(self) -> int:
        return self.line.n

    @property
    def sku(self) -> str:
        return self.line.sku

    @property
    def amount(self) -> int:
        return self.line.amount

    @property
    def discount(self) -> int:
        return self.line.discount


class RedeemCaps(NamedTuple):
    """Each cap on what a receipt may redeem, in points; None where it does not apply."""

    lines: int  # Σ of the lines' redeemable points
    balance: int | None  # the member's available points
    min_payable: int  # the receipt's total − redemption.min_payable, in points

    @property
    def least(self) -> int:
        caps = [self.lines, self.min_payable]
        if self.balance is not None:
            caps.append(self.balance)
        return max(0, min(caps))

    @property
    def binding(self) -> str:
        """Which cap decides `least` (for the explanation of a refusal)."""
        if self.balance is not None and self.balance <= min(self.lines, self.min_payable):
            return "balance"
        return "lines" if self.lines <= self.min_payable else "min_payable"


class Quote(NamedTuple):
    receipt_id: str | None
    member: str | None
    total: int  # money, before discounts
    discount: int  # money
    redeemed: int  # points
    paid: int  # money: total − discount − the money paid with points
    accrued: int  # points
    max_redeemable: int  # points
    caps: RedeemCaps
    lines: tuple[QuoteLine, ...]
    notes: tuple[str, ...]  # receipt-level explanations, e.g. why nothing accrued
    discounts: tuple[AppliedDiscount, ...] = ()  # the discounts applied, in order
