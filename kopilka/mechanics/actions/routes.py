"""The actions routes (issue 18): `router`, the mechanic's `router`.

    POST /v1/programs/{program}/actions/{action}/reports    a key reports an action
    POST /v1/programs/{program}/actions/{action}/callback   an outside service, signed
    GET  /v1/programs/{program}/actions                     the catalogue and its figures
    GET  /v1/programs/{program}/members/{member}/actions    a member's reports

A report by key needs an admin, partner or pos key (a pos key's location is recorded).
The callback carries no key: its HMAC signature under the action's shared secret is its
authentication (`signing`), and a failed one counts as a failed authentication of the
client, as a bad key does. A refusal is `409 conflict` naming what stopped it, with the
recorded report.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse

from kopilka.kernel.errors import PayloadTooLarge, TooManyRequests, Unauthorized
from kopilka.mechanics.actions import handlers as actions
from kopilka.mechanics.actions.model import Reporter
from kopilka.mechanics.actions.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Signed,
    signature_problem,
)
from kopilka.operators import keys
from kopilka.platform.http.common import (
    ANY_ROLE,
    MAX_BODY,
    Body,
    Database,
    IdempotencyKey,
    caller,
    created,
    now,
    read_json,
    run,
)
from kopilka.platform.http.schemas import MEMBER_REF, body, problems, text
from kopilka.platform.limits import FailedAuthLimiter
from kopilka.platform.problems import problem_json

REPORTERS = ("admin", "partner", "pos")
PROGRAM = "/v1/programs/{program}"
ACTION = PROGRAM + "/actions/{action}"
PROBLEM = "application/problem+json"

REPORT = {
    "type": "object",
    "required": ["member", "external_id"],
    "properties": {
        "member": text(description=MEMBER_REF),
        "external_id": text(description="the reporter's own id of this report: a report is "
                                        "credited once per action and external id"),
        "occurred_at": {"type": "string", "format": "date-time",
                        "description": "when the member did it, as the reporter says "
                                       "(recorded; limits count the moment it is received)"},
    },
    "additionalProperties": False,
}  # fmt: skip
REPORT_EXAMPLE = {"member": "card:100001", "external_id": "survey-2026-12/answer-8812",
                  "occurred_at": "2026-12-03T16:30:00+03:00"}  # fmt: skip
CREDITED_EXAMPLE = {
    "action": "survey", "member": "42", "external_id": "survey-2026-12/answer-8812",
    "points": "50.00", "status": "credited", "occurred_at": "2026-12-03T16:30:00+03:00",
    "received_at": "2026-12-03T13:31:02+00:00", "balance": {"available": "230.00"},
}  # fmt: skip
REFUSED_EXAMPLE = {
    "type": "https://kopilka.dev/problems/conflict",
    "title": "The action gives no points for this report", "status": 409, "code": "conflict",
    "detail": "action 'survey' gives member 42 no points: per_member: 1 already reported, "
              "at most 1 per member",
    "refused_by": "per_member",
    "report": {"action": "survey", "member": "42", "external_id": "answer-8813",
               "points": "0.00", "status": "refused", "refused_by": "per_member",
               "occurred_at": None, "received_at": "2026-12-03T13:35:00+00:00",
               "reason": "action 'survey' gives member 42 no points: per_member: 1 already "
                         "reported, at most 1 per member"},
}  # fmt: skip
CATALOGUE_EXAMPLE = {"items": [{
    "code": "survey", "name": "Survey", "points": "50.00",
    "limits": {"per_member": 1, "per_period": {"period": "month", "count": 3}},
    "reported_by": ["callback", "partner"], "secret_env": "KOPILKA_ACTIONS_SURVEY_SECRET",
    "secret_set": True, "valid": {"from": "2026-01-01", "until": "2026-12-31"},
    "running": True, "reports": 120, "members": 118, "points_given": "6000.00",
    "refused": {"per_member": 7, "per_period": 2, "valid": 0},
}]}  # fmt: skip
MEMBER_REPORTS_EXAMPLE = {"items": [{
    "id": "17", "action": "survey", "external_id": "survey-2026-12/answer-8812",
    "status": "credited", "points": "50.00", "refused_by": None, "reported_by": "callback",
    "location": None, "occurred_at": "2026-12-03T16:30:00+03:00",
    "received_at": "2026-12-03T13:31:02+00:00",
}], "next": None}  # fmt: skip

router = APIRouter(tags=["actions"])


def _with_refusal(extra: dict[str, Any]) -> dict[str, Any]:
    """`openapi_extra` whose 409 shows a refusal as well."""
    conflict = extra["responses"]["409"]
    conflict["description"] = ("a limit or the validity window refused the report (recorded: "
                               "`refused_by` and the `report`), or the same external_id "
                               "with another body (`idempotency_conflict`)")  # fmt: skip
    conflict["content"][PROBLEM]["example"] = REFUSED_EXAMPLE
    return extra


def _refused(error: actions.ActionRefused) -> JSONResponse:
    document = {**problem_json(error), "refused_by": error.answer.get("refused_by"),
                "report": error.answer}  # fmt: skip
    return JSONResponse(document, status_code=document["status"], media_type=PROBLEM)


@router.post(ACTION + "/reports", status_code=201, openapi_extra=_with_refusal(
    body(REPORT, REPORT_EXAMPLE, replays=True, answer=(201, CREDITED_EXAMPLE))))  # fmt: skip
async def report_action(
    program: str, action: str, body: Body, engine: Database,
    who: Annotated[keys.Principal, Depends(caller(*REPORTERS))],
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:  # fmt: skip
    """Report that a member did the action: its points are credited once per
    `external_id` (`201`); the same report again answers the first answer (`200`), the
    same external_id with another body is `409 idempotency_conflict`. A report the
    action's limits (`per_member`, `per_period`) or its validity window refuse is
    recorded and answered `409 conflict` with `refused_by` — and so is its repeat. An
    admin, partner or pos key; the action must list `partner` in `reported_by`."""
    reporting = actions.Reporting(Reporter.PARTNER, f"key:{who.key_id}", who.location)
    try:
        answer, is_new = await run(engine, actions.report_action, engine, program, action,
                                   body, reporting=reporting, now=now(),
                                   idempotency_key=idempotency_key)  # fmt: skip
    except actions.ActionRefused as error:
        return _refused(error)
    return created(answer, is_new)


@router.post(ACTION + "/callback", status_code=201, openapi_extra=_with_refusal(
    body(REPORT, REPORT_EXAMPLE, replays=True,
         answer=(201, {k: v for k, v in CREDITED_EXAMPLE.items() if k != "balance"}))))  # fmt: skip
async def action_callback(
    program: str, action: str, request: Request, engine: Database,
    timestamp: Annotated[str | None, Header(alias=TIMESTAMP_HEADER,
                                            description="Unix time in seconds")] = None,
    signature: Annotated[str | None, Header(alias=SIGNATURE_HEADER,
                                            description="sha256=<hex HMAC-SHA256 of "
                                            "'<timestamp>.<program>.<action>.<raw body>'>")] = None,
) -> JSONResponse:  # fmt: skip
    """An outside service (a survey, review or subscription service) reports the action:
    no key, but `X-Kopilka-Timestamp` and `X-Kopilka-Signature: sha256=<hex>`, the
    HMAC-SHA256 of `<timestamp>.<program>.<action>.<raw body>` under the action's shared
    secret (the server's
    environment variable its `secret_env` names). A missing or wrong signature, or a
    timestamp more than 5 minutes from the server's clock, is `401` and nothing is
    written. Otherwise as a report by key (the answer carries no balance); the action
    must list `callback` in `reported_by`."""
    raw = await _raw_body(request)
    secrets = await run(engine, actions.callback_secrets, engine, program, action)
    problem = signature_problem(secrets, timestamp, signature, Signed(program, action, raw),
                                now())  # fmt: skip
    if problem is not None:
        _failed(request, problem)
    reporting = actions.Reporting(Reporter.CALLBACK, "callback", shows_balance=False)
    try:
        answer, is_new = await run(engine, actions.report_action, engine, program, action,
                                   read_json(raw), reporting=reporting, now=now())  # fmt: skip
    except actions.ActionRefused as error:
        return _refused(error)
    return created(answer, is_new)


async def _raw_body(request: Request) -> bytes:
    """The body exactly as sent (the signature covers its bytes), at most MAX_BODY."""
    declared = request.headers.get("content-length")
    if declared and declared.isascii() and declared.isdigit() and int(declared) > MAX_BODY:
        raise PayloadTooLarge(f"the body has {declared} bytes; at most {MAX_BODY} are accepted")
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise PayloadTooLarge(f"the body has {len(raw)} bytes; at most {MAX_BODY} are accepted")
    return raw


def _failed(request: Request, problem: str) -> None:
    """A callback that does not authenticate: `401`, or `429` once its client has failed
    too often (as with bad keys: only failures count)."""
    limiter: FailedAuthLimiter = request.app.state.failed_auth
    client = request.client.host if request.client else "unknown"
    wait = limiter.retry_after(client)
    limiter.failed(client)
    if wait:
        raise TooManyRequests(f"too many failed authentications: retry in {wait:.0f} s")
    raise Unauthorized(problem)


@router.get(PROGRAM + "/actions", openapi_extra=problems(answer=(200, CATALOGUE_EXAMPLE)))
async def action_catalogue(
    program: str, engine: Database, _who: Annotated[Any, Depends(caller(*ANY_ROLE))]
) -> Any:
    """The program's actions as declared, each with its figures: credited `reports`,
    `members`, `points_given`, and refusals by what stopped them. Of a callback's secret
    only whether it is set (`secret_set`), never its value."""
    return await run(engine, actions.catalogue, engine, program, now=now())


@router.get(PROGRAM + "/members/{member}/actions",
            openapi_extra=problems(answer=(200, MEMBER_REPORTS_EXAMPLE)))  # fmt: skip
async def member_actions(
    program: str, member: str, engine: Database,
    _who: Annotated[Any, Depends(caller(*ANY_ROLE))],
    before: Annotated[int | None, Query(ge=1, le=2**53)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Any:  # fmt: skip
    """The member's action reports, newest first, credited and refused, with the points
    each gave; pass `next` as `before` for the next page."""
    return await run(engine, actions.member_reports, engine, program, member,
                     before=before, limit=limit)  # fmt: skip
