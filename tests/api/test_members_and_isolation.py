"""Profiles, blocking, mass assignment, and one program's key against every route of another."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from kopilka.platform.files import load_document
from kopilka.platform.http.app import create_app
from kopilka.programs.handlers import apply_program
from tests.api.conftest import Api, key_for
from tests.api.test_http import RECEIPT, problem
from tests.conftest import EXAMPLES
from tests.store.conftest import NOW
from tests.store.test_crash_consistency import row_counts


def test_a_profile_changes_and_a_blocked_card_buys_nothing(admin: Api) -> None:
    admin.post("/members", {"card": "100009", "phone": "+79120000001"})
    admin.post("/members", {"card": "100010", "phone": "+79120000002"})
    changed = admin.client.patch(f"{admin.base}/members/card:100009",
                                 json={"name": "Анна", "phone": "8 912 000-00-03"},
                                 headers={"Authorization": f"Bearer {admin.key}"})  # fmt: skip
    assert changed.status_code == 200, changed.text
    assert (changed.json()["name"], changed.json()["phone"]) == ("Анна", "+79120000003")
    taken = admin.client.patch(f"{admin.base}/members/card:100009",
                               json={"phone": "+79120000002"},
                               headers={"Authorization": f"Bearer {admin.key}"})  # fmt: skip
    problem(taken, 409, "conflict")
    assert admin.post("/members/card:100009/block").json()["status"] == "blocked"
    problem(admin.post("/purchases", RECEIPT), 409, "conflict")
    assert admin.post("/members/card:100009/unblock").json()["status"] == "active"
    assert admin.post("/purchases", RECEIPT).status_code == 201


@pytest.mark.parametrize("field", ["balance", "status", "program", "id", "points"])
def test_fields_that_are_not_the_callers_to_set_are_refused(admin: Api, field: str) -> None:
    refused = admin.post("/members", {"card": "100009", field: "1000"})
    assert any(error["loc"] == field for error in problem(refused, 422, "validation_error")[
        "errors"])  # fmt: skip
    admin.post("/members", {"card": "100009"})
    patched = admin.client.patch(f"{admin.base}/members/card:100009", json={field: "x"},
                                 headers={"Authorization": f"Bearer {admin.key}"})  # fmt: skip
    problem(patched, 422, "validation_error")
    assert admin.get("/members/card:100009/balance").json()["available"] == "0.00"


def test_consents_are_given_withdrawn_and_kept_with_their_time(admin: Api) -> None:
    made = admin.post("/members", {"card": "100009", "consents": {"personal_data": True,
                                                                  "sms": True}})  # fmt: skip
    assert made.status_code == 201, made.text
    consents = made.json()["consents"]
    assert {c: v["granted"] for c, v in consents.items()} == {"personal_data": True, "sms": True}
    assert consents["sms"]["source"] == "registration"
    withdrawn = admin.client.patch(f"{admin.base}/members/card:100009",
                                   json={"consents": {"sms": False, "email": True}},
                                   headers={"Authorization": f"Bearer {admin.key}"})  # fmt: skip
    assert withdrawn.status_code == 200, withdrawn.text
    now_in_force = admin.get("/members/card:100009").json()["consents"]
    assert {c: v["granted"] for c, v in now_in_force.items()} == {
        "personal_data": True, "sms": False, "email": True}  # fmt: skip
    assert now_in_force["sms"]["source"] == "profile"
    assert now_in_force["personal_data"] == consents["personal_data"]  # unchanged, same time
    for wrong, loc in (({"fax": True}, "consents.fax"), ({"sms": "yes"}, "consents.sms"),
                       (["sms"], "consents")):  # fmt: skip
        refused = admin.post("/members", {"card": "100010", "consents": wrong})
        assert loc in [e["loc"] for e in problem(refused, 422, "validation_error")["errors"]]
    assert admin.get("/members/card:100010").status_code == 404  # nothing written


def test_program_versions_are_listed_and_each_can_be_read(admin: Api) -> None:
    document = admin.get("").json()["document"]
    changed = {**document, "name": "Зерно, версия 2"}
    assert (
        admin.client.put(
            admin.base, json=changed, headers={"Authorization": f"Bearer {admin.key}"}
        ).status_code
        == 201
    )
    listed = admin.get("/versions").json()
    assert listed["current"] == 2
    assert [item["version"] for item in listed["items"]] == [2, 1]
    assert admin.get("/versions/1").json()["document"]["name"] == document["name"]
    assert admin.get("/versions/2").json()["document"]["name"] == "Зерно, версия 2"
    problem(admin.get("/versions/3"), 404, "not_found")
    problem(admin.get("/versions/0"), 422, "validation_error")


def _path(route: APIRoute) -> str:
    return (route.path.replace("{program}", "zerno").replace("{member}", "card:100009")
            .replace("{purchase_id}", "1").replace("{key_id}", "1")
            .replace("{version}", "1"))  # fmt: skip


def test_another_programs_key_gets_404_from_every_route_and_changes_nothing(
    admin: Api, zerno_engine: Engine
) -> None:
    admin.post("/members", {"card": "100009"})
    admin.post("/members/card:100009/adjustments", {"points": "100", "reason": "start"})
    admin.post("/purchases", {**RECEIPT, "redeem": "10", "hold": True})
    other: Any = copy.deepcopy(load_document(EXAMPLES / "zerno" / "program.yaml"))
    other["code"] = "other"
    apply_program(zerno_engine, other, actor="test", now=NOW)
    stranger = {"Authorization": f"Bearer {key_for(zerno_engine, 'admin', program='other')}"}
    before = row_counts(zerno_engine)
    app = create_app(zerno_engine)
    scoped = "/v1/programs/{program}"
    routes = [r for r in app.routes if isinstance(r, APIRoute) and r.path.startswith(scoped)]
    assert len(routes) >= 15
    with TestClient(app) as client:
        for route in routes:
            for method in route.methods or ():
                body = {**RECEIPT, "receipt_id": "X"} if "purchases" in route.path else {}
                answer = client.request(method, _path(route), json=body, headers=stranger)
                assert answer.status_code == 404, f"{method} {route.path}: {answer.text}"
                assert answer.json()["code"] == "not_found"
                assert "zerno" not in answer.json()["detail"].replace("'zerno'", "")
    assert row_counts(zerno_engine) == before


def test_a_pos_key_refunds_only_what_was_sold_at_its_location(
    admin: Api, client: TestClient, zerno_engine: Engine
) -> None:
    admin.post("/members", {"card": "100009"})
    sold_elsewhere = admin.post("/purchases", {**RECEIPT, "location": "rest-a"}).json()
    kiosk = Api(client, key_for(zerno_engine, "pos", location="kiosk"))
    sold_here = kiosk.post("/purchases", {**RECEIPT, "receipt_id": "K-1"}).json()
    refused = kiosk.post(f"/purchases/{sold_elsewhere['purchase_id']}/refunds", {"refund_id": "1"})
    problem(refused, 403, "forbidden")
    done = kiosk.post(f"/purchases/{sold_here['purchase_id']}/refunds", {"refund_id": "1"})
    assert done.status_code == 201, done.text
