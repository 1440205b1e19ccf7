"""Tier (level) definitions from the program file: what qualifies a member for a level.

This module holds the declarations only; upgrades, reviews and grace periods are
computed by the life-cycle mechanics that build on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class CalendarPeriod(Enum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


@dataclass(frozen=True, slots=True)
class QualifyingWindow:
    """What "qualify" counts: the last `days` days, or the current calendar `period`."""

    days: int | None
    period: CalendarPeriod | None


@dataclass(frozen=True, slots=True)
class Qualification:
    """Every threshold given must hold; spend is money in minor units, net of discounts."""

    spend: int | None = None
    purchases: int | None = None
    tenure_days: int | None = None
    bought_skus: frozenset[str] | None = None
    bought_categories: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class TierLevel:
    code: str
    name: str
    qualify: Qualification | None  # None only for the first, default level
    privileges: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TierSettings:
    window: QualifyingWindow
    review: CalendarPeriod
    grace_days: int
    levels: tuple[TierLevel, ...]  # ascending; the first is every member's default
