"""The HTTP API through the real app (FastAPI's TestClient), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from kopilka.operators.keys import create_key
from kopilka.platform.db import make_engine
from kopilka.platform.http.app import create_app
from tests.store.conftest import NOW, engine, zerno_engine

__all__ = ["engine", "zerno_engine"]


class Api:
    """A client with a key: `api.post(path, json)` with the program's base path."""

    def __init__(self, client: TestClient, key: str, program: str = "zerno") -> None:
        self.client, self.key, self.base = client, key, f"/v1/programs/{program}"

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}", **(extra or {})}

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(self.base + path, headers=self._headers(kw.pop("headers", None)),
                               **kw)  # fmt: skip

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.client.post(self.base + path, json=body,
                                headers=self._headers(kw.pop("headers", None)), **kw)  # fmt: skip


@pytest.fixture
def client(zerno_engine: Engine) -> Iterator[TestClient]:
    """The app as `kopilka serve` builds it: on PostgreSQL over an async engine of its own
    (the same schema), on SQLite over the test's engine."""
    with TestClient(create_app(serving_engine(zerno_engine))) as test_client:
        yield test_client


def serving_engine(engine: Engine) -> Engine:
    if engine.dialect.name != "postgresql":
        return engine
    with engine.connect() as connection:
        search_path = connection.exec_driver_sql("SHOW search_path").scalar()
    url = engine.url.render_as_string(hide_password=False)
    return make_engine(
        url, asynchronous=True, connect_args={"options": f"-csearch_path={search_path}"}
    )


def key_for(engine: Engine, role: str, program: str = "zerno", **kw: Any) -> str:
    return create_key(engine, program, role, now=NOW, **kw)[0]


@pytest.fixture
def admin(client: TestClient, zerno_engine: Engine) -> Api:
    return Api(client, key_for(zerno_engine, "admin"))
