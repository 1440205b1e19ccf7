"""The one hierarchy of Kopilka's errors.

Every error is a domain error: a stable machine-readable `code`, a `title` (what kind of
failure it is, in a few words), a `detail` (this failure, in a sentence), and the fields
of its kind (`problems`, `coupon`, `reason`). How an error is answered is the edge's
business: the HTTP API, the console and the command line turn it into a problem
document with the status `kopilka.platform.problems.STATUSES` gives its code.

    KopilkaError                error
    ├── InvalidInput            validation_error      — with one Problem per place
    ├── InsufficientPoints      insufficient_points
    ├── NotFound                not_found
    ├── IdempotencyConflict     idempotency_conflict
    ├── Conflict                conflict              — the state forbids it now
    │   └── Duplicate           conflict              — a card, phone or email taken
    ├── CouponInvalid           coupon_invalid        — with the coupon and the reason
    ├── Forbidden               forbidden
    ├── Unauthorized            unauthorized          — no key, or not a valid one
    ├── PayloadTooLarge         payload_too_large
    ├── TooManyRequests         too_many_requests     — e.g. keys guessed too often
    └── Unavailable             unavailable           — the database can't be reached
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
    title = "Request failed"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidInput(KopilkaError):
    code = "validation_error"
    title = "Invalid input"

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]) -> None:
        self.problems = tuple(problems)
        first = str(self.problems[0]) if self.problems else "invalid input"
        more = len(self.problems) - 1
        super().__init__(first if more == 0 else f"{first} (and {more} more)")


class InsufficientPoints(KopilkaError):
    code = "insufficient_points"
    title = "Not enough points may be redeemed"


class NotFound(KopilkaError):
    code = "not_found"
    title = "Not found"


class IdempotencyConflict(KopilkaError):
    code = "idempotency_conflict"
    title = "The same id was sent with a different body"


class Conflict(KopilkaError):
    """The request is sound but the state forbids it now (a hold already settled …)."""

    code = "conflict"
    title = "Not possible in the current state"


class Duplicate(Conflict):
    title = "Already exists"


class CouponInvalid(KopilkaError):
    code = "coupon_invalid"
    title = "The coupon does not apply"

    def __init__(self, detail: str, *, coupon: str, reason: str) -> None:
        super().__init__(detail)
        self.coupon = coupon  # the code as it was sent
        self.reason = (
            reason  # not_found | expired | used | limit_reached | conditions_not_met | not_yours
        )


class Forbidden(KopilkaError):
    code = "forbidden"
    title = "Forbidden"


class Unauthorized(KopilkaError):
    code = "unauthorized"
    title = "A valid key is required"


class PayloadTooLarge(KopilkaError):
    code = "payload_too_large"
    title = "The request body is too large"


class TooManyRequests(KopilkaError):
    code = "too_many_requests"
    title = "Too many requests"


class Unavailable(KopilkaError):
    code = "unavailable"
    title = "Temporarily unavailable"
