"""The `referrals` section of a program file (docs/referrals.md): what a referral pays
each side, how long the friend's first purchase must stand, the least it must pay, the
limits, the link, and when a referral goes to review. Every mistake is named by its path."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from kopilka.kernel.periods import CalendarPeriod
from kopilka.kernel.program_parser import SectionContext
from kopilka.kernel.reading import Reader, show
from kopilka.mechanics.referrals.model import (
    CODE_PLACEHOLDER,
    DEFAULT_WAITING_DAYS,
    MAX_LINK,
    MAX_WAITING_DAYS,
    Limits,
    PeriodLimit,
    ReferralSettings,
    ReviewThresholds,
    Rewards,
)

if TYPE_CHECKING:
    from kopilka.kernel.program import Program

REFERRAL_KEYS = ("reward", "waiting_days", "min_purchase", "limits", "link", "review")
REWARD_KEYS = ("referrer", "friend")
LIMIT_KEYS = ("per_referrer", "per_period")
PERIOD_KEYS = ("period", "count")
REVIEW_KEYS = ("young_days", "chain_length", "accounts_per_identity", "accounts_per_device")
MAX_COUNT = 1_000_000  # a limit or threshold beyond any program's referrals


def referrals_of(program: Program) -> ReferralSettings | None:
    """The program's `referrals` section (registered in `kopilka.sections`), if it has one."""
    found = program.sections.get("referrals")
    return found if isinstance(found, ReferralSettings) else None


def parse_section(top: Reader, context: SectionContext) -> ReferralSettings | None:
    section = top.mapping("referrals", REFERRAL_KEYS)
    if section is None:
        return None
    rewards = _rewards(section, context.point_digits)
    waiting = section.integer("waiting_days", minimum=0, maximum=MAX_WAITING_DAYS)
    minimum = section.minor("min_purchase", context.money_digits, unit="money")
    return ReferralSettings(
        rewards=rewards,
        waiting_days=DEFAULT_WAITING_DAYS if waiting is None else waiting,
        min_purchase=minimum or 0,
        limits=_limits(section),
        link=_link(section),
        review=_review(section),
    )


def _rewards(section: Reader, point_digits: int) -> Rewards:
    reward = section.mapping("reward", REWARD_KEYS, required=True)
    if reward is None:
        return Rewards(0, 0)
    referrer = reward.minor("referrer", point_digits, unit="points") or 0
    friend = reward.minor("friend", point_digits, unit="points") or 0
    if not reward.has("referrer") and not reward.has("friend"):
        reward.report(reward.loc, "give the points of the referrer, the friend, or both")
    return Rewards(referrer, friend)


def _limits(section: Reader) -> Limits:
    limits = section.mapping("limits", LIMIT_KEYS)
    if limits is None:
        return Limits()
    per_period = limits.mapping("per_period", PERIOD_KEYS)
    period_limit = None
    if per_period is not None:
        period = per_period.choice("period", CalendarPeriod, required=True)
        count = per_period.integer("count", required=True, minimum=1, maximum=MAX_COUNT)
        if period is not None and count is not None:
            period_limit = PeriodLimit(period, count)
    per_referrer = limits.integer("per_referrer", minimum=1, maximum=MAX_COUNT)
    return Limits(per_referrer, period_limit)


def _link(section: Reader) -> str | None:
    link = section.text("link", max_length=MAX_LINK, what="a link template")
    if link is None:
        return None
    address = urlsplit(link.replace(CODE_PLACEHOLDER, "CODE"))
    if link.count(CODE_PLACEHOLDER) != 1:
        section.report(section.at("link"), f"{show(link)} must hold {CODE_PLACEHOLDER} once")
    elif address.scheme not in ("https", "http") or not address.netloc or " " in link:
        section.report(section.at("link"), f"{show(link)} is not an http(s) address")
    return link


def _review(section: Reader) -> ReviewThresholds:
    review = section.mapping("review", REVIEW_KEYS)
    if review is None:
        return ReviewThresholds()
    default = ReviewThresholds()
    return ReviewThresholds(
        young_days=_count(review, "young_days", default.young_days, minimum=1),
        chain_length=_count(review, "chain_length", default.chain_length, minimum=2),
        accounts_per_identity=_count(
            review, "accounts_per_identity", default.accounts_per_identity, minimum=1
        ),
        accounts_per_device=_count(
            review, "accounts_per_device", default.accounts_per_device, minimum=1
        ),
    )


def _count(reader: Reader, key: str, default: int, *, minimum: int) -> int:
    value = reader.integer(key, minimum=minimum, maximum=MAX_COUNT)
    return default if value is None else value
