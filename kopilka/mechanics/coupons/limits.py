"""Guessing coupon codes is slowed down, per key and per member.

A unique code carries ≥ 40 random bits, so guessing one takes about a trillion tries;
this limit keeps anyone from even starting: after `per_key` unknown codes (`not_found`)
from one key within `window` seconds — 10 a minute by default — that key's coupon
look-ups are refused (`429 too_many_requests`) until the window has passed; and after
`per_member` unknown codes sent for one member (5 a minute), every key is refused for
that member, so a member's app can't be used to guess through many terminals — counted by
the member's id, whichever of their references (id, card, phone, email, external id)
each request names them by. Counts
live in the process (as `FailedAuthLimiter`'s do): each server process limits its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from kopilka.platform.limits import FailedAuthLimiter

PER_KEY = 10
PER_MEMBER = 5
WINDOW = 60.0


class CouponGuessLimiter:
    """At most `per_key` unknown codes per key and `per_member` per member in `window`
    seconds."""

    def __init__(
        self, per_key: int = PER_KEY, per_member: int = PER_MEMBER, window: float = WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self._keys = FailedAuthLimiter(per_key, window, clock)
        self._members = FailedAuthLimiter(per_member, window, clock)

    def retry_after(self, key_id: int, member: int | None) -> float:
        """Seconds until this key (and member, if one is named) may try a code again; 0
        when it may now. `member`: the member's id, however the request named them."""
        wait = self._keys.retry_after(str(key_id))
        if member is not None:
            wait = max(wait, self._members.retry_after(str(member)))
        return wait

    def failed(self, key_id: int, member: int | None) -> None:
        """An unknown code was sent by this key (for this member)."""
        self._keys.failed(str(key_id))
        if member is not None:
            self._members.failed(str(member))
