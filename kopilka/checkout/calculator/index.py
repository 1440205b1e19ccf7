"""A program version compiled once into bitmask indexes over its rules.

Rule i is bit i. Each receipt-level condition becomes a lookup that answers the mask
of rules it admits (by location, by minute of the week, by receipt total, by date,
by tier, segment, member and club); a receipt's mask is their AND. Line-level conditions
(skus, categories) become masks per sku and per category. Nothing on the purchase
path parses, validates or walks the rule list.
"""

from __future__ import annotations

import zoneinfo
from bisect import bisect_right
from collections.abc import Callable, Iterable
from datetime import date, datetime
from functools import partial

from kopilka.checkout.calculator.memo import remember
from kopilka.kernel.program import MINUTES_PER_DAY, Conditions, Program, Rule

MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY


def _mask(rules: Iterable[tuple[int, Rule]], admits: Callable[[Conditions], bool]) -> int:
    mask = 0
    for i, rule in rules:
        if admits(rule.when):
            mask |= 1 << i
    return mask


class _Segments:
    """A piecewise-constant mask over an ordered axis, found by bisection."""

    def __init__(self, boundaries: Iterable[int], mask_at: Callable[[int], int]) -> None:
        self.starts = sorted(set(boundaries))
        self.masks = [mask_at(start) for start in self.starts]

    def index(self, position: int) -> int:
        return bisect_right(self.starts, position) - 1

    def mask(self, position: int) -> int:
        return self.masks[bisect_right(self.starts, position) - 1]


class CompiledProgram:
    """The program's rules as indexes; build once per program version."""

    def __init__(self, program: Program) -> None:
        self.program = program
        self.rules = program.rules
        self.zone = zoneinfo.ZoneInfo(program.timezone)
        numbered = list(enumerate(self.rules))
        self.all_mask = (1 << len(self.rules)) - 1
        self._place = self._place_masks(numbered)
        self._week = _Segments(_week_boundaries(self.rules), self._week_mask_at(numbered))
        self._totals = _Segments(_total_boundaries(self.rules), self._total_mask_at(numbered))
        self._dated = [
            (i, rule.when)
            for i, rule in numbered
            if rule.when.has_dates or rule.when.between is not None
        ]
        self._undated_mask = self.all_mask & ~sum(1 << i for i, _ in self._dated)
        self._date_cache: dict[tuple[date, int], int] = {}
        self._tier = _ValueMasks(numbered, lambda when: when.tiers)
        self._segment = _ValueMasks(numbered, lambda when: when.segments)
        self._member = _ValueMasks(numbered, lambda when: when.members)
        self._club = _ValueMasks(numbered, lambda when: when.clubs)
        self._sku_only = _ValueMasks(
            numbered, lambda when: when.skus if when.categories is None else None
        )
        self._category_only = _ValueMasks(
            numbered, lambda when: when.categories if when.skus is None else None
        )
        self._sku_both = _ValueMasks(
            numbered, lambda when: when.skus if when.categories is not None else None
        )
        self._category_both = _ValueMasks(
            numbered, lambda when: when.categories if when.skus is not None else None
        )
        self._no_product = _mask(
            numbered, lambda when: when.skus is None and when.categories is None
        )
        self._lineage_cache: dict[str | None, tuple[str, ...]] = {}
        self._line_cache: dict[tuple[str, str | None], int] = {}

    def forget(self) -> None:
        """Drop the memoised masks (they are rebuilt on demand)."""
        self._date_cache.clear()
        self._lineage_cache.clear()
        self._line_cache.clear()

    # --- receipt level -------------------------------------------------------------

    def receipt_mask(
        self,
        *,
        location: str | None,
        at: datetime,
        total: int,
        tier: str | None,
        segments: Iterable[str],
        refs: Iterable[str],
        clubs: Iterable[str] = (),
    ) -> int:
        """The rules whose receipt-level conditions hold for this receipt and member."""
        week_position = at.weekday() * MINUTES_PER_DAY + at.hour * 60 + at.minute
        week_segment = self._week.index(week_position)
        return (
            self._place.get(location, self._place[None])
            & self._week.masks[week_segment]
            & self._totals.mask(total)
            & self._date_mask(at.date(), week_segment, at.hour * 60 + at.minute)
            & self._tier.admitted((tier,) if tier is not None else ())
            & self._segment.admitted(segments)
            & self._member.admitted(refs)
            & self._club.admitted(clubs)
        )

    def _place_masks(self, numbered: list[tuple[int, Rule]]) -> dict[str | None, int]:
        masks: dict[str | None, int] = {
            None: _mask(numbered, lambda when: when.locations is None and when.partners is None)
        }
        for code, location in self.program.locations.items():
            masks[code] = _mask(numbered, partial(_admits_place, code, location.partner))
        return masks

    def _week_mask_at(self, numbered: list[tuple[int, Rule]]) -> Callable[[int], int]:
        def mask_at(position: int) -> int:
            day, minute = divmod(position, MINUTES_PER_DAY)
            return _mask(numbered, lambda when: _holds_in_week(when, day, minute))

        return mask_at

    def _total_mask_at(self, numbered: list[tuple[int, Rule]]) -> Callable[[int], int]:
        def mask_at(total: int) -> int:
            return _mask(
                numbered,
                lambda when: when.receipt_total is None or when.receipt_total.contains(total),
            )

        return mask_at

    def _date_mask(self, day: date, week_segment: int, minute: int) -> int:
        """Rules with `dates`/`between` checked for the local date (cached per date and segment).

        In a window across midnight the hours after midnight belong to the day the
        window began: 8 March 22:00–02:00 still holds at 01:00 on 9 March.
        """
        if not self._dated:
            return self.all_mask
        key = (day, week_segment)
        cached = self._date_cache.get(key)
        if cached is not None:
            return cached
        mask = self._undated_mask
        for i, when in self._dated:
            shift = 1 if when.time is not None and when.time.is_in_early_part(minute) else 0
            if when.matches_date(date.fromordinal(day.toordinal() - shift)):
                mask |= 1 << i
        remember(self._date_cache, key, mask)
        return mask

    # --- line level ----------------------------------------------------------------

    def lineage(self, category: str | None) -> tuple[str, ...]:
        cached = self._lineage_cache.get(category)
        if cached is None:
            cached = self.program.category_lineage(category)
            remember(self._lineage_cache, category, cached)
        return cached

    def line_mask(self, sku: str, category: str | None) -> int:
        """The rules whose `skus`/`categories` conditions admit a line of this sku and category."""
        key = (sku, category)
        cached = self._line_cache.get(key)
        if cached is not None:
            return cached
        lineage = self.lineage(category)
        mask = (
            self._no_product
            | self._sku_only.admitted((sku,), include_unconditioned=False)
            | self._category_only.admitted(lineage, include_unconditioned=False)
            | (
                self._sku_both.admitted((sku,), include_unconditioned=False)
                & self._category_both.admitted(lineage, include_unconditioned=False)
            )
        )
        remember(self._line_cache, key, mask)
        return mask


class _ValueMasks:
    """For a set-valued condition (tiers, segments, skus …): which rules each value admits."""

    def __init__(
        self,
        numbered: list[tuple[int, Rule]],
        values_of: Callable[[Conditions], frozenset[str] | None],
    ) -> None:
        self.by_value: dict[str, int] = {}
        self.unconditioned = 0
        for i, rule in numbered:
            values = values_of(rule.when)
            if values is None:
                self.unconditioned |= 1 << i
                continue
            for value in values:
                self.by_value[value] = self.by_value.get(value, 0) | (1 << i)

    def admitted(self, values: Iterable[str], *, include_unconditioned: bool = True) -> int:
        mask = self.unconditioned if include_unconditioned else 0
        by_value = self.by_value
        for value in values:
            mask |= by_value.get(value, 0)
        return mask


def _admits_place(location: str, partner: str, when: Conditions) -> bool:
    return (when.locations is None or location in when.locations) and (
        when.partners is None or partner in when.partners
    )


def _holds_in_week(when: Conditions, day: int, minute: int) -> bool:
    """`weekdays` and `time` at a minute of the week (day 0 = Monday)."""
    window = when.time
    if window is not None and not window.contains(minute):
        return False
    if when.weekdays is None:
        return True
    window_day = (day - 1) % 7 if window is not None and window.is_in_early_part(minute) else day
    return window_day in when.weekdays


def _week_boundaries(rules: Iterable[Rule]) -> set[int]:
    minutes = {0}
    for rule in rules:
        if rule.when.time is not None:
            minutes.update((rule.when.time.start, rule.when.time.end % MINUTES_PER_DAY))
    return {day * MINUTES_PER_DAY + minute for day in range(7) for minute in minutes}


def _total_boundaries(rules: Iterable[Rule]) -> set[int]:
    bounds = {0}
    for rule in rules:
        band = rule.when.receipt_total
        if band is not None:
            bounds.update(value for value in (band.min, band.max) if value is not None)
    return bounds
