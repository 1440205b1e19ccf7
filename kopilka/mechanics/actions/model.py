"""Points for actions: the catalogue a program declares, and the verdict on one report.

An action is something a member does outside a purchase — answers a survey, writes a
review, subscribes to a newsletter or a channel, installs the app, invites a friend —
that someone the program trusts reports: a partner with its API key, or an outside
service by a signed callback. Each action gives a fixed number of points, within limits
per member (over their whole life) and per calendar period, and only while it runs.

Pure: the counts the verdict weighs are the caller's (running counts kept per member,
action and period, never sums over history), and time is a parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import Enum
from typing import TYPE_CHECKING

from kopilka.kernel.periods import CalendarPeriod

if TYPE_CHECKING:
    from kopilka.kernel.program import Program

EVER = "ever"  # the period key of a member's lifetime count of an action


class Reporter(Enum):
    """Who may report an action."""

    PARTNER = "partner"  # an API key: admin, partner, or pos (at its location)
    CALLBACK = "callback"  # an outside service, signing each request with a shared secret


class Refusal(Enum):
    """What stopped a report: a limit, or the action's validity window."""

    PER_MEMBER = "per_member"
    PER_PERIOD = "per_period"
    VALID = "valid"


@dataclass(frozen=True, slots=True)
class PeriodLimit:
    period: CalendarPeriod
    count: int  # reports that give points per member in one calendar period


@dataclass(frozen=True, slots=True)
class Action:
    code: str
    name: str
    points: int  # point minor units, more than 0
    per_member: int | None = None  # reports that give points per member, ever
    per_period: PeriodLimit | None = None
    reported_by: frozenset[Reporter] = frozenset({Reporter.PARTNER})
    secret_env: str | None = None  # the environment variable holding the callback's secret
    valid_from: date | None = None  # the first local day it runs
    valid_until: date | None = None  # the last local day it runs (inclusive)

    def is_reported_by(self, reporter: Reporter) -> bool:
        return reporter in self.reported_by

    def is_running_on(self, day: date) -> bool:
        started = self.valid_from is None or self.valid_from <= day
        return started and (self.valid_until is None or day <= self.valid_until)


@dataclass(frozen=True, slots=True)
class ActionCatalogue:
    actions: tuple[Action, ...] = ()

    def find(self, code: str) -> Action | None:
        return next((action for action in self.actions if action.code == code), None)


def actions_of(program: Program) -> ActionCatalogue:
    """The program's `actions` section (registered in `kopilka.sections`): empty if absent."""
    found = program.sections.get("actions")
    return found if isinstance(found, ActionCatalogue) else ActionCatalogue()


@dataclass(frozen=True, slots=True)
class Counts:
    """What the member was credited for the action before this report: ever, and in the
    calendar period the report falls in (`period_start`: its first local day)."""

    ever: int
    in_period: int
    period_start: date | None


@dataclass(frozen=True, slots=True)
class Verdict:
    refused_by: Refusal | None
    message: str  # why it was refused, naming the limit and what was counted; "" if not

    @property
    def is_credited(self) -> bool:
        return self.refused_by is None


CREDITED = Verdict(None, "")


def judge(action: Action, day: date, counts: Counts) -> Verdict:
    """Whether a report on local `day` gives points, or what stops it: the validity
    window first, then the limit per member, then the limit per period."""
    if not action.is_running_on(day):
        return Verdict(Refusal.VALID, _window_message(action, day))
    if action.per_member is not None and counts.ever >= action.per_member:
        return Verdict(Refusal.PER_MEMBER, f"per_member: {counts.ever} already reported, "
                                           f"at most {action.per_member} per member")  # fmt: skip
    limit = action.per_period
    if limit is not None and counts.in_period >= limit.count:
        label = period_label(limit.period, counts.period_start or day)
        return Verdict(Refusal.PER_PERIOD, f"per_period: {counts.in_period} in {label}, at most "
                                           f"{limit.count} per {limit.period.value}")  # fmt: skip
    return CREDITED


def _window_message(action: Action, day: date) -> str:
    if action.valid_from is not None and day < action.valid_from:
        return f"valid: the action runs from {action.valid_from.isoformat()}"
    assert action.valid_until is not None
    return f"valid: the action ran until {action.valid_until.isoformat()}"


def period_key(period: CalendarPeriod, first_day: date) -> str:
    """The key of a period's running count: its kind and first local day
    (`month:2026-12-01`), so a period changed in the program never meets old counts."""
    return f"{period.value}:{first_day.isoformat()}"


def period_label(period: CalendarPeriod, first_day: date) -> str:
    """A period as people name it: 2026-12-03, the week 2026-11-30…2026-12-06, 2026-12,
    2026-Q4, 2026."""
    if period is CalendarPeriod.DAY:
        return first_day.isoformat()
    if period is CalendarPeriod.WEEK:
        last = first_day + timedelta(days=6)
        return f"the week {first_day.isoformat()}…{last.isoformat()}"
    if period is CalendarPeriod.MONTH:
        return f"{first_day.year}-{first_day.month:02d}"
    if period is CalendarPeriod.QUARTER:
        return f"{first_day.year}-Q{(first_day.month - 1) // 3 + 1}"
    return str(first_day.year)
