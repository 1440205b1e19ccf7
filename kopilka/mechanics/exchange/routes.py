"""The exchange's routes (issue 19, docs/exchange.md): `router`, the mechanic's `router`.

By key:

    POST /v1/programs/{program}/members/{member}/exchanges                   exchange points
    GET  /v1/programs/{program}/members/{member}/exchanges                   the member's
    GET  /v1/programs/{program}/members/{member}/exchanges/{transaction_id}  one of them
    GET  /v1/programs/{program}/exchanges/reconciliation?date=YYYY-MM-DD     the day's mismatches

Called by an outside program, signed with the pair's secret (no key):

    POST /v1/programs/{program}/exchange/partners/{partner}/credits
    GET  /v1/programs/{program}/exchange/partners/{partner}/credits/{transaction_id}
    POST /v1/programs/{program}/exchange/partners/{partner}/credits/{transaction_id}/reverse

A request whose signature, timestamp or nonce fails is `401` and counts as a failed
authentication of its client, as a bad key does (`429` once it failed too often).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from kopilka.kernel.errors import (
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    Problem,
    TooManyRequests,
    Unauthorized,
)
from kopilka.kernel.reading import parse_date
from kopilka.mechanics.exchange import credits, inbound, reconciliation, saga
from kopilka.mechanics.exchange.signing import (
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Signed,
    signature_problem,
)
from kopilka.operators import keys
from kopilka.platform.http.common import (
    ANY_ROLE,
    MAX_BODY,
    MEMBER_WRITERS,
    Database,
    caller,
    created,
    now,
    read_json,
    run,
)
from kopilka.platform.http.schemas import AMOUNT, CODE, MEMBER_REF, body, problems, text
from kopilka.platform.limits import FailedAuthLimiter
from kopilka.platform.problems import problem_json

PROGRAM = "/v1/programs/{program}"
MEMBER_EXCHANGES = PROGRAM + "/members/{member}/exchanges"
PARTNER = PROGRAM + "/exchange/partners/{partner}"
READERS = ("admin", "support", "analyst")
PROBLEM = "application/problem+json"

EXCHANGE = {
    "type": "object",
    "required": ["transaction_id", "to_program", "to_member", "points"],
    "properties": {
        "transaction_id": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$",
                           "description": "the caller's id of this exchange, unique in the "
                                          "program: 1 to 100 letters, digits, '.', '_', ':', '-'"},
        "to_program": {**CODE, "description": "the other side: a program of this Kopilka by "
                                             "its code, or an outside program by its partner "
                                             "id (a pair of the program)"},
        "to_member": text(description="the member there: " + MEMBER_REF),
        "points": {**AMOUNT, "description": "points of this program given (the fee included)"},
    },
    "additionalProperties": False,
}  # fmt: skip
EXCHANGE_EXAMPLE = {"transaction_id": "ex-2026-12-04-0001", "to_program": "north",
                    "to_member": "card:900001", "points": "1000.00"}  # fmt: skip
EXCHANGE_ANSWER = {
    "transaction_id": "ex-2026-12-04-0001", "state": "confirmed", "pair": "north",
    "member": "42", "to_program": "north", "to_member": "card:900001", "points": "1000.00",
    "fee": "25.00", "net": "975.00", "credit": "780.00", "credited": "780.00", "reason": None,
    "created_at": "2026-12-04T10:00:00+00:00", "deadline": "2026-12-04T10:15:00+00:00",
    "settled_at": "2026-12-04T10:00:00+00:00",
}  # fmt: skip
CREDIT = {
    "type": "object",
    "required": ["transaction_id", "member", "points"],
    "properties": {
        "transaction_id": text(description="the source's id of the exchange"),
        "member": text(description="our member to credit: " + MEMBER_REF),
        "points": {**AMOUNT, "description": "points of this program to credit"},
        "from_member": text(description="the source's member (recorded)"),
        "sent": text(64, "what the source's member gave (recorded)"),
    },
    "additionalProperties": False,
}  # fmt: skip
CREDIT_EXAMPLE = {"transaction_id": "ex-2026-12-04-0001", "member": "card:100001",
                  "points": "780.00", "from_member": "sky:42"}  # fmt: skip
CREDIT_ANSWER = {"transaction_id": "ex-2026-12-04-0001", "state": "credited", "points": "780.00",
                 "member": "17", "refused_by": None, "reason": None}  # fmt: skip
RECONCILIATION_EXAMPLE = {"date": "2026-12-04", "items": [
    {"transaction_id": "ex-2026-12-04-0007", "side": "source", "issue": "held_not_settled",
     "detail": "100000 held since 10:02, time-out 2026-12-04T10:17:00+00:00"}]}  # fmt: skip

router = APIRouter(tags=["exchange"])


def _refused(error: saga.ExchangeRefused) -> JSONResponse:
    document = {**problem_json(error), "refused_by": error.refused_by}
    return JSONResponse(document, status_code=document["status"], media_type=PROBLEM)


@router.post(MEMBER_EXCHANGES, status_code=201, openapi_extra=body(
    EXCHANGE, EXCHANGE_EXAMPLE, replays=True, answer=(201, EXCHANGE_ANSWER)))  # fmt: skip
async def start_exchange(
    program: str, member: str, request: Request, engine: Database,
    who: Annotated[keys.Principal, Depends(caller(*MEMBER_WRITERS))],
) -> JSONResponse:  # fmt: skip
    """Exchange the member's points for points of another program at the pair's rate:
    the points are held, credited at the target, then confirmed (`state: confirmed`) — or
    given back when the target refuses or can't be reached (`reversed`, with its
    `reason`). `held` means the target's answer is not known yet: the worker settles it
    after the pair's time-out. The same `transaction_id` and body again answers the
    exchange as it stands (`200`); another body is `409 idempotency_conflict`. Below the
    pair's minimum is `422`; past the daily limit or a pair closed to sending is `409
    conflict` with `refused_by`; more than the member has is `422 insufficient_points`.
    An admin, support, partner or pos key."""
    document = read_json(await _raw_body(request))
    try:
        answer, is_new = await run(engine, saga.start_exchange, engine, program, member,
                                   document, actor=f"key:{who.key_id}", now=now())  # fmt: skip
    except saga.ExchangeRefused as error:
        return _refused(error)
    return created(answer, is_new)


@router.get(MEMBER_EXCHANGES, openapi_extra=problems(answer=(200, {
    "items": [EXCHANGE_ANSWER], "next": None})))  # fmt: skip
async def member_exchanges(
    program: str, member: str, engine: Database,
    _who: Annotated[Any, Depends(caller(*ANY_ROLE))],
    before: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Any:  # fmt: skip
    """The member's exchanges, newest first; pass `next` as `before` for the next page."""
    return await run(engine, saga.member_exchanges, engine, program, member, before=before,
                     limit=limit)  # fmt: skip


@router.get(MEMBER_EXCHANGES + "/{transaction_id}",
            openapi_extra=problems(answer=(200, EXCHANGE_ANSWER)))  # fmt: skip
async def member_exchange(
    program: str, member: str, transaction_id: str, engine: Database,
    _who: Annotated[Any, Depends(caller(*ANY_ROLE))],
) -> Any:  # fmt: skip
    """One of the member's exchanges, by its transaction id, as it stands."""
    return await run(engine, saga.member_exchange, engine, program, member, transaction_id)


@router.get(PROGRAM + "/exchanges/reconciliation",
            openapi_extra=problems(answer=(200, RECONCILIATION_EXAMPLE)))  # fmt: skip
async def exchange_reconciliation(
    program: str, engine: Database, _who: Annotated[Any, Depends(caller(*READERS))],
    date_: Annotated[str, Query(alias="date", pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
                                description="the program's local day, YYYY-MM-DD")],
) -> Any:  # fmt: skip
    """Every exchange of the day whose two sides disagree, by transaction id (`items`:
    `side`, `issue`, `detail`); empty when they all agree. An admin, support or analyst
    key."""
    day = parse_date(date_) if isinstance(date_, str) and len(date_) == 10 else None
    if not isinstance(day, date):
        raise InvalidInput([Problem("date", f"{date_!r} is not a date (YYYY-MM-DD)")])
    return await run(engine, reconciliation.reconciliation, engine, program, day)


# — called by outside programs —


async def _signed(request: Request, engine: Any, program: str, partner: str,
                  raw: bytes) -> None:  # fmt: skip
    """Refuse the request unless its signature, timestamp and nonce hold."""
    headers = request.headers
    timestamp, nonce = headers.get(TIMESTAMP_HEADER), headers.get(NONCE_HEADER)
    signed = None
    if timestamp is not None and nonce is not None:
        path = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
        signed = Signed(timestamp, nonce, request.method, path, raw)
    try:
        secrets = await run(engine, inbound.partner_secrets, engine, program, partner)
    except NotFound:  # counted as a failed authentication: no guessing the pairs for free
        _count_failure(request)
        raise
    moment = now()
    problem = signature_problem(secrets, headers.get(SIGNATURE_HEADER), signed, moment)
    if problem is None and signed is not None:
        is_new = await run(engine, inbound.is_nonce_new, engine, program, partner,
                           signed.nonce, moment)  # fmt: skip
        problem = None if is_new else f"{NONCE_HEADER} was used before: a replayed request"
    if problem is not None:
        _failed(request, problem)


def _failed(request: Request, problem: str) -> None:
    _count_failure(request)
    raise Unauthorized(problem)


def _count_failure(request: Request) -> None:
    """Count a failed authentication of the client; `429` once it has failed too often."""
    limiter: FailedAuthLimiter = request.app.state.failed_auth
    client = request.client.host if request.client else "unknown"
    wait = limiter.retry_after(client)
    limiter.failed(client)
    if wait:
        raise TooManyRequests(f"too many failed authentications: retry in {wait:.0f} s")


async def _raw_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isascii() and declared.isdigit() and int(declared) > MAX_BODY:
        raise PayloadTooLarge(f"the body has {declared} bytes; at most {MAX_BODY} are accepted")
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise PayloadTooLarge(f"the body has {len(raw)} bytes; at most {MAX_BODY} are accepted")
    return raw


SIGNED_HEADERS = {
    "parameters": [
        {"name": TIMESTAMP_HEADER, "in": "header", "required": True,
         "schema": {"type": "string"}, "description": "Unix time in seconds (±5 minutes)"},
        {"name": NONCE_HEADER, "in": "header", "required": True,
         "schema": {"type": "string"}, "description": "16 to 64 of A-Z a-z 0-9 - _, used once"},
        {"name": SIGNATURE_HEADER, "in": "header", "required": True,
         "schema": {"type": "string"},
         "description": "sha256=<hex HMAC-SHA256 of '<timestamp>\\n<nonce>\\n<METHOD>\\n"
                        "<path>\\n' + raw body under the pair's shared secret>"},
    ]
}  # fmt: skip


@router.post(PARTNER + "/credits", status_code=201, openapi_extra={
    **body(CREDIT, CREDIT_EXAMPLE, replays=True, answer=(201, CREDIT_ANSWER)),
    **SIGNED_HEADERS})  # fmt: skip
async def partner_credit(
    program: str, partner: str, request: Request, engine: Database
) -> JSONResponse:
    """An outside program credits one of our members the points its member sent (signed;
    see docs/exchange.md). `state: credited`, or `refused` with `refused_by`
    (`unknown_member`, `member_inactive`, `pair_closed`) — recorded, so a repeat answers
    the same; the same transaction id with another body is `409 idempotency_conflict`; a
    transaction the partner gave up (reverse) is answered `reversed` and never credited."""
    raw = await _raw_body(request)
    await _signed(request, engine, program, partner, raw)
    source = credits.partner_source(partner)
    answer, is_new = await run(engine, credits.receive_credit, engine, program, source,
                               read_json(raw), now=now())  # fmt: skip
    return created(answer, is_new)


@router.get(PARTNER + "/credits/{transaction_id}", openapi_extra={
    **problems(answer=(200, CREDIT_ANSWER)), **SIGNED_HEADERS})  # fmt: skip
async def partner_credit_status(
    program: str, partner: str, transaction_id: str, request: Request, engine: Database
) -> Any:
    """The transaction's state here: `credited`, `refused`, `reversed`, or `unknown` (never
    heard of: not credited, but a late request could still be — send a reverse to be sure)."""
    await _signed(request, engine, program, partner, await _raw_body(request))
    return await run(engine, credits.credit_status, engine, program,
                     credits.partner_source(partner), transaction_id)  # fmt: skip


@router.post(PARTNER + "/credits/{transaction_id}/reverse", openapi_extra={
    **problems(answer=(200, {**CREDIT_ANSWER, "state": "reversed", "points": "0.00"})),
    **SIGNED_HEADERS})  # fmt: skip
async def partner_credit_reverse(
    program: str, partner: str, transaction_id: str, request: Request, engine: Database
) -> Any:
    """The partner gives the transaction up: not credited yet, it never will be (`reversed`);
    already credited, the credit stands (`credited`: confirm it on your side)."""
    await _signed(request, engine, program, partner, await _raw_body(request))
    return await run(engine, credits.give_up_credit, engine, program,
                     credits.partner_source(partner), transaction_id, now=now())  # fmt: skip
