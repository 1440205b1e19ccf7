"""The console's fixtures: a program with a member and a purchase, an operator of each
role, and the app with the console mounted (as `create_app` will mount it)."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

import kopilka.operators.tables  # noqa: F401 - the console's tables on the shared metadata
from kopilka.checkout.purchases import process_purchase
from kopilka.members.handlers import register_member
from kopilka.operators import handlers as operators
from kopilka.operators.handlers import create_operator
from kopilka.operators.sessions import Sessions
from kopilka.platform.files import load_document
from kopilka.platform.http.app import create_app
from kopilka.platform.tables import members, programs, purchases
from kopilka.programs.handlers import apply_program
from tests.api.conftest import serving_engine
from tests.conftest import EXAMPLES
from tests.databases import Templates
from tests.store.conftest import NOW, engine, zerno_engine

__all__ = ["engine", "zerno_engine"]

PASSWORD = "correct horse battery"
# Operators' passwords are hashed with argon2id's cheapest parameters in these tests: the
# real ones (test_operators checks them) cost ~0.14 s a hash, and nearly every console test
# makes five operators and signs in
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
SERVERS_HASHER = operators._hasher  # as the module made it, before any test patches it


@pytest.fixture(autouse=True)
def cheap_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(operators, "_hasher", CHEAP)


SECRET = "a test secret, not a real one"


def console_app(engine: Engine) -> FastAPI:
    """The app as `create_app` makes it (console and member page mounted), its sessions
    and member links signed with the tests' secret."""
    app = create_app(engine)
    app.state.console_sessions = Sessions(SECRET)
    app.state.member_link_secret = SECRET
    return app


OTHER = "north"  # another program on the same database, with a member and a purchase


def stock(engine: Engine) -> None:
    """Анна with a purchase (card-5 gives her K = 5) and an operator of each role; and
    another program, `OTHER`, with its own member (Olga) and purchase and an admin."""
    register_member(engine, "zerno", {"card": "100001", "phone": "+79123456789",
                                      "email": "anna@example.com", "name": "Анна Петрова"},
                    now=NOW)  # fmt: skip
    register_member(engine, "zerno", {"card": "100002", "name": "Boris"}, now=NOW)
    receipt = {"receipt_id": "R-1", "location": "kiosk", "member": "card:100001",
               "at": "2026-03-10T11:00:00+03:00",
               "lines": [{"sku": "TEA-400", "qty": 1}, {"sku": "CRS-1", "qty": 1}]}  # fmt: skip
    process_purchase(engine, "zerno", receipt, now=datetime.now(UTC), actor="pos:test")
    for role in ("admin", "support", "analyst", "marketer"):
        create_operator(engine, "zerno", f"{role}@zerno.example", PASSWORD, role, NOW)
    stock_other(engine)


def stock_other(engine: Engine) -> None:
    document = load_document(EXAMPLES / "zerno" / "program.yaml")
    assert isinstance(document, dict)
    document["code"] = OTHER
    apply_program(engine, document, actor="test", now=NOW)
    register_member(engine, OTHER, {"card": "900001", "name": "Olga"}, now=NOW)
    receipt = {"receipt_id": "N-1", "location": "kiosk", "member": "card:900001",
               "at": "2026-03-10T11:00:00+03:00",
               "lines": [{"sku": "TEA-400", "qty": 1}]}  # fmt: skip
    process_purchase(engine, OTHER, receipt, now=datetime.now(UTC), actor="pos:test")
    create_operator(engine, OTHER, "admin@north.example", PASSWORD, "admin", NOW)


def other_ids(engine: Engine) -> tuple[int, int]:
    """The other program's member and purchase ids: numbers the zerno pages must not show."""
    with engine.connect() as connection:
        program_id = connection.execute(
            select(programs.c.id).where(programs.c.code == OTHER)
        ).scalar_one()
        member = connection.execute(
            select(members.c.id).where(members.c.program_id == program_id)
        ).scalar_one()
        purchase = connection.execute(
            select(purchases.c.id).where(purchases.c.program_id == program_id)
        ).scalar_one()
    return member, purchase


def stocked_sqlite(templates: Templates, path: Path) -> Engine:
    """A fresh SQLite database at `path` holding the café chain and `stock`'s members,
    purchase and operators: what the browser tests serve."""
    engine = templates.sqlite(path)
    apply_program(engine, load_document(EXAMPLES / "zerno" / "program.yaml"), actor="test",
                  now=NOW)  # fmt: skip
    stock(engine)
    return engine


@pytest.fixture
def stocked(zerno_engine: Engine) -> Engine:
    stock(zerno_engine)
    return zerno_engine


@pytest.fixture
def client(stocked: Engine) -> Iterator[TestClient]:
    with TestClient(console_app(serving_engine(stocked)), base_url="http://testserver") as c:
        yield c


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def sign_in(client: TestClient, role: str = "admin", password: str = PASSWORD) -> Any:
    token = csrf_of(client.get("/console/login").text)
    return client.post("/console/login", data={"csrf": token, "program": "zerno",
                       "email": f"{role}@zerno.example", "password": password},
                       follow_redirects=False)  # fmt: skip


@contextmanager
def served(app: Any, port: int | None = None, log_level: str = "warning") -> Iterator[str]:
    """`app` served by uvicorn in a thread as `kopilka serve` serves it, on `port` (a free
    one by default); its base URL while the block runs (the browser tests' server, an
    exchange partner that goes down and comes back at the same address)."""
    if port is None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level=log_level,
                            lifespan="on")  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
