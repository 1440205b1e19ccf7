"""Tiers (levels): what qualifies a member for a level, and how a member's tier moves.

The declarations come from the program file (`kopilka.mechanics.tiers.section`);
calendar periods are the kernel's (`kopilka.kernel.periods`). The rules over them
are pure — time is a parameter, the facts are handed in:

- `window_bounds`: the moments a qualifying window covers when it ends at a moment (a
  rolling `days` window, or the calendar `period` that moment falls in);
- `qualifies` / `highest_qualified`: every threshold a level gives must hold, and a
  member is at the highest level whose thresholds hold;
- `missing`: what a member lacks for a level ("spend 2,340.00 more");
- `review`: what a review (or a grace period's end) does to a member's tier: an earned
  tier no longer qualified for is lowered `grace_days` after the review if still not
  qualified for then; a tier set by hand is never lowered before its `until`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from kopilka.kernel.money import format_minor
from kopilka.kernel.periods import CalendarPeriod, period_start


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


# — qualification —


@dataclass(frozen=True, slots=True)
class Standing:
    """What a member has done within a window: the facts thresholds are compared with.

    `spend` is money in minor units net of discounts and of what was refunded; a purchase
    refunded in full is not among `purchases`. `skus` and `categories` (each category with
    its ancestors) are what was bought and not returned; None when not counted."""

    spend: int = 0
    purchases: int = 0
    tenure_days: int = 0
    skus: frozenset[str] | None = None
    categories: frozenset[str] | None = None


def needs_bought(qualification: Qualification | None) -> bool:
    return qualification is not None and (
        qualification.bought_skus is not None or qualification.bought_categories is not None
    )


def holds_counted(qualification: Qualification | None, standing: Standing) -> bool:
    """Whether the spend, purchase and tenure thresholds hold (`bought` aside)."""
    if qualification is None:
        return True
    q, s = qualification, standing
    return (
        (q.spend is None or s.spend >= q.spend)
        and (q.purchases is None or s.purchases >= q.purchases)
        and (q.tenure_days is None or s.tenure_days >= q.tenure_days)
    )


def has_bought(qualification: Qualification, standing: Standing) -> bool:
    """One of the products, or something in one of the categories, was bought."""
    if not needs_bought(qualification):
        return True
    if standing.skus is None or standing.categories is None:
        raise ValueError("the standing does not count what was bought")
    skus = qualification.bought_skus or frozenset()
    categories = qualification.bought_categories or frozenset()
    return bool(skus & standing.skus) or bool(categories & standing.categories)


def qualifies(level: TierLevel, standing: Standing) -> bool:
    """Every threshold the level gives holds (the first level always does)."""
    if level.qualify is None:
        return True
    return holds_counted(level.qualify, standing) and has_bought(level.qualify, standing)


def rank(settings: TierSettings, code: str | None) -> int:
    """The level's place, lowest first; None (no tier stored) is the default level, and
    a code the program no longer declares is -1."""
    if code is None:
        return 0
    for index, level in enumerate(settings.levels):
        if level.code == code:
            return index
    return -1


def highest_qualified(settings: TierSettings, standing: Standing) -> TierLevel:
    """The highest level whose every threshold holds (levels need not ascend strictly)."""
    for level in reversed(settings.levels):
        if qualifies(level, standing):
            return level
    return settings.levels[0]


def missing(level: TierLevel, standing: Standing, money_digits: int) -> dict[str, object]:
    """What the member lacks for `level`: `{spend: "2340.00", purchases: 3, tenure_days:
    10, bought: {skus: [...], categories: [...]}}`, only the thresholds not yet met."""
    q = level.qualify
    if q is None:
        return {}
    lacks: dict[str, object] = {}
    if q.spend is not None and standing.spend < q.spend:
        lacks["spend"] = format_minor(q.spend - standing.spend, money_digits)
    if q.purchases is not None and standing.purchases < q.purchases:
        lacks["purchases"] = q.purchases - standing.purchases
    if q.tenure_days is not None and standing.tenure_days < q.tenure_days:
        lacks["tenure_days"] = q.tenure_days - standing.tenure_days
    if needs_bought(q) and not has_bought(q, standing):
        wanted: dict[str, list[str]] = {}
        if q.bought_skus is not None:
            wanted["skus"] = sorted(q.bought_skus)
        if q.bought_categories is not None:
            wanted["categories"] = sorted(q.bought_categories)
        lacks["bought"] = wanted
    return lacks


def tenure_days(joined: datetime, now: datetime) -> int:
    """Whole days a member has been one."""
    return max(0, (now - joined) // timedelta(days=1))


# — time —


def window_bounds(
    window: QualifyingWindow, end: datetime, timezone: str
) -> tuple[datetime, datetime]:
    """The first and last moments (both counted) of the window that ends at `end`: the
    last `days` days (whole days in `timezone`: `end`'s day and the `days - 1` before
    it — a member's standing is kept per day), or the calendar `period` that `end` falls
    in, up to `end`."""
    if window.period is not None:
        return period_start(window.period, end, timezone), end
    zone = ZoneInfo(timezone)
    first = end.astimezone(zone).date() - timedelta(days=(window.days or 365) - 1)
    return datetime.combine(first, time(), tzinfo=zone).astimezone(UTC), end


def review_moment(settings: TierSettings, now: datetime, timezone: str) -> datetime:
    """The latest review at or before `now`: the start of the `review` period it is in."""
    return period_start(settings.review, now, timezone)


def window_at_review(window: QualifyingWindow, moment: datetime, timezone: str) -> tuple[
    datetime, datetime
]:  # fmt: skip
    """The window a review at `moment` looks back on: the `days` before it, or — for a
    calendar window — the last whole period before the one `moment` falls in (a status
    earned over a calendar year holds through the next, whatever the review period)."""
    if window.period is None:
        return window_bounds(window, just_before(moment), timezone)
    last = just_before(period_start(window.period, moment, timezone))
    return period_start(window.period, last, timezone), last


def just_before(moment: datetime) -> datetime:
    """The end of the window a review at `moment` looks back on (for a calendar window:
    the period that ends there, not the one just begun)."""
    return moment - timedelta(microseconds=1)


# — a member's tier over time —


@dataclass(frozen=True, slots=True)
class TierState:
    """A member's tier as stored: earned or set by hand, and a downgrade pending."""

    code: str
    since: datetime
    until: datetime | None = None  # a tier set by hand: no review lowers it before then
    manual: bool = False
    downgrade_at: datetime | None = None  # lowered then, unless qualified for again


@dataclass(frozen=True, slots=True)
class Decision:
    """A member's tier after a review; `reason` is set when the tier changes."""

    code: str
    manual: bool
    until: datetime | None
    downgrade_at: datetime | None
    reason: str | None = None


def is_upgrade(settings: TierSettings, current: str | None, qualified: TierLevel) -> bool:
    """A purchase raises the tier only to a higher level (a stored code the program no
    longer declares is left for the review)."""
    return rank(settings, qualified.code) > max(0, rank(settings, current))


def review(
    settings: TierSettings,
    state: TierState,
    qualified: TierLevel,
    *,
    now: datetime,
    moment: datetime | None,
) -> Decision:
    """What happens to `state` now, the member qualifying for `qualified`.

    `moment` is the review being held (None: only a pending downgrade falls due).
    Qualifying for the tier or a higher one keeps or raises it and ends a pending
    downgrade. Otherwise a tier set by hand stays until its `until` (with no `until`,
    until an operator changes it) and is lowered at the first review held at or after
    it; an earned tier is lowered `grace_days` after the review that found it
    unqualified — at once with no grace — if the member still does not qualify then."""
    current, reached = rank(settings, state.code), rank(settings, qualified.code)
    keep = Decision(state.code, state.manual, state.until, state.downgrade_at)
    if current < 0:
        return Decision(qualified.code, False, None, None,
                        f"tier {state.code!r} is no longer in the program")  # fmt: skip
    if reached > current:
        return Decision(qualified.code, False, None, None, "qualifies at the review")
    if reached == current:
        ended = (
            state.manual
            and state.until is not None
            and moment is not None
            and (state.until <= moment)
        )
        if ended:  # the member earned what was given by hand
            return Decision(state.code, False, None, None)
        return Decision(state.code, state.manual, state.until, None)
    lowered = Decision(qualified.code, False, None, None)
    if state.manual:
        if state.until is None or moment is None or moment < state.until:
            return keep
        until = state.until.isoformat()
        return _because(lowered, f"the tier set by hand ended {until}; not qualified")
    if state.downgrade_at is not None and state.downgrade_at <= now:
        return _because(lowered, "still not qualified when the grace period ended")
    if moment is None or state.downgrade_at is not None:
        return keep
    due = moment + timedelta(days=settings.grace_days)
    if due <= now:
        reason = "not qualified at the review" + (
            " nor when the grace period ended" if settings.grace_days else ""
        )
        return _because(lowered, reason)
    return Decision(state.code, False, None, due)


def _because(decision: Decision, reason: str) -> Decision:
    return Decision(decision.code, decision.manual, decision.until, decision.downgrade_at, reason)
