"""Bar charts drawn on the server as SVG: the page needs no chart script and works with
JavaScript off. This module only does the geometry; the template draws the shapes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from kopilka.operators.handlers import DayPoints

WIDTH = 720
HEIGHT = 220
AXIS = 24  # room under the bars for the day labels
TOP = 8


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    series: str  # accrued | redeemed | expired: the CSS class that colours it
    day: date
    value: Decimal


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    baseline: float
    bars: list[Bar]
    ticks: list[tuple[float, date]]  # where to write which day under the axis
    highest: Decimal  # the tallest bar's value, written at the top of the scale


def points_by_day(days: list[DayPoints], digits: int) -> Chart:
    """Three bars per day — accrued, redeemed, expired — side by side on one scale."""
    scale = 10**digits
    highest = max([max(d.accrued, d.redeemed, d.expired) for d in days] + [0])
    baseline = float(HEIGHT - AXIS)
    room = baseline - TOP
    slot = WIDTH / max(len(days), 1)
    bar_width = max(slot * 0.26, 1.0)
    bars: list[Bar] = []
    for n, day in enumerate(days):
        for offset, series, amount in ((0.09, "accrued", day.accrued),
                                       (0.37, "redeemed", day.redeemed),
                                       (0.65, "expired", day.expired)):  # fmt: skip
            height = room * amount / highest if highest else 0.0
            bars.append(Bar(x=round(n * slot + offset * slot, 2), y=round(baseline - height, 2),
                            width=round(bar_width, 2), height=round(height, 2), series=series,
                            day=day.day, value=Decimal(amount) / scale))  # fmt: skip
    ticks = [(round(n * slot + slot / 2, 2), days[n].day) for n in _tick_positions(len(days))]
    return Chart(WIDTH, HEIGHT, baseline, bars, ticks, Decimal(highest) / scale)


def _tick_positions(count: int) -> list[int]:
    """About six labelled days, the last one included: more would overlap."""
    if count == 0:
        return []
    step = max(count // 6, 1)
    return sorted({*range(count - 1, -1, -step)})
