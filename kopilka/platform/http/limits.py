"""The failed-authentication limiter of the API's keys: `kopilka.platform.limits`, where
the console (its sign-in) takes it from too."""

from __future__ import annotations

from kopilka.platform.limits import FailedAuthLimiter

__all__ = ["FailedAuthLimiter"]
