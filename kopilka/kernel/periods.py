"""Calendar periods: a day, a week (from Monday), a month, a quarter or a year, as a
program's timezone counts them.

Shared by the mechanics that count within a period — the tiers' qualifying window and
review, the triggers' `check_point` — so that neither imports the other. Pure: time is
a parameter.
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, date, datetime, time, timedelta
from enum import Enum
from functools import cache


class CalendarPeriod(Enum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


@cache
def _zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def period_start(period: CalendarPeriod, moment: datetime, timezone: str) -> datetime:
    """The start (local midnight, in UTC) of the calendar period `moment` falls in:
    its day, its week (from Monday), month, quarter or year in `timezone`."""
    zone = _zone(timezone)
    day = moment.astimezone(zone).date()
    first: date
    if period is CalendarPeriod.DAY:
        first = day
    elif period is CalendarPeriod.WEEK:
        first = day - timedelta(days=day.weekday())
    elif period is CalendarPeriod.MONTH:
        first = day.replace(day=1)
    elif period is CalendarPeriod.QUARTER:
        first = date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    else:
        first = date(day.year, 1, 1)
    return datetime.combine(first, time(), tzinfo=zone).astimezone(UTC)
