"""The review queue over HTTP, on both databases: the API of an admin key (approve pays
both sides once, reject never pays, each decision recorded; another program's referral
is a 404, a bad id a clean 4xx) and the console page's forms (CSRF, audit)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from kopilka.mechanics.referrals.routes import router
from kopilka.members.handlers import update_member
from kopilka.operators import handlers as operators
from kopilka.operators.handlers import audit_entries, create_operator
from kopilka.platform.files import load_document
from kopilka.platform.http.app import include_routes
from kopilka.platform.tables import transfers
from kopilka.programs.handlers import apply_program
from tests.api.conftest import Api, key_for, serving_engine
from tests.conftest import EXAMPLES
from tests.referrals.conftest import DAY, REFERRALS, buy, code_of, join, settle
from tests.store.conftest import NOW
from tests.web.conftest import CHEAP, PASSWORD, console_app, csrf_of

OTHER = "north"


def with_referral_routes(app: FastAPI) -> FastAPI:
    """The app with the mechanic's routes (mounted here until the app mounts every
    registered mechanic's `router` itself)."""
    mounted = {route.path for route in app.routes if isinstance(route, APIRoute)}
    if not {r.path for r in router.routes if isinstance(r, APIRoute)} <= mounted:
        include_routes(app, router)
    return app


def referral_transfers(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(
            select(func.count()).where(transfers.c.transfer_key.like("%:referral:%"))
        ).scalar_one())  # fmt: skip


def two_in_review(engine: Engine) -> None:
    """An honest referral (paid) and two more on the same phone (in review)."""
    join(engine, "100001")
    code = code_of(engine, "100001")
    for n in range(3):
        join(engine, f"20000{n}", referral_code=code, phone="+79125555555")
        update_member(engine, "zerno", f"card:20000{n}", {"phone": f"+7912666666{n}"}, now=NOW)
        buy(engine, f"20000{n}", at=NOW + DAY)
    assert settle(engine, NOW + 20 * DAY)["referrals_review"] == 2


def other_program(engine: Engine) -> None:
    document: dict[str, Any] = load_document(EXAMPLES / "zerno" / "program.yaml")  # type: ignore[assignment]
    document["code"], document["referrals"] = OTHER, REFERRALS
    apply_program(engine, document, actor="test", now=NOW)


@pytest.fixture
def client(cafe: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setattr(operators, "_hasher", CHEAP)
    two_in_review(cafe)
    other_program(cafe)
    app = with_referral_routes(console_app(serving_engine(cafe)))
    with TestClient(app, base_url="http://testserver") as test_client:
        yield test_client


@pytest.fixture
def admin(client: TestClient, cafe: Engine) -> Api:
    return Api(client, key_for(cafe, "admin"))


def queue(admin: Api) -> list[dict[str, Any]]:
    answer = admin.get("/referrals", params={"status": "review"})
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


def test_approving_pays_both_sides_once_and_rejecting_never_pays(admin: Api, cafe: Engine) -> None:
    first, second = queue(admin)
    assert first["reasons"] == ["shared_phone"]
    assert referral_transfers(cafe) == 2  # the honest one
    for _ in range(2):  # approving twice pays once
        approved = admin.post(f"/referrals/{first['id']}/approve", {"note": "called her"})
        assert approved.status_code == 200, approved.text
        assert approved.json()["status"] == "paid"
    assert referral_transfers(cafe) == 4
    assert approved.json()["rewards"] == {"referrer": "300.00", "friend": "150.00"}
    rejected = admin.post(f"/referrals/{second['id']}/reject", {"note": "a farm"})
    assert rejected.json()["status"] == "rejected"
    assert rejected.json()["reasons"] == ["shared_phone", "rejected_by_reviewer"]
    assert admin.post(f"/referrals/{second['id']}/approve").status_code == 409
    assert admin.post(f"/referrals/{first['id']}/reject").status_code == 409
    assert referral_transfers(cafe) == 4
    assert queue(admin) == []
    decisions = admin.get(f"/referrals/{first['id']}").json()["decisions"]
    assert [(d["action"], d["status"]) for d in decisions] == [
        ("refer", "waiting"), ("judge", "review"), ("approve", "paid")]  # fmt: skip
    assert decisions[-1]["actor"].startswith("key:")
    assert decisions[-1]["note"] == "called her"
    figures = admin.get("/referrals/figures").json()
    assert figures["referrals"] == {"waiting": 0, "review": 0, "paid": 2, "rejected": 1}
    assert figures["cost"] == "900.00"


def test_another_program_s_referral_and_a_bad_id_are_404(
    client: TestClient, admin: Api, cafe: Engine
) -> None:
    first, _ = queue(admin)
    north = Api(client, key_for(cafe, "admin", program=OTHER), program=OTHER)
    assert north.get(f"/referrals/{first['id']}").status_code == 404
    assert north.post(f"/referrals/{first['id']}/approve").status_code == 404
    for bad in ("abc", "0", "99999999999", "1e3", "٣"):
        answer = admin.post(f"/referrals/{bad}/approve")
        assert answer.status_code == 404, (bad, answer.text)
        assert answer.json()["code"] == "not_found"
    assert admin.get("/referrals", params={"status": "lost"}).status_code == 422
    assert referral_transfers(cafe) == 2


def test_a_decision_s_note_is_checked_and_only_an_admin_decides(
    client: TestClient, admin: Api, cafe: Engine
) -> None:
    first, _ = queue(admin)
    answer = admin.post(f"/referrals/{first['id']}/approve", {"note": 5})
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["loc"] == "note"
    assert admin.post(f"/referrals/{first['id']}/approve", {"note": "x" * 1001}).status_code == 422
    pos = Api(client, key_for(cafe, "pos", location="kiosk"))
    assert pos.post(f"/referrals/{first['id']}/approve").status_code == 403
    assert referral_transfers(cafe) == 2


def test_a_member_s_code_and_counts_are_on_their_referral_document(admin: Api) -> None:
    mine = admin.get("/members/card:100001/referral").json()
    assert mine["link"] == f"https://zerno.example/r/{mine['code']}"
    assert (mine["invited"], mine["paid"], mine["in_review"]) == (3, 1, 2)
    assert admin.get("/members/card:100001").json()["referrals"]["code"] == mine["code"]


# — the console —


def sign_in(client: TestClient, cafe: Engine, role: str) -> None:
    create_operator(cafe, "zerno", f"{role}@zerno.example", PASSWORD, role, NOW)
    token = csrf_of(client.get("/console/login").text)
    client.post("/console/login", data={"csrf": token, "program": "zerno",
                "email": f"{role}@zerno.example", "password": PASSWORD})  # fmt: skip


def test_the_console_page_shows_the_queue_and_its_forms_decide_with_an_audit(
    client: TestClient, admin: Api, cafe: Engine
) -> None:
    first, second = queue(admin)
    sign_in(client, cafe, "admin")
    page = client.get("/console/zerno/referrals")
    assert page.status_code == 200
    assert f'id="approve-{first["id"]}"' in page.text
    assert "shared_phone" in page.text
    token = csrf_of(page.text)
    base = "/console/zerno/referrals"
    forged = client.post(f"{base}/{first['id']}/approve", data={"csrf": "forged"})
    assert forged.status_code == 403
    done = client.post(f"{base}/{first['id']}/approve", data={"csrf": token, "note": "ok"},
                       follow_redirects=False)  # fmt: skip
    assert done.status_code == 303
    again = client.post(f"{base}/{first['id']}/approve", data={"csrf": token},
                        follow_redirects=False)  # fmt: skip
    assert again.status_code == 303  # approved before: nothing more is paid
    refused = client.post(f"{base}/{first['id']}/reject", data={"csrf": token})
    assert refused.status_code == 409
    client.post(f"{base}/{second['id']}/reject", data={"csrf": token, "note": "a farm"})
    assert referral_transfers(cafe) == 4
    audit = audit_entries(cafe, "zerno")
    assert [(e["action"], e["target"]) for e in audit if e["action"].startswith("referral.")][
        :3] == [("referral.reject", f"referral:{second['id']}"),
                ("referral.approve", f"referral:{first['id']}"),
                ("referral.approve", f"referral:{first['id']}")]  # fmt: skip
    assert "Ждут проверки" in client.get(base + "?lang=ru").text


def test_an_analyst_sees_the_page_but_not_the_buttons(
    client: TestClient, admin: Api, cafe: Engine
) -> None:
    first, _ = queue(admin)
    sign_in(client, cafe, "analyst")
    page = client.get("/console/zerno/referrals").text
    assert "Waiting for review" in page
    assert f'id="approve-{first["id"]}"' not in page
    token = csrf_of(page)
    denied = client.post(f"/console/zerno/referrals/{first['id']}/approve", data={"csrf": token})
    assert denied.status_code == 403
