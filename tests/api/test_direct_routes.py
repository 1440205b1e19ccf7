"""The purchase and quote routes are answered directly (`DirectRoute`): their `direct`
twins read the request by hand instead of FastAPI's dependency solving. Both readings
must give the same answer to every request — the same status, problem and body — and
the same OpenAPI document; here each request goes to an app of each kind, in turn."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine

from kopilka.members.handlers import register_member
from kopilka.platform.http import common
from kopilka.platform.http.app import create_app
from kopilka.platform.http.common import MAX_BODY
from tests.api.conftest import key_for, serving_engine
from tests.store.conftest import NOW

PURCHASES = "/v1/programs/zerno/purchases"
RECEIPT = {"location": "kiosk", "member": "card:1000", "lines": [{"sku": "CAP-300", "qty": 1}]}
CARDS = {"direct": "card:100009", "solved": "card:100010"}  # each app's own member


@pytest.fixture
def apps(zerno_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, TestClient]]:
    """The app as served (direct), and one whose routes FastAPI solves (solved)."""
    for card in CARDS.values():
        register_member(zerno_engine, "zerno", {"card": card.removeprefix("card:")}, now=NOW)
    engine = serving_engine(zerno_engine)
    direct = create_app(engine)
    monkeypatch.setattr(common.DirectRoute, "get_route_handler", APIRoute.get_route_handler)
    solved = create_app(engine)
    monkeypatch.undo()
    with TestClient(direct) as first, TestClient(solved) as second:
        yield {"direct": first, "solved": second}


def both(apps: dict[str, TestClient], path: str, *, body: Any,
         headers: dict[str, str] | None = None) -> tuple[int, Any]:  # fmt: skip
    """The same request to both apps (with a receipt id and member of each app's own);
    their answers, which must agree but for the ids that tell the two purchases apart."""
    answers = []
    for name, client in apps.items():
        if isinstance(body, dict) and "receipt_id" in body:
            body = {**body, "receipt_id": f"{body['receipt_id'].split('@')[0]}@{name}"}
        if isinstance(body, dict) and "member" in body:
            body = {**body, "member": CARDS[name]}
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        answer = client.post(path, content=content, headers={
            "Content-Type": "application/json", **(headers or {})})  # fmt: skip
        document = answer.json()
        for field in ("purchase_id", "receipt_id", "member"):
            document.pop(field, None)
        answers.append((answer.status_code, document))
    assert answers[0] == answers[1], path
    return answers[0]


def test_both_readings_answer_alike(apps: dict[str, TestClient], zerno_engine: Engine) -> None:
    pos = {"Authorization": f"Bearer {key_for(zerno_engine, 'pos', location='kiosk')}"}
    other_place = {"Authorization": f"Bearer {key_for(zerno_engine, 'pos', location='rest-a')}"}
    analyst = {"Authorization": f"Bearer {key_for(zerno_engine, 'analyst')}"}
    stranger = {"Authorization": f"Bearer {key_for(zerno_engine, 'admin', program='zerno')}x"}
    cases: list[tuple[str, dict[str, Any], int]] = [
        (PURCHASES, {"headers": pos, "body": {**RECEIPT, "receipt_id": "r1"}}, 201),
        (PURCHASES + "/quote", {"headers": pos, "body": RECEIPT}, 200),
        (PURCHASES, {"body": {**RECEIPT, "receipt_id": "r2"}}, 401),
        (PURCHASES, {"headers": {"Authorization": "Basic abc"}, "body": RECEIPT}, 401),
        (PURCHASES, {"headers": stranger, "body": RECEIPT}, 401),
        (PURCHASES, {"headers": analyst, "body": {**RECEIPT, "receipt_id": "r3"}}, 403),
        (PURCHASES, {"headers": other_place, "body": {**RECEIPT, "receipt_id": "r4"}}, 403),
        (PURCHASES + "/quote", {"headers": analyst, "body": RECEIPT}, 403),
        (PURCHASES, {"headers": pos, "body": b"{not json"}, 422),
        (PURCHASES, {"headers": pos, "body": b"  "}, 422),
        (PURCHASES, {"headers": pos, "body": b"[" * 80 + b"]" * 80}, 422),
        (PURCHASES, {"headers": pos, "body": b"1" * (MAX_BODY + 1)}, 413),
        (PURCHASES, {"headers": pos, "body": {"lines": "none"}}, 422),
        (PURCHASES + "/quote", {"headers": pos, "body": b"{not json"}, 422),
        (PURCHASES, {"headers": {**pos, "Idempotency-Key": " "}, "body": RECEIPT}, 422),
    ]
    for n, (path, request, status) in enumerate(cases):
        assert both(apps, path, **request)[0] == status, (n, path)
    # a body error comes before an authentication error, in both readings
    assert both(apps, PURCHASES, body=b"{not json")[0] == 422
    # a replay with the same Idempotency-Key answers 200 the first answer, in both
    for name, client in apps.items():
        body = {**RECEIPT, "receipt_id": f"replayed-{name}", "member": CARDS[name]}
        headers = {**pos, "Idempotency-Key": f"k-{name}"}
        first = client.post(PURCHASES, json=body, headers=headers)
        again = client.post(PURCHASES, json=body, headers=headers)
        assert (first.status_code, again.status_code) == (201, 200), name
        assert again.json() == first.json(), name


def test_both_readings_make_one_document(apps: dict[str, TestClient]) -> None:
    documents = [client.get("/openapi.json").json() for client in apps.values()]
    assert documents[0] == documents[1]
    operation = documents[0]["paths"]["/v1/programs/{program}/purchases"]["post"]
    assert {p["name"] for p in operation["parameters"]} == {
        "program", "authorization", "idempotency-key"}  # fmt: skip


def test_the_served_app_answers_the_hot_routes_directly() -> None:
    app = create_app(create_engine("sqlite://"))
    direct = {(r.path, m) for r in app.routes if isinstance(r, common.DirectRoute)
              and getattr(r.endpoint, "direct", None) for m in r.methods or ()}  # fmt: skip
    assert direct == {("/v1/programs/{program}/purchases", "POST"),
                      ("/v1/programs/{program}/purchases/quote", "POST")}  # fmt: skip
