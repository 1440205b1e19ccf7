"""The HTTP API of shared/API.md, over the services (FastAPI).

Every request body is read as raw JSON and handed to the services, which validate it
and name each problem; errors come out as RFC 9457 problem JSON with the stable codes of
`kopilka.kernel.errors`. Keys are checked on every request: a key of another program is
answered `404 not_found`, exactly as a program that does not exist.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from sqlalchemy import Engine
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.exceptions import HTTPException

from kopilka.checkout import purchases, refunds
from kopilka.checkout.wire import problem_json
from kopilka.kernel.errors import (
    Conflict,
    CouponInvalid,
    InvalidInput,
    KopilkaError,
    Problem,
    TooManyRequests,
    Unavailable,
)
from kopilka.mechanics.cashback import routes as cashback_routes
from kopilka.mechanics.coupons import routes as coupon_routes
from kopilka.mechanics.coupons.limits import CouponGuessLimiter
from kopilka.mechanics.discounts import routes as discount_routes
from kopilka.mechanics.tiers import handlers as tiers
from kopilka.members import balances, events
from kopilka.members import handlers as members
from kopilka.members import page as member_page
from kopilka.operators import keys
from kopilka.platform.console import routes as web_routes
from kopilka.platform.http import examples, schemas
from kopilka.platform.http.allow import with_whole_allow
from kopilka.platform.http.common import (
    ANY_ROLE,
    MEMBER_WRITERS,
    SELLERS,
    Body,
    IdempotencyKey,
    at_own_location,
    caller,
    created,
    made_here,
    now,
    run,
)
from kopilka.platform.http.keycache import KeyCache
from kopilka.platform.http.limits import FailedAuthLimiter
from kopilka.platform.http.schemas import body, problems
from kopilka.platform.migrate import is_current
from kopilka.programs import handlers as programs
from kopilka.programs import rules_pages

PROBLEM = "application/problem+json"
KEY_FIELDS = {"role", "location", "label"}


def create_app(engine: Engine, *, failed_auth: FailedAuthLimiter | None = None) -> FastAPI:
    """The API over `engine`; an async engine's pool is closed when the app stops (its
    connections belong to the app's event loop: they can't be closed from elsewhere)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if engine.dialect.is_async:
            await AsyncEngine(engine).dispose()

    # FastAPI's /docs and /redoc load their scripts from a CDN; these are served from the
    # package itself, so the docs work offline and the browser fetches nothing elsewhere
    app = FastAPIOffline(
        lifespan=lifespan,
        title="Kopilka",
        version="1",
        description="Loyalty programs: points, purchases, refunds, members. "
        "Authenticate with `Authorization: Bearer <key>`.",
    )
    app.state.engine = engine
    app.state.failed_auth = failed_auth or FailedAuthLimiter()
    app.state.known_keys = KeyCache()

    app.add_exception_handler(HTTPException, with_whole_allow)  # type: ignore[arg-type]

    @app.exception_handler(KopilkaError)
    async def kopilka_error(_request: Request, error: KopilkaError) -> JSONResponse:
        wait = {TooManyRequests: "60", Unavailable: "1"}.get(type(error))
        headers = {"Retry-After": wait} if wait else None
        return JSONResponse(problem_json(error), status_code=error.status, media_type=PROBLEM,
                            headers=headers)  # fmt: skip

    @app.exception_handler(OperationalError)
    async def database_unavailable(_request: Request, _error: OperationalError) -> JSONResponse:
        # the database is down or restarting: nothing was written (each use case is one
        # transaction), and the client may send the same request again
        return await kopilka_error(_request, Unavailable("the database is not reachable now"))

    @app.exception_handler(IntegrityError)
    async def taken_meanwhile(_request: Request, _error: IntegrityError) -> JSONResponse:
        # a backstop: a unique row a concurrent request wrote first (the services retry or
        # check where it matters); nothing of this request was written, it may be sent again
        return await kopilka_error(_request, Conflict("a concurrent request changed the same "
                                                      "thing first; send it again"))  # fmt: skip

    @app.exception_handler(DataError)
    async def value_does_not_fit(_request: Request, error: DataError) -> JSONResponse:
        # a backstop: the services check lengths and ranges first; should one slip past,
        # the transaction is rolled back and the caller hears which kind of value it was
        detail = str(error.orig).splitlines()[0] if error.orig else "a value does not fit"
        return await kopilka_error(_request, InvalidInput([Problem("", detail)]))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, error: RequestValidationError) -> JSONResponse:
        problems = [
            Problem(".".join(str(part) for part in item["loc"]), item["msg"])
            for item in error.errors()
        ]  # fmt: skip
        return await kopilka_error(_request, InvalidInput(problems))

    @app.get("/health", tags=["service"])
    def health() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/ready", tags=["service"])
    async def ready() -> JSONResponse:
        """The database answers and its schema is current."""
        try:
            current = await run(engine, is_current, engine)
        except Exception as error:  # any failure to reach the database: not ready
            return JSONResponse({"status": "unavailable", "detail": type(error).__name__}, 503)
        if not current:
            return JSONResponse({"status": "unavailable", "detail": "migrations pending"}, 503)
        return JSONResponse({"status": "ok"})

    for register in (_programs, _members, _purchases, _keys, discount_routes.register,
                     coupon_routes.register, cashback_routes.register,
                     web_routes.register, rules_pages.register,
                     member_page.register):  # fmt: skip
        register(app, engine)
    app.openapi = partial(_openapi_with_nulls, app)  # type: ignore[method-assign]
    return app


def _openapi_with_nulls(app: FastAPI) -> dict[str, Any]:
    """FastAPI's OpenAPI document, with the answer examples as the routes declare them:
    FastAPI drops every null on the way out, and a null is part of an answer's shape
    (`"email": null` says the field exists)."""
    if app.openapi_schema is None:
        document = get_openapi(title=app.title, version=app.version,
                               description=app.description, routes=app.routes)  # fmt: skip
        for route in app.routes:
            if isinstance(route, APIRoute) and route.openapi_extra:
                _restore_examples(document["paths"][route.path], route)
        app.openapi_schema = document
    return app.openapi_schema


def _restore_examples(path: dict[str, Any], route: APIRoute) -> None:
    declared = (route.openapi_extra or {}).get("responses", {})
    for method in route.methods or ():
        responses = path[method.lower()]["responses"]
        for status, answer in declared.items():
            for media, content in answer.get("content", {}).items():
                if "example" in content:
                    responses[status]["content"][media]["example"] = content["example"]


# — routes —


def _programs(app: FastAPI, engine: Engine) -> None:
    @app.put(
        "/v1/programs/{program}",
        tags=["programs"],
        status_code=201,
        openapi_extra=body(schemas.PROGRAM, replays=True),
    )
    async def apply(
        program: str, body: Body, who: Annotated[keys.Principal, Depends(caller("admin"))]
    ) -> JSONResponse:
        """Validate a program file (as JSON) and store it as the program's next version."""
        if isinstance(body, dict) and body.get("code", program) != program:
            raise InvalidInput([Problem("code", f"must be {program!r}, the program in the path")])
        if isinstance(body, dict):
            body.setdefault("code", program)
        applied = await run(
            engine, programs.apply_program, engine, body, actor=f"key:{who.key_id}", now=now()
        )
        answer = {"code": applied.code, "version": applied.version, "created": applied.created}
        return created(answer, applied.created)

    @app.get("/v1/programs/{program}", tags=["programs"], openapi_extra=problems())
    async def read(program: str, _who: Annotated[Any, Depends(caller(*ANY_ROLE))]) -> Any:
        """The program's current version and its document."""
        return await run(engine, programs.read_program, engine, program)

    @app.get("/v1/programs/{program}/versions", tags=["programs"],
             openapi_extra=problems(answer=(200, examples.VERSIONS)))  # fmt: skip
    async def versions(program: str, _who: Annotated[Any, Depends(caller(*ANY_ROLE))]) -> Any:
        """Every version of the program, newest first: who applied it and when."""
        return await run(engine, programs.list_versions, engine, program)

    @app.get("/v1/programs/{program}/versions/{version}", tags=["programs"],
             openapi_extra=problems())  # fmt: skip
    async def version(
        program: str, version: Annotated[int, Path(ge=1, le=2**31 - 1)],
        _who: Annotated[Any, Depends(caller(*ANY_ROLE))],
    ) -> Any:  # fmt: skip
        """One version with its document: what computed the purchases that name it."""
        return await run(engine, programs.read_program_version, engine, program, version)

    @app.get("/v1/programs/{program}/tiers", tags=["programs"],
             openapi_extra=problems(answer=(200, examples.TIERS)))  # fmt: skip
    async def tier_levels(program: str, _who: Annotated[Any, Depends(caller(*ANY_ROLE))]) -> Any:
        """The program's tiers as declared: the window, the review period, the grace
        days, and each level with what qualifies for it and its privileges."""
        return await run(engine, tiers.program_tiers, engine, program)

    @app.get("/v1/programs/{program}/triggers", tags=["programs"], openapi_extra=problems())
    async def program_triggers(
        program: str, _who: Annotated[Any, Depends(caller(*ANY_ROLE))]
    ) -> Any:
        """The program's triggers as declared: each occasion and its reward."""
        return await run(engine, events.program_triggers, engine, program)


def _members(app: FastAPI, engine: Engine) -> None:
    prefix = "/v1/programs/{program}/members"

    @app.post(
        prefix,
        status_code=201,
        tags=["members"],
        openapi_extra=body(
            schemas.MEMBER,
            {"card": "100001", "phone": "+79123456789"},
            replays=True,
            answer=(201, examples.MEMBER),
        ),
    )
    async def register(
        program: str, body: Body, _who: Annotated[Any, Depends(caller(*MEMBER_WRITERS))],
        idempotency_key: IdempotencyKey = None,
    ) -> JSONResponse:  # fmt: skip
        """Register a member; a card is generated when not given."""
        answer, is_new = await run(engine, members.register, engine, program, body, now=now(),
                                   idempotency_key=idempotency_key)  # fmt: skip
        return created(answer, is_new)

    @app.get(prefix + "/{member}", tags=["members"],
             openapi_extra=problems(answer=(200, examples.MEMBER)))  # fmt: skip
    async def read(
        program: str, member: str, _who: Annotated[Any, Depends(caller(*ANY_ROLE))]
    ) -> Any:
        """A member by `{id}`, `card:…`, `phone:…`, `email:…` or `ext:…`, with their
        tier, what the next tier needs, and the privileges the tier gives."""
        return await run(engine, members.read_member, engine, program, member, now=now())

    @app.patch(
        prefix + "/{member}",
        tags=["members"],
        openapi_extra=body(
            schemas.PROFILE,
            {"name": "Анна", "consents": {"sms": False}},
            answer=(200, examples.MEMBER),
        ),
    )
    async def update(
        program: str, member: str, body: Body,
        _who: Annotated[Any, Depends(caller("admin", "support"))],
    ) -> Any:  # fmt: skip
        """Change the profile: `phone`, `email`, `name`, `birthday` (null clears one), and
        consents `{personal_data, sms, email, push, calls: true|false}`."""
        return await run(engine, members.update_member, engine, program, member, body, now=now())

    @app.put(
        prefix + "/{member}/tier",
        tags=["members"],
        openapi_extra=body(
            schemas.TIER,
            {"tier": "vip", "until": "2026-12-31", "reason": "the seed's temporary VIP"},
            answer=(200, examples.MEMBER_TIER),
        ),
    )
    async def set_tier(
        program: str, member: str, body: Body,
        who: Annotated[keys.Principal, Depends(caller("admin", "support"))],
    ) -> Any:  # fmt: skip
        """Set the member's tier by hand `{tier, until?, reason}` (audited in the tier
        history); a review never lowers it before `until`."""
        return await run(engine, tiers.set_tier, engine, program, member, body,
                         actor=f"key:{who.key_id}", now=now())  # fmt: skip

    @app.get(prefix + "/{member}/tiers", tags=["members"],
             openapi_extra=problems(answer=(200, examples.TIER_HISTORY)))  # fmt: skip
    async def tier_history(
        program: str, member: str, _who: Annotated[Any, Depends(caller(*ANY_ROLE))],
        before: Annotated[int | None, Query(ge=1, le=2**53)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> Any:  # fmt: skip
        """Every change of the member's tier, newest first: from, to, why and who; pass
        `next` as `before` for the next page."""
        return await run(engine, tiers.tier_history_of, engine, program, member,
                         before=before, limit=limit)  # fmt: skip

    @app.get(prefix + "/{member}/events", tags=["members"],
             openapi_extra=problems(answer=(200, examples.EVENTS)))  # fmt: skip
    async def member_events(
        program: str, member: str, _who: Annotated[Any, Depends(caller(*ANY_ROLE))],
        before: Annotated[int | None, Query(ge=1, le=2**53)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> Any:  # fmt: skip
        """What happened to the member by itself, newest first: triggers fired
        (`trigger.<code>`), `expiry.warning`s, `expiry`s; `next` is the next page's
        `before`."""
        return await run(engine, events.member_events, engine, program, member,
                         before=before, limit=limit)  # fmt: skip

    for action, status in (("block", "blocked"), ("unblock", "active")):
        app.post(prefix + "/{member}/" + action, tags=["members"], openapi_extra=problems())(
            _member_status(engine, action, status)
        )

    @app.get(prefix + "/{member}/balance", tags=["members"],
             openapi_extra=problems(answer=(200, examples.BALANCE)))  # fmt: skip
    async def balance(
        program: str, member: str, _who: Annotated[Any, Depends(caller(*ANY_ROLE))]
    ) -> Any:
        """Available, pending and held points, lifetime figures and what expires when."""
        return await run(engine, balances.balance, engine, program, member)

    @app.get(prefix + "/{member}/history", tags=["members"],
             openapi_extra=problems(answer=(200, examples.HISTORY)))  # fmt: skip
    async def history(
        program: str, member: str, _who: Annotated[Any, Depends(caller(*ANY_ROLE))],
        before: Annotated[int | None, Query(ge=1, le=2**53)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> Any:  # fmt: skip
        """Every movement, newest first; pass `next` as `before` for the next page."""
        return await run(
            engine, balances.history, engine, program, member, before=before, limit=limit
        )

    @app.post(
        prefix + "/{member}/adjustments",
        status_code=201,
        tags=["members"],
        openapi_extra=body(
            schemas.ADJUSTMENT,
            {"points": "100", "reason": "a gift"},
            replays=True,
            answer=(201, examples.ADJUSTMENT),
        ),
    )
    async def adjust(
        program: str, member: str, body: Body,
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


def _member_status(engine: Engine, action: str, status: str) -> Callable[..., Any]:
    async def change(
        program: str, member: str, _who: Annotated[Any, Depends(caller("admin", "support"))],
        idempotency_key: IdempotencyKey = None,
    ) -> Any:  # fmt: skip
        return await run(engine, members.set_member_status, engine, program, member, status,
                         now=now(), idempotency_key=idempotency_key)  # fmt: skip

    change.__name__ = f"{action}_member"
    change.__doc__ = f"{action.capitalize()} a member: status `{status}`."
    return change


def _purchases(app: FastAPI, engine: Engine) -> None:
    prefix = "/v1/programs/{program}/purchases"

    @app.post(
        prefix + "/quote",
        tags=["purchases"],
        openapi_extra=body(schemas.RECEIPT, schemas.RECEIPT_EXAMPLE, answer=(200, examples.QUOTE)),
    )
    async def quote(
        program: str, body: Body, who: Annotated[keys.Principal, Depends(caller(*SELLERS))]
    ) -> Any:
        """The answer a purchase would get, with no side effects."""
        at_own_location(who, body)
        async with coupon_guesses(app, who, program, body):
            answer = await run(engine, purchases.quote_purchase, engine, program, body, now=now())
            unknown_coupons(app, who, answer)
        return answer

    @app.post(
        prefix,
        tags=["purchases"],
        status_code=201,
        openapi_extra=body(
            schemas.RECEIPT, schemas.RECEIPT_EXAMPLE, replays=True, answer=(201, examples.PURCHASE)
        ),
    )
    async def purchase(
        program: str, body: Body, who: Annotated[keys.Principal, Depends(caller(*SELLERS))],
        idempotency_key: IdempotencyKey = None,
    ) -> JSONResponse:  # fmt: skip
        """Process a purchase: `201` the first time, `200` with the same answer on a replay."""
        at_own_location(who, body)
        async with coupon_guesses(app, who, program, body):
            result = await run(
                engine, purchases.process_purchase, engine, program, body, now=now(),
                actor=f"key:{who.key_id}", idempotency_key=idempotency_key,
            )  # fmt: skip
        return created(result.answer, result.created)

    @app.get(prefix + "/{purchase_id}", tags=["purchases"],
             openapi_extra=problems(answer=(200, examples.PURCHASE)))  # fmt: skip
    async def read(
        program: str, purchase_id: str, _who: Annotated[Any, Depends(caller(*ANY_ROLE))]
    ) -> Any:
        """A purchase's answer, with its status as it stands now."""
        return await run(engine, purchases.read_purchase, engine, program, purchase_id)

    for action in ("confirm", "cancel"):
        app.post(prefix + "/{purchase_id}/" + action, tags=["purchases"], openapi_extra=problems())(
            _settle(engine, action)
        )

    @app.post(
        prefix + "/{purchase_id}/refunds",
        tags=["purchases"],
        status_code=201,
        openapi_extra=body(
            schemas.REFUND,
            {"refund_id": "RF-1", "lines": [{"n": 0, "qty": 1}]},
            replays=True,
            answer=(201, examples.REFUND),
        ),
    )
    async def refund(
        program: str, purchase_id: str, body: Body,
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
    app: FastAPI, who: keys.Principal, program: str, body: Any
) -> AsyncIterator[None]:
    """Refuse a key (or a member) that sent too many unknown coupon codes lately; count a
    purchase refused for an unknown code as a guess. The member is counted by their id,
    so naming them by card, phone, email or id in turn buys no more guesses."""
    codes = body.get("coupons") if isinstance(body, dict) else None
    if not codes:
        yield
        return
    limiter: CouponGuessLimiter = app.state.coupon_guesses
    ref = body.get("member")
    member = (
        await run(app.state.engine, members.member_id_of, app.state.engine, program, ref)
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


def unknown_coupons(app: FastAPI, who: keys.Principal, answer: Any) -> None:
    """Count each unknown code a quote was asked about as a guess (for its member's id)."""
    member = int(answer["member"]) if answer.get("member") else None
    for coupon in answer.get("coupons") or []:
        if coupon.get("reason") == "not_found":
            app.state.coupon_guesses.failed(who.key_id, member)


def _settle(engine: Engine, action: str) -> Callable[..., Any]:
    async def settle(
        program: str, purchase_id: str,
        who: Annotated[keys.Principal, Depends(caller(*SELLERS))],
        idempotency_key: IdempotencyKey = None,
    ) -> JSONResponse:  # fmt: skip
        await run(engine, made_here, engine, who, program, purchase_id)
        answer, _replayed = await run(
            engine, purchases.settle_hold, engine, program, purchase_id, action,
            actor=f"key:{who.key_id}", now=now(), idempotency_key=idempotency_key,
        )  # fmt: skip
        return JSONResponse(answer, status_code=200)

    settle.__name__ = f"{action}_purchase"
    settle.__doc__ = f"{action.capitalize()} a held purchase; a repeat answers the first result."
    return settle


def _keys(app: FastAPI, engine: Engine) -> None:
    prefix = "/v1/programs/{program}/keys"

    @app.post(
        prefix,
        status_code=201,
        tags=["keys"],
        openapi_extra=body(
            schemas.KEY, {"role": "pos", "location": "kiosk"}, answer=(201, examples.KEY)
        ),
    )
    async def create(
        program: str, body: Body, _who: Annotated[Any, Depends(caller("admin"))]
    ) -> Any:
        """A new key `{role, location?, label?}`; its text is in the answer, once."""
        if not isinstance(body, dict):
            raise InvalidInput([Problem("", "must be an object with a role")])
        wrong = [Problem(key, "unknown key") for key in sorted(set(body) - KEY_FIELDS)]
        wrong += [Problem(key, "must be text") for key in ("role", "location", "label")
                  if body.get(key) is not None and not isinstance(body[key], str)]  # fmt: skip
        if wrong:
            raise InvalidInput(wrong)
        key, record = await run(
            engine, keys.create_key, engine, program, str(body.get("role")),
            location=body.get("location"), label=body.get("label"), now=now(),
        )  # fmt: skip
        return {"key": key, **record}

    @app.get(prefix, tags=["keys"], openapi_extra=problems())
    async def listed(program: str, _who: Annotated[Any, Depends(caller("admin"))]) -> Any:
        """The program's keys (never their text)."""
        return {"items": await run(engine, keys.list_keys, engine, program)}

    @app.delete(prefix + "/{key_id}", tags=["keys"], openapi_extra=problems())
    async def revoke(
        program: str, key_id: str, _who: Annotated[Any, Depends(caller("admin"))]
    ) -> Any:
        """Revoke a key: it stops working at once in this server (within a second in the
        other worker processes of a `--workers N` server)."""
        revoked = await run(engine, keys.revoke_key, engine, program, key_id, now=now())
        app.state.known_keys.forget(int(revoked["id"]))
        return revoked
