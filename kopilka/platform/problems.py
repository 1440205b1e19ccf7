"""Kopilka's errors as the edges answer them: an HTTP status per error code, and the
RFC 9457 problem document.

The errors themselves (`kopilka.kernel.errors` and the few the capabilities add) are
domain errors: a `code`, a title, a detail. This is the one table that says which HTTP
status each code is answered with — by the API (`kopilka.platform.http.app`), on the
console's error pages (`kopilka.platform.console`), and in the problem JSON the command
line prints. A new error code needs its line here (`tests/api/test_problem_statuses.py`
checks that every error class has one).
"""

from __future__ import annotations

from typing import Any

from kopilka.kernel.errors import CouponInvalid, InvalidInput, KopilkaError

PROBLEM_TYPE_BASE = "https://kopilka.dev/problems/"

STATUSES: dict[str, int] = {
    "error": 400,  # KopilkaError itself, and any code without a line of its own
    "validation_error": 422,
    "insufficient_points": 422,
    "insufficient_cashback": 422,  # kopilka.mechanics.cashback.model.InsufficientCashback
    "coupon_invalid": 422,
    "club_only": 422,  # kopilka.mechanics.clubs.model.ClubOnly: a club's members-only line
    "prepaid_points_exhausted": 422,  # kopilka.mechanics.coalition.model.PrepaidExhausted
    "not_found": 404,
    "idempotency_conflict": 409,
    "conflict": 409,  # Conflict, Duplicate
    "forbidden": 403,
    "unauthorized": 401,
    "payload_too_large": 413,
    "too_many_requests": 429,
    "unavailable": 503,
    "link_expired": 410,  # kopilka.members.links: a member's personal link that ended
    "link_revoked": 410,
}

# seconds a client should wait before sending the request again (`Retry-After`)
RETRY_AFTER: dict[str, str] = {"too_many_requests": "60", "unavailable": "1"}


def status_of(error: KopilkaError) -> int:
    """The HTTP status `error` is answered with."""
    return STATUSES.get(error.code, STATUSES[KopilkaError.code])


def problem_json(error: KopilkaError) -> dict[str, Any]:
    """An RFC 9457 problem document for a Kopilka error."""
    document: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + error.code,
        "title": error.title,
        "status": status_of(error),
        "code": error.code,
        "detail": error.detail,
    }
    if isinstance(error, InvalidInput):
        document["errors"] = [{"loc": p.loc, "message": p.message} for p in error.problems]
    # an error's own members (a club-only line: its `line`, `sku`, `club` and `reason`)
    document.update(getattr(error, "extensions", None) or {})
    if isinstance(error, CouponInvalid):
        document["coupon"] = error.coupon
        document["reason"] = error.reason
    return document
