"""The coupon routes (issue 7): `router`, included by `kopilka.platform.http.app.create_app`.

    admin                         campaigns, batches of codes, the codes' export
    admin, support, analyst       read campaigns and batches
    admin, support, pos, partner  issue a coupon to a member, gift it to another
    any key                       a coupon by its code, a member's coupons

A pos or partner key that looks up unknown codes too often is slowed down
(`kopilka.mechanics.coupons.limits`): codes are bearer secrets, and guessing them must not pay.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from kopilka.kernel.errors import NotFound, TooManyRequests
from kopilka.mechanics.coupons import handlers as coupons
from kopilka.mechanics.coupons.limits import CouponGuessLimiter
from kopilka.operators.keys import Principal
from kopilka.platform.http.common import (
    ANY_ROLE,
    MEMBER_WRITERS,
    Body,
    Database,
    IdempotencyKey,
    caller,
    created,
    now,
    run,
)
from kopilka.platform.http.schemas import AMOUNT, MEMBER_REF, body, problems, text

READERS = ("admin", "support", "analyst")
GUESSERS = ("pos", "partner")  # keys that face the public: their unknown codes are counted
EXPORT_PAGE = 10_000

CODES = {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}
NAME = text()
CAMPAIGN = {
    "type": "object",
    "required": ["code", "kind", "effect"],
    "properties": {
        "code": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"},
        "name": NAME,
        "kind": {"enum": ["unique", "public"]},
        "public_code": {"type": "string", "description": "a public campaign's one code"},
        "valid": {"type": "object", "properties": {
            "from": {"type": "string", "description": "a date or a time (the program's "
                                                      "time zone unless it has an offset)"},
            "until": {"type": "string", "description": "a date (through that day) or a time"},
        }, "additionalProperties": False},
        "limits": {"type": "object", "properties": {
            "per_code": {"type": "integer", "minimum": 1},
            "per_member": {"type": "integer", "minimum": 1},
            "total": {"type": "integer", "minimum": 1},
            "budget": AMOUNT,
        }, "additionalProperties": False},
        "conditions": {"type": "object", "properties": {
            "min_sum": AMOUNT, "categories": CODES, "skus": CODES, "partners": CODES,
            "locations": CODES, "segments": CODES, "tiers": CODES,
        }, "additionalProperties": False},
        "effect": {"type": "object", "description": "exactly one of percent, amount, "
                   "points, free_sku", "properties": {
            "percent": AMOUNT, "amount": AMOUNT, "points": AMOUNT,
            "free_sku": {"type": "string"}, "skus": CODES, "categories": CODES,
            "earn_points": {"type": "boolean"},
        }, "additionalProperties": False},
        "issued_only": {"type": "boolean"},
        "paused": {"type": "boolean"},
    },
    "additionalProperties": False,
}  # fmt: skip
CAMPAIGN_EXAMPLE = {
    "code": "spring",
    "name": "Весна: −10 % на кофе",
    "kind": "unique",
    "valid": {"from": "2026-03-01", "until": "2026-05-31"},
    "limits": {"per_member": 1, "budget": "50000.00"},
    "conditions": {"min_sum": "300.00", "categories": ["coffee"]},
    "effect": {"percent": 10, "categories": ["coffee"]},
}
CAMPAIGN_ANSWER = {
    "code": "spring", "name": "Весна: −10 % на кофе", "kind": "unique", "public_code": None,
    "valid": {"from": "2026-03-01T00:00:00+03:00", "until": "2026-06-01T00:00:00+03:00"},
    "limits": {"per_code": 1, "per_member": 1, "total": None, "budget": "50000.00"},
    "conditions": {"min_sum": "300.00", "categories": ["coffee"], "skus": None,
                   "partners": None, "locations": None, "segments": None, "tiers": None},
    "effect": {"percent": "10", "amount": None, "points": None, "free_sku": None,
               "skus": None, "categories": ["coffee"], "earn_points": False},
    "issued_only": False, "paused": False, "status": "active",
    "codes": {"generated": 1000, "issued": 120, "used": 37, "redeemed": 37},
    "redemptions": {"count": 37, "discount": "666.00", "points": "0.00"},
    "created_at": "2026-02-20T09:00:00+00:00", "updated_at": "2026-02-20T09:00:00+00:00",
    "actor": "key:1",
}  # fmt: skip
PATCH = {**CAMPAIGN, "required": []}
BATCH = {
    "type": "object",
    "required": ["count"],
    "properties": {"count": {"type": "integer", "minimum": 1, "maximum": 1_000_000}},
    "additionalProperties": False,
}
BATCH_ANSWER = {"id": "1", "campaign": "spring", "count": 1000, "actor": "key:1",
                "created_at": "2026-02-20T09:00:00+00:00"}  # fmt: skip
ISSUE = {
    "type": "object",
    "required": ["member", "channel"],
    "properties": {
        "member": text(description=MEMBER_REF),
        "channel": {"enum": list(coupons.CHANNELS)},
    },
    "additionalProperties": False,
}
GIFT = {
    "type": "object",
    "required": ["from", "to"],
    "properties": {
        "from": text(description="the owner: " + MEMBER_REF),
        "to": text(description="the friend: " + MEMBER_REF),
    },
    "additionalProperties": False,
}
COUPON_ANSWER = {
    "code": "7KXM-3HPR-4D", "campaign": "spring", "kind": "unique", "status": "issued",
    "owner": "42", "channel": "sms", "issued_at": "2026-03-02T10:00:00+00:00", "uses": 0,
    "uses_left": 1, "valid": CAMPAIGN_ANSWER["valid"], "effect": CAMPAIGN_ANSWER["effect"],
    "conditions": CAMPAIGN_ANSWER["conditions"],
}  # fmt: skip


def _codes_answers() -> dict[str, Any]:
    extra = problems()
    extra["responses"]["200"] = {"description": "the codes: CSV, or a page of JSON", "content": {
        "text/csv": {"schema": {"type": "string"}, "example":
                     "code,status,owner,card,channel,issued_at,uses,batch\n"
                     "7KXM-3HPR-4D,issued,42,100001,sms,2026-03-02T10:00:00+00:00,0,1\n"},
        "application/json": {"schema": {"type": "object"}},
    }}  # fmt: skip
    return extra


def guess_limiter(app: Any) -> CouponGuessLimiter:
    """The app's one limiter of unknown coupon codes, made on first use: the coupon routes
    and the purchases (`kopilka.platform.http.routes`) count towards the same limit."""
    limiter = getattr(app.state, "coupon_guesses", None)
    if not isinstance(limiter, CouponGuessLimiter):
        limiter = app.state.coupon_guesses = CouponGuessLimiter()
    return limiter


@contextmanager
def guesses_counted(request: Request, who: Principal) -> Iterator[None]:
    """A pos or partner key past the guessing limit is refused; an unknown code it sends
    (`404`) counts towards the limit — wherever a code is looked up by what was typed."""
    limiter = guess_limiter(request.app)
    counted = who.role in GUESSERS
    wait = limiter.retry_after(who.key_id, None) if counted else 0.0
    if wait:
        raise TooManyRequests(f"too many unknown coupon codes: retry in {wait:.0f} s")
    try:
        yield
    except NotFound:
        if counted:
            limiter.failed(who.key_id, None)
        raise


CAMPAIGNS = "/v1/programs/{program}/coupon-campaigns"
COUPON = "/v1/programs/{program}/coupons/{code}"
router = APIRouter()

# — campaigns —


@router.post(CAMPAIGNS, tags=["coupons"], status_code=201, openapi_extra=body(
    CAMPAIGN, CAMPAIGN_EXAMPLE, replays=True, answer=(201, CAMPAIGN_ANSWER)))  # fmt: skip
async def create_campaign(
    program: str, body: Body, engine: Database,
    who: Annotated[Principal, Depends(caller("admin"))],
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:  # fmt: skip
    """A coupon campaign: unique single-use codes (generated in batches) or one public
    code; validity, limits, conditions and one effect (docs/coupons.md)."""
    answer, is_new = await run(engine, coupons.create_campaign, engine, program, body,
                               actor=f"key:{who.key_id}", now=now(),
                               idempotency_key=idempotency_key)  # fmt: skip
    return created(answer, is_new)


@router.get(CAMPAIGNS, tags=["coupons"], openapi_extra=problems())
async def list_campaigns(
    program: str, engine: Database, _who: Annotated[Any, Depends(caller(*READERS))]
) -> Any:
    """The program's coupon campaigns, newest first, with their redemption totals."""
    return await run(engine, coupons.list_campaigns, engine, program, now=now())


@router.get(CAMPAIGNS + "/{code}", tags=["coupons"],
            openapi_extra=problems(answer=(200, CAMPAIGN_ANSWER)))  # fmt: skip
async def read_campaign(
    program: str, code: str, engine: Database,
    _who: Annotated[Any, Depends(caller(*READERS))],
) -> Any:  # fmt: skip
    """A campaign with its status, redemption totals and codes issued and used."""
    return await run(engine, coupons.read_campaign_of, engine, program, code, now=now())


@router.patch(CAMPAIGNS + "/{code}", tags=["coupons"], openapi_extra=body(
    PATCH, {"paused": True}, answer=(200, CAMPAIGN_ANSWER)))  # fmt: skip
async def change_campaign(
    program: str, code: str, body: Body, engine: Database,
    _who: Annotated[Any, Depends(caller("admin"))],
) -> Any:  # fmt: skip
    """Pause or resume (`paused`), extend (`valid.until`), change limits, conditions,
    the effect or the name; `valid`, `limits` and `conditions` change key by key."""
    return await run(engine, coupons.update_campaign, engine, program, code, body,
                     now=now())  # fmt: skip


@router.post(CAMPAIGNS + "/{code}/batches", tags=["coupons"], status_code=201,
             openapi_extra=body(BATCH, {"count": 1000}, replays=True,
                                answer=(201, BATCH_ANSWER)))  # fmt: skip
async def create_batch(
    program: str, code: str, body: Body, engine: Database,
    who: Annotated[Principal, Depends(caller("admin"))],
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:  # fmt: skip
    """`{count}` new single-use codes (up to 1,000,000), unique in the program."""
    answer, is_new = await run(engine, coupons.create_batch, engine, program, code, body,
                               actor=f"key:{who.key_id}", now=now(),
                               idempotency_key=idempotency_key)  # fmt: skip
    return created(answer, is_new)


@router.get(CAMPAIGNS + "/{code}/batches", tags=["coupons"], openapi_extra=problems())
async def list_batches(
    program: str, code: str, engine: Database,
    _who: Annotated[Any, Depends(caller(*READERS))],
) -> Any:  # fmt: skip
    """The campaign's batches of codes, newest first."""
    return await run(engine, coupons.list_batches, engine, program, code)


# — the codes' export —


@router.get(CAMPAIGNS + "/{code}/codes", tags=["coupons"], openapi_extra=_codes_answers(),
            response_model=None)  # fmt: skip
async def export_codes(
    program: str, code: str, engine: Database,
    _who: Annotated[Any, Depends(caller("admin"))],
    status: Annotated[Literal["available", "issued", "used"] | None, Query()] = None,
    shape: Annotated[Literal["csv", "json"], Query(alias="format")] = "csv",
    after: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=EXPORT_PAGE)] = 1000,
) -> Any:  # fmt: skip
    """The campaign's codes with their status, owner, issue channel and uses: all of
    them as CSV (`format=csv`, the default), or a page of JSON (`format=json`, `next`
    is the following page's `after`). `status`: available, issued or used only."""
    if shape == "json":
        return await run(engine, coupons.code_page, engine, program, code, status=status,
                         after=after, limit=limit)  # fmt: skip
    # the first page is read before answering, so a wrong campaign is still a 404
    first = await run(engine, coupons.code_page, engine, program, code, status=status,
                      after=after, limit=EXPORT_PAGE)  # fmt: skip

    async def lines() -> AsyncIterator[str]:
        page = first
        yield coupons.csv_text(page["items"], header=True)
        while page["next"] is not None:
            page = await run(
                engine,
                coupons.code_page,
                engine,
                program,
                code,
                status=status,
                after=int(page["next"]),
                limit=EXPORT_PAGE,
            )
            yield coupons.csv_text(page["items"], header=False)

    disposition = f'attachment; filename="{program}-{code}-codes.csv"'.encode(
        "latin-1", "replace").decode("latin-1")  # fmt: skip
    return StreamingResponse(lines(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": disposition})  # fmt: skip


# — coupons by their code —


@router.get(COUPON, tags=["coupons"], openapi_extra=problems(answer=(200, COUPON_ANSWER)))
async def read_coupon(
    request: Request, program: str, code: str, engine: Database,
    who: Annotated[Principal, Depends(caller(*ANY_ROLE))],
) -> Any:  # fmt: skip
    """A coupon by its code as people type it (any case, dashes, look-alikes): its
    status, campaign, owner and uses. Unknown codes from a pos or partner key count
    towards the guessing limit (`429` past it)."""
    with guesses_counted(request, who):
        return await run(engine, coupons.read_coupon, engine, program, code, now=now())


@router.post(COUPON + "/issue", tags=["coupons"], openapi_extra=body(
    ISSUE, {"member": "card:100001", "channel": "sms"}, replays=True,
    answer=(201, COUPON_ANSWER)), status_code=201)  # fmt: skip
async def issue_coupon(
    request: Request, program: str, code: str, body: Body, engine: Database,
    who: Annotated[Principal, Depends(caller(*MEMBER_WRITERS))],
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:  # fmt: skip
    """Issue a coupon to a member `{member, channel}` (sms, email, push, partner_site,
    pos): `201`; to its owner again (a resend, the channel recorded anew): `200`.
    Unknown codes from a pos or partner key count towards the guessing limit."""
    with guesses_counted(request, who):
        answer, is_new = await run(engine, coupons.issue_coupon, engine, program, code,
                                   body, now=now(),
                                   idempotency_key=idempotency_key)  # fmt: skip
    return created(answer, is_new)


@router.post(COUPON + "/gift", tags=["coupons"], openapi_extra=body(
    GIFT, {"from": "card:100001", "to": "card:100002"}, replays=True,
    answer=(201, COUPON_ANSWER)), status_code=201)  # fmt: skip
async def gift_coupon(
    request: Request, program: str, code: str, body: Body, engine: Database,
    who: Annotated[Principal, Depends(caller(*MEMBER_WRITERS))],
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:  # fmt: skip
    """Give an unused coupon `{from, to}`: from its owner to a friend. Unknown codes
    from a pos or partner key count towards the guessing limit."""
    with guesses_counted(request, who):
        answer, is_new = await run(engine, coupons.gift_coupon, engine, program, code, body,
                                   actor=f"key:{who.key_id}", now=now(),
                                   idempotency_key=idempotency_key)  # fmt: skip
    return created(answer, is_new)


@router.get("/v1/programs/{program}/members/{member}/coupons", tags=["members"],
            openapi_extra=problems())  # fmt: skip
async def member_coupons(
    program: str, member: str, engine: Database,
    _who: Annotated[Any, Depends(caller(*ANY_ROLE))],
    before: Annotated[int | None, Query(ge=1, le=2**53)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Any:  # fmt: skip
    """The coupons a member holds, newest first; `next` is the next page's `before`."""
    return await run(engine, coupons.member_coupons, engine, program, member, now=now(),
                     before=before, limit=limit)  # fmt: skip
