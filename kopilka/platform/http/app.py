"""The HTTP API of shared/API.md, over the services (FastAPI).

Every request body is read as raw JSON and handed to the services, which validate it
and name each problem; errors come out as RFC 9457 problem JSON with the stable codes of
`kopilka.kernel.errors`, answered with the status `kopilka.platform.problems` gives each
code. Keys are checked on every request: a key of another program is answered
`404 not_found`, exactly as a program that does not exist.

The routes are routers: the API's own (`kopilka.platform.http.routes`), each older
mechanic's (`kopilka.mechanics.<name>.routes`), and the `router` each newer mechanic
names (`Mechanic.router`); their endpoints get the engine from the
app's state and the caller from its key, as FastAPI dependencies.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from sqlalchemy import Engine
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.exceptions import HTTPException

from kopilka.checkout.mechanic import mechanics
from kopilka.kernel.errors import Conflict, InvalidInput, KopilkaError, Problem, Unavailable
from kopilka.mechanics.cashback import routes as cashback_routes
from kopilka.mechanics.coupons import routes as coupon_routes
from kopilka.mechanics.discounts import routes as discount_routes
from kopilka.mechanics.tiers import routes as tier_routes
from kopilka.members import page as member_page
from kopilka.platform.console import routes as web_routes
from kopilka.platform.http import routes
from kopilka.platform.http.allow import with_whole_allow
from kopilka.platform.http.keycache import KeyCache
from kopilka.platform.limits import FailedAuthLimiter
from kopilka.platform.problems import RETRY_AFTER, problem_json, status_of
from kopilka.programs import rules_pages

PROBLEM = "application/problem+json"
# the API's routers, in the order of the OpenAPI document's paths
ROUTERS: tuple[APIRouter, ...] = (
    routes.service, routes.programs, routes.members, tier_routes.router, routes.purchases,
    routes.keys_router, discount_routes.router, coupon_routes.router, cashback_routes.router,
)  # fmt: skip


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
        return problem_response(error)

    @app.exception_handler(OperationalError)
    async def database_unavailable(_request: Request, _error: OperationalError) -> JSONResponse:
        # the database is down or restarting: nothing was written (each use case is one
        # transaction), and the client may send the same request again
        return problem_response(Unavailable("the database is not reachable now"))

    @app.exception_handler(IntegrityError)
    async def taken_meanwhile(_request: Request, _error: IntegrityError) -> JSONResponse:
        # a backstop: a unique row a concurrent request wrote first (the services retry or
        # check where it matters); nothing of this request was written, it may be sent again
        return problem_response(Conflict("a concurrent request changed the same thing "
                                         "first; send it again"))  # fmt: skip

    @app.exception_handler(DataError)
    async def value_does_not_fit(_request: Request, error: DataError) -> JSONResponse:
        # a backstop: the services check lengths and ranges first; should one slip past,
        # the transaction is rolled back and the caller hears which kind of value it was
        detail = str(error.orig).splitlines()[0] if error.orig else "a value does not fit"
        return problem_response(InvalidInput([Problem("", detail)]))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, error: RequestValidationError) -> JSONResponse:
        problems = [
            Problem(".".join(str(part) for part in item["loc"]), item["msg"])
            for item in error.errors()
        ]  # fmt: skip
        return problem_response(InvalidInput(problems))

    for router in ROUTERS:
        include_routes(app, router)
    for mechanic in mechanics():  # the routers the newer mechanics name themselves
        if mechanic.router is not None:
            include_routes(app, mechanic.router)
    web_routes.register(app)  # its pages serve app.state.engine, set above
    # the rules pages use the console's sessions and error pages, so they come after it;
    # they and the member page (its link routes are in the API's document) are the app's
    # own routes, as the API's routers are
    app.state.member_link_secret = member_page.link_secret()
    for pages in (rules_pages.router, member_page.router):
        include_routes(app, pages)
    app.openapi = partial(_openapi_with_nulls, app)  # type: ignore[method-assign]
    return app


def include_routes(app: FastAPI, router: APIRouter) -> None:
    """Add `router`'s routes to `app` as the app's own routes (as FastAPI's
    `include_router` did before it began to keep an included router whole): `app.routes`
    then lists every API route — what the OpenAPI examples (`_openapi_with_nulls`), the
    `Allow` header of a 405 (`allow.path_methods`) and the tests read — and the app's
    `dependency_overrides` reach the routes' dependencies (`engine_of`, `caller`)."""
    for route in router.routes:
        if not isinstance(route, APIRoute):
            raise TypeError(f"{route!r}: a router of the API holds API routes only")
        app.router.add_api_route(
            route.path, route.endpoint, response_model=route.response_model,
            status_code=route.status_code, tags=route.tags, dependencies=route.dependencies,
            summary=route.summary, description=route.description,
            response_description=route.response_description, responses=route.responses,
            deprecated=route.deprecated, methods=sorted(route.methods or ()),
            operation_id=route.operation_id, include_in_schema=route.include_in_schema,
            response_class=route.response_class, name=route.name,
            callbacks=route.callbacks, openapi_extra=route.openapi_extra,
            generate_unique_id_function=route.generate_unique_id_function,
            route_class_override=type(route),  # a `DirectRoute` stays one
        )  # fmt: skip


def problem_response(error: KopilkaError) -> JSONResponse:
    """The answer to a Kopilka error: its problem document, with the status of its code
    and, for a refusal worth trying again later, `Retry-After`."""
    wait = RETRY_AFTER.get(error.code)
    headers = {"Retry-After": wait} if wait else None
    return JSONResponse(problem_json(error), status_code=status_of(error), media_type=PROBLEM,
                        headers=headers)  # fmt: skip


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
