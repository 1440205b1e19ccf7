"""The API's own routes, as routers `kopilka.platform.http.app.create_app` includes:
the service's health (`service`), programs (`programs`), members (`members`), purchases
and refunds (`purchases`) and keys (`keys_router`). The mechanics' routes are their own
routers (`kopilka.mechanics.<name>.routes`).

Every endpoint gets the engine (`Database`) and its caller (`caller(...)`) as FastAPI
dependencies: nothing is closed over, so a router can be included in any app whose state
has an engine.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from kopilka.checkout import purchases as purchase_handlers
from kopilka.checkout import refunds
from kopilka.kernel.errors import CouponInvalid, InvalidInput, Problem, TooManyRequests
from kopilka.mechanics.coupons.routes import guess_limiter
from kopilka.members import balances, events
from kopilka.members import handlers as member_handlers
from kopilka.operators import keys
from kopilka.platform.http import examples, schemas
from kopilka.platform.http.common import (
    ANY_ROLE,
    MEMBER_WRITERS,
    SELLERS,
    Body,
    Database,
    DirectRoute,
    FastJSON,
    IdempotencyKey,
    answered_directly,
    at_own_location,
    at_own_partner,
    caller,
    created,
    json_body,
    made_here,
    now,
    principal_of,
    run,
)
from kopilka.platform.http.schemas import body, problems
from kopilka.platform.migrate import is_current
from kopilka.programs import handlers as program_handlers

KEY_FIELDS = {"role", "location", "partner", "label"}
PROGRAM = "/v1/programs/{program}"
MEMBERS = PROGRAM + "/members"
PURCHASES = PROGRAM + "/purchases"
KEYS = PROGRAM + "/keys"

# — the service —

service = APIRouter(tags=["service"])


@service.get("/health")
def health() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@service.get("/ready")
async def ready(engine: Database) -> JSONResponse:
    """The database answers and its schema is current."""
    try:
        current = await run(engine, is_current, engine)
    except Exception as error:  # any failure to reach the database: not ready
        return JSONResponse({"status": "unavailable", "detail": type(error).__name__}, 503)
    if not current:
        return JSONResponse({"status": "unavailable", "detail": "migrations pending"}, 503)
    return JSONResponse({"status": "ok"})


# — programs —

programs = APIRouter(tags=["programs"])


@programs.put(PROGRAM, status_code=201, openapi_extra=body(schemas.PROGRAM, replays=True))
async def apply(
    program: str, body: Body, engine: Database,
    who: Annotated[keys.Principal, Depends(caller("admin"))],
) -> JSONResponse:  # fmt: skip
    """Validate a program file (as JSON) and store it as the program's next version."""
    if isinstance(body, dict) and body.get("code", program) != program:
        raise InvalidInput([Problem("code", f"must be {program!r}, the program in the path")])
    if isinstance(body, dict):
        body.setdefault("code", program)
    applied = await run(engine, program_handlers.apply_program, engine, body,
                        actor=f"key:{who.key_id}", now=now())  # fmt: skip
    answer = {"code": applied.code, "version": applied.version, "created": applied.created}
    return created(answer, applied.created)


@programs.get(PROGRAM, openapi_extra=problems())
async def read(
    program: str, engine: Database, _who: Annotated[Any, Depends(caller(*ANY_ROLE))]
) -> Any:
    """The program's current version and its document."""
    return await run(engine, program_handlers.read_program, engine, program)


@programs.get(PROGRAM + "/versions", openapi_extra=problems(answer=(200, examples.VERSIONS)))
async def versions(
    program: str, engine: Database, _who: Annotated[Any, Depends(caller(*ANY_ROLE))]
) -> Any:
    """Every version of the program, newest first: who applied it and when."""
    return await run(engine, program_handlers.list_versions, engine, program)


@programs.get(PROGRAM + "/versions/{version}", openapi_extra=problems())
async def version(
    program: str, version: Annotated[int, Path(ge=1, le=2**31 - 1)], engine: Database,
    _who: Annotated[Any, Depends(caller(*ANY_ROLE))],
) -> Any:  # fmt: skip
    """One version with its document: what computed the purchases that name it."""
    return await run(engine, program_handlers.read_program_version, engine, program, version)


@programs.get(PROGRAM + "/triggers", openapi_extra=problems())
async def program_triggers(
    program: str, engine: Database, _who: Annotated[Any, Depends(caller(*ANY_ROLE))]
) -> Any:
    """The program's triggers as declared: each occasion and its reward."""
    return await run(engine, events.program_triggers, engine, program)


# — members —

members = APIRouter(tags=["members"])


@members.post(
    MEMBERS,
    status_code=201,
    openapi_extra=body(
        schemas.MEMBER,
        {"card": "100001", "phone": "+79123456789"},
        replays=True,
        answer=(201, examples.MEMBER),
    ),
    name="register",
)
async def register_member(
    program: str, body: Body, engine: Database,
    _who: Annotated[Any, Depends(caller(*MEMBER_WRITERS))],
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:  # fmt: skip
    """Register a member; a card is generated when not given."""
    answer, is_new = await run(engine, member_handlers.register, engine, program, body,
                               now=now(), idempotency_key=idempotency_key)  # fmt: skip
    return created(answer, is_new)


@members.get(MEMBERS + "/{member}", name="read",
             openapi_extra=problems(answer=(200, examples.MEMBER)))  # fmt: skip
async def read_member(
    program: str, member: str, engine: Database,
    _who: Annotated[Any, Depends(caller(*ANY_ROLE))],
) -> Any:  # fmt: skip
    """A member by `{id}`, `card:…`, `phone:…`, `email:…` or `ext:…`, with their
    tier, what the next tier needs, and the privileges the tier gives."""
    return await run(engine, member_handlers.read_member, engine, program, member, now=now())


@members.patch(
    MEMBERS + "/{member}",
    openapi_extra=body(
        schemas.PROFILE,
        {"name": "Анна", "consents": {"sms": False}},
        answer=(200, examples.MEMBER),
    ),
)
async def update(
    program: str, member: str, body: Body, engine: Database,
    _who: Annotated[Any, Depends(caller("admin", "support"))],
) -> Any:  # fmt: skip
    """Change the profile: `phone`, `email`, `name`, `birthday` (null clears one), and
    consents `{personal_data, sms, email, push, calls: true|false}`."""
    return await run(engine, member_handlers.update_member, engine, program, member, body,
                     now=now())  # fmt: skip


@members.get(MEMBERS + "/{member}/events", openapi_extra=problems(answer=(200, examples.EVENTS)))
async def member_events(
    program: str, member: str, engine: Database,
    _who: Annotated[Any, Depends(caller(*ANY_ROLE))],
    before: Annotated[int | None, Query(ge=1, le=2**53)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Any:  # fmt: skip
    """What happened to the member by itself, newest first: triggers fired
    (`trigger.<code>`), `expiry.warning`s, `expiry`s; `next` is the next page's
    `before`."""
    return await run(engine, events.member_events, engine, program, member,
                     before=before, limit=limit)  # fmt: skip


def _member_status(action: str, status: str) -> Callable[..., Any]:
    async def change(
        program: str, member: str, engine: Database,
        _who: Annotated[Any, Depends(caller("admin", "support"))],
        idempotency_key: IdempotencyKey = None,
    ) -> Any:  # fmt: skip
        return await run(engine, member_handlers.set_member_status, engine, program, member,
                         status, now=now(), idempotency_key=idempotency_key)  # fmt: skip

    change.__name__ = f"{action}_member"
    change.__doc__ = f"{action.capitalize()} a member: status `{status}`."
    return change


for _action, _status in (("block", "blocked"), ("unblock", "active")):
    members.post(MEMBERS + "/{member}/" + _action, openapi_extra=problems())(
        _member_status(_action, _status)
    )


@members.get(MEMBERS + "/{member}/balance", openapi_extra=problems(answer=(200, examples.BALANCE)))
async def balance(
    program: str, member: str, engine: Database,
    _who: Annotated[Any, Depends(caller(*ANY_ROLE))],
) -> Any:  # fmt: skip
    """Available, pending and held points, lifetime figures and what expires when."""
    return await run(engine, balances.balance, engine, program, member)


@members.get(MEMBERS + "/{member}/history", openapi_extra=problems(answer=(200, examples.HISTORY)))
async def history(
    program: str, member: str, engine: Database,
    _who: Annotated[Any, Depends(caller(*ANY_ROLE))],
    before: Annotated[int | None, Query(ge=1, le=2**53)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Any:  # fmt: skip
    """Every movement, newest first; pass `next` as `before` for the next page."""
    return await run(engine, balances.history, engine, program, member, before=before, limit=limit)


@members.post(
    MEMBERS + "/{member}/adjustments",
    status_code=201,
    openapi_extra=body(
        schemas.ADJUSTMENT,
        {"points": "100", "reason": "a gift"},
        replays=True,
        answer=(201, examples.ADJUSTMENT),
    ),
)
async def adjust(
    program: str, member: str, body: Body, engine: Database,
    who: Annotated[keys.Principal, Depends(caller("admin", "support"))],
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:  # fmt: skip
    """A manual correction with a mandatory reason; `adjustment_id` (or an
    `Idempotency-Key`) makes a repeat answer the first result."""
    answer, is_new = await run(
        engine, balances.make_adjustment, engine, program, member, body,
        actor=f"key:{who.key_id}", now=now(), idempotency_key=idempotency_key,
    )  # fmt: skip
    return created(answer, is_new)


# — purchases and refunds —

# the two hot routes are answered directly (`DirectRoute`): their `direct` twins read the
# request as the endpoints' parameters declare, in the same order
purchases = APIRouter(tags=["purchases"], route_class=DirectRoute)


async def _seller_request(request: Request) -> tuple[str, Any, keys.Principal]:
    """The path's program, the body, then the seller's key — as the endpoints' parameters
    declare them, in their order (a body's problem before the key's)."""
    program = request.path_params["program"]
    body = await json_body(request)
    who = await principal_of(request, program, request.headers.get("authorization"), SELLERS)
    return program, body, who


async def _quote_directly(request: Request) -> Response:
    program, body, who = await _seller_request(request)
    answer: Response = await quote(request, program, body, request.app.state.engine, who)
    return answer


async def _purchase_directly(request: Request) -> Response:
    program, body, who = await _seller_request(request)
    return await purchase(request, program, body, request.app.state.engine, who,
                          request.headers.get("idempotency-key"))  # fmt: skip


@purchases.post(
    PURCHASES + "/quote",
    openapi_extra=body(schemas.RECEIPT, schemas.RECEIPT_EXAMPLE, answer=(200, examples.QUOTE)),
)
@answered_directly(_quote_directly)
async def quote(
    request: Request, program: str, body: Body, engine: Database,
    who: Annotated[keys.Principal, Depends(caller(*SELLERS))],
) -> Any:  # fmt: skip
    """The answer a purchase would get, with no side effects."""
    at_own_location(who, body)
    if who.partner is not None:
        await run(engine, at_own_partner, engine, who, program, body)
    async with coupon_guesses(request, who, program, body):
        answer = await run(engine, purchase_handlers.quote_purchase, engine, program, body,
                           now=now())  # fmt: skip
        unknown_coupons(request, who, answer)
    return FastJSON(answer)


@purchases.post(
    PURCHASES,
    status_code=201,
    openapi_extra=body(
        schemas.RECEIPT, schemas.RECEIPT_EXAMPLE, replays=True, answer=(201, examples.PURCHASE)
    ),
)
@answered_directly(_purchase_directly)
async def purchase(
    request: Request, program: str, body: Body, engine: Database,
    who: Annotated[keys.Principal, Depends(caller(*SELLERS))],
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:  # fmt: skip
    """Process a purchase: `201` the first time, `200` with the same answer on a replay."""
    at_own_location(who, body)
    if who.partner is not None:
        await run(engine, at_own_partner, engine, who, program, body)
    async with coupon_guesses(request, who, program, body):
        result = await run(
            engine, purchase_handlers.process_purchase, engine, program, body, now=now(),
            actor=f"key:{who.key_id}", idempotency_key=idempotency_key,
        )  # fmt: skip
    return created(result.answer, result.created)


@purchases.get(PURCHASES + "/{purchase_id}", name="read",
               openapi_extra=problems(answer=(200, examples.PURCHASE)))  # fmt: skip
async def read_purchase(
    program: str, purchase_id: str, engine: Database,
    who: Annotated[keys.Principal, Depends(caller(*ANY_ROLE))],
) -> Any:  # fmt: skip
    """A purchase's answer, with its status as it stands now."""
    if who.partner is not None:  # another partner's purchase does not exist for its key
        await run(engine, made_here, engine, who, program, purchase_id)
    return await run(engine, purchase_handlers.read_purchase, engine, program, purchase_id)


def _settle(action: str) -> Callable[..., Any]:
    async def settle(
        program: str, purchase_id: str, engine: Database,
        who: Annotated[keys.Principal, Depends(caller(*SELLERS))],
        idempotency_key: IdempotencyKey = None,
    ) -> JSONResponse:  # fmt: skip
        await run(engine, made_here, engine, who, program, purchase_id)
        answer, _replayed = await run(
            engine, purchase_handlers.settle_hold, engine, program, purchase_id, action,
            actor=f"key:{who.key_id}", now=now(), idempotency_key=idempotency_key,
        )  # fmt: skip
        return JSONResponse(answer, status_code=200)

    settle.__name__ = f"{action}_purchase"
    settle.__doc__ = f"{action.capitalize()} a held purchase; a repeat answers the first result."
    return settle


for _action in ("confirm", "cancel"):
    purchases.post(PURCHASES + "/{purchase_id}/" + _action, openapi_extra=problems())(
        _settle(_action)
    )


@purchases.post(
    PURCHASES + "/{purchase_id}/refunds",
    status_code=201,
    openapi_extra=body(
        schemas.REFUND,
        {"refund_id": "RF-1", "lines": [{"n": 0, "qty": 1}]},
        replays=True,
        answer=(201, examples.REFUND),
    ),
)
async def refund(
    program: str, purchase_id: str, body: Body, engine: Database,
    who: Annotated[keys.Principal, Depends(caller(*SELLERS))],
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:  # fmt: skip
    """Refund the whole receipt or some of its lines; replays answer the first result."""
    await run(engine, made_here, engine, who, program, purchase_id)
    answer, is_new = await run(
        engine, refunds.refund_purchase, engine, program, purchase_id, body,
        actor=f"key:{who.key_id}", now=now(), idempotency_key=idempotency_key,
    )  # fmt: skip
    return created(answer, is_new)


@asynccontextmanager
async def coupon_guesses(
    request: Request, who: keys.Principal, program: str, body: Any
) -> AsyncIterator[None]:
    """Refuse a key (or a member) that sent too many unknown coupon codes lately; count a
    purchase refused for an unknown code as a guess. The member is counted by their id,
    so naming them by card, phone, email or id in turn buys no more guesses."""
    codes = body.get("coupons") if isinstance(body, dict) else None
    if not codes:
        yield
        return
    limiter = guess_limiter(request.app)
    engine = request.app.state.engine
    ref = body.get("member")
    member = (
        await run(engine, member_handlers.member_id_of, engine, program, ref)
        if isinstance(ref, str) else None
    )  # fmt: skip
    wait = limiter.retry_after(who.key_id, member)
    if wait:
        raise TooManyRequests(f"too many unknown coupon codes: retry in {wait:.0f} s")
    try:
        yield
    except CouponInvalid as refused:
        if refused.reason == "not_found":
            limiter.failed(who.key_id, member)
        raise


def unknown_coupons(request: Request, who: keys.Principal, answer: Any) -> None:
    """Count each unknown code a quote was asked about as a guess (for its member's id)."""
    limiter = guess_limiter(request.app)
    member = int(answer["member"]) if answer.get("member") else None
    for coupon in answer.get("coupons") or []:
        if coupon.get("reason") == "not_found":
            limiter.failed(who.key_id, member)


# — keys —

keys_router = APIRouter(tags=["keys"])


@keys_router.post(
    KEYS,
    status_code=201,
    openapi_extra=body(
        schemas.KEY, {"role": "pos", "location": "kiosk"}, answer=(201, examples.KEY)
    ),
)
async def create(
    program: str, body: Body, engine: Database, _who: Annotated[Any, Depends(caller("admin"))]
) -> Any:
    """A new key `{role, location?, partner?, label?}`; its text is in the answer, once."""
    if not isinstance(body, dict):
        raise InvalidInput([Problem("", "must be an object with a role")])
    wrong = [Problem(key, "unknown key") for key in sorted(set(body) - KEY_FIELDS)]
    wrong += [Problem(key, "must be text") for key in ("role", "location", "partner", "label")
              if body.get(key) is not None and not isinstance(body[key], str)]  # fmt: skip
    if wrong:
        raise InvalidInput(wrong)
    key, record = await run(
        engine, keys.create_key, engine, program, str(body.get("role")),
        location=body.get("location"), partner=body.get("partner"), label=body.get("label"),
        now=now(),
    )  # fmt: skip
    return {"key": key, **record}


@keys_router.get(KEYS, openapi_extra=problems())
async def listed(
    program: str, engine: Database, _who: Annotated[Any, Depends(caller("admin"))]
) -> Any:
    """The program's keys (never their text)."""
    return {"items": await run(engine, keys.list_keys, engine, program)}


@keys_router.delete(KEYS + "/{key_id}", openapi_extra=problems())
async def revoke(
    request: Request, program: str, key_id: str, engine: Database,
    _who: Annotated[Any, Depends(caller("admin"))],
) -> Any:  # fmt: skip
    """Revoke a key: it stops working at once in this server (within a second in the
    other worker processes of a `--workers N` server)."""
    revoked = await run(engine, keys.revoke_key, engine, program, key_id, now=now())
    request.app.state.known_keys.forget(int(revoked["id"]))
    return revoked


ROUTERS = (service, programs, members, purchases, keys_router)
