"""Closed clubs (seeds 000 and 003): who may join and how, how long a paid membership
runs, and what a club's members alone may do at the till.

A club is joined by payment (a fee for a period, renewed by hand or automatically, with
an optional grace after the period ends unpaid) or by invitation (an invite code with a
limit of uses). Its privileges are products and categories only its members may buy,
early access (members buy from one date, everyone from a later one) and flags a point of
sale shows ("vip-service"); its own rules are the program's rules with `when: {clubs:
[...]}`, which the calculator matches. Pure: the standard library and the kernel only.
"""

from __future__ import annotations

import calendar
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from kopilka.kernel.errors import InvalidInput, Problem

MAX_INVITE_USES = 1_000_000  # a code for more people than this is an open door, not an invite
MAX_PERIOD_DAYS = 3660  # ten years: a longer "period" is a typo
MAX_GRACE_DAYS = 365
INVITE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # no 0/O, 1/I/L to misread
INVITE_LENGTH = 10  # 31^10 ≈ 8·10^14: guessing one of a thousand codes takes ~10^11 tries


def new_invite_code() -> str:
    return "".join(secrets.choice(INVITE_ALPHABET) for _ in range(INVITE_LENGTH))


def normalise_invite(code: str) -> str:
    """Codes are read case-insensitively, with or without dashes ("vip-7kq2-mz9p")."""
    return code.replace("-", "").upper()


class JoinBy(StrEnum):
    PAYMENT = "payment"
    INVITATION = "invitation"


class Period(StrEnum):
    """A paid membership's period: a calendar length from the day it starts."""

    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


MONTHS = {Period.MONTH: 1, Period.QUARTER: 3, Period.YEAR: 12}


class Status(StrEnum):
    """A membership's status: `active` (in force while paid, or its grace, lasts),
    `lapsed` (its period ended unpaid), `left` (the member or an operator ended it)."""

    ACTIVE = "active"
    LAPSED = "lapsed"
    LEFT = "left"


class Refusal(StrEnum):
    """Why a line may not be sold to this buyer (the problem's `reason`)."""

    MEMBERS_ONLY = "members_only"  # sold to the club's members only
    EARLY_ACCESS = "early_access"  # not on sale to this buyer yet


@dataclass(frozen=True, slots=True)
class Term:
    """How long one payment keeps a membership: `months` calendar months or `days` days."""

    months: int = 0
    days: int = 0

    def end(self, start: datetime) -> datetime:
        """When a period that starts at `start` ends (the 31st plus a month is the 30th or
        the 28th: the month's last day)."""
        if self.days:
            return start + timedelta(days=self.days)
        return add_months(start, self.months)


def add_months(moment: datetime, months: int) -> datetime:
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


@dataclass(frozen=True, slots=True)
class Payment:
    """A paid club's terms: the fee (money minor units) for one `term`, optionally the
    points (point minor units) that pay it instead, whether the membership renews by
    itself, and the grace after an unpaid period before it lapses."""

    fee: int
    term: Term
    points: int | None = None
    auto_renew: bool = False
    grace_days: int = 0

    def in_force_until(self, paid_until: datetime) -> datetime:
        return paid_until + timedelta(days=self.grace_days)


@dataclass(frozen=True, slots=True)
class EarlyAccess:
    """Products open to the club's members from `members_from` and to everyone from
    `everyone_from` (local dates of the sale, both included)."""

    skus: frozenset[str]
    categories: frozenset[str]
    members_from: date
    everyone_from: date

    def covers(self, sku: str, lineage: Iterable[str]) -> bool:
        return sku in self.skus or not self.categories.isdisjoint(lineage)


@dataclass(frozen=True, slots=True)
class Privileges:
    skus: frozenset[str] = frozenset()  # sold to the club's members only
    categories: frozenset[str] = frozenset()  # … and every sub-category
    early_access: tuple[EarlyAccess, ...] = ()
    flags: tuple[str, ...] = ()  # what a point of sale shows: "vip-service"

    def is_exclusive(self, sku: str, lineage: Iterable[str]) -> bool:
        return sku in self.skus or not self.categories.isdisjoint(lineage)


@dataclass(frozen=True, slots=True)
class Club:
    code: str
    name: str
    join_by: JoinBy
    payment: Payment | None  # the terms of a club joined by payment
    privileges: Privileges


@dataclass(frozen=True, slots=True)
class ClubSettings:
    """The program's `clubs` section, by club code in the order declared."""

    clubs: Mapping[str, Club]

    @property
    def restricts(self) -> bool:
        """Whether any club keeps a product from some buyers (members only, early access)."""
        return any(club.privileges.skus or club.privileges.categories
                   or club.privileges.early_access for club in self.clubs.values())  # fmt: skip

    def flags_of(self, codes: Iterable[str]) -> tuple[str, ...]:
        """The flags the clubs `codes` give, each once, in a stable order."""
        return tuple(sorted({flag for code in codes if code in self.clubs
                             for flag in self.clubs[code].privileges.flags}))  # fmt: skip


@dataclass(frozen=True, slots=True)
class SaleLine:
    """What the clubs check of a receipt's line."""

    n: int
    sku: str
    lineage: tuple[str, ...]  # its category and the categories above it


@dataclass(frozen=True, slots=True)
class Refused:
    """A line this buyer may not buy: why, the club, and from when it is on sale (early
    access: to everyone, or to the club's members)."""

    line: SaleLine
    club: str
    reason: Refusal
    available_from: date | None = None


def refused_lines(
    settings: ClubSettings, lines: Iterable[SaleLine], member_of: frozenset[str], day: date
) -> list[Refused]:
    """The lines of a receipt sold on `day` (local) that a buyer in the clubs `member_of`
    (empty: no member, or a member of none) may not buy, each with its first reason."""
    refused = []
    for line in lines:
        found = _exclusive(settings, line, member_of) or _too_early(settings, line, member_of, day)
        if found is not None:
            refused.append(found)
    return refused


def _exclusive(settings: ClubSettings, line: SaleLine, member_of: frozenset[str]) -> Refused | None:
    """Sold to members only: a member of any club that holds the line may buy it."""
    holders = [code for code, club in settings.clubs.items()
               if club.privileges.is_exclusive(line.sku, line.lineage)]  # fmt: skip
    if not holders or member_of.intersection(holders):
        return None
    return Refused(line, holders[0], Refusal.MEMBERS_ONLY)


def _too_early(
    settings: ClubSettings, line: SaleLine, member_of: frozenset[str], day: date
) -> Refused | None:
    """Before its date for everyone, a line is sold only to members of a club whose early
    access to it has begun."""
    waiting: list[tuple[date, str]] = []
    for code, club in settings.clubs.items():
        for access in club.privileges.early_access:
            if not access.covers(line.sku, line.lineage) or day >= access.everyone_from:
                continue
            if code in member_of and day >= access.members_from:
                return None  # this member's club opens it already
            waiting.append((access.members_from if code in member_of else access.everyone_from,
                            code))  # fmt: skip
    if not waiting:
        return None
    opens, first = min(waiting)
    return Refused(line, first, Refusal.EARLY_ACCESS, opens)


class ClubOnly(InvalidInput):
    """A receipt holds a line its buyer may not buy: a club's members-only product, or one
    on early access. The problem names each line (`errors`), and the first line's `line`,
    `sku`, `club`, `reason` and, for early access, `available_from`."""

    code = "club_only"
    title = "Sold to a club's members only"

    def __init__(self, refused: list[Refused]) -> None:
        super().__init__([Problem(f"lines[{one.line.n}].sku", _message(one)) for one in refused])
        first = refused[0]
        self.extensions: dict[str, object] = {
            "line": first.line.n, "sku": first.line.sku, "club": first.club,
            "reason": first.reason.value,
        }  # fmt: skip
        if first.available_from is not None:
            self.extensions["available_from"] = first.available_from.isoformat()


def _message(one: Refused) -> str:
    if one.reason is Refusal.MEMBERS_ONLY:
        return f"{one.line.sku!r} is sold to members of club {one.club!r} only"
    return (f"{one.line.sku!r} is on early access (club {one.club!r}): on sale to this buyer "
            f"from {one.available_from}")  # fmt: skip
