"""The `challenges` and `badges` sections of the program file, as the parser registers
them. A challenge's skus and categories must be the catalog's, its badge one of
`badges`, its tier one of the program's `tiers`: a typo is an error, not a reward that
never comes."""

from __future__ import annotations

from typing import Any

from kopilka.kernel.program_parser import SectionContext
from kopilka.kernel.reading import Reader, show
from kopilka.mechanics.challenges.model import (
    Badge,
    Challenge,
    parse_badges,
    parse_challenges,
)

CHALLENGES = "challenges"
BADGES = "badges"


def parse_challenges_section(top: Reader, context: SectionContext) -> tuple[Challenge, ...]:
    challenges = parse_challenges(top, context.money_digits, context.point_digits)
    badges = _codes(top.raw(BADGES), "code")
    tiers_raw = top.raw("tiers")
    levels = tiers_raw.get("levels") if isinstance(tiers_raw, dict) else None
    tiers = _codes(levels, "code")
    for i, challenge in enumerate(challenges):
        at = f"{CHALLENGES}[{i}] ({challenge.code})"
        _known(top, f"{at}.skus", challenge.skus, context.skus, "product")
        _known(top, f"{at}.categories", challenge.categories, context.categories, "category")
        reward = challenge.reward
        if reward.badge is not None and reward.badge not in badges:
            top.report(f"{at}.reward.badge", f"{show(reward.badge)} is not one of the badges")
        if reward.tier is not None and reward.tier not in tiers:
            top.report(f"{at}.reward.tier", f"{show(reward.tier)} is not one of the tiers")
    return challenges


def parse_badges_section(top: Reader, context: SectionContext) -> tuple[Badge, ...]:
    del context  # a badge names nothing else
    return parse_badges(top)


def _codes(items: Any, key: str) -> frozenset[str]:
    if not isinstance(items, list):
        return frozenset()
    return frozenset(item[key] for item in items if isinstance(item, dict) and key in item)


def _known(
    top: Reader, loc: str, named: frozenset[str] | None, known: frozenset[str], what: str
) -> None:
    for code in sorted(named or ()):
        if code not in known:
            top.report(loc, f"unknown {what} {show(code)}")
