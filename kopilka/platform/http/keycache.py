"""Who a key is, remembered for a second.

Every request names its key; looking it up is a database transaction of its own (two
round trips and a thread hop), as much as a third of a purchase. A valid key's
principal is kept here for `ttl` seconds, by the key's SHA-256 (never the key itself).
Revoking a key through this process forgets it at once; a revocation made elsewhere
(another worker, `kopilka keys revoke`) takes effect within `ttl`. A key the database
did not know is remembered as refused for `ttl` too — safe, since a key's text is drawn at
random when it is made and can never become valid later — so a client polling with a
revoked key costs the database one lookup a second, not one a request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from kopilka.operators.keys import Principal, digest


class KeyCache:
    def __init__(
        self, ttl: float = 1.0, size: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl, self.size, self.clock = ttl, size, clock
        self._known: dict[str, tuple[float, Principal]] = {}
        self._refused: dict[str, float] = {}  # digest → until when
        self._lock = threading.Lock()

    def get(self, key: str) -> Principal | None:
        entry = self._known.get(digest(key))
        if entry is None or entry[0] < self.clock():
            return None
        return entry[1]

    def put(self, key: str, principal: Principal) -> None:
        with self._lock:
            if len(self._known) >= self.size:
                self._known.clear()  # bounded; refilled from the database on the next calls
            self._known[digest(key)] = (self.clock() + self.ttl, principal)

    def was_refused(self, key: str) -> bool:
        until = self._refused.get(digest(key))
        return until is not None and until >= self.clock()

    def refuse(self, key: str) -> None:
        with self._lock:
            if len(self._refused) >= self.size:
                self._refused.clear()
            self._refused[digest(key)] = self.clock() + self.ttl

    def forget(self, key_id: int) -> None:
        with self._lock:
            for hashed in [h for h, (_, p) in self._known.items() if p.key_id == key_id]:
                del self._known[hashed]
