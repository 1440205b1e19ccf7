"""What a refund gives back: accrued points come off, redeemed points return, in proportion.

Each refund is computed on the cumulative quantity returned so far, so any sequence of
partial refunds that ends in the whole receipt gives back exactly what the purchase
moved — never a point more, never one less (and the money a line counts as spend towards
a tier comes off the same way):

    back after this refund = ⌊ figure × returned so far / bought ⌋ − back before it
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from kopilka.kernel.errors import InvalidInput, Problem


@dataclass(frozen=True, slots=True)
class BoughtLine:
    n: int
    qty: Decimal
    accrued: int  # point minor units
    redeemed: int  # point minor units
    returned_qty: Decimal  # by earlier refunds
    amount: int = 0  # money minor units, net of discounts: what the line counts as spend


@dataclass(frozen=True, slots=True)
class RefundLine:
    n: int
    qty: Decimal
    accrued_back: int  # points taken off the member
    redeemed_back: int  # points given back to the member
    spend_back: int = 0  # money minor units the line no longer counts as spend (tiers)


def refund_lines(
    bought: list[BoughtLine], requested: dict[int, Decimal] | None
) -> list[RefundLine]:
    """The figures of a refund of `requested` quantities per line (None: all that is left)."""
    by_n = {line.n: line for line in bought}
    wanted = (
        requested
        if requested is not None
        else {
            line.n: line.qty - line.returned_qty for line in bought if line.qty > line.returned_qty
        }
    )
    problems = [Problem(f"lines[n={n}]", "the purchase has no such line")
                for n in wanted if n not in by_n]  # fmt: skip
    for n, qty in wanted.items():
        line = by_n.get(n)
        if line is not None and qty > line.qty - line.returned_qty:
            problems.append(Problem(
                f"lines[n={n}].qty",
                f"{qty} is more than the {line.qty - line.returned_qty} left to refund",
            ))  # fmt: skip
    if not wanted and requested is None:
        problems.append(Problem("", "the purchase was already refunded in full"))
    if problems:
        raise InvalidInput(problems)
    return [_refund_line(by_n[n], qty) for n, qty in sorted(wanted.items())]


def _refund_line(line: BoughtLine, qty: Decimal) -> RefundLine:
    def back(figure: int) -> int:
        before = int(figure * Fraction(line.returned_qty) / Fraction(line.qty))
        after = int(figure * Fraction(line.returned_qty + qty) / Fraction(line.qty))
        return after - before

    return RefundLine(line.n, qty, back(line.accrued), back(line.redeemed), back(line.amount))
