"""The `tiers` section of a program file (shared/API.md): the qualifying window, the
review period, the grace days and the levels with what qualifies for each."""

from __future__ import annotations

from kopilka.kernel.periods import CalendarPeriod
from kopilka.kernel.reading import Reader, show
from kopilka.mechanics.tiers.model import (
    Qualification,
    QualifyingWindow,
    TierLevel,
    TierSettings,
)

TIER_KEYS = ("window", "review", "grace_days", "levels")
LEVEL_KEYS = ("code", "name", "qualify", "privileges")
QUALIFY_KEYS = ("spend", "purchases", "tenure_days", "bought")


def parse_tiers(top: Reader, money_digits: int) -> TierSettings | None:
    section = top.mapping("tiers", TIER_KEYS)
    if section is None:
        return None
    window = section.mapping("window", ("days", "period"))
    days = window.integer("days", minimum=1) if window else None
    period = window.choice("period", CalendarPeriod) if window else None
    if window is not None and window.has("days") == window.has("period"):
        window.report(window.loc, "give exactly one of days or period")
    levels = tuple(_levels(section, money_digits))
    if not levels:
        section.report(section.at("levels"), "is required: at least the default level")
    return TierSettings(
        window=QualifyingWindow(days if window else 365, period),
        review=section.choice("review", CalendarPeriod) or CalendarPeriod.MONTH,
        grace_days=section.integer("grace_days", minimum=0) or 0,
        levels=levels,
    )


def _levels(section: Reader, money_digits: int) -> list[TierLevel]:
    levels: list[TierLevel] = []
    codes: set[str] = set()
    for index, item in enumerate(section.records("levels", LEVEL_KEYS)):
        code = item.code("code")
        qualify = item.mapping("qualify", QUALIFY_KEYS)
        if index == 0 and qualify is not None:
            item.report(
                item.at("qualify"),
                "the first level is every member's default; it has no qualification",
            )
        if index > 0 and qualify is None:
            item.report(item.at("qualify"), "is required for every level but the first")
        privileges = item.codes("privileges") or frozenset()
        if code is None:
            continue
        if code in codes:
            item.report(item.at("code"), f"duplicate tier code {show(code)}")
        codes.add(code)
        levels.append(
            TierLevel(
                code,
                item.text("name") or code,
                _qualification(qualify, money_digits) if qualify else None,
                tuple(sorted(privileges)),
            )
        )
    return levels


def _qualification(qualify: Reader, money_digits: int) -> Qualification:
    bought = qualify.mapping("bought", ("skus", "categories"))
    result = Qualification(
        spend=qualify.minor("spend", money_digits, unit="money"),
        purchases=qualify.integer("purchases", minimum=1),
        tenure_days=qualify.integer("tenure_days", minimum=1),
        bought_skus=bought.codes("skus") if bought else None,
        bought_categories=bought.codes("categories") if bought else None,
    )
    if not any(qualify.has(key) for key in QUALIFY_KEYS):
        qualify.report(qualify.loc, f"give at least one of {', '.join(QUALIFY_KEYS)}")
    return result
