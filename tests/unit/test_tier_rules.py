"""The pure tier rules: periods and windows, qualification, what is missing, reviews."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from kopilka.kernel.periods import CalendarPeriod, period_start
from kopilka.mechanics.tiers.model import (
    Qualification,
    QualifyingWindow,
    Standing,
    TierLevel,
    TierSettings,
    TierState,
    has_bought,
    highest_qualified,
    is_upgrade,
    missing,
    review,
    window_bounds,
)

MSK = "Europe/Moscow"
DAY = timedelta(days=1)
# Wednesday 13 May 2026, 01:30 in Moscow (still the 12th in UTC)
MOMENT = datetime(2026, 5, 12, 22, 30, tzinfo=UTC)


def local_midnight(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=UTC) - timedelta(hours=3)


@pytest.mark.parametrize(
    ("period", "start"),
    [
        (CalendarPeriod.DAY, local_midnight(2026, 5, 13)),
        (CalendarPeriod.WEEK, local_midnight(2026, 5, 11)),  # Monday
        (CalendarPeriod.MONTH, local_midnight(2026, 5, 1)),
        (CalendarPeriod.QUARTER, local_midnight(2026, 4, 1)),
        (CalendarPeriod.YEAR, local_midnight(2026, 1, 1)),
    ],
)
def test_a_period_starts_at_local_midnight_of_its_first_day(
    period: CalendarPeriod, start: datetime
) -> None:
    assert period_start(period, MOMENT, MSK) == start


def test_windows_roll_or_follow_the_calendar() -> None:
    # a rolling window is whole local days: the moment's day and the 29 before it
    day = MOMENT.astimezone(ZoneInfo(MSK)).date()
    assert window_bounds(QualifyingWindow(30, None), MOMENT, MSK) == (
        local_midnight(day.year, day.month, day.day) - 29 * DAY, MOMENT)  # fmt: skip
    assert window_bounds(QualifyingWindow(None, CalendarPeriod.MONTH), MOMENT, MSK) == (
        local_midnight(2026, 5, 1), MOMENT)  # fmt: skip


SILVER = TierLevel("silver", "Серебро", Qualification(spend=100_000))
GOLD = TierLevel("gold", "Золото", Qualification(spend=300_000, purchases=12))
SETTINGS = TierSettings(QualifyingWindow(365, None), CalendarPeriod.MONTH, 30,
                        (TierLevel("base", "Базовый", None), SILVER, GOLD))  # fmt: skip


def test_the_highest_level_whose_every_threshold_holds_wins() -> None:
    assert highest_qualified(SETTINGS, Standing(spend=400_000, purchases=11)).code == "silver"
    assert highest_qualified(SETTINGS, Standing(spend=400_000, purchases=12)).code == "gold"
    assert highest_qualified(SETTINGS, Standing(spend=99_999, purchases=50)).code == "base"
    # levels need not ascend: a lower level's threshold is not asked of a higher one
    odd = TierSettings(SETTINGS.window, SETTINGS.review, 0,
                       (SETTINGS.levels[0], TierLevel("a", "a", Qualification(purchases=5)),
                        TierLevel("b", "b", Qualification(spend=1))))  # fmt: skip
    assert highest_qualified(odd, Standing(spend=1, purchases=0)).code == "b"
    assert is_upgrade(SETTINGS, "silver", GOLD)
    assert not is_upgrade(SETTINGS, "gold", SILVER)
    assert is_upgrade(SETTINGS, None, SILVER)


def test_what_is_missing_is_only_what_is_not_met() -> None:
    assert missing(GOLD, Standing(spend=65_999, purchases=12), 2) == {"spend": "2340.01"}
    tenure = TierLevel("loyal", "loyal", Qualification(tenure_days=90, purchases=2))
    assert missing(tenure, Standing(purchases=5, tenure_days=80), 2) == {"tenure_days": 10}
    wants = Qualification(bought_skus=frozenset({"CAP-300"}),
                          bought_categories=frozenset({"lunch", "bakery"}))  # fmt: skip
    buyer = TierLevel("buyer", "buyer", wants)
    nothing = Standing(skus=frozenset(), categories=frozenset())
    assert missing(buyer, nothing, 2) == {
        "bought": {"skus": ["CAP-300"], "categories": ["bakery", "lunch"]}
    }
    assert has_bought(wants, Standing(skus=frozenset(), categories=frozenset({"lunch"})))
    with pytest.raises(ValueError, match="does not count"):
        has_bought(wants, Standing())


REVIEW = local_midnight(2026, 6, 1)
BASE = SETTINGS.levels[0]


Decided = tuple[str, datetime | None, str | None]  # the tier, a downgrade pending, why


def decide(state: TierState, qualified: TierLevel, *, now: datetime = REVIEW,
           moment: datetime | None = REVIEW) -> Decided:  # fmt: skip
    decision = review(SETTINGS, state, qualified, now=now, moment=moment)
    return decision.code, decision.downgrade_at, decision.reason


def test_an_earned_tier_no_longer_qualified_for_is_lowered_after_the_grace() -> None:
    gold = TierState("gold", MOMENT)
    assert decide(gold, SILVER) == ("gold", REVIEW + 30 * DAY, None)
    pending = TierState("gold", MOMENT, downgrade_at=REVIEW + 30 * DAY)
    assert decide(pending, SILVER, now=REVIEW + 29 * DAY, moment=None)[0] == "gold"
    assert decide(pending, SILVER, now=REVIEW + 30 * DAY, moment=None) == (
        "silver", None, "still not qualified when the grace period ended")  # fmt: skip
    assert decide(pending, GOLD, now=REVIEW + 30 * DAY, moment=None) == ("gold", None, None)
    # the next review does not start the grace again
    later = local_midnight(2026, 7, 1)
    assert decide(pending, SILVER, now=later - DAY, moment=later - DAY)[1] == REVIEW + 30 * DAY
    # a review held late, after its grace would have ended: lowered at once
    assert decide(gold, BASE, now=REVIEW + 40 * DAY)[0] == "base"
    assert decide(gold, GOLD) == ("gold", None, None)
    assert decide(TierState("silver", MOMENT), GOLD)[0] == "gold"


def test_a_tier_set_by_hand_stays_until_its_date_and_goes_at_the_first_review_after() -> None:
    until = REVIEW + 10 * DAY
    vip = TierState("gold", MOMENT, until=until, manual=True)
    assert decide(vip, BASE) == ("gold", None, None)
    assert decide(vip, BASE, now=until + DAY, moment=None)[0] == "gold"  # not a review
    july = local_midnight(2026, 7, 1)
    code, pending, reason = decide(vip, BASE, now=july, moment=july)
    assert (code, pending) == ("base", None)  # no grace
    assert reason is not None
    assert reason.startswith("the tier set by hand ended")
    earned = review(SETTINGS, vip, GOLD, now=july, moment=july)
    assert (earned.code, earned.manual, earned.until) == ("gold", False, None)
    forever = TierState("gold", MOMENT, manual=True)
    assert decide(forever, BASE, now=july, moment=july)[0] == "gold"


def test_a_tier_the_program_no_longer_declares_is_replaced_at_the_review() -> None:
    assert decide(TierState("platinum", MOMENT), SILVER) == (
        "silver", None, "tier 'platinum' is no longer in the program")  # fmt: skip
