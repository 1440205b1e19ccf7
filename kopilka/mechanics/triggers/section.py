"""The `triggers` section of a program file (shared/API.md): each trigger's occasion,
what that occasion needs, and its reward."""

from __future__ import annotations

from kopilka.kernel.periods import CalendarPeriod
from kopilka.kernel.reading import Reader, show
from kopilka.mechanics.triggers.model import Reward, Trigger, TriggerOccasion

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
