"""What the OpenAPI document says of request bodies and errors.

The services read and validate bodies themselves (one place for the rules, shared with
the command line), so these JSON schemas describe the bodies for readers and tools
(`/docs`, schemathesis, client generators) rather than validate them.
"""

from __future__ import annotations

from typing import Any

from kopilka.kernel.reading import MAX_NOTE, MAX_TEXT
from kopilka.kernel.receipt import MAX_COUPONS, MAX_LINES
from kopilka.platform.http import examples

# Numbers as the services read them (kopilka.kernel.money.parse_decimal): text in ASCII
# digits with one optional sign and decimal point, or a JSON number; at most 15 digits
# before the point and 18 after. A program's currency may allow fewer decimals.
AMOUNT = {"oneOf": [
    {"type": "string", "pattern": r"^[+-]?[0-9]{1,15}(\.[0-9]{1,18})?$"},
    {"type": "number", "exclusiveMinimum": -1e15, "exclusiveMaximum": 1e15},
]}  # fmt: skip
QTY = {"oneOf": [
    {"type": "string", "pattern": r"^\+?[0-9]{1,15}(\.[0-9]{1,6})?$"},
    {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1e15},
]}  # fmt: skip

# Text as the services read it (kopilka.kernel.reading.text_problem): not blank, no control
# character (C0, DEL, C1), at most MAX_TEXT characters unless a field says otherwise. A
# lone UTF-16 surrogate (`"\ud800"`) is refused anywhere in a body.
_NOT_CONTROL = r"[^\x00-\x1f\x7f-\x9f]"
LABEL_PATTERN = rf"^{_NOT_CONTROL}*$"  # a label may be blank
TEXT_PATTERN = rf"^{_NOT_CONTROL}*[^\s\x00-\x1f\x7f-\x9f]{_NOT_CONTROL}*$"
_NOT_NOTE_CONTROL = r"[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"
NOTE_PATTERN = rf"^{_NOT_NOTE_CONTROL}*[^\s\x00-\x1f\x7f-\x9f]{_NOT_NOTE_CONTROL}*$"
CODE = {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"}


NULLS = "x-null-is-absent"  # False on an object whose properties take no null


def text(max_length: int = MAX_TEXT, description: str | None = None) -> dict[str, Any]:
    """A one-line text field of at most `max_length` characters."""
    schema: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": max_length,
                              "pattern": TEXT_PATTERN}  # fmt: skip
    return {**schema, "description": description} if description else schema


def note(max_length: int = MAX_NOTE) -> dict[str, Any]:
    """A multi-line text field (tab and line breaks allowed)."""
    return {"type": "string", "minLength": 1, "maxLength": max_length, "pattern": NOTE_PATTERN}


LINE = {
    "type": "object",
    "required": ["sku"],
    "properties": {
        "sku": text(),
        "name": text(),
        "category": CODE,
        "qty": QTY,
        "price": AMOUNT,
        "discount": AMOUNT,
    },
    "additionalProperties": False,
}

MEMBER_REF = "`{id}`, `card:…`, `phone:…`, `email:…` or `ext:…`"
RECEIPT = {
    "type": "object",
    "required": ["lines"],
    "properties": {
        "receipt_id": text(),
        "location": {**CODE, "description": "a location of the program; a key bound to a "
                     "location acts there: absent or null is the key's own"},
        "member": text(description=MEMBER_REF),
        "at": {"type": "string", "format": "date-time"},
        "lines": {"type": "array", "items": LINE, "minItems": 1, "maxItems": MAX_LINES},
        "redeem": {"oneOf": [AMOUNT, {"const": "max"}]},
        "coupons": {"type": "array", "items": text(), "maxItems": MAX_COUPONS},
        "payment": {"type": "object", "properties": {
            "method": text(), "bin": {"type": "string", "pattern": "^[0-9]{6,8}$"},
            "last4": {"type": "string", "pattern": "^[0-9]{4}$",
                      "description": "the card's last four digits (never a whole number)"},
            "device": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,128}$",
                       "description": "the paying device's fingerprint"},
        }, "additionalProperties": False},
        "hold": {"type": "boolean"},
    },
    "additionalProperties": False,
}  # fmt: skip
RECEIPT_EXAMPLE = {
    "receipt_id": "R-1001",
    "location": "rest-a",
    "member": "card:100001",
    "at": "2026-03-09T16:30:00+03:00",
    "lines": [{"sku": "CAP-300", "qty": 2, "price": "180.00"}],
    "redeem": "50.00",
}

CONSENTS = {
    "type": "object",
    NULLS: False,  # a channel's consent is true or false: null is no answer
    "description": "consent given (true) or withdrawn (false) per channel; each change is "
    "kept with its time",
    "properties": {
        channel: {"type": "boolean"}
        for channel in ("personal_data", "sms", "email", "push", "calls")
    },
    "additionalProperties": False,
}
EMAIL = {
    **text(320),
    "pattern": r"^[^@\s\x00-\x1f\x7f-\x9f]+@[^@\s\x00-\x1f\x7f-\x9f]+\.[^@\s\x00-\x1f\x7f-\x9f]+$",
}
PHONE = {**text(), "description": "a phone number, e.g. +7 912 345-67-89"}
MEMBER = {
    "type": "object",
    "properties": {
        "card": {"type": "string", "pattern": "^[0-9A-Za-z-]{4,32}$"},
        "phone": PHONE,
        "email": EMAIL,
        "external_id": text(),
        "name": text(),
        "birthday": {"type": "string", "format": "date"},
        "referrer": text(description=MEMBER_REF),
        "consents": CONSENTS,
        "referral_code": text(
            32, description="the code of the referral link the member came by (docs/referrals.md)"
        ),
        "device": text(
            128,
            description="a fingerprint of the device the member registers on, "
            "1–128 printable ASCII characters: referral fraud checks compare it",
        ),
    },
    "additionalProperties": False,
}
PROFILE = {
    "type": "object",
    "description": "null clears a field",
    "properties": {
        "phone": PHONE,
        "email": EMAIL,
        "name": text(),
        "birthday": {"type": "string", "format": "date"},
        "consents": CONSENTS,
    },
    "additionalProperties": False,
}
ADJUSTMENT = {
    "type": "object",
    "required": ["points", "reason"],
    "properties": {
        "points": {**AMOUNT, "description": "not zero; negative takes points away"},
        "reason": text(),
        "adjustment_id": text(),
    },
    "additionalProperties": False,
}
REFUND = {
    "type": "object",
    "required": ["refund_id"],
    "properties": {
        "refund_id": text(),
        "lines": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["n", "qty"],
                "properties": {"n": {"type": "integer", "minimum": 0}, "qty": QTY},
                "additionalProperties": False,
            },
        },
    },
    "additionalProperties": False,
}
TIER = {
    "type": "object",
    "required": ["tier", "reason"],
    "properties": {
        "tier": CODE,
        "until": {
            "type": "string",
            "description": "a date (the tier holds through that day in the program's time "
            "zone) or a time with its offset; none (or null): until changed by hand",
        },
        "reason": text(),
    },
    "additionalProperties": False,
}
KEY = {
    "type": "object",
    "required": ["role"],
    "properties": {
        "role": {"enum": ["admin", "pos", "partner", "support", "analyst"]},
        "location": {**text(64), "description": "a location of the program; a pos key "
                     "needs one"},
        "partner": {**text(64), "description": "a partner of the program: a partner key "
                    "bound to it acts at its locations only and sees only its purchases, "
                    "claims and statements"},
        "label": {"type": "string", "maxLength": MAX_TEXT, "pattern": LABEL_PATTERN},
    },
    "additionalProperties": False,
}  # fmt: skip
PROGRAM = {
    "type": "object",
    "description": "A program file (docs/program-file.md), as JSON.",
    "required": ["currency", "timezone", "partners"],
}

PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "title", "status", "code", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {"type": "object", "properties": {"loc": {"type": "string"},
                                                       "message": {"type": "string"}}},
        },
    },
}  # fmt: skip
ERRORS = {
    401: "no key, or not a valid one",
    403: "the key's role or location does not allow it",
    404: "no such thing in this program (also: anything of another program)",
    409: "a conflict: taken, already settled, or the same id with another body",
    413: "the body is over 1 MiB",
    422: "the body is not valid: each problem named",
    429: "too many failed authentications",
    503: "the database can't be reached now; nothing was written, send it again",
}


Answer = tuple[int, dict[str, Any]]  # a success status and an example of its answer


def body(
    schema: dict[str, Any], example: Any = None, *, replays: bool = False,
    answer: Answer | None = None,
) -> dict[str, Any]:  # fmt: skip
    """`openapi_extra` for a route: its JSON body, and the answers it may give (`replays`:
    `201` the first time and `200` with the first answer on a replay)."""
    content: dict[str, Any] = {"schema": nullable_optionals(schema)}
    if example is not None:
        content["example"] = example
    return {
        "requestBody": {"required": True, "content": {"application/json": content}},
        **problems(replays=replays, answer=answer),
    }


def nullable_optionals(schema: Any) -> Any:
    """`schema` with every property an object does not require also taking null: the
    services read a null as the property left out (`Reader.raw`), and PATCH bodies use it
    to clear a field."""
    if isinstance(schema, list):
        return [nullable_optionals(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    copy = {key: nullable_optionals(value) for key, value in schema.items() if key != NULLS}
    if isinstance(schema.get("properties"), dict) and schema.get(NULLS, True):
        required = set(schema.get("required", ()))
        copy["properties"] = {
            name: item if name in required else {"anyOf": [item, {"type": "null"}]}
            for name, item in copy["properties"].items()
        }
    return copy


def problems(*, replays: bool = False, answer: Answer | None = None) -> dict[str, Any]:
    """The answers a route may give: every problem (422 with an example), and its success
    answer with an example when one is given."""
    answers: dict[str, Any] = {
        str(status): {
            "description": text,
            "content": {"application/problem+json": {"schema": PROBLEM_SCHEMA}},
        }
        for status, text in ERRORS.items()
    }
    answers["422"]["content"]["application/problem+json"]["examples"] = {
        "validation_error": {"value": examples.VALIDATION_PROBLEM},
        "insufficient_points": {"value": examples.INSUFFICIENT_POINTS},
        "coupon_invalid": {"value": examples.COUPON_INVALID},
    }
    if answer is not None:
        status, example = answer
        answers[str(status)] = {"description": "done", "content": {"application/json": {
            "schema": {"type": "object"}, "example": example}}}  # fmt: skip
    if replays:
        answers["200"] = {"description": "a replay: the first answer, unchanged, no new effect"}
        if answer is not None:
            answers["200"]["content"] = answers[str(answer[0])]["content"]
    return {"responses": answers}
