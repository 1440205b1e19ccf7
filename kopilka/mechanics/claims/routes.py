"""The claims' HTTP routes (docs/claims.md): `router`, the mechanic's.

A member files their own claim from their personal page: `GET/POST /m/{token}/claim`,
a form the personal link opens (the link names the member; the form never does).

Support (an admin's or a support agent's key) files a claim for a receipt that earned
nothing; the partner (a partner's key — only at its own partner's locations — or an
admin's) confirms or rejects it; whoever may read the program's claims lists them. To a
key bound to a coalition partner, another partner's claim does not exist (`404`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from sqlalchemy import Engine

from kopilka.kernel.errors import Conflict, InvalidInput, NotFound
from kopilka.mechanics.claims import console as claims_console
from kopilka.mechanics.claims import handlers as claims
from kopilka.mechanics.claims.model import MEMBER_OPEN_LIMIT, Status
from kopilka.members import page as member_page
from kopilka.members.links import ExpiredLink, LinkTarget, RevokedLink, read_token
from kopilka.operators import keys
from kopilka.operators.sessions import is_same_origin
from kopilka.platform.console import i18n
from kopilka.platform.http.common import (
    Body,
    Database,
    IdempotencyKey,
    OptionalBody,
    caller,
    created,
    now,
    run,
)
from kopilka.platform.http.schemas import (
    CODE,
    LINE,
    MEMBER_REF,
    body,
    note,
    nullable_optionals,
    problems,
    text,
)

CLAIM_EXAMPLE: dict[str, Any] = {
    "id": "7",
    "status": "processed",
    "receipt_id": "R-1001",
    "location": "rest-a",
    "member": {"id": "41", "card": "100001"},
    "at": "2026-03-09T13:30:00+00:00",
    "lines": [{"sku": "CAP-300", "qty": 2, "price": "180.00"}],
    "total": "360.00",
    "note": "the till was offline",
    "program_version": 3,
    "filed_by": "key:5",
    "filed_at": "2026-03-10T09:00:00+00:00",
    "due_at": "2026-03-13T09:00:00+00:00",
    "overdue": False,
    "decided_by": "key:9",
    "decided_at": "2026-03-11T10:00:00+00:00",
    "reason": None,
    "purchase_id": "907",
    "points": "18.00",
    "processed_at": "2026-03-11T10:00:00+00:00",
    "events": [
        {"action": "file", "status": "open", "note": "the till was offline", "actor": "key:5",
         "at": "2026-03-10T09:00:00+00:00"},
        {"action": "confirm", "status": "confirmed", "note": None, "actor": "key:9",
         "at": "2026-03-11T10:00:00+00:00"},
        {"action": "process", "status": "processed", "note": "purchase 907", "actor": "key:9",
         "at": "2026-03-11T10:00:00+00:00"},
    ],
}  # fmt: skip
LIST_EXAMPLE = {
    "items": [{k: v for k, v in CLAIM_EXAMPLE.items() if k != "events"}],
    "next": None,
}
FILING = {
    "type": "object",
    "required": ["receipt_id", "location", "member", "at", "lines"],
    "properties": {
        "receipt_id": text(),
        "location": {**CODE, "description": "the location the receipt was printed at"},
        "member": text(description=MEMBER_REF),
        "at": {"type": "string", "format": "date-time",
               "description": "the receipt's time (without offset: the location's local time)"},
        "lines": {"type": "array", "items": LINE, "minItems": 1},
        "note": note(),
    },
    "additionalProperties": False,
}  # fmt: skip
FILING_EXAMPLE = {
    "receipt_id": "R-1001",
    "location": "rest-a",
    "member": "card:100001",
    "at": "2026-03-09T16:30:00+03:00",
    "lines": [{"sku": "CAP-300", "qty": 2, "price": "180.00"}],
    "note": "the till was offline",
}
CONFIRMING = nullable_optionals(
    {"type": "object", "properties": {"reason": note()}, "additionalProperties": False}
)
REJECTING = {
    "type": "object",
    "required": ["reason"],
    "properties": {"reason": note()},
    "additionalProperties": False,
}
FILERS = ("admin", "support")
READERS = ("admin", "support", "analyst", "partner")
DECIDERS = ("admin", "partner")  # the partner decides what its own receipts earn
Listed = Literal["open", "confirmed", "processed", "rejected"]
assert set(Listed.__args__) == {s.value for s in Status}  # type: ignore[attr-defined]

CLAIMS = "/v1/programs/{program}/claims"
router = APIRouter(tags=["claims"])


@router.post(
    CLAIMS,
    status_code=201,
    summary="File a claim for a receipt that earned nothing",
    openapi_extra=body(FILING, FILING_EXAMPLE, replays=True, answer=(201, CLAIM_EXAMPLE)),
)
async def file_claim(
    program: str,
    data: Body,
    engine: Database,
    who: Annotated[keys.Principal, Depends(caller(*FILERS))],
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """A claim for a purchase that earned nothing: the receipt's id, time, location and
    lines as the receipt shows them, the member, and a note. `201` with the new claim; a
    receipt claimed before answers its claim (`200`, unchanged); a receipt already
    processed at that location is `409` naming its purchase; a time in the future or
    older than the program's `claims.within_days` is `422`."""
    answer, made = await run(engine, claims.file_claim, engine, program, data,
                             actor=f"key:{who.key_id}", now=now(),
                             idempotency_key=idempotency_key)  # fmt: skip
    return created(answer, made)


@router.get(
    CLAIMS,
    summary="The program's claims (the queue: status=open)",
    openapi_extra=problems(answer=(200, LIST_EXAMPLE)),
)
async def list_claims(
    program: str,
    engine: Database,
    who: Annotated[keys.Principal, Depends(caller(*READERS))],
    status: Listed | None = None,
    before: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Any:
    """Claims newest first, of one `status` when given, each with its `due_at` and
    `overdue`; pass `next` as `before` for the next page. A partner's key lists its own
    partner's claims only."""
    return await run(engine, claims.list_claims, engine, program, now=now(), status=status,
                     before=before, limit=limit, partner=who.partner)  # fmt: skip


@router.get(
    CLAIMS + "/{claim}",
    summary="One claim and every step of its life",
    openapi_extra=problems(answer=(200, CLAIM_EXAMPLE)),
)
async def read_claim(
    program: str,
    claim: str,
    engine: Database,
    who: Annotated[keys.Principal, Depends(caller(*READERS))],
) -> Any:
    """The claim with its events — filed, confirmed or rejected, processed — who, when, why."""
    return await run(engine, claims.read_claim, engine, program, claim, now=now(),
                     partner=who.partner)  # fmt: skip


def _decision(action: str, summary: str, meaning: str) -> None:
    async def decide(
        program: str,
        claim: str,
        engine: Database,
        who: Annotated[keys.Principal, Depends(caller(*DECIDERS))],
        data: OptionalBody,
    ) -> JSONResponse:
        answer, _made = await run(engine, claims.decide, engine, program, claim, action, data,
                                  actor=f"key:{who.key_id}", now=now(),
                                  partner=who.partner)  # fmt: skip
        return JSONResponse(answer)

    decide.__name__ = f"{action}_claim"
    decide.__doc__ = (
        f"{meaning} The same decision again answers the claim as it stands and changes "
        "nothing; the other decision after one is `409`; a partner's key decides its own "
        "partner's claims only (another's is `404`)."
    )
    extra = problems(answer=(200, CLAIM_EXAMPLE))
    extra["requestBody"] = {
        "required": action == "reject",
        "content": {
            "application/json": {"schema": REJECTING if action == "reject" else CONFIRMING}
        },
    }
    router.post(CLAIMS + "/{claim}/" + action, summary=summary, openapi_extra=extra)(decide)


_decision(
    "confirm",
    "Confirm a claim: it is processed as its purchase, once",
    "Confirm an open claim (optional `{reason}`): its receipt is processed as the purchase "
    "it should have been — exactly once, at the program version in force at the receipt's "
    "time, with the receipt's own time, location and id — and the claim keeps that "
    "purchase's id and points. A purchase refused now (the member blocked meanwhile) "
    "leaves the claim open and answers the refusal.",
)
_decision(
    "reject",
    "Reject a claim, with its reason",
    "Reject an open claim: `{reason}` (required, at most 1,000 characters) is kept with it. "
    "A rejected claim is final.",
)


# — the member's own claim, from their personal page (/m/{token}) —

MEMBER_CLAIM = "/m/{token}/claim"
# the member page's headers (a bearer credential in the address: not kept, not passed on),
# but this page posts its one form to itself
MEMBER_HEADERS = {
    **member_page.HEADERS,
    "Content-Security-Policy": member_page.HEADERS["Content-Security-Policy"].replace(
        "form-action 'none'", "form-action 'self'"
    ),
}


@router.get(MEMBER_CLAIM, include_in_schema=False)
async def member_claim_form(request: Request, token: str, engine: Database) -> Response:
    """The claim form of the member the personal link names."""
    target = await _link_target(request, token, engine)
    if isinstance(target, Response):
        return target
    return await _member_page(request, engine, token, target.program, 200)


@router.post(MEMBER_CLAIM, include_in_schema=False)
async def member_claim(request: Request, token: str, engine: Database) -> Response:
    """File the member's claim: the member is the link's, never the form's; at most
    `MEMBER_OPEN_LIMIT` of theirs wait for a decision at a time."""
    if not is_same_origin(request):
        return _plain(403, "The request came from another site.")
    target = await _link_target(request, token, engine)
    if isinstance(target, Response):
        return target
    form = await _form(request)
    try:
        body = {**claims_console.claim_body(form), "member": str(target.member_id)}
        answer, _made = await run(engine, claims.file_claim, engine, target.program, body,
                                  actor=f"member:{target.member_id}", now=now(),
                                  open_limit=MEMBER_OPEN_LIMIT)  # fmt: skip
    except (Conflict, InvalidInput) as error:
        problems = [str(p) for p in getattr(error, "problems", ())] or [error.detail]
        status = 409 if isinstance(error, Conflict) else 422
        return await _member_page(request, engine, token, target.program, status,
                                  problem="; ".join(problems), form=form)  # fmt: skip
    return await _member_page(request, engine, token, target.program, 201, filed=answer)


async def _link_target(request: Request, token: str, engine: Engine) -> LinkTarget | Response:
    secret = request.app.state.member_link_secret
    try:
        return await run(engine, read_token, engine, token, secret=secret, now=now())
    except (ExpiredLink, RevokedLink):
        return _plain(410, "The link to your page has ended: ask the support team for a new one.")
    except NotFound:
        return _plain(404, "There is no such page.")


async def _form(request: Request) -> dict[str, str]:
    form = await request.form(max_files=0, max_fields=10)
    return {key: value for key, value in form.items() if isinstance(value, str)}


def _plain(status: int, message: str) -> Response:
    return PlainTextResponse(member_page.gettext_(message), status_code=status,
                             headers=member_page.HEADERS)  # fmt: skip


async def _member_page(
    request: Request, engine: Engine, token: str, program: str, status: int, **context: Any
) -> Response:  # fmt: skip
    shown = await run(engine, claims.claim_form_context, engine, program)
    language = member_page.page_language(
        request.query_params.get("lang"), request.headers.get("accept-language", ""),
        member_page.program_language(shown["timezone"]),
    )  # fmt: skip
    i18n.use_language(language)
    html = member_page.templates.get_template("member_claim.html").render(
        language=language, path=request.url.path, back=f"/m/{token}",
        form=context.pop("form", {}), **shown, **context,
    )  # fmt: skip
    return HTMLResponse(html, status_code=status, headers=MEMBER_HEADERS)
