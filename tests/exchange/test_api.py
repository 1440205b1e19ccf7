"""The exchange over the API (two programs of one Kopilka): who may exchange and read, the
answers and their statuses, another program's members and exchanges as `404`, the
reconciliation by date, and the console's page in Russian and English."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from kopilka.operators import handlers as operators
from kopilka.operators.handlers import create_operator
from kopilka.operators.sessions import Sessions
from kopilka.platform.http.app import create_app
from tests.api.conftest import Api, key_for, serving_engine
from tests.exchange.conftest import assert_sound
from tests.store.conftest import NOW
from tests.web.conftest import CHEAP, PASSWORD, sign_in
from tests.web.conftest import SECRET as SESSION_SECRET

BODY = {"transaction_id": "api-1", "to_program": "north", "to_member": "card:900001",
        "points": "1000"}  # fmt: skip
MEMBER = "/members/card:100001/exchanges"


@pytest.fixture
def client(pair: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setattr(operators, "_hasher", CHEAP)
    for role in ("admin", "analyst", "marketer"):
        create_operator(pair, "zerno", f"{role}@zerno.example", PASSWORD, role, NOW)
    app = create_app(serving_engine(pair))
    app.state.console_sessions = Sessions(SESSION_SECRET)
    with TestClient(app, base_url="http://testserver") as test_client:
        yield test_client


def api(client: TestClient, engine: Engine, role: str, program: str = "zerno") -> Api:
    place = {"location": "kiosk"} if role == "pos" else {}
    return Api(client, key_for(engine, role, program, **place), program)


@pytest.mark.parametrize("role", ["admin", "support", "partner", "pos"])
def test_a_key_that_serves_members_exchanges_their_points(
    client: TestClient, pair: Engine, role: str
) -> None:
    answer = api(client, pair, role).post(MEMBER, BODY)
    assert answer.status_code == 201, answer.text
    assert answer.json()["state"] == "confirmed"
    again = api(client, pair, role).post(MEMBER, BODY)
    assert (again.status_code, again.json()) == (200, answer.json())
    other = api(client, pair, role).post(MEMBER, {**BODY, "points": "999"})
    assert (other.status_code, other.json()["code"]) == (409, "idempotency_conflict")


def test_an_analyst_key_can_t_exchange(client: TestClient, pair: Engine) -> None:
    assert api(client, pair, "analyst").post(MEMBER, BODY).status_code == 403


def test_refusals_are_problems_naming_what_stopped_them(client: TestClient, pair: Engine) -> None:
    admin = api(client, pair, "admin")
    small = admin.post(MEMBER, {**BODY, "points": "50"})
    assert (small.status_code, small.json()["code"]) == (422, "validation_error")
    assert admin.post(MEMBER, {**BODY, "transaction_id": "a", "points": "3000"}).status_code == 201
    over = admin.post(MEMBER, {**BODY, "transaction_id": "b", "points": "100"})
    assert (over.status_code, over.json()["refused_by"]) == (409, "daily_limit")
    poor = admin.post(MEMBER, {**BODY, "transaction_id": "c", "points": "100000"})
    assert (poor.status_code, poor.json()["code"]) == (422, "insufficient_points")
    bad = admin.post(MEMBER, {"transaction_id": "x/y", "points": 1})
    assert bad.status_code == 422
    assert {"transaction_id", "to_program", "to_member"} <= {
        problem["loc"] for problem in bad.json()["errors"]}  # fmt: skip


def test_exchanges_are_read_by_member_and_by_transaction(client: TestClient, pair: Engine) -> None:
    admin = api(client, pair, "admin")
    admin.post(MEMBER, BODY)
    admin.post(MEMBER, {**BODY, "transaction_id": "api-2", "to_member": "card:404"})
    listed = api(client, pair, "analyst").get(MEMBER).json()
    assert [(i["transaction_id"], i["state"]) for i in listed["items"]] == [
        ("api-2", "reversed"), ("api-1", "confirmed")]  # fmt: skip
    one = api(client, pair, "support").get(MEMBER + "/api-1")
    assert (one.status_code, one.json()["credited"]) == (200, "780")
    assert api(client, pair, "admin").get("/members/card:100002/exchanges/api-1").status_code == 404
    assert api(client, pair, "admin").get(MEMBER + "/none").status_code == 404


def test_another_program_s_members_and_exchanges_are_not_found(
    client: TestClient, pair: Engine
) -> None:
    api(client, pair, "admin").post(MEMBER, BODY)
    north = api(client, pair, "admin", "north")
    assert north.get("/members/card:100001/exchanges").status_code == 404  # zerno's member
    zerno_key = key_for(pair, "admin", "zerno")
    stranger = client.get("/v1/programs/north/members/card:900001/exchanges",
                          headers={"Authorization": f"Bearer {zerno_key}"})  # fmt: skip
    assert stranger.status_code == 404


def test_the_reconciliation_by_date(client: TestClient, pair: Engine) -> None:
    api(client, pair, "admin").post(MEMBER, BODY)
    today = NOW.date().isoformat()
    for role in ("admin", "support", "analyst"):
        answer = api(client, pair, role).get(f"/exchanges/reconciliation?date={today}")
        assert answer.status_code == 200
    assert (
        api(client, pair, "pos").get(f"/exchanges/reconciliation?date={today}").status_code == 403
    )
    wrong = api(client, pair, "admin").get("/exchanges/reconciliation?date=2026-13-01")
    assert (wrong.status_code, wrong.json()["errors"][0]["loc"]) == (422, "date")
    assert_sound(pair)


def test_the_console_page_lists_pairs_exchanges_and_the_reconciliation(
    client: TestClient, pair: Engine
) -> None:
    api(client, pair, "admin").post(MEMBER, BODY)
    assert sign_in(client, "analyst").status_code == 303
    page = client.get("/console/zerno/exchange", headers={"Accept-Language": "ru"})
    assert page.status_code == 200, page.text
    assert 'id="pair-north"' in page.text
    assert 'id="exchange-api-1"' in page.text
    assert "Обмен баллов" in page.text
    assert "Обе стороны каждого обмена за день сходятся." in page.text
    english = client.get("/console/zerno/exchange?date=2026-03-10",
                         headers={"Accept-Language": "en"})  # fmt: skip
    assert "Both sides of every exchange of the day agree." in english.text


def test_the_console_page_is_for_those_who_see_members(client: TestClient) -> None:
    assert client.get("/console/zerno/exchange", follow_redirects=False).status_code == 303
    sign_in(client, "marketer")
    assert client.get("/console/zerno/exchange").status_code == 403
