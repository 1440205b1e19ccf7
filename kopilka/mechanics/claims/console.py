"""Claims filed and decided in the operator console: the service
(`kopilka.mechanics.claims.handlers`) does the work and the operator's audit row is its
`after` hook, so a step and the record of who took it are committed together, or not at
all (beside the claim's own `claim_events` row).

    claim.file      target claim:{id}   details: receipt_id, location
    claim.confirm   target claim:{id}   details: status, reason
    claim.reject    target claim:{id}   details: status, reason

A receipt's lines are typed one per row — `SKU quantity [price]` — as a support agent
reads them off the member's photo of the receipt.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine

from kopilka.kernel.errors import InvalidInput, Problem
from kopilka.mechanics.claims import handlers as claims
from kopilka.operators import handlers as operators
from kopilka.operators.handlers import Operator

FORM_FIELDS = ("receipt_id", "location", "member", "at", "note")
MAX_FORM_LINES = 200


def partner_of(operator: Operator) -> str | None:
    """The partner an operator acts for (None: the whole program's operator)."""
    return operator.partner


def file_claim(
    engine: Engine, operator: Operator, form: dict[str, str], now: datetime
) -> dict[str, Any]:
    """File a claim from the console's form, audited."""
    body = claim_body(form)
    after = operators.audited(
        operator, "claim.file", _target,
        lambda answer: {"receipt_id": answer["receipt_id"], "location": answer["location"]}, now,
    )  # fmt: skip
    answer, _made = claims.file_claim(engine, operator.program, body, actor=operator.actor,
                                      now=now, after=after)  # fmt: skip
    return answer


def claim_body(form: dict[str, str]) -> dict[str, Any]:
    """A claim's body from a form's fields (the console's, the member's): the lines typed
    one per row."""
    body: dict[str, Any] = {name: form[name].strip() for name in FORM_FIELDS
                            if form.get(name, "").strip()}  # fmt: skip
    body["lines"] = receipt_lines(form.get("lines", ""))
    return body


def receipt_lines(text: str) -> list[dict[str, str]]:
    """`SKU quantity [price]` per row, as the receipt shows them."""
    rows = [row.split() for row in text.splitlines() if row.strip()]
    if not rows:
        raise InvalidInput([Problem("lines", "is empty; a receipt has at least one line")])
    if len(rows) > MAX_FORM_LINES:
        raise InvalidInput([Problem("lines", f"has {len(rows)} rows; at most {MAX_FORM_LINES}")])
    problems = [Problem("lines", f"row {n}: write the SKU, the quantity and the price")
                for n, row in enumerate(rows, 1) if len(row) not in (2, 3)]  # fmt: skip
    if problems:
        raise InvalidInput(problems)
    return [dict(zip(("sku", "qty", "price"), row, strict=False)) for row in rows]


def decide(
    engine: Engine, operator: Operator, claim: str, action: str, reason: str | None,
    now: datetime,
) -> dict[str, Any]:  # fmt: skip
    """`confirm` or `reject` a claim of the operator's program (of their partner's
    locations, for a partner's operator), audited."""
    after = operators.audited(
        operator, f"claim.{action}", _target,
        lambda answer: {"status": answer["status"], "reason": reason or ""}, now,
    )  # fmt: skip
    body = {"reason": reason} if reason else None
    answer, _made = claims.decide(engine, operator.program, claim, action, body,
                                  actor=operator.actor, now=now, partner=partner_of(operator),
                                  after=after)  # fmt: skip
    return answer


def _target(_: Connection, answer: dict[str, Any]) -> str:
    return f"claim:{answer['id']}"
