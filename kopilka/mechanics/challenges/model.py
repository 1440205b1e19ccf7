"""Challenges and badges: goals over a window — 3 visits this month, 5 burgers, 10,000 ₽
in a quarter, a category never bought before, a purchase every week for K weeks with a
grace week — and what completing one gives (points, a personal coupon, a badge, a tier).

Pure (standard library and the kernel's reader only): where a member stands on each
challenge is plain values (`Standing`), and what a receipt does to it (`step`) is worked
out here, so the mechanic only reads and writes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from enum import StrEnum
from functools import lru_cache

from kopilka.kernel.periods import CalendarPeriod
from kopilka.kernel.reading import Reader, show

CHALLENGE_KEYS = ("code", "name", "goal", "skus", "categories", "min_spend", "period",
                  "valid", "reward")  # fmt: skip
GOAL_KEYS = ("visits", "units", "spend", "new_categories", "weekly_streak")
STREAK_KEYS = ("weeks", "grace_weeks")
REWARD_KEYS = ("points", "coupon", "badge", "tier")
BADGE_KEYS = ("code", "name", "description")
PERIODS = ("week", "month", "quarter", "year")
MAX_TARGET = 1_000_000  # visits, units, categories or weeks: more is a typo
MAX_DESCRIPTION = 500
EVER = "ever"  # the period key of a challenge without a period: one run for the member's life


class Goal(StrEnum):
    VISITS = "visits"  # qualifying receipts
    UNITS = "units"  # whole units of qualifying products
    SPEND = "spend"  # money spent on qualifying products (minor units)
    NEW_CATEGORIES = "new_categories"  # categories the member had never bought from
    WEEKLY_STREAK = "weekly_streak"  # weeks in a row with a qualifying receipt


@dataclass(frozen=True, slots=True)
class Reward:
    points: int | None = None  # point minor units
    coupon: str | None = None  # a coupon campaign with personal codes
    badge: str | None = None  # a badge of the `badges` section
    tier: str | None = None  # a tier the member is raised to (never lowered)


@dataclass(frozen=True, slots=True)
class Challenge:
    code: str
    name: str
    goal: Goal
    target: int  # receipts, units, money minor units, categories or weeks
    grace_weeks: int  # a weekly streak's weeks that may be missed in all
    skus: frozenset[str] | None
    categories: frozenset[str] | None
    min_spend: int  # money minor units a receipt's qualifying lines must reach
    period: CalendarPeriod | None  # the window progress counts in; None: ever
    valid_from: date | None
    valid_until: date | None
    reward: Reward

    def qualifies(self, sku: str, lineage: Sequence[str]) -> bool:
        if self.skus is None and self.categories is None:
            return True
        return (self.skus is not None and sku in self.skus) or (
            self.categories is not None and any(category in self.categories for category in lineage)
        )

    def running(self, day: date) -> bool:
        return (self.valid_from is None or day >= self.valid_from) and (
            self.valid_until is None or day <= self.valid_until
        )


@dataclass(frozen=True, slots=True)
class Badge:
    code: str
    name: str
    description: str | None


@dataclass(frozen=True, slots=True)
class ChallengeLine:
    sku: str
    lineage: tuple[str, ...]  # its category and those above it
    category: str | None
    qty: int  # whole units (weighed goods count by whole units)
    amount: int  # money minor units paid, after discounts


@dataclass(frozen=True, slots=True)
class Standing:
    """Where a member stands on a challenge in a period: running state, kept per member,
    challenge and period. `marker` and `spare` serve the weekly streak: the last week
    counted (its Monday's ordinal) and the grace weeks used."""

    progress: int = 0
    marker: int = 0
    spare: int = 0
    completions: int = 0


@lru_cache(maxsize=1024)
def period_key(period: CalendarPeriod | None, day: date) -> str:
    """The period `day` falls in, by its first day ("2026-03-01"), or `EVER`."""
    if period is None:
        return EVER
    if period is CalendarPeriod.WEEK:
        first = day - timedelta(days=day.weekday())
    elif period is CalendarPeriod.MONTH:
        first = day.replace(day=1)
    elif period is CalendarPeriod.QUARTER:
        first = date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    else:
        first = date(day.year, 1, 1)
    return first.isoformat()


def contribution(
    challenge: Challenge, lines: Sequence[ChallengeLine], known: frozenset[str]
) -> int:
    """What a receipt of `lines` adds to the challenge's progress (a weekly streak: 1 for
    a qualifying receipt, the week is worked out by `step`); `known`: the categories the
    member had bought from before it."""
    qualifying = [
        line
        for line in lines  # a line given free counts for nothing
        if line.amount > 0 and challenge.qualifies(line.sku, line.lineage)
    ]
    spend = sum(line.amount for line in qualifying)
    if not qualifying or spend <= 0 or spend < challenge.min_spend:
        return 0
    goal = challenge.goal
    if goal is Goal.UNITS:
        return sum(line.qty for line in qualifying)
    if goal is Goal.SPEND:
        return spend
    if goal is Goal.NEW_CATEGORIES:
        return len({line.category for line in qualifying if line.category} - known)
    return 1  # a visit; a week of a streak


def step(challenge: Challenge, before: Standing, added: int, day: date) -> Standing:
    """Where a receipt that adds `added` on `day` leaves the challenge (completed at most
    once a period)."""
    if not added:
        return before
    if challenge.goal is Goal.WEEKLY_STREAK:
        after = _streak(challenge, before, day)
    else:
        after = replace(before, progress=before.progress + added)
    done = before.completions == 0 and after.progress >= challenge.target
    return replace(after, completions=before.completions + 1) if done else after


def _streak(challenge: Challenge, before: Standing, day: date) -> Standing:
    week = (day - timedelta(days=day.weekday())).toordinal()
    if before.progress and week == before.marker:
        return before  # this week counted already
    missed = (week - before.marker) // 7 - 1 if before.progress else 0
    if before.progress and 0 <= missed <= challenge.grace_weeks - before.spare:
        return Standing(before.progress + 1, week, before.spare + missed, before.completions)
    return Standing(1, week, 0, before.completions)  # the streak starts (again)


# — the sections of the program file —


def parse_badges(top: Reader) -> tuple[Badge, ...]:
    badges: list[Badge] = []
    seen: set[str] = set()
    for item in top.records("badges", BADGE_KEYS):
        code = item.code("code")
        if code is None:
            continue
        if code in seen:
            item.report(item.at("code"), f"duplicate badge code {show(code)}")
        seen.add(code)
        badges.append(Badge(code, item.text("name") or code,
                            item.text("description", max_length=MAX_DESCRIPTION)))  # fmt: skip
    return tuple(badges)


def parse_challenges(top: Reader, money_digits: int, point_digits: int) -> tuple[Challenge, ...]:
    challenges: list[Challenge] = []
    seen: set[str] = set()
    for item in top.records("challenges", CHALLENGE_KEYS):
        code = item.code("code")
        if code is None:
            continue
        if code in seen:
            item.report(item.at("code"), f"duplicate challenge code {show(code)}")
        seen.add(code)
        challenge = _challenge(item, code, money_digits, point_digits)
        if challenge is not None:
            challenges.append(challenge)
    return tuple(challenges)


def _challenge(item: Reader, code: str, money_digits: int, point_digits: int) -> Challenge | None:
    goal = _goal(item, money_digits)
    period_name = item.text("period")
    period = None
    if period_name is not None:
        if period_name not in PERIODS:
            item.report(
                item.at("period"), f"{show(period_name)} is not one of {', '.join(PERIODS)}"
            )
        else:
            period = CalendarPeriod(period_name)
    valid_from, valid_until = item.days("valid")
    reward = _reward(item, point_digits)
    if goal is None or reward is None:
        return None
    kind, target, grace = goal
    if kind is Goal.WEEKLY_STREAK and period is not None:
        item.report(item.at("period"), "does not apply to a weekly_streak (it runs over weeks)")
    return Challenge(
        code=code, name=item.text("name") or code, goal=kind, target=target, grace_weeks=grace,
        skus=item.codes("skus"), categories=item.codes("categories"),
        min_spend=item.minor("min_spend", money_digits, unit="money") or 0,
        period=period, valid_from=valid_from, valid_until=valid_until, reward=reward,
    )  # fmt: skip


def _goal(item: Reader, money_digits: int) -> tuple[Goal, int, int] | None:
    goal = item.mapping("goal", GOAL_KEYS, required=True)
    if goal is None:
        return None
    named = [key for key in GOAL_KEYS if goal.has(key)]
    if len(named) != 1:
        goal.report(goal.loc, f"give exactly one of {', '.join(GOAL_KEYS)}")
        return None
    kind = Goal(named[0])
    if kind is Goal.SPEND:
        spend = goal.minor("spend", money_digits, unit="money", required=True)
        if spend is not None and spend <= 0:
            goal.report(goal.at("spend"), "must be more than 0")
            return None
        return (kind, spend, 0) if spend else None
    if kind is Goal.WEEKLY_STREAK:
        streak = goal.mapping("weekly_streak", STREAK_KEYS, required=True)
        if streak is None:
            return None
        weeks = streak.integer("weeks", minimum=1, maximum=520, required=True)
        grace = streak.integer("grace_weeks", minimum=0, maximum=52) or 0
        return (kind, weeks, grace) if weeks else None
    count = goal.integer(kind.value, minimum=1, maximum=MAX_TARGET, required=True)
    return (kind, count, 0) if count else None


def _reward(item: Reader, point_digits: int) -> Reward | None:
    reward = item.mapping("reward", REWARD_KEYS, required=True)
    if reward is None:
        return None
    if not any(reward.has(key) for key in REWARD_KEYS):
        reward.report(reward.loc, f"give at least one of {', '.join(REWARD_KEYS)}")
        return None
    points = reward.minor("points", point_digits, unit="points") if reward.has("points") else None
    if points is not None and points <= 0:
        reward.report(reward.at("points"), "must be more than 0")
    return Reward(points=points or None,
                  coupon=reward.code("coupon", required=False),
                  badge=reward.code("badge", required=False),
                  tier=reward.code("tier", required=False))  # fmt: skip
