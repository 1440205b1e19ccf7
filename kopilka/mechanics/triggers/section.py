"""The `tiers` and `triggers` sections of a program file (shared/API.md)."""

from __future__ import annotations

from kopilka.kernel.reading import Reader, show
from kopilka.mechanics.tiers.model import (
    CalendarPeriod,
    Qualification,
    QualifyingWindow,
    TierLevel,
    TierSettings,
)
from kopilka.mechanics.triggers.model import Reward, Trigger, TriggerOccasion

TIER_KEYS = ("window", "review", "grace_days", "levels")
LEVEL_KEYS = ("code", "name", "qualify", "privileges")
QUALIFY_KEYS = ("spend", "purchases", "tenure_days", "bought")
TRIGGER_KEYS = (
    "code",
    "on",
    "reward",
    "days_before",
    "days",
    "burn_all",
    "period",
    "min",
    "number",
)
# What each occasion needs besides `code` and `on`, and what it may have.
_OCCASION_KEYS: dict[TriggerOccasion, tuple[tuple[str, ...], tuple[str, ...]]] = {
    TriggerOccasion.REGISTRATION: (("reward",), ()),
    TriggerOccasion.PROFILE_COMPLETE: (("reward",), ()),
    TriggerOccasion.BIRTHDAY: (("reward",), ("days_before",)),
    TriggerOccasion.INACTIVITY: (("days",), ("reward", "burn_all")),
    TriggerOccasion.CHECK_POINT: (("period", "min", "reward"), ()),
    TriggerOccasion.PURCHASE_NUMBER: (("number", "reward"), ()),
}


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


def parse_triggers(top: Reader, point_digits: int, money_digits: int) -> tuple[Trigger, ...]:
    triggers: list[Trigger] = []
    codes: set[str] = set()
    for item in top.records("triggers", TRIGGER_KEYS):
        code = item.code("code")
        occasion = item.choice("on", TriggerOccasion, required=True)
        if occasion is None or code is None:
            continue
        if code in codes:
            item.report(item.at("code"), f"duplicate trigger code {show(code)}")
        codes.add(code)
        triggers.append(_trigger(item, code, occasion, point_digits, money_digits))
    return tuple(triggers)


def _trigger(
    item: Reader, code: str, occasion: TriggerOccasion, point_digits: int, money_digits: int
) -> Trigger:
    needed, optional = _OCCASION_KEYS[occasion]
    for key in needed:
        item.raw(key, required=True)
    for key in TRIGGER_KEYS[2:]:
        if item.has(key) and key not in needed and key not in optional:
            item.report(item.at(key), f"does not apply to a trigger on {occasion.value}")
    burn_all = bool(item.boolean("burn_all"))
    if occasion is TriggerOccasion.INACTIVITY and not burn_all and not item.has("reward"):
        item.report(item.loc, "an inactivity trigger needs a reward or burn_all: true")
    minimum = item.mapping("min", ("purchases", "spend"))
    if minimum is not None and minimum.has("purchases") == minimum.has("spend"):
        minimum.report(minimum.loc, "give exactly one of purchases or spend")
    return Trigger(
        code=code,
        on=occasion,
        reward=_reward(item, point_digits),
        days_before=item.integer("days_before", minimum=0) or 0,
        days=item.integer("days", minimum=1),
        burn_all=burn_all,
        period=item.choice("period", CalendarPeriod),
        min_purchases=minimum.integer("purchases", minimum=1) if minimum else None,
        min_spend=minimum.minor("spend", money_digits, unit="money") if minimum else None,
        number=item.integer("number", minimum=1),
    )


def _reward(item: Reader, point_digits: int) -> Reward | None:
    reward = item.mapping("reward", ("points", "valid_days"))
    if reward is None:
        return None
    points = reward.minor("points", point_digits, unit="points", required=True)
    return Reward(points or 0, reward.integer("valid_days", minimum=1))
