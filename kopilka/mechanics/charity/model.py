"""Charity: the charities a program lists, and the round-up of a purchase's points.

A member gives points to a charity in two ways: a donation (any amount of their available
points, when they ask) or a round-up of each purchase (once they chose a charity): of the
points a purchase accrues by the rules, the part below a whole `step` goes to the charity
and the member keeps the whole steps — 37.50 points with a step of 10 keep 30.00 and give
7.50. Points only, never money: what the member gives is exactly what they see, with no
conversion and no rounding. Pure: the standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

MAX_NAME = 200  # a charity's name as the member and the report show it
MAX_DESCRIPTION = 1000
MAX_LINK = 500
# a charity's ledger account is owned by "charity:<code>" (the owner is at most 32
# characters), so its code is at most 24
MAX_CODE = 24


@dataclass(frozen=True, slots=True)
class Charity:
    code: str
    name: str
    description: str | None = None
    link: str | None = None  # https://… where a member reads about it
    until: date | None = None  # the last day donations are taken (program's time zone)

    def is_open_on(self, day: date) -> bool:
        """Whether the charity takes donations on `day` (the program's local day)."""
        return self.until is None or day <= self.until

    @property
    def owner(self) -> str:
        """The owner of the charity's ledger account."""
        return f"charity:{self.code}"


@dataclass(frozen=True, slots=True)
class CharitySettings:
    charities: tuple[Charity, ...]
    round_up_step: int | None = None  # point minor units; None: no round-ups

    def charity(self, code: str) -> Charity | None:
        return next((one for one in self.charities if one.code == code), None)


def round_up(accrued: int, step: int) -> int:
    """What a purchase accruing `accrued` points gives by rounding down to a whole `step`
    (point minor units): the remainder."""
    return accrued % step if accrued > 0 else 0


def money_value(points: int, point_digits: int, value: Decimal, money_digits: int) -> int:
    """`points` (minor units) in money minor units at the program's point `value`, rounded
    half up once (a report's figure is converted once, never summed from rounded parts)."""
    money = Decimal(points).scaleb(-point_digits) * value
    return int(money.scaleb(money_digits).quantize(Decimal(1), rounding=ROUND_HALF_UP))
