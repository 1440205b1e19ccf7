"""The API's routes are routers: module-level `APIRouter`s whose endpoints take the
engine and the caller as dependencies, added to the app as its own routes — and so are
the member page's (with its link routes), the rules pages' and the console's (its own
pages and its keys pages, which take the engine from the app's state)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine

from kopilka.mechanics.actions import routes as actions
from kopilka.mechanics.cashback import routes as cashback
from kopilka.mechanics.coupons import routes as coupons
from kopilka.mechanics.discounts import routes as discounts
from kopilka.mechanics.referrals import routes as referrals
from kopilka.mechanics.tiers import routes as tiers
from kopilka.members import page as member_page
from kopilka.platform.console import program_pages
from kopilka.platform.console import routes as console
from kopilka.platform.http import routes
from kopilka.platform.http.app import create_app
from kopilka.programs import rules_pages

ROUTERS: list[tuple[str, APIRouter]] = [
    ("cashback", cashback.router), ("coupons", coupons.router),
    ("discounts", discounts.router), ("tiers", tiers.router), ("service", routes.service),
    ("programs", routes.programs), ("members", routes.members),
    ("purchases", routes.purchases), ("keys", routes.keys_router),
    ("member page", member_page.router), ("rules pages", rules_pages.router),
    ("console", console.router), ("console keys", program_pages.router),
    ("actions", actions.router), ("referrals", referrals.router),
]  # fmt: skip


@pytest.mark.parametrize(("name", "router"), ROUTERS, ids=[name for name, _ in ROUTERS])
def test_the_endpoints_close_over_no_engine(name: str, router: Any) -> None:
    """The endpoints get the engine as a dependency (`engine_of`): none holds one."""
    assert router.routes, name
    for route in router.routes:
        assert isinstance(route, APIRoute), route
        cells = route.endpoint.__closure__ or ()
        assert not [cell for cell in cells if isinstance(cell.cell_contents, Engine)], route


def test_the_app_lists_every_route_of_its_routers() -> None:
    app = create_app(create_engine("sqlite://"))
    listed = {(r.path, m) for r in app.routes if isinstance(r, APIRoute) for m in r.methods or ()}
    for _name, router in ROUTERS:
        for route in router.routes:
            assert isinstance(route, APIRoute)
            assert {(route.path, m) for m in route.methods or ()} <= listed, route.path


def test_the_console_mounts_its_pages_in_order_after_its_static_files() -> None:
    """The console's pages are the app's own routes, its own then its keys pages, in the
    routers' order, after its static files (else `/console/static/…` would be taken for
    a program's pages)."""
    app = create_app(create_engine("sqlite://"))
    listed = [(getattr(r, "path", None), getattr(r, "methods", None)) for r in app.routes]
    pages = [(getattr(r, "path", None), getattr(r, "methods", None))
             for r in (*console.router.routes, *program_pages.router.routes)]  # fmt: skip
    start = listed.index(pages[0])
    assert listed[start : start + len(pages)] == pages
    assert listed[start - 1] == ("/console/static", None)


def test_a_405_names_every_method_of_the_path_of_an_included_router_too() -> None:
    """The console's mechanic pages are a router `include_router` keeps whole."""
    with TestClient(create_app(create_engine("sqlite://"))) as client:
        for path, allow in (("/v1/programs/zerno/members/1", "GET, PATCH"),
                            ("/console/zerno/keys", "GET, POST"),
                            ("/console/zerno/coupons", "GET, POST")):  # fmt: skip
            answer = client.put(path)
            assert answer.status_code == 405, path
            assert answer.headers["allow"] == allow, path
