"""A loyalty program as typed, immutable values — what a program file declares.

Amounts are integers in minor units: money in the currency's (`Program.money_digits`),
points in the program's (`PointsSettings.precision`). Percentages stay `Decimal`,
coefficients `Fraction`, so nothing is ever approximated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from fractions import Fraction
from typing import TYPE_CHECKING

from kopilka.kernel.money import Rounding
from kopilka.mechanics.tiers.model import TierSettings

if TYPE_CHECKING:  # discounts read the Conditions declared here
    from kopilka.mechanics.discounts.model import DiscountSettings

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60


class RuleKind(Enum):
    """Which coefficient slot a rule fills: K1/P1, K2/P2 or K3/P3."""

    CLIENT = "client"
    PRODUCT = "product"
    BEHAVIOUR = "behaviour"


RULE_KINDS = (RuleKind.CLIENT, RuleKind.PRODUCT, RuleKind.BEHAVIOUR)


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """Minutes of the local day, `start` inclusive, `end` exclusive; may cross midnight."""

    start: int
    end: int

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start

    def contains(self, minute: int) -> bool:
        if self.crosses_midnight:
            return minute >= self.start or minute < self.end
        return self.start <= minute < self.end

    def is_in_early_part(self, minute: int) -> bool:
        """True after midnight in a window that began the day before (22:00–02:00 at 01:00)."""
        return self.crosses_midnight and minute < self.end


@dataclass(frozen=True, slots=True)
class AmountRange:
    """Money bounds in minor units: `min` inclusive, `max` exclusive, so bands tile."""

    min: int | None
    max: int | None

    def contains(self, amount: int) -> bool:
        return (self.min is None or amount >= self.min) and (self.max is None or amount < self.max)


@dataclass(frozen=True, slots=True)
class DateRange:
    """Local calendar dates, both ends inclusive; either end may be open."""

    start: date | None
    end: date | None

    def contains(self, day: date) -> bool:
        return (self.start is None or day >= self.start) and (self.end is None or day <= self.end)


@dataclass(frozen=True, slots=True)
class Conditions:
    """A rule's `when`: every condition given must hold; None means "not a condition"."""

    weekdays: frozenset[int] | None = None  # 0 = Monday
    time: TimeWindow | None = None
    month_days: frozenset[tuple[int, int]] | None = None  # "MM-DD" every year
    full_dates: frozenset[date] | None = None  # "YYYY-MM-DD"
    between: DateRange | None = None
    receipt_total: AmountRange | None = None
    partners: frozenset[str] | None = None
    locations: frozenset[str] | None = None
    categories: frozenset[str] | None = None
    skus: frozenset[str] | None = None
    tiers: frozenset[str] | None = None
    segments: frozenset[str] | None = None
    members: frozenset[str] | None = None
    clubs: frozenset[str] | None = None  # the member is in one of these clubs (in force)

    def holds_at(self, at: datetime) -> bool:
        """`weekdays`, `time`, `dates` and `between` at a local time. In a window across
        midnight the hours after midnight belong to the day the window began."""
        minute = at.hour * 60 + at.minute
        window = self.time
        if window is not None and not window.contains(minute):
            return False
        early = window is not None and window.is_in_early_part(minute)
        day = at.date() - timedelta(days=1) if early else at.date()
        if self.weekdays is not None and day.weekday() not in self.weekdays:
            return False
        return self.matches_date(day)

    @property
    def has_dates(self) -> bool:
        return self.month_days is not None or self.full_dates is not None

    def matches_date(self, day: date) -> bool:
        """The `dates` and `between` conditions for one local date."""
        if self.has_dates:
            in_month_days = self.month_days is not None and (day.month, day.day) in self.month_days
            in_full_dates = self.full_dates is not None and day in self.full_dates
            if not (in_month_days or in_full_dates):
                return False
        return self.between is None or self.between.contains(day)


class AccrualMode(Enum):
    COEFFICIENT = "coefficient"  # multiplier, percent or accrue: false
    POINTS_PER_UNIT = "points_per_unit"


@dataclass(frozen=True, slots=True)
class AccrualEffect:
    """What a rule does to a line's points; `stated` is how the program file said it."""

    mode: AccrualMode
    coefficient: Fraction  # 0 for accrue: false; unused for points_per_unit
    points_per_unit: int  # in point minor units; unused for coefficients
    stated: str  # "multiplier", "percent", "accrue" or "points_per_unit"
    stated_value: Decimal | bool


@dataclass(frozen=True, slots=True)
class Rule:
    code: str
    kind: RuleKind
    when: Conditions
    accrual: AccrualEffect | None
    max_points: int | None  # point minor units; caps the line after all coefficients
    redeem_percent: Decimal | None
    priority: int
    name: str | None = None

    @property
    def product_specificity(self) -> int:
        """sku (2) over category (1) over none (0)."""
        if self.when.skus is not None:
            return 2
        return 1 if self.when.categories is not None else 0

    @property
    def place_specificity(self) -> int:
        """location (2) over partner (1) over the whole program (0)."""
        if self.when.locations is not None:
            return 2
        return 1 if self.when.partners is not None else 0


@dataclass(frozen=True, slots=True)
class Location:
    code: str
    name: str
    partner: str
    timezone: str
    lat: Decimal | None = None
    lon: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Partner:
    code: str
    name: str
    locations: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Category:
    code: str
    name: str
    parent: str | None


@dataclass(frozen=True, slots=True)
class Product:
    sku: str
    name: str
    category: str | None
    price: int | None  # money minor units


@dataclass(frozen=True, slots=True)
class PointsSettings:
    precision: int = 2
    rounding: Rounding = Rounding.DOWN
    value: Decimal = Decimal("1.00")  # money one point pays for


class AccrueOn(Enum):
    PAID = "paid"  # the part of the receipt paid with money
    TOTAL = "total"  # the whole receipt, points included


@dataclass(frozen=True, slots=True)
class AccrualSettings:
    base_percent: Decimal = Decimal(1)
    on: AccrueOn = AccrueOn.PAID
    pending_days: int = 0
    # Program-level caps, after every rule (None: no cap). Coefficients multiply, so a
    # stack of generous rules could otherwise give a line more points than it cost.
    max_percent: Decimal | None = None  # of a line's accrual base (what `on` counts)
    max_points_per_receipt: int | None = None  # point minor units


@dataclass(frozen=True, slots=True)
class RedemptionSettings:
    base_percent: Decimal = Decimal(100)
    min_payable: int = 0  # money minor units left to pay with money at least
    hold_minutes: int = 60  # a hold not confirmed or cancelled in time is released


class SpentPoints(Enum):
    """What a refund does when the points it claws back were already spent."""

    NEGATIVE = "negative"  # the balance goes below zero; later accruals fill it
    DEBT = "debt"  # take what is there; the rest is a debt later accruals pay first


@dataclass(frozen=True, slots=True)
class RefundSettings:
    spent_points: SpentPoints = SpentPoints.NEGATIVE


class ExpiryPeriod(Enum):
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


@dataclass(frozen=True, slots=True)
class ExpirySettings:
    after_days: int | None
    period: ExpiryPeriod | None
    warn_days: int | None


@dataclass(frozen=True, slots=True)
class Program:
    code: str
    name: str
    currency: str
    money_digits: int
    timezone: str
    points: PointsSettings
    accrual: AccrualSettings
    redemption: RedemptionSettings
    refunds: RefundSettings
    expiry: ExpirySettings | None
    partners: tuple[Partner, ...]
    locations: Mapping[str, Location]
    categories: Mapping[str, Category]
    products: Mapping[str, Product]
    rules: tuple[Rule, ...]
    tiers: TierSettings | None
    discounts: DiscountSettings | None = None  # None: no discounts section at all
    # the sections of mechanics registered with `program_parser.register_section` (the
    # product's own in `kopilka.sections`: triggers, cashback), read by their own
    # parsers: each mechanic's part of the program file, by its key, present when the
    # file has it; a mechanic reads its own with a typed accessor (`cashback_of`)
    sections: Mapping[str, object] = field(default_factory=dict)

    def category_lineage(self, code: str | None) -> tuple[str, ...]:
        """The category and its ancestors, nearest first: coffee → (coffee, drinks); none
        for a line without a category."""
        lineage: list[str] = []
        current: str | None = code
        while current is not None and current not in lineage:
            lineage.append(current)
            category = self.categories.get(current)
            current = category.parent if category else None
        return tuple(lineage)
