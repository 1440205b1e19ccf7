"""What the OpenAPI document says of request bodies and errors.

The services read and validate bodies themselves (one place for the rules, shared with
the command line), so these JSON schemas describe the bodies for readers and tools
(`/docs`, schemathesis, client generators) rather than validate them.
"""

from __future__ import annotations

from typing import Any

from kopilka.api import examples

AMOUNT = {"oneOf": [{"type": "string", "pattern": r"^-?\d+(\.\d+)?$"}, {"type": "number"}]}
QTY = {"oneOf": [{"type": "string", "pattern": r"^\d+(\.\d+)?$"}, {"type": "number"}]}

LINE = {
    "type": "object",
    "required": ["sku", "qty"],
    "properties": {
        "sku": {"type": "string", "minLength": 1},
        "category": {"type": "string"},
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
        "receipt_id": {"type": "string", "minLength": 1, "maxLength": 200},
        "location": {"type": "string"},
        "member": {
            "type": "string",
            "description": "`{id}`, `card:…`, `phone:…`, `email:…`, `ext:…`",
        },
        "at": {"type": "string", "format": "date-time"},
        "lines": {"type": "array", "items": LINE, "minItems": 1},
        "redeem": {"oneOf": [AMOUNT, {"const": "max"}]},
        "coupons": {"type": "array", "items": {"type": "string"}},
        "payment": {"type": "object"},
        "hold": {"type": "boolean"},
    },
    "additionalProperties": False,
}
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
    "description": "consent given (true) or withdrawn (false) per channel; each change is "
    "kept with its time",
    "properties": {
        channel: {"type": "boolean"}
        for channel in ("personal_data", "sms", "email", "push", "calls")
    },
    "additionalProperties": False,
}
MEMBER = {
    "type": "object",
    "properties": {
        "card": {"type": "string"},
        "phone": {"type": "string"},
        "email": {"type": "string"},
        "external_id": {"type": "string"},
        "name": {"type": "string"},
        "birthday": {"type": "string", "format": "date"},
        "referrer": {"type": "string"},
        "consents": CONSENTS,
    },
    "additionalProperties": False,
}
PROFILE = {
    "type": "object",
    "properties": {
        "phone": {"type": ["string", "null"]},
        "email": {"type": ["string", "null"]},
        "name": {"type": ["string", "null"]},
        "birthday": {"type": ["string", "null"], "format": "date"},
        "consents": CONSENTS,
    },
    "additionalProperties": False,
}
ADJUSTMENT = {
    "type": "object",
    "required": ["points", "reason"],
    "properties": {
        "points": AMOUNT,
        "reason": {"type": "string", "minLength": 1},
        "adjustment_id": {"type": "string"},
    },
    "additionalProperties": False,
}
REFUND = {
    "type": "object",
    "required": ["refund_id"],
    "properties": {
        "refund_id": {"type": "string", "minLength": 1},
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
        "tier": {"type": "string", "minLength": 1, "maxLength": 64},
        "until": {
            "type": "string",
            "description": "a date (the tier holds through that day in the program's time "
            "zone) or a time with its offset; none: until changed by hand",
        },
        "reason": {"type": "string", "minLength": 1, "maxLength": 200},
    },
    "additionalProperties": False,
}
KEY = {
    "type": "object",
    "required": ["role"],
    "properties": {
        "role": {"enum": ["admin", "pos", "partner", "support", "analyst"]},
        "location": {"type": "string"},
        "label": {"type": "string"},
    },
    "additionalProperties": False,
}
PROGRAM = {"type": "object", "description": "A program file (docs/program-file.md), as JSON."}

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
    content: dict[str, Any] = {"schema": schema}
    if example is not None:
        content["example"] = example
    return {
        "requestBody": {"required": True, "content": {"application/json": content}},
        **problems(replays=replays, answer=answer),
    }


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
