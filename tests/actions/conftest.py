"""The actions tests' fixtures: the café chain with an action catalogue, two members, a
member of another program, and the app with the actions' routes (on SQLite and
PostgreSQL, as every storage test)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from kopilka.mechanics.actions import routes
from kopilka.mechanics.actions.signing import signature_of
from kopilka.members.handlers import register_member
from kopilka.platform.files import load_document
from kopilka.platform.http.app import create_app, include_routes
from kopilka.programs.handlers import apply_program
from tests.api.conftest import Api, key_for, serving_engine
from tests.conftest import EXAMPLES
from tests.store.conftest import NOW, engine, zerno_engine

__all__ = ["engine", "zerno_engine"]

SECRET_ENV = "KOPILKA_ACTIONS_TEST_SECRET"
SECRET = "s3cret-shared-with-the-survey-service"
OTHER = "north"
CATALOGUE: list[dict[str, Any]] = [
    {"code": "survey", "name": "Survey", "points": "50", "limits": {"per_member": 1},
     "reported_by": ["partner", "callback"], "secret_env": SECRET_ENV},
    {"code": "review", "name": "A review", "points": "20.50",
     "limits": {"per_period": {"period": "month", "count": 2}}},
    {"code": "newsletter", "points": "10", "valid": {"from": "2020-01-01", "until": "2020-12-31"}},
    {"code": "channel_subscription", "points": "5", "reported_by": ["callback"],
     "secret_env": SECRET_ENV},
    {"code": "invite_friend", "points": "100"},
]  # fmt: skip


def program_with_actions(code: str = "zerno") -> dict[str, Any]:
    document = load_document(EXAMPLES / "zerno" / "program.yaml")
    assert isinstance(document, dict)
    return {**document, "code": code, "actions": copy.deepcopy(CATALOGUE)}


@pytest.fixture
def actions_engine(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """The café with the catalogue, Анна (card 100001) and Boris (100002); `north`, another
    program, with Olga (900001); the callbacks' secret in the environment."""
    monkeypatch.setenv(SECRET_ENV, SECRET)
    apply_program(engine, program_with_actions(), actor="test", now=NOW)
    apply_program(engine, program_with_actions(OTHER), actor="test", now=NOW)
    register_member(engine, "zerno", {"card": "100001", "name": "Анна"}, now=NOW)
    register_member(engine, "zerno", {"card": "100002", "name": "Boris"}, now=NOW)
    register_member(engine, OTHER, {"card": "900001", "name": "Olga"}, now=NOW)
    return engine


def actions_app(engine: Engine) -> FastAPI:
    """The app as `kopilka serve` makes it, with the actions' routes (mounted here while
    the app does not yet mount a mechanic's `router` by itself)."""
    app = create_app(serving_engine(engine))
    paths = {route.path for route in app.routes if isinstance(route, APIRoute)}
    if routes.ACTION + "/reports" not in paths:
        include_routes(app, routes.router)
    return app


@pytest.fixture
def client(actions_engine: Engine) -> Iterator[TestClient]:
    with TestClient(actions_app(actions_engine)) as test_client:
        yield test_client


@pytest.fixture
def partner(client: TestClient, actions_engine: Engine) -> Api:
    return Api(client, key_for(actions_engine, "partner"))


@pytest.fixture
def admin(client: TestClient, actions_engine: Engine) -> Api:
    return Api(client, key_for(actions_engine, "admin"))


def signed(body: bytes, timestamp: str, secret: str = SECRET, action: str = "survey",
           program: str = "zerno") -> dict[str, str]:  # fmt: skip
    signature = signature_of(secret, timestamp, program, action, body)
    return {"Content-Type": "application/json", "X-Kopilka-Timestamp": timestamp,
            "X-Kopilka-Signature": signature}  # fmt: skip
