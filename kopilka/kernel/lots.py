"""Lots: a member's points by when they were earned, so the oldest burn and are spent first.

A lot is an index over the member's available (or pending) balance: the lots' `remaining`
sum to the balance when it is positive and to zero when a refund has taken it below
zero. So a credit forms a lot only of the part that lifts the balance above zero, and a
debit takes off the lots only the part of it that was above zero.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from kopilka.kernel.program import ExpiryPeriod, ExpirySettings


@dataclass(frozen=True, slots=True)
class Lot:
    id: int
    remaining: int
    expires_at: datetime | None
    purchase_id: int | None


def lot_part_of_credit(balance_before: int, amount: int) -> int:
    """How much of a credit of `amount` to a balance of `balance_before` forms a lot."""
    return max(0, balance_before + amount) - max(0, balance_before)


def lot_part_of_debit(balance_before: int, amount: int) -> int:
    """How much of a debit of `amount` from `balance_before` comes off the lots."""
    return max(0, balance_before) - max(0, balance_before - amount)


def spending_order(lot: Lot, own_purchase: int | None = None) -> tuple[bool, bool, float, int]:
    """The purchase's own lot first (a refund's clawback), then soonest to burn, then oldest."""
    burns = lot.expires_at.timestamp() if lot.expires_at else 0.0
    own = own_purchase is not None and lot.purchase_id == own_purchase
    return not own, lot.expires_at is None, burns, lot.id


def take_from_lots(
    lots: list[Lot], amount: int, own_purchase: int | None = None
) -> list[tuple[int, int]]:
    """The (lot id, points) to take `amount` from, in spending order; raises if short."""
    taken: list[tuple[int, int]] = []
    left = amount
    for lot in sorted(lots, key=lambda lot: spending_order(lot, own_purchase)):
        if left == 0:
            break
        take = min(left, lot.remaining)
        if take:
            taken.append((lot.id, take))
            left -= take
    if left:
        raise ValueError(f"the lots hold {amount - left} points, {amount} were to be taken")
    return taken


def slice_of_uses(uses: list[tuple[int, int]], start: int, end: int) -> list[tuple[int, int]]:
    """The lots behind points `start`…`end` of a redemption that took `uses` in order.

    A partial refund returns the redeemed points cumulatively; returning the points
    `start`…`end` restores the lots they were taken from, so a refund never makes points
    live longer than they would have.
    """
    result: list[tuple[int, int]] = []
    position = 0
    for lot_id, points in uses:
        low, high = max(start, position), min(end, position + points)
        if high > low:
            result.append((lot_id, high - low))
        position += points
    return result


def expires_at(
    settings: ExpirySettings | None, available_at: datetime, timezone: str
) -> datetime | None:
    """When points that became available at `available_at` burn (program time zone)."""
    if settings is None:
        return None
    zone = zoneinfo.ZoneInfo(timezone)
    local = available_at.astimezone(zone)
    if settings.after_days is not None:
        return local + timedelta(days=settings.after_days)
    assert settings.period is not None
    end = _end_of_next_period(local.date(), settings.period)
    return datetime.combine(end, time(), tzinfo=zone)


def _end_of_next_period(day: date, period: ExpiryPeriod) -> date:
    """The first day after the period following the one `day` is in (exclusive end)."""
    months = {ExpiryPeriod.MONTH: 1, ExpiryPeriod.QUARTER: 3, ExpiryPeriod.YEAR: 12}[period]
    start_month = (day.month - 1) // months * months  # 0-based month the period starts
    month_index = day.year * 12 + start_month + 2 * months
    year, month = divmod(month_index, 12)
    return date(year, month + 1, 1)
