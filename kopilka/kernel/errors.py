"""The one hierarchy of Kopilka's errors.

Every error carries a stable machine-readable `code`; the HTTP API turns it into
the problem JSON's `code`, the command line prints the same problem JSON.

    KopilkaError
    ├── InvalidInput            validation_error   (422) — with one Problem per place
    ├── InsufficientPoints      insufficient_points (422)
    ├── NotFound                not_found           (404)
    ├── IdempotencyConflict     idempotency_conflict (409)
    ├── Duplicate               conflict            (409) — a card, phone or email taken
    ├── CouponInvalid           coupon_invalid      (422)
    ├── Forbidden               forbidden           (403)
    ├── Unauthorized            unauthorized        (401) — no key, or not a valid one
    ├── PayloadTooLarge         payload_too_large   (413)
    ├── TooManyRequests         too_many_requests   (429) — e.g. keys guessed too often
    └── Unavailable             unavailable         (503) — the database can't be reached
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input: where it is (`loc`) and what is wrong."""

    loc: str
    message: str

    def __str__(self) -> str:
        return f"{self.loc}: {self.message}" if self.loc else self.message


class KopilkaError(Exception):
    code = "error"
    status = 400
    title = "Request failed"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidInput(KopilkaError):
    code = "validation_error"
    status = 422
    title = "Invalid input"

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]) -> None:
        self.problems = tuple(problems)
        first = str(self.problems[0]) if self.problems else "invalid input"
        more = len(self.problems) - 1
        super().__init__(first if more == 0 else f"{first} (and {more} more)")


class InsufficientPoints(KopilkaError):
    code = "insufficient_points"
    status = 422
    title = "Not enough points may be redeemed"


class NotFound(KopilkaError):
    code = "not_found"
    status = 404
    title = "Not found"


class IdempotencyConflict(KopilkaError):
    code = "idempotency_conflict"
    status = 409
    title = "The same id was sent with a different body"


class Conflict(KopilkaError):
    """The request is sound but the state forbids it now (a hold already settled …)."""

    code = "conflict"
    status = 409
    title = "Not possible in the current state"


class Duplicate(Conflict):
    title = "Already exists"


class CouponInvalid(KopilkaError):
    code = "coupon_invalid"
    status = 422
    title = "The coupon does not apply"

    def __init__(self, detail: str, *, coupon: str, reason: str) -> None:
        super().__init__(detail)
        self.coupon = coupon  # the code as it was sent
        self.reason = (
            reason  # not_found | expired | used | limit_reached | conditions_not_met | not_yours
        )


class Forbidden(KopilkaError):
    code = "forbidden"
    status = 403
    title = "Forbidden"


class Unauthorized(KopilkaError):
    code = "unauthorized"
    status = 401
    title = "A valid key is required"


class PayloadTooLarge(KopilkaError):
    code = "payload_too_large"
    status = 413
    title = "The request body is too large"


class TooManyRequests(KopilkaError):
    code = "too_many_requests"
    status = 429
    title = "Too many requests"


class Unavailable(KopilkaError):
    code = "unavailable"
    status = 503
    title = "Temporarily unavailable"
