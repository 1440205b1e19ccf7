"""Claims (docs/claims.md): the pure part — a claim's statuses, the program's settings
(`claims:` in the program file) and the SLA clock.

A claim asks for a purchase that earned nothing (the till was offline, the card was not
shown, the receipt never reached Kopilka) to be processed after all. It is filed
`open`; the partner confirms it (`confirmed`, and at once `processed` when its purchase is
written) or rejects it (`rejected`). A decision is final: a rejected claim is never
confirmed, a confirmed one never rejected.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

DEFAULT_SLA_HOURS = 72  # three days to decide: a member who claims hears back within the week
MAX_SLA_HOURS = 24 * 365
DEFAULT_WITHIN_DAYS = 90  # a receipt older than a quarter is too old to check with the partner
MAX_WITHIN_DAYS = 3660
# a member filing for themselves waits for answers before filing more: the service centre
# reads every claim, so one member can't bury the queue
MEMBER_OPEN_LIMIT = 5


class Status(StrEnum):
    OPEN = "open"  # filed, waiting for the partner's decision
    CONFIRMED = "confirmed"  # decided for; its purchase not written yet (a moment, or a crash)
    PROCESSED = "processed"  # confirmed and processed: it has its purchase
    REJECTED = "rejected"  # decided against; final


class Action(StrEnum):
    """A step of a claim's life, as its events record it."""

    FILE = "file"
    CONFIRM = "confirm"
    REJECT = "reject"
    PROCESS = "process"  # its purchase written
    UNPROCESSED = "unprocessed"  # the purchase was refused: the claim is open again


DECISIONS = (Action.CONFIRM.value, Action.REJECT.value)


@dataclass(frozen=True, slots=True)
class ClaimSettings:
    sla_hours: int = DEFAULT_SLA_HOURS  # the time from filing to a decision
    within_days: int = DEFAULT_WITHIN_DAYS  # how old a receipt may be when it is claimed


DEFAULTS = ClaimSettings()


def due_at(filed_at: datetime, settings: ClaimSettings) -> datetime:
    """When a claim filed at `filed_at` must be decided."""
    return filed_at + timedelta(hours=settings.sla_hours)


def is_overdue(status: str, due: datetime, now: datetime) -> bool:
    """An open claim past its time to a decision (a decided one is never overdue)."""
    return status == Status.OPEN.value and now >= due


@dataclass(frozen=True, slots=True)
class Clock:
    """An open claim's SLA clock: the minutes left to its decision, or how late it is."""

    minutes: int  # whole minutes, rounded towards the deadline's side
    late: bool

    @property
    def hours(self) -> int:
        return self.minutes // 60

    @property
    def rest_minutes(self) -> int:
        return self.minutes % 60


def clock(due: datetime, now: datetime) -> Clock:
    """The time left to `due` (floored: never promise a minute that is not there), or the
    time past it (ceiled: a second late is a minute late)."""
    seconds = int((due - now).total_seconds())
    if seconds > 0:
        return Clock(seconds // 60, late=False)
    return Clock(-(seconds // 60), late=True)
