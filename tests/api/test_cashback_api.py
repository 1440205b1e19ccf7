"""The cashback routes through the real app with real keys, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from kopilka.mechanics.cashback.handlers import activate_due_cashback
from kopilka.mechanics.cashback.routes import MEMBER_CASHBACK_EXAMPLE, PAYOUT_EXAMPLE
from kopilka.programs.handlers import apply_program
from tests.api.conftest import Api, key_for
from tests.store.conftest import NOW
from tests.store.test_cashback import CARD, buy, member, with_cashback

TO_CARD = {"type": "card", "number": CARD}


@pytest.fixture
def admin_api(client: TestClient, zerno_engine: Engine) -> Api:
    with_cashback(zerno_engine)
    return Api(client, key_for(zerno_engine, "admin"))


@pytest.fixture
def rich(admin_api: Api, zerno_engine: Engine) -> str:  # noqa: ARG001 - after the program
    """A member with 1000.00 of available cashback: their reference."""
    member(zerno_engine, "100020")
    buy(zerno_engine, "100020", "R-1", "20000.00")
    activate_due_cashback(zerno_engine, now=NOW + timedelta(days=14))
    return "card:100020"


def ask(api: Api, member_ref: str, amount: str, **kw: Any) -> Any:
    return api.post(f"/members/{member_ref}/cashback/payouts",
                    {"amount": amount, "destination": TO_CARD}, **kw)  # fmt: skip


def test_a_payout_export_writes_a_formula_like_card_as_text(admin_api, zerno_engine):
    member(zerno_engine, "-A1-B1")
    buy(zerno_engine, "-A1-B1", "R-1", "20000.00")
    activate_due_cashback(zerno_engine, now=NOW + timedelta(days=14))
    payout = ask(admin_api, "card:-A1-B1", "600.00").json()
    admin_api.post(f"/cashback/payouts/{payout['id']}/approve")
    lines = admin_api.get("/cashback/payouts/export").text.strip().splitlines()
    assert lines[1].startswith(f"{payout['id']},{payout['member']},'-A1-B1,600.00,RUB,")


def test_a_payout_from_request_to_paid(admin_api, rich, client, zerno_engine):
    assert admin_api.get(f"/members/{rich}/cashback").json()["available"] == "1000.00"
    first = ask(admin_api, rich, "600.00", headers={"Idempotency-Key": "p-1"})
    assert first.status_code == 201, first.text
    replay = ask(admin_api, rich, "600.00", headers={"Idempotency-Key": "p-1"})
    assert (replay.status_code, replay.json()) == (200, first.json())
    payout = first.json()
    assert set(payout) == set(PAYOUT_EXAMPLE)  # the OpenAPI example has a real answer's fields
    assert payout["destination"] == {"type": "card", "number": "************0002"}
    analyst = Api(client, key_for(zerno_engine, "analyst"))
    assert analyst.get(f"/members/{rich}/cashback").json() == {
        "available": "400.00", "pending": "0.00", "requested": "600.00", "debt": "0.00",
        "paid_out": "0.00", "lifetime": "1000.00", "currency": "RUB", "upcoming": []}  # fmt: skip
    assert set(MEMBER_CASHBACK_EXAMPLE) == set(admin_api.get(f"/members/{rich}/cashback").json())
    queue = admin_api.get("/cashback/payouts", params={"status": "requested"}).json()
    assert [item["id"] for item in queue["items"]] == [payout["id"]]
    approved = admin_api.post(f"/cashback/payouts/{payout['id']}/approve")
    assert (approved.status_code, approved.json()["status"]) == (200, "approved")
    export = admin_api.get("/cashback/payouts/export")
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    assert "attachment" in export.headers["content-disposition"]
    lines = export.text.strip().splitlines()
    assert lines[0].startswith("id,member,card,amount")
    assert lines[1].startswith(f"{payout['id']},{payout['member']},100020,600.00,RUB,card,****")
    assert CARD not in export.text
    paid = admin_api.post(f"/cashback/payouts/{payout['id']}/paid", {"reference": "PP-1"})
    assert (paid.json()["status"], paid.json()["note"]) == ("paid", "PP-1")
    assert admin_api.get(f"/cashback/payouts/{payout['id']}").json()["status"] == "paid"
    assert admin_api.get(f"/members/{rich}/cashback").json()["paid_out"] == "600.00"
    assert admin_api.get("/cashback/payouts/export").text.strip().count("\n") == 0  # header only
    history = admin_api.get(f"/members/{rich}/cashback/history", params={"limit": 2}).json()
    assert [(i["reason"], i["from"], i["to"], i["amount"]) for i in history["items"]] == [
        ("cashback.payout.paid", "cashback.requested", "cashback.paid_out", "600.00"),
        ("cashback.payout.request", "cashback.available", "cashback.requested", "600.00"),
    ]
    assert history["next"] is not None
    assert admin_api.get("/members/card:100009/cashback/history").status_code == 404


def test_payout_errors_are_clear(admin_api, rich, client, zerno_engine):
    low = ask(admin_api, rich, "499.99")
    assert (low.status_code, low.json()["code"]) == (422, "validation_error")
    assert "below the least payout, 500.00" in low.json()["detail"]
    much = ask(admin_api, rich, "1000.01")
    assert (much.status_code, much.json()["code"]) == (422, "insufficient_cashback")
    assert much.json()["detail"] == (
        "a payout of 1000.01 is more than the 1000.00 of cashback available"
    )
    bad = admin_api.post(f"/members/{rich}/cashback/payouts", {"amount": "x"})
    assert bad.status_code == 422
    assert {e["loc"] for e in bad.json()["errors"]} == {"amount", "destination"}
    asked = ask(admin_api, rich, "500.00").json()
    reject = admin_api.post(f"/cashback/payouts/{asked['id']}/reject")
    assert (reject.status_code, reject.json()["code"]) == (422, "validation_error")
    paid_early = admin_api.post(f"/cashback/payouts/{asked['id']}/paid")
    assert (paid_early.status_code, paid_early.json()["code"]) == (409, "conflict")
    pos = Api(client, key_for(zerno_engine, "pos", location="rest-a"))
    assert pos.post(f"/cashback/payouts/{asked['id']}/approve").status_code == 403
    assert admin_api.get("/cashback/payouts", params={"status": "lost"}).status_code == 422
    assert admin_api.get("/cashback/payouts/12345678").status_code == 404
    rejected = admin_api.post(f"/cashback/payouts/{asked['id']}/reject", {"reason": "fraud"})
    assert rejected.json()["status"] == "rejected"
    assert admin_api.get(f"/members/{rich}/cashback").json()["available"] == "1000.00"


def test_another_programs_payout_is_not_found(admin_api, rich, client, zerno_engine):
    asked = ask(admin_api, rich, "500.00").json()
    other = {"code": "other", "currency": "RUB", "timezone": "Europe/Moscow"}
    apply_program(zerno_engine, other, actor="test", now=NOW)
    stranger = Api(client, key_for(zerno_engine, "admin", program="other"), program="other")
    for path in (f"/cashback/payouts/{asked['id']}", f"/cashback/payouts/{asked['id']}/approve"):
        answer = stranger.get(path) if path.endswith(asked["id"]) else stranger.post(path)
        assert (answer.status_code, answer.json()["code"]) == (404, "not_found")
    assert stranger.get("/cashback/payouts").json()["items"] == []
    assert stranger.get("/cashback/campaigns").json()["campaigns"] == []
    wrong_key = Api(client, stranger.key)  # a key of "other" on zerno's paths
    assert wrong_key.get(f"/cashback/payouts/{asked['id']}").status_code == 404


def test_campaigns_show_their_budgets(admin_api, zerno_engine):
    member(zerno_engine, "100021")
    buy(zerno_engine, "100021", "R-1", "4000.00", card_bin="22001234")
    campaigns = admin_api.get("/cashback/campaigns").json()
    assert (campaigns["pending_days"], campaigns["min_payout"]) == (14, "500.00")
    bank = next(c for c in campaigns["campaigns"] if c["code"] == "bank")
    assert bank["payment"] == {"methods": ["card"], "bins": ["220000-220499"]}
    assert (bank["budget"], bank["spent"], bank["left"]) == ("100.00", "40.00", "60.00")
    pending = admin_api.get("/members/card:100021/cashback").json()
    assert pending["pending"] == "160.00"  # 3 % and 1 %
    assert pending["upcoming"] == [
        {"available_at": (NOW + timedelta(days=14)).isoformat(), "amount": "160.00"}
    ]


def test_the_routes_are_in_the_openapi_document(admin_api):
    paths = admin_api.client.get("/openapi.json").json()["paths"]
    for path in ("/v1/programs/{program}/members/{member}/cashback/payouts",
                 "/v1/programs/{program}/cashback/payouts/{payout}/approve",
                 "/v1/programs/{program}/cashback/payouts/export"):  # fmt: skip
        assert path in paths
