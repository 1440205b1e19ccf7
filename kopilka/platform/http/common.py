"""What every route module shares: the engine, running a service, reading bodies,
checking keys."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Annotated, Any, NoReturn, TypeVar

import msgspec
from fastapi import Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from sqlalchemy import Engine

from kopilka.checkout import purchases
from kopilka.kernel.errors import (
    Forbidden,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    Problem,
    TooManyRequests,
    Unauthorized,
)
from kopilka.kernel.money import is_within_limits
from kopilka.kernel.reading import MAX_DEPTH, MAX_TEXT, json_problems
from kopilka.operators import keys
from kopilka.platform.http.keycache import KeyCache
from kopilka.platform.limits import FailedAuthLimiter
from kopilka.platform.requests import now as now
from kopilka.platform.requests import run as run

MAX_BODY = 1 << 20  # 1 MiB: a receipt of thousands of lines still fits


async def engine_of(request: Request) -> Engine:
    """A dependency: the engine the app serves (`create_app` keeps it in the app's state).
    A coroutine, so FastAPI calls it on the event loop rather than in its thread pool."""
    engine: Engine = request.app.state.engine
    return engine


Database = Annotated[Engine, Depends(engine_of)]


async def json_body(request: Request) -> Any:
    """The request's JSON document; malformed or oversized bodies are refused by name, and
    so is a document nested too deep or holding text no field may store (`read_json`)."""
    declared = request.headers.get("content-length")
    if declared and declared.isascii() and declared.isdigit() and int(declared) > MAX_BODY:
        raise PayloadTooLarge(f"the body has {declared} bytes; at most {MAX_BODY} are accepted")
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise PayloadTooLarge(f"the body has {len(raw)} bytes; at most {MAX_BODY} are accepted")
    if not raw.strip():
        raise InvalidInput([Problem("", "a JSON body is required")])
    return read_json(raw)


def read_json(raw: bytes) -> Any:
    """A JSON document the services can take: at most MAX_DEPTH levels deep, every string
    (key or value) real Unicode text without control characters but tab and line breaks,
    every number with a fraction or exponent as plain decimal text (`"1e2"` → `"100"`)."""
    try:
        # as json.loads(raw) reads bytes (UTF-8, -16 or -32), but the text is kept
        text = raw.decode(json.detect_encoding(raw), "surrogatepass")
        document = json.loads(text, parse_float=_plain_number, parse_constant=_no_constant)
    except RecursionError:  # deeper than the parser goes: far past MAX_DEPTH
        raise InvalidInput([Problem("", f"is nested more than {MAX_DEPTH} levels deep")]) from None
    except _NumberOutOfRange as error:
        raise InvalidInput([Problem("", str(error))]) from None
    except ValueError as error:
        raise InvalidInput([Problem("", f"the body is not valid JSON: {error}")]) from None
    problems = json_problems(text, document, max_depth=MAX_DEPTH)
    if problems:
        raise InvalidInput(problems)
    return document


class _NumberOutOfRange(Exception):
    pass


def _plain_number(text: str) -> int | str:
    """A JSON number with a fraction or exponent exactly, never as a binary float: a whole
    one as an integer (`2.0`, `1E+2` are 2 and 100, as JSON Schema counts them), any other
    as its decimal text (`0.1` → `"0.1"`), which the readers take as written."""
    number = Decimal(text)  # the JSON grammar already holds: always a finite number
    if not is_within_limits(number):
        raise _NumberOutOfRange(f"the number {text} is out of range (at most 15 digits "
                                "before the point and 18 after)")  # fmt: skip
    if number == number.to_integral_value():
        return int(number)
    return format(number, "f")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


Body = Annotated[Any, Depends(json_body)]


async def optional_body(request: Request) -> Any:
    """The request's JSON document, or None when no body was sent (a decision or a leaving
    whose note is optional)."""
    if not (await request.body()).strip():
        return None
    return await json_body(request)


OptionalBody = Annotated[Any, Depends(optional_body)]
# on every POST that changes something: a repeat with the same key and request answers
# the first answer (200) with no second effect; with another request, 409
IdempotencyKey = Annotated[
    str | None,
    # said in the document, checked by the service (`idempotency.remembered`): its problem
    # names the header as `Idempotency-Key`
    Header(description="1 to 200 characters, not only spaces",
           json_schema_extra={"minLength": 1, "maxLength": MAX_TEXT, "pattern": r"\S"}),
]  # fmt: skip


def caller(*roles: str) -> Callable[..., Any]:
    """A dependency: the key's principal, if its program is the path's and its role fits."""

    async def check(
        request: Request,
        program: str,
        authorization: Annotated[str | None, Header()] = None,
    ) -> keys.Principal:
        return await principal_of(request, program, authorization, roles)

    return check


async def principal_of(
    request: Request, program: str, authorization: str | None, roles: tuple[str, ...]
) -> keys.Principal:
    """The principal of the `Authorization` header's key, if its program is `program` and its
    role one of `roles`; else 401 (or 429), 404 or 403 — what `caller` checks."""
    scheme, _, token = (authorization or "").partition(" ")
    principal = await _principal(request.app, token.strip()) if scheme.lower() == "bearer" else None
    if principal is None:
        _refuse_failed_authentication(request)
    if principal.program != program:
        raise NotFound(f"program {program!r} does not exist")
    if principal.role not in roles:
        raise Forbidden(f"a {principal.role} key can't do this")
    return principal


def _refuse_failed_authentication(request: Request) -> NoReturn:
    """A failed authentication: `401`, or `429` once the client (its address: behind a
    proxy, the one `KOPILKA_TRUSTED_PROXIES` vouches for) has failed too often in the
    window. Only failures are limited — a valid key is never refused, so a till polling
    with a revoked key does not lock out the other tills behind the same address."""
    limiter: FailedAuthLimiter = request.app.state.failed_auth
    client = request.client.host if request.client else "unknown"
    wait = limiter.retry_after(client)
    limiter.failed(client)
    if wait:
        raise TooManyRequests(f"too many failed authentications: retry in {wait:.0f} s")
    raise Unauthorized("send `Authorization: Bearer <key>` with a valid key")


async def _principal(app: FastAPI, key: str) -> keys.Principal | None:
    """The key's caller: from the cache of known keys, else from the database."""
    known: KeyCache = app.state.known_keys
    principal = known.get(key)
    if principal is None and not known.was_refused(key):
        principal = await run(app.state.engine, keys.authenticate, app.state.engine, key)
        if principal is None:
            known.refuse(key)
        else:
            known.put(key, principal)
    return principal


ANY_ROLE = ("admin", "pos", "partner", "support", "analyst")
SELLERS = ("admin", "pos", "partner")
MEMBER_WRITERS = ("admin", "pos", "partner", "support")


def at_own_location(principal: keys.Principal, body: Any) -> None:
    """A key bound to a location acts there only: a body naming no location (absent or
    null) is at the key's own, one naming another is refused."""
    if principal.location is None or not isinstance(body, dict):
        return
    location = body.get("location")
    if location is not None and location != principal.location:
        raise Forbidden(f"this key acts at location {principal.location!r}, not {location!r}")
    body["location"] = principal.location


def at_own_partner(engine: Engine, principal: keys.Principal, program: str, body: Any) -> None:
    """A key bound to a coalition partner sells at that partner's locations only, and names
    the one (a check that costs a read, made only for such keys: a till has a pos key)."""
    if principal.partner is None or not isinstance(body, dict):
        return
    location = body.get("location")
    if not isinstance(location, str):
        raise InvalidInput([Problem("location", f"a key of partner {principal.partner!r} "
                                    "names the location of the sale")])  # fmt: skip
    if location not in keys.partner_locations(engine, program, principal.partner):
        raise Forbidden(f"{location!r} is not a location of partner {principal.partner!r}, "
                        "this key's")  # fmt: skip


def made_here(engine: Engine, principal: keys.Principal, program: str, purchase_id: str) -> None:
    """A pos key settles and refunds only the purchases of its own location; a partner's
    key only its partner's — another partner's purchase is, to it, one that does not exist."""
    if principal.location is None and principal.partner is None:
        return
    location = purchases.location_of(engine, program, purchase_id)
    if principal.partner is not None and location not in keys.partner_locations(
        engine, program, principal.partner
    ):
        raise NotFound(f"purchase {purchase_id!r} does not exist")
    if principal.location is not None and location != principal.location:
        raise Forbidden(f"purchase {purchase_id} was made at {location!r}, not at this key's "
                        f"location {principal.location!r}")  # fmt: skip


class FastJSON(JSONResponse):
    """A JSON answer encoded by msgspec: the same compact UTF-8 text as Starlette's
    `JSONResponse`, several times faster for a purchase's answer, and — returned as is
    — spared FastAPI's walk of the document (`jsonable_encoder`)."""

    def render(self, content: Any) -> bytes:
        return msgspec.json.encode(content)


class DirectRoute(APIRoute):
    """A route whose endpoint may carry a `direct` twin (`answered_directly`): a handler of
    the bare request that reads what the endpoint's parameters declare — in the same order,
    with the same problems — and calls the endpoint. FastAPI's solving of dependencies per
    request (a third of the framework's share of a purchase's CPU, bench/README.md) is
    skipped on the hot routes; the declared signature still makes their OpenAPI document,
    and tests/api/test_direct_routes.py holds the two readings to one behaviour."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        direct: Callable[[Request], Coroutine[Any, Any, Response]] | None = getattr(
            self.endpoint, "direct", None
        )
        return direct if direct is not None else super().get_route_handler()


Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def answered_directly(
    direct: Callable[[Request], Coroutine[Any, Any, Response]],
) -> Callable[[Endpoint], Endpoint]:
    """Mark an endpoint of a `DirectRoute` router as answered by `direct`."""

    def mark(endpoint: Endpoint) -> Endpoint:
        endpoint.direct = direct  # type: ignore[attr-defined]
        return endpoint

    return mark


def created(answer: Any, is_new: bool) -> JSONResponse:
    return FastJSON(answer, status_code=201 if is_new else 200)
