"""Answers as the API gives them, for the OpenAPI document's examples.

Captured from a real run of the walk-through in README.md (times rounded, the key made
up); `tests/api/test_http.py` checks that each has the same fields as a real answer, so
the documentation can't drift from the service.
"""

from __future__ import annotations

from typing import Any

MEMBER: dict[str, Any] = {
    "id": "1",
    "card": "100009",
    "phone": "+79123456789",
    "email": None,
    "external_id": None,
    "name": None,
    "birthday": None,
    "status": "active",
    "consents": {
        "personal_data": {
            "granted": True,
            "at": "2026-11-27T10:00:00+00:00",
            "source": "registration",
        },
        "sms": {"granted": True, "at": "2026-11-27T10:00:00+00:00", "source": "registration"},
    },
    "tier": {
        "code": "base",
        "name": "Базовый",
        "since": "2026-11-27T10:00:00+00:00",
        "until": None,
        "manual": False,
        "downgrade_at": None,
    },
    "next_tier": {"code": "vip", "name": "VIP", "missing": {"spend": "149550.00"}},
    "privileges": [],
}

MEMBER_TIER: dict[str, Any] = {
    "tier": {
        "code": "vip",
        "name": "VIP",
        "since": "2026-11-27T10:00:00+00:00",
        "until": "2026-12-31T21:00:00+00:00",
        "manual": True,
        "downgrade_at": None,
    },
    "next_tier": None,
    "privileges": ["vip-service"],
}

TIER_HISTORY: dict[str, Any] = {
    "items": [
        {
            "id": "1",
            "at": "2026-11-27T10:00:00+00:00",
            "from": None,
            "to": "vip",
            "manual": True,
            "until": "2026-12-31T21:00:00+00:00",
            "reason": "the seed's temporary VIP",
            "actor": "key:1",
            "purchase_id": None,
        }
    ],
    "next": None,
}

TIERS: dict[str, Any] = {
    "window": {"days": 365},
    "review": "month",
    "grace_days": 30,
    "levels": [
        {"code": "base", "name": "Базовый", "qualify": None, "privileges": []},
        {
            "code": "vip",
            "name": "VIP",
            "qualify": {"spend": "150000.00"},
            "privileges": ["vip-service"],
        },
    ],
}

ADJUSTMENT: dict[str, Any] = {"points": "100.00", "reason": "welcome", "available": "100.00"}

PURCHASE: dict[str, Any] = {
    "purchase_id": "1",
    "status": "completed",
    "receipt_id": "R-1",
    "member": "1",
    "total": "450.00",
    "discount": "0.00",
    "redeemed": "30.00",
    "paid": "420.00",
    "accrued": "4.20",
    "accrued_status": "available",
    "max_redeemable": "100.00",
    "balance": {"available": "74.20", "pending": "0.00", "held": "0.00"},
    "lines": [
        {
            "n": 0,
            "sku": "TEA-400",
            "amount": "450.00",
            "discount": "0.00",
            "redeemed": "30.00",
            "accrued": "4.20",
            "redeemable": "450.00",
            "explain": [],
        }
    ],
    "discounts": [],
    "coupons": [],
    "cashback": None,
    "redeem_caps": {"lines": "450.00", "balance": "100.00", "min_payable": "450.00"},
    "notes": [],
    "program_version": 1,
}

QUOTE: dict[str, Any] = {**PURCHASE, "purchase_id": None, "status": "quote"}  # nothing written

REFUND: dict[str, Any] = {
    "refund_id": "RF-1",
    "purchase_id": "1",
    "purchase_status": "partially_refunded",
    "accrued_back": "1.40",
    "accrued_burnt": "0.00",
    "redeemed_back": "10.00",
    "lines": [{"n": 0, "qty": "1", "accrued_back": "1.40", "redeemed_back": "10.00"}],
    "balance": {"available": "82.80", "pending": "0.00", "held": "0.00"},
}

BALANCE: dict[str, Any] = {
    "available": "82.80",
    "pending": "0.00",
    "held": "0.00",
    "lifetime_accrued": "4.20",
    "lifetime_redeemed": "30.00",
    "expiring": [{"date": "2027-11-27", "points": "82.80"}],
}

HISTORY: dict[str, Any] = {
    "items": [
        {
            "id": "5",
            "at": "2026-11-27T10:00:00+00:00",
            "reason": "refund.accrual",
            "points": "-1.40",
            "account": "available",
            "purchase_id": "1",
            "receipt_id": "R-1",
            "actor": "key:1",
            "note": None,
        },
        {
            "id": "4",
            "at": "2026-11-27T10:00:00+00:00",
            "reason": "refund.redemption",
            "points": "10.00",
            "account": "available",
            "purchase_id": "1",
            "receipt_id": "R-1",
            "actor": "key:1",
            "note": None,
        },
    ],
    "next": "4",
}

KEY: dict[str, Any] = {
    "key": "kpk_3fQ9v2LmZx7TqW1aR8sYbN4cJ6dHkP0e",
    "id": "2",
    "program": "zerno",
    "role": "pos",
    "location": "kiosk",
    "partner": None,
    "label": None,
    "prefix": "kpk_3fQ9v2",
    "created_at": "2026-11-27T10:00:00+00:00",
    "revoked_at": None,
}

VERSIONS: dict[str, Any] = {
    "code": "zerno",
    "current": 1,
    "items": [
        {
            "version": 1,
            "applied_by": "example",
            "applied_at": "2026-11-27T10:00:00+00:00",
            "document_hash": "83b940d0cd3987e4c897fa410105246bfbf4a90da3d97a9a1a456b65c80f578b",
        }
    ],
}

VALIDATION_PROBLEM: dict[str, Any] = {
    "type": "https://kopilka.dev/problems/validation_error",
    "title": "Invalid input",
    "status": 422,
    "code": "validation_error",
    "detail": "balance: unknown key; known keys: card, phone, email, external_id, name, "
    "birthday, referrer, consents (and 1 more)",
    "errors": [
        {
            "loc": "balance",
            "message": "unknown key; known keys: card, phone, email, external_id, name, "
            "birthday, referrer, consents",
        },
        {"loc": "card", "message": "'1' is not a card number (4–32 letters, digits, '-')"},
    ],
}

INSUFFICIENT_POINTS: dict[str, Any] = {
    "type": "https://kopilka.dev/problems/insufficient_points",
    "title": "Not enough points may be redeemed",
    "status": 422,
    "code": "insufficient_points",
    "detail": "redeem 5000.00 is more than this receipt allows: at most 82.80 (the member's "
    "available points)",
}

COUPON_INVALID: dict[str, Any] = {
    "type": "https://kopilka.dev/problems/coupon_invalid",
    "title": "The coupon does not apply",
    "status": 422,
    "code": "coupon_invalid",
    "detail": "coupon 'BIG50' does not apply: the receipt is 450.00; the coupon needs 1000.00",
    "coupon": "BIG50",
    "reason": "conditions_not_met",
}

EVENTS: dict[str, Any] = {
    "items": [
        {
            "id": "3",
            "kind": "expiry",
            "occasion": "2027-11-27T00:00:00+00:00",
            "at": "2027-11-27T00:00:00+00:00",
            "lots": 1,
            "points": "70.00",
        },
        {
            "id": "2",
            "kind": "expiry.warning",
            "occasion": "2027-11-27",
            "at": "2027-11-13T00:00:00+00:00",
            "date": "2027-11-27",
            "points": "70.00",
        },
        {
            "id": "1",
            "kind": "trigger.welcome",
            "occasion": "once",
            "at": "2026-11-27T10:00:00+00:00",
            "trigger": "welcome",
            "on": "registration",
            "points": "100.00",
        },
    ],
    "next": None,
}
