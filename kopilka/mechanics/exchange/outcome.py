"""What the source learns when it asks the target: the one type the saga decides on,
whether the target is a program of this Kopilka or an outside one."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Heard(Enum):
    CREDITED = "credited"  # the target credited the points (`points`: how many)
    REFUSED = "refused"  # the target credited nothing and never will (`reason`)
    UNSENT = "unsent"  # the request never reached the target: nothing was credited
    UNKNOWN = "unknown"  # no answer to rely on (a time-out, a 5xx …): ask again later
    NOT_FOUND = "not_found"  # (status) the target never heard of the transaction


@dataclass(frozen=True, slots=True)
class Outcome:
    heard: Heard
    points: int | None = None  # the target's minor units, when credited
    reason: str | None = None

    @property
    def is_final(self) -> bool:
        return self.heard in (Heard.CREDITED, Heard.REFUSED, Heard.UNSENT)
