"""Card-linked offers over HTTP, on SQLite and PostgreSQL: the catalog, a card enrolled and
an offer activated, then a purchase's life — authorised (provisionally qualified),
cleared for less (confirmed on the cleared amount), half refunded (clawed back in
proportion), paid after the return period — with each figure exact, each offer's reason
said, the feed idempotent by transaction id, and `verify` clean."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from kopilka.ledger.verify import verify
from kopilka.mechanics.card_offers.tables import clo_reviews
from kopilka.operators.keys import create_key
from kopilka.platform.files import load_document
from kopilka.platform.http.app import create_app
from kopilka.platform.tables import webhook_outbox
from kopilka.platform.webhooks import verify as verify_signature
from kopilka.platform.worker import run_due_work
from kopilka.programs.handlers import apply_program
from tests.api.conftest import serving_engine
from tests.coalition.test_settlement import alliance
from tests.conftest import EXAMPLES
from tests.store.conftest import NOW
from tests.web.conftest import served

__all__ = ["alliance"]
BASE = "/v1/programs/zerno"
CAFE = {
    "name": "Кофейня",
    "locations": [
        {"code": "cafe-1", "descriptor": "CAFE ONE", "mcc": "5814", "latitude": "55.751244",
         "longitude": "37.618423", "merchant_ids": {"visa": "111", "mir": "222"}},
        # two shops behind one payment facilitator's merchant id
        {"code": "cafe-2", "descriptor": "SQ *CAFE TWO", "merchant_ids": {"visa": "999"}},
        {"code": "shop-3", "descriptor": "SQ *SHOP THREE", "merchant_ids": {"visa": "999"}},
    ],
}  # fmt: skip
# The routes read the real clock (an activation is made now, and counts for purchases
# after it): the offer runs around today, the purchases are made an hour from now.
MOSCOW = timezone(timedelta(hours=3))
SOON = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0).astimezone(MOSCOW)
WEEKDAYS = {
    "merchant": "cafe", "starts": (SOON.date() - timedelta(days=7)).isoformat(),
    "until": (SOON.date() + timedelta(days=60)).isoformat(),
    "cashback": {"percent": "10"}, "max_cashback": "500.00", "min_amount": "300.00",
    "weekdays": [1, 2, 3, 4, 5, 6, 7], "activation_required": True, "return_days": 30,
    "budget": "1000.00", "fee": {"percent": "2", "fixed": "1.00"},
}  # fmt: skip
AUTH = {
    "transaction_id": "A-1", "kind": "authorisation", "card": "tok-anna", "amount": "1000.00",
    "currency": "RUB", "at": SOON.isoformat(), "scheme": "visa",
    "merchant_id": "111", "descriptor": "CAFE ONE 0012", "mcc": "5814",
}  # fmt: skip


@pytest.fixture
def client(zerno_engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(serving_engine(zerno_engine))) as test_client:
        yield test_client


@pytest.fixture
def admin(zerno_engine: Engine) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_key(zerno_engine, 'zerno', 'admin', now=NOW)[0]}"}


def put(client: TestClient, headers: dict[str, str], path: str, body: Any) -> Any:
    return client.put(BASE + path, json=body, headers=headers)


def post(client: TestClient, headers: dict[str, str], path: str, body: Any = None) -> Any:
    return client.post(BASE + path, json=body, headers=headers)


def send(client: TestClient, headers: dict[str, str], **changes: Any) -> dict[str, Any]:
    answer = post(client, headers, "/card-transactions", {**AUTH, **changes})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def catalog(client: TestClient, headers: dict[str, str]) -> None:
    assert put(client, headers, "/card-merchants/cafe", CAFE).status_code == 201
    rule = post(client, headers, "/card-rules", {"descriptor": "SQ *CAFE TWO 0042",
                                                 "location": "cafe-2"})  # fmt: skip
    assert rule.status_code == 201, rule.text
    assert rule.json()["words"] == "CAFE TWO"
    assert put(client, headers, "/card-offers/weekdays", WEEKDAYS).status_code == 201
    card = {"scheme": "visa", "first_six": "427600", "last_four": "1234"}
    assert put(client, headers, "/cards/tok-anna", card).status_code == 201


def offer_of(answer: dict[str, Any], code: str = "weekdays") -> dict[str, Any]:
    return next(item for item in answer["offers"] if item["offer"] == code)


def test_a_purchase_earns_is_confirmed_clawed_back_and_paid(
    client: TestClient, admin: dict[str, str], zerno_engine: Engine
) -> None:
    catalog(client, admin)
    before = send(
        client, admin, transaction_id="A-0", at=(SOON - timedelta(hours=2)).isoformat()
    )  # before the activation
    assert before["matched"] == {"location": "cafe-1", "merchant": "cafe", "rule": "mid:visa:111"}
    assert offer_of(before) == {"offer": "weekdays", "reason": "offer_not_activated"}
    shown = client.get(BASE + "/cards/tok-anna/offers", headers=admin).json()
    assert shown["offers"] == [{"offer": "weekdays", "merchant": "cafe",
                                "until": WEEKDAYS["until"], "activation_required": True,
                                "activated": False}]  # fmt: skip
    activated = post(client, admin, "/cards/tok-anna/offers/weekdays/activation")
    assert activated.status_code == 201, activated.text
    again = post(client, admin, "/cards/tok-anna/offers/weekdays/activation")
    assert (again.status_code, again.json()) == (200, activated.json())

    authorised = send(client, admin)
    assert offer_of(authorised) == {"offer": "weekdays", "reason": "qualified", "status":
                                    "pending", "cashback": "100.00", "cashback_change": "100.00",
                                    "fee": "21.00"}  # fmt: skip
    replay = post(client, admin, "/card-transactions", AUTH)
    assert (replay.status_code, replay.json()) == (200, authorised)
    other = post(client, admin, "/card-transactions", {**AUTH, "amount": "999.00"})
    assert (other.status_code, other.json()["code"]) == (409, "idempotency_conflict")

    cleared = send(client, admin, transaction_id="C-1", kind="clearing", amount="900.00",
                   original="A-1")  # fmt: skip
    assert offer_of(cleared) == {"offer": "weekdays", "reason": "cleared", "status": "confirmed",
                                 "cashback": "90.00", "cashback_change": "-10.00",
                                 "fee": "19.00"}  # fmt: skip
    refunded = send(client, admin, transaction_id="R-1", kind="refund", amount="450.00",
                    original="A-1")  # fmt: skip
    assert offer_of(refunded)["cashback"] == "45.00"
    assert offer_of(refunded)["cashback_change"] == "-45.00"
    assert offer_of(refunded)["fee"] == "9.50"  # half of 19.00, half up: 9.50

    story = client.get(BASE + "/card-transactions/A-1", headers=admin).json()
    payable = SOON + timedelta(days=30)  # the clearing's time and the return period
    assert story["rewards"] == [{"offer": "weekdays", "status": "confirmed", "cashback": "45.00",
                                 "fee": "9.50",
                                 "payable_at": payable.astimezone(UTC).isoformat()}]  # fmt: skip
    due = run_due_work(zerno_engine, now=payable - timedelta(seconds=1))
    assert due["card_rewards_paid"] == 0
    assert run_due_work(zerno_engine, now=payable)["card_rewards_paid"] == 1
    paid = client.get(BASE + "/card-transactions/A-1", headers=admin).json()["rewards"]
    assert paid[0]["status"] == "paid"
    with zerno_engine.connect() as connection:
        events = connection.execute(select(webhook_outbox.c.event, webhook_outbox.c.event_key)
                                    .order_by(webhook_outbox.c.id)).all()  # fmt: skip
    assert [tuple(event) for event in events] == [
        ("card_transaction.pending", "A-1:weekdays"),
        ("card_transaction.confirmed", "C-1:weekdays"),
        ("card_transaction.confirmed", "R-1:weekdays"),
        ("reward.paid", "A-1:weekdays:paid"),
    ]
    assert verify(zerno_engine)[1] == []


def test_a_facilitators_shared_merchant_id_is_decided_by_the_descriptor(
    client: TestClient, admin: dict[str, str], zerno_engine: Engine
) -> None:
    catalog(client, admin)
    post(client, admin, "/cards/tok-anna/offers/weekdays/activation")
    two = send(client, admin, transaction_id="A-2", merchant_id="999",
               descriptor="sq*Cafe-Two #0042")  # fmt: skip
    assert two["matched"] == {"location": "cafe-2", "merchant": "cafe", "rule": "descriptor:1"}
    # the shared id narrows to cafe-2 and shop-3; no rule names shop-3: unmatched, queued
    three = send(client, admin, transaction_id="A-3", merchant_id="999",
                 descriptor="SQ *SHOP THREE 7")  # fmt: skip
    assert (three["matched"], three["offers"]) == (None, [])
    with zerno_engine.connect() as connection:
        queued = connection.execute(select(clo_reviews.c.descriptor, clo_reviews.c.suggestions,
                                           clo_reviews.c.status)).all()  # fmt: skip
    assert [tuple(row) for row in queued] == [("SQ *SHOP THREE 7", [["shop-3", "1.0"]], "open")]


def test_a_budget_pays_what_is_left_then_ends(
    client: TestClient, admin: dict[str, str], zerno_engine: Engine
) -> None:
    catalog(client, admin)
    post(client, admin, "/cards/tok-anna/offers/weekdays/activation")
    paid = [offer_of(send(client, admin, transaction_id=f"B-{n}", amount="4000.00"))
            for n in range(4)]  # fmt: skip
    # 10 % of 4000 capped at 500 is 400: 400, 400, the 200 left, then nothing
    assert [item.get("cashback") for item in paid[:3]] == ["400.00", "400.00", "200.00"]
    assert paid[3] == {"offer": "weekdays", "reason": "offer_budget_spent", "status": "refused",
                       "cashback": "0.00", "cashback_change": "0.00", "fee": "0.00"}  # fmt: skip
    # a reversal gives its 400 back to the budget, but an ended offer stays ended
    post(client, admin, "/card-transactions", {**AUTH, "transaction_id": "V-0",
                                               "kind": "reversal", "original": "B-0"})  # fmt: skip
    later = offer_of(send(client, admin, transaction_id="B-9", amount="4000.00"))
    assert later["reason"] == "offer_budget_spent"
    offer = client.get(BASE + "/card-offers/weekdays", headers=admin).json()
    assert (offer["spent"], offer["budget_ended"]) == ("600.00", True)
    assert verify(zerno_engine)[1] == []


def test_bad_input_is_a_clear_4xx(client: TestClient, admin: dict[str, str]) -> None:
    catalog(client, admin)
    pan = put(client, admin, "/cards/4276000012345678",
              {"scheme": "visa", "first_six": "427600", "last_four": "5678"})  # fmt: skip
    assert pan.status_code == 422
    assert "card number" in pan.json()["errors"][0]["message"]
    unknown = post(client, admin, "/card-transactions", {**AUTH, "card": "tok-nobody"})
    assert unknown.status_code == 404
    negative = post(client, admin, "/card-transactions", {**AUTH, "amount": "-5.00"})
    assert (negative.status_code, negative.json()["errors"][0]["loc"]) == (422, "amount")
    naive = post(client, admin, "/card-transactions", {**AUTH, "at": "2026-12-03T09:15:00"})
    assert (naive.status_code, naive.json()["errors"][0]["loc"]) == (422, "at")
    dollars = post(client, admin, "/card-transactions", {**AUTH, "currency": "USD"})
    assert (dollars.status_code, dollars.json()["errors"][0]["loc"]) == (422, "currency")
    ahead = (SOON + timedelta(days=2)).isoformat()
    future = post(client, admin, "/card-transactions", {**AUTH, "at": ahead})
    assert (future.status_code, future.json()["errors"][0]["loc"]) == (422, "at")
    put(client, admin, "/cards/tok-boris", {"scheme": "visa", "first_six": "427600",
                                             "last_four": "4321"})  # fmt: skip
    send(client, admin)  # Anna's purchase A-1
    borrowed = post(client, admin, "/card-transactions", {
        **AUTH, "transaction_id": "C-9", "kind": "clearing", "card": "tok-boris",
        "original": "A-1"})  # fmt: skip
    assert (borrowed.status_code, borrowed.json()["errors"][0]["loc"]) == (422, "original")
    orphan = post(client, admin, "/card-transactions", {**AUTH, "kind": "refund"})
    assert (orphan.status_code, orphan.json()["errors"][0]["loc"]) == (422, "original")
    nowhere = put(client, admin, "/card-offers/x", {**WEEKDAYS, "merchant": "nobody"})
    assert (nowhere.status_code, nowhere.json()["errors"][0]["loc"]) == (422, "merchant")
    both = put(client, admin, "/card-offers/x", {**WEEKDAYS, "cashback": {}})
    assert (both.status_code, both.json()["errors"][0]["loc"]) == (422, "cashback")
    below = put(client, admin, "/card-offers/weekdays", {**WEEKDAYS, "budget": "-1"})
    assert below.status_code == 422


def test_a_merchants_key_publishes_its_own_offers_only(alliance: Engine) -> None:
    """In a coalition, merchants are its partners: a partner's key publishes offers for its
    own merchant; another merchant is a 404."""
    admin = {"Authorization": f"Bearer {create_key(alliance, 'alliance', 'admin', now=NOW)[0]}"}
    key = create_key(alliance, "alliance", "partner", now=NOW, partner="cafe")[0]
    cafe = {"Authorization": f"Bearer {key}"}
    base = "/v1/programs/alliance"
    with TestClient(create_app(serving_engine(alliance))) as client:
        for merchant in ("cafe", "books"):
            made = client.put(f"{base}/card-merchants/{merchant}",
                              json={"name": merchant, "locations": []}, headers=admin)  # fmt: skip
            assert made.status_code == 201, made.text
        morning = {**WEEKDAYS, "hours": {"from": "08:00", "until": "11:00"}}
        own = client.put(f"{base}/card-offers/cafe-morning", json=morning, headers=cafe)
        assert own.status_code == 201, own.text
        assert own.json()["merchant"] == "cafe"
        other = client.put(f"{base}/card-offers/books-1",
                           json={**WEEKDAYS, "merchant": "books"}, headers=cafe)  # fmt: skip
        assert (other.status_code, other.json()["code"]) == (404, "not_found")
        by_admin = client.put(f"{base}/card-offers/books-1",
                              json={**WEEKDAYS, "merchant": "books"}, headers=admin)  # fmt: skip
        assert by_admin.status_code == 201


def test_the_bank_receives_each_change_signed_once(
    client: TestClient, admin: dict[str, str], zerno_engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """With `card_offers.webhook` in the program file and its secret in the environment,
    the worker sends each reward's change to the bank's URL, signed; a receiver that
    fails once gets it again at the next run, never twice once it answered 200."""
    received: list[tuple[dict[str, str], bytes]] = []
    failures = [1]

    async def hook(request: Request) -> Response:
        received.append((dict(request.headers), await request.body()))
        if failures[0]:
            failures[0] -= 1
            return PlainTextResponse("busy", status_code=503)
        return PlainTextResponse("ok")

    secret = "s" * 24
    monkeypatch.setenv("KOPILKA_CLO_BANK_SECRET", secret)
    with served(Starlette(routes=[Route("/hooks", hook, methods=["POST"])])) as url:
        document = load_document(EXAMPLES / "zerno" / "program.yaml")
        assert isinstance(document, dict)
        hook_at = {"url": f"{url}/hooks", "secret_env": "KOPILKA_CLO_BANK_SECRET"}
        apply_program(zerno_engine, {**document, "card_offers": {"webhook": hook_at}},
                      actor="test", now=NOW)  # fmt: skip
        catalog(client, admin)
        post(client, admin, "/cards/tok-anna/offers/weekdays/activation")
        send(client, admin)
        first = datetime.now(UTC)
        assert run_due_work(zerno_engine, now=first)["webhooks_retried"] == 1
        assert run_due_work(zerno_engine, now=first)["webhooks_delivered"] == 0  # not yet due
        later = first + timedelta(minutes=2)
        assert run_due_work(zerno_engine, now=later)["webhooks_delivered"] == 1
        again = run_due_work(zerno_engine, now=later + timedelta(hours=1))
        assert (again["webhooks_delivered"], again["webhooks_retried"]) == (0, 0)
    assert len(received) == 2
    headers, body = received[-1]
    assert json.loads(body) == {
        "event": "card_transaction.pending", "transaction_id": "A-1", "purchase": "A-1",
        "offer": "weekdays", "card": "tok-anna", "status": "pending", "reason": "qualified",
        "cashback_minor": 10000, "cashback_change_minor": 10000, "fee_minor": 2100,
    }  # fmt: skip
    assert headers["x-kopilka-event"] == "card_transaction.pending"
    assert verify_signature(secret, headers["x-kopilka-timestamp"],
                            headers["x-kopilka-delivery"], body.decode(),
                            headers["x-kopilka-signature"], now=later)  # fmt: skip
