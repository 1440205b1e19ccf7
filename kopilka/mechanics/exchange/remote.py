"""Calls to an outside program's exchange endpoints (docs/exchange.md, "The protocol"),
signed with the pair's shared secret; each answer read into an `Outcome`.

Under the pair's base URL `partner.url`:

    POST {url}/credits                          credit one of its members
    GET  {url}/credits/{transaction_id}         the transaction's state there
    POST {url}/credits/{transaction_id}/reverse give it up (if it was not credited)

A connection refused (nothing sent) is `UNSENT`; a time-out, a 5xx, a 408/409/429 or an
answer that can't be read is `UNKNOWN` (the request may have been processed). Another
4xx to the credit is `REFUSED` (the target processed nothing, and nothing else asked
it); to the status or the reverse it is `UNKNOWN` — a refused signature (a clock or a
secret out of step) says nothing of the transaction, so nothing is reversed on it.

Requests are signed at the wall clock's time (the receiver checks its own clock), not
at the worker's `now`, which may be set for a back-fill.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import httpx

from kopilka.kernel.money import parse_decimal, to_minor
from kopilka.mechanics.exchange.model import RemoteSide
from kopilka.mechanics.exchange.outcome import Heard, Outcome
from kopilka.mechanics.exchange.signing import secrets_in, signed_headers

TIMEOUT_SECONDS = 10.0
_UNCERTAIN = (408, 409, 425, 429)


def post_credit(side: RemoteSide, body: dict[str, Any]) -> Outcome:
    return _call(side, "POST", "/credits", body, is_credit=True)


def ask_status(side: RemoteSide, transaction_id: str) -> Outcome:
    return _call(side, "GET", f"/credits/{transaction_id}", None)


def give_up(side: RemoteSide, transaction_id: str) -> Outcome:
    return _call(side, "POST", f"/credits/{transaction_id}/reverse", {})


def _call(
    side: RemoteSide, method: str, tail: str, body: Any, *, is_credit: bool = False
) -> Outcome:
    # "never reached it" proves nothing was credited only of the credit itself: of a status
    # or a reverse it says nothing of the transaction
    unsent = Heard.UNSENT if is_credit else Heard.UNKNOWN
    found = secrets_in(os.environ.get(side.secret_env))
    if not found:
        return Outcome(unsent, reason=f"the secret ({side.secret_env}) is not set")
    url = side.url + tail
    raw = b"" if body is None else json.dumps(body, ensure_ascii=False).encode()
    headers = signed_headers(found[0], method, urlsplit(url).path, raw, datetime.now(UTC))
    if body is not None:
        headers["Content-Type"] = "application/json"
    try:
        with httpx.Client(timeout=TIMEOUT_SECONDS) as client:
            response = client.request(method, url, content=raw, headers=headers)
    except httpx.ConnectError as error:
        return Outcome(unsent, reason=f"{side.id} unreachable: {error}"[:200])
    except httpx.HTTPError as error:
        return Outcome(Heard.UNKNOWN, reason=f"{side.id}: {type(error).__name__}")
    return _read(side, response, is_credit=is_credit)


def _read(side: RemoteSide, response: httpx.Response, *, is_credit: bool) -> Outcome:
    status = response.status_code
    if status >= 500 or status in _UNCERTAIN or (status >= 400 and not is_credit):
        return Outcome(Heard.UNKNOWN, reason=f"{side.id} answered {status}")
    try:
        document = response.json()
    except ValueError:
        document = None
    if not isinstance(document, dict):
        if 400 <= status < 500:
            return Outcome(Heard.REFUSED, reason=f"{side.id} answered {status}")
        return Outcome(Heard.UNKNOWN, reason=f"{side.id} answered {status} without a document")
    if 400 <= status < 500:
        detail = document.get("detail") or document.get("title") or status
        return Outcome(Heard.REFUSED, reason=f"{side.id} refused: {detail}"[:200])
    return _state(side, document)


def _state(side: RemoteSide, document: dict[str, Any]) -> Outcome:
    state = document.get("state")
    if state == "credited":
        points = _minor(document.get("points"), side.precision)
        if points is None:
            return Outcome(Heard.UNKNOWN, reason=f"{side.id} credited an unreadable amount")
        return Outcome(Heard.CREDITED, points=points)
    if state in ("refused", "reversed"):
        reason = document.get("reason") or state
        return Outcome(Heard.REFUSED, reason=f"{side.id}: {reason}"[:200])
    if state == "unknown":
        return Outcome(Heard.NOT_FOUND)
    return Outcome(Heard.UNKNOWN, reason=f"{side.id} answered the state {state!r}"[:200])


def _minor(raw: object, digits: int) -> int | None:
    number = parse_decimal(raw) if isinstance(raw, str) else None
    if number is None or number < Decimal(0):
        return None
    return to_minor(number, digits)
