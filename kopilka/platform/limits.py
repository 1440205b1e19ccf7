"""Guessing keys or passwords is slowed down: too many failed authentications from one
client in a window and that client is refused (`429`) until the window has passed. The
API counts failed keys (`kopilka.platform.http.common.caller`), the console failed
sign-ins."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class FailedAuthLimiter:
    """At most `failures` failed authentications per client in `window` seconds."""

    def __init__(
        self, failures: int = 20, window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.failures, self.window, self.clock = failures, window, clock
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()  # sync routes run in a thread pool

    def retry_after(self, client: str) -> float:
        """Seconds until `client` may try again; 0 when it may now."""
        with self._lock:
            recent = self._recent(client)
            if len(recent) < self.failures:
                return 0.0
            return max(0.0, recent[0] + self.window - self.clock())

    def failed(self, client: str) -> None:
        with self._lock:
            self._recent(client).append(self.clock())
            if len(self._seen) > 100_000:  # bounded: forget the quietest clients first
                for quiet in [c for c, times in self._seen.items() if not times][:50_000]:
                    del self._seen[quiet]

    def _recent(self, client: str) -> deque[float]:
        times = self._seen.setdefault(client, deque())
        horizon = self.clock() - self.window
        while times and times[0] < horizon:
            times.popleft()
        return times
