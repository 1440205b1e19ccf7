"""`405 Method Not Allowed` with an `Allow` header naming every method of the path.

Starlette answers a method a path lacks from the first route whose path matches, so a path
served by two routes (`GET` and `PATCH /members/{member}`) named only one of them in
`Allow`; clients and the OpenAPI document's checkers read it as the path's whole list.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableMapping
from typing import Any

from fastapi import Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match, Route


async def with_whole_allow(request: Request, error: HTTPException) -> Response:
    """FastAPI's own answer to an HTTP error; a 405's `Allow` lists the path's methods."""
    if error.status_code != 405:
        return await http_exception_handler(request, error)
    allow = ", ".join(sorted(path_methods(request.app.routes, request.scope)))
    return JSONResponse({"detail": error.detail}, status_code=405, headers={"Allow": allow})


def path_methods(routes: Iterable[BaseRoute], scope: MutableMapping[str, Any]) -> set[str]:
    """Every method of the path the URL names: of the route paths that match it, the one
    with the fewest parameters (`/links/revoke`, not `/links/{link}`), as the OpenAPI
    document lists them."""
    served = [route for route in _flat(routes) if isinstance(route, Route) and route.methods]
    matching = [r.path for r in served if r.matches(scope)[0] != Match.NONE]
    if not matching:
        return set()
    chosen = min(matching, key=lambda path: path.count("{"))
    return {method for r in served if r.path == chosen for method in r.methods or ()}


def _flat(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """The routes, those of an included router among them: FastAPI (0.165) keeps a router
    `app.include_router` included whole, as one entry of `app.routes` (the console's
    mechanic pages are included so; they are included without a path prefix)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _flat(included.routes)
        else:
            yield route
