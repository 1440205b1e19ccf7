"""A member's standing — what they spent and how many purchases they made, in a window
and over their life — for every mechanic that counts it (tiers qualify on it, triggers
fire on it, discounts grow with it).

It is kept, not summed: the writes that change it add to running totals in the same
statement (`member_days` per day in the program's time zone, `member_totals` over the
member's life; `verify` checks them against the purchases), so a read costs at most one
row per day of its window however long the member's history. What counts: a purchase's
spend is money net of discounts, counted on the day it was made once it counts
(completed; a held one at its confirm); a refund takes back what it returns, on the
purchase's day, and a purchase refunded in full is no longer a purchase.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Select, and_, case, func, select

from kopilka.platform.statements import Bump, RunningTotal
from kopilka.platform.tables import member_days, member_totals, purchases, refunds

DAYS = RunningTotal(member_days, ("member_id", "day"), ("spend", "purchases"))
TOTALS = RunningTotal(
    member_totals, ("member_id",), ("spend", "purchases", "points_accrued", "points_redeemed")
)

Days = tuple[date, date]  # the first and the last day counted, both included


@cache
def _zone(timezone: str) -> ZoneInfo:
    return ZoneInfo(timezone)


def local_day(moment: datetime, timezone: str) -> date:
    """The day `moment` falls on in `timezone`: the day a purchase counts on."""
    return moment.astimezone(_zone(timezone)).date()


def days_between(start: datetime, end: datetime, timezone: str) -> Days:
    """The days a window of moments counts: the day of each end, in `timezone`."""
    return local_day(start, timezone), local_day(end, timezone)


def last_days(days: int, end: datetime, timezone: str) -> Days:
    """The last `days` days up to `end`'s day, that day included."""
    last = local_day(end, timezone)
    return last - timedelta(days=days - 1), last


def counted(member_id: int, day: date, spend: int, purchases: int) -> tuple[Bump, Bump]:
    """A purchase counting (`purchases=1`), or a refund taking back (`spend` negative;
    `purchases=-1` for the refund that returns the last of it), on the purchase's day."""
    return (
        Bump(DAYS, (member_id, day), (spend, purchases)),
        Bump(TOTALS, (member_id,), (spend, purchases, 0, 0)),
    )


def points_moved(member_id: int, accrued: int, redeemed: int) -> Bump:
    """Points a member's purchases earned and paid, for the lifetime figures."""
    return Bump(TOTALS, (member_id,), (0, 0, accrued, redeemed))


def window_query(member: Any, first: Any, last: Any) -> Select[Any]:
    """(spend, purchases) of `member` from day `first` to day `last`, both included: a
    column, a subquery or bound values each — over at most one row per day."""
    day = member_days.c.day
    return select(
        func.coalesce(func.sum(member_days.c.spend), 0),
        func.coalesce(func.sum(member_days.c.purchases), 0),
    ).where(member_days.c.member_id == member, day >= first, day <= last)


def standing_in(connection: Connection, member_id: int, days: Days) -> tuple[int, int]:
    """(spend, purchases) of one member within `days`."""
    return standings_in(connection, [member_id], [days]).get(member_id, [(0, 0)])[0]


def standings_in(
    connection: Connection, member_ids: Sequence[int], windows: Sequence[Days]
) -> dict[int, list[tuple[int, int]]]:
    """(spend, purchases) per window for each of `member_ids` — one query for them all,
    over at most one row per member and day. Members with nothing counted are absent."""
    if not member_ids or not windows:
        return {}
    columns = []
    for first, last in windows:
        inside = and_(member_days.c.day >= first, member_days.c.day <= last)
        columns.append(func.sum(case((inside, member_days.c.spend), else_=0)))
        columns.append(func.sum(case((inside, member_days.c.purchases), else_=0)))
    rows = connection.execute(
        select(member_days.c.member_id, *columns)
        .where(member_days.c.member_id.in_(list(member_ids)),
               member_days.c.day >= min(first for first, _ in windows),
               member_days.c.day <= max(last for _, last in windows))
        .group_by(member_days.c.member_id)
    ).all()  # fmt: skip
    return {
        int(row[0]): [(int(row[1 + 2 * i]), int(row[2 + 2 * i])) for i in range(len(windows))]
        for row in rows
    }


def lifetime(connection: Connection, member_id: int) -> dict[str, int]:
    """The member's lifetime totals: spend, purchases, points accrued and redeemed."""
    row = connection.execute(
        select(*(member_totals.c[name] for name in TOTALS.counts)).where(
            member_totals.c.member_id == member_id
        )
    ).one_or_none()
    return dict(zip(TOTALS.counts, row or (0,) * len(TOTALS.counts), strict=True))


def net_spend() -> Any:
    """A purchase's spend less what its refunds took back (looked up only when refunded):
    sum it over the purchases that count (completed, or refunded in part or in full) for
    what a member spent. For batch work and `verify`; the hot path reads the totals."""
    returned = (
        select(func.coalesce(func.sum(refunds.c.spend), 0))
        .where(refunds.c.purchase_id == purchases.c.id)
        .scalar_subquery()
    )
    spend = func.coalesce(purchases.c.spend, 0)
    return case((purchases.c.status == "completed", spend), else_=spend - returned)
