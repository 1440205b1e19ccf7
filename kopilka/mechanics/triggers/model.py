"""Trigger declarations from the program file: an occasion and its reward.

Each trigger fires once per member per occasion; firing them is the work of the
life-cycle worker. This module only says what a trigger is.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from kopilka.kernel.periods import CalendarPeriod

if TYPE_CHECKING:
    from kopilka.kernel.program import Program


class TriggerOccasion(Enum):
    REGISTRATION = "registration"
    PROFILE_COMPLETE = "profile_complete"
    BIRTHDAY = "birthday"
    INACTIVITY = "inactivity"
    CHECK_POINT = "check_point"
    PURCHASE_NUMBER = "purchase_number"


@dataclass(frozen=True, slots=True)
class Reward:
    points: int  # point minor units
    valid_days: int | None  # None: the program's expiry applies


@dataclass(frozen=True, slots=True)
class Trigger:
    code: str
    on: TriggerOccasion
    reward: Reward | None
    days_before: int = 0  # birthday
    days: int | None = None  # inactivity
    burn_all: bool = False  # inactivity: the whole balance burns
    period: CalendarPeriod | None = None  # check_point
    min_purchases: int | None = None  # check_point
    min_spend: int | None = None  # check_point, money minor units
    number: int | None = None  # purchase_number


def triggers_of(program: Program) -> tuple[Trigger, ...]:
    """The program's `triggers` section (registered in `kopilka.sections`): none if absent."""
    found = program.sections.get("triggers")
    return found if isinstance(found, tuple) else ()
