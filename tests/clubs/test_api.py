"""The clubs over HTTP and in the console: joining and replays, bad input as a clear
4xx, a club-only line's problem document, the member document's clubs and flags,
another program's clubs a 404; the console's clubs page with its figures and an
audited invite code."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from kopilka.operators.tables import audit_log
from kopilka.programs.handlers import apply_program
from tests.api.conftest import Api, key_for, serving_engine
from tests.clubs.conftest import DAY, NOW, club_program, member
from tests.web.conftest import console_app, csrf_of, sign_in, stock


@pytest.fixture
def app_client(cafe: Engine) -> Iterator[TestClient]:
    other = club_program("north")
    other["clubs"][0]["code"] = "golf"
    other["rules"][-1]["when"] = {"clubs": ["golf"]}
    apply_program(cafe, other, actor="test", now=NOW - DAY)
    stock(cafe)  # operators of each role (and a member of another program)
    with TestClient(console_app(serving_engine(cafe)), base_url="http://testserver") as client:
        yield client


@pytest.fixture
def admin(app_client: TestClient, cafe: Engine) -> Api:
    return Api(app_client, key_for(cafe, "admin"))


@pytest.fixture
def pos(app_client: TestClient, cafe: Engine) -> Api:
    return Api(app_client, key_for(cafe, "pos", location="kiosk"))


JOIN = {"club": "wine", "payment": {"reference": "PAY-77", "amount": "990.00"}}


def test_joining_answers_201_then_the_same_payment_200(pos: Api, cafe: Engine) -> None:
    who = member(cafe, "600001")
    first = pos.post(f"/members/{who}/clubs", JOIN)
    assert first.status_code == 201
    assert first.json()["status"] == "active"
    again = pos.post(f"/members/{who}/clubs", JOIN)
    assert again.status_code == 200
    assert again.json() == first.json()
    listed = pos.get(f"/members/{who}/clubs").json()
    assert [m["club"] for m in listed["memberships"]] == ["wine"]
    assert listed["privileges"] == ["sommelier"]
    history = pos.get(f"/members/{who}/clubs/wine").json()
    assert [e["payment_ref"] for e in history["events"]] == ["PAY-77"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"club": "wine", "payment": {"reference": "P-1", "amount": "1.00"}}, 422,
         "validation_error"),
        ({"club": "wine", "payment": {"reference": "P-1", "amount": "1e400"}}, 422,
         "validation_error"),
        ({"club": "wine", "payment": {"reference": "P-1", "amount": "١٠"}}, 422,
         "validation_error"),
        ({"club": "golf", "payment": {"reference": "P-1", "amount": "990.00"}}, 404,
         "not_found"),
        ({"club": "friends", "invite": "NOPE-NOPE"}, 422, "validation_error"),
        ([], 422, "validation_error"),
    ],
)  # fmt: skip
def test_bad_input_is_a_clear_4xx(
    pos: Api, cafe: Engine, body: object, status: int, code: str
) -> None:
    who = member(cafe, "600002")
    answer = pos.post(f"/members/{who}/clubs", body)
    assert answer.status_code == status, answer.text
    assert answer.json()["code"] == code
    assert answer.headers["content-type"].startswith("application/problem+json")


def test_another_program_s_club_is_not_found(admin: Api, app_client: TestClient) -> None:
    assert admin.get("/clubs/golf/invites").status_code == 404
    assert admin.post("/clubs/golf/invites", {"uses": 1}).status_code == 404
    other = Api(app_client, admin.key, program="north")
    assert other.get("/clubs").status_code == 404


def test_a_club_only_line_is_refused_with_its_reason(pos: Api, cafe: Engine) -> None:
    who = member(cafe, "600003")
    body = {"receipt_id": "R-CLUB-1", "location": "kiosk", "member": who,
            "lines": [{"sku": "TEA-400"}, {"sku": "WINE-1"}]}  # fmt: skip
    for path in ("/purchases", "/purchases/quote"):
        refused = pos.post(path, body)
        assert refused.status_code == 422
        problem = refused.json()
        assert problem["code"] == "club_only"
        assert (problem["line"], problem["sku"], problem["club"], problem["reason"]) == (
            1, "WINE-1", "wine", "members_only")  # fmt: skip
        assert problem["errors"][0]["loc"] == "lines[1].sku"
    pos.post(f"/members/{who}/clubs", {**JOIN, "payment": {"reference": "P-9",
                                                           "amount": "990.00"}})  # fmt: skip
    sold = pos.post("/purchases", body)
    assert sold.status_code == 201
    assert sold.json()["privileges"] == ["sommelier"]


def test_the_member_document_shows_clubs_and_flags(pos: Api, admin: Api, cafe: Engine) -> None:
    who = member(cafe, "600004")
    invite = admin.post("/clubs/friends/invites", {"uses": 1, "valid_until": "2026-12-31"})
    assert invite.status_code == 201
    assert pos.post(f"/members/{who}/clubs", {"club": "friends", "invite": invite.json()["code"]}
                    ).status_code == 201  # fmt: skip
    document = pos.get(f"/members/{who}").json()
    assert document["privileges"] == ["vip-service"]
    assert document["clubs"]["memberships"][0]["club"] == "friends"
    left = pos.post(f"/members/{who}/clubs/friends/leave")
    assert left.status_code == 200
    assert left.json()["status"] == "left"


def test_only_an_admin_makes_invite_codes(pos: Api) -> None:
    assert pos.post("/clubs/friends/invites", {"uses": 3}).status_code == 403


def test_the_overview_lists_clubs_figures_and_invites(admin: Api, pos: Api, cafe: Engine) -> None:
    who = member(cafe, "600005")
    pos.post(f"/members/{who}/clubs", JOIN)
    admin.post("/clubs/friends/invites", {"uses": 5, "code": "VIP-2026"})
    overview = admin.get("/clubs").json()
    wine = next(club for club in overview["clubs"] if club["code"] == "wine")
    assert (wine["members"], wine["joins"]) == (1, 1)
    assert overview["invites"][0]["code"] == "VIP2026"
    assert admin.post("/clubs/friends/invites", {"uses": 5, "code": "vip-2026"}).status_code == 409


def test_the_console_page_shows_the_clubs_and_makes_an_audited_code(
    app_client: TestClient, pos: Api, cafe: Engine
) -> None:
    who = member(cafe, "600006")
    pos.post(f"/members/{who}/clubs", JOIN)
    sign_in(app_client, "admin")
    page = app_client.get("/console/zerno/clubs?lang=ru")
    assert page.status_code == 200
    assert "Винный клуб" in page.text
    assert "Коды приглашений" in page.text
    made = app_client.post("/console/zerno/clubs/friends/invites",
                           data={"csrf": csrf_of(page.text), "uses": "3"},
                           follow_redirects=False)  # fmt: skip
    assert made.status_code in (302, 303)
    page = app_client.get("/console/zerno/clubs")
    assert 'class="num used">0<' in page.text
    with cafe.connect() as connection:
        actions = connection.execute(select(audit_log.c.action)).scalars().all()
    assert "club.invite" in actions
    assert app_client.get("/console/north/clubs").status_code == 404


def test_a_marketer_sees_the_page_but_makes_no_code(app_client: TestClient) -> None:
    sign_in(app_client, "marketer")
    page = app_client.get("/console/zerno/clubs")
    assert page.status_code == 200
    assert "invite-form-friends" not in page.text
    refused = app_client.post("/console/zerno/clubs/friends/invites",
                              data={"csrf": csrf_of(page.text), "uses": "3"})  # fmt: skip
    assert refused.status_code == 403


def test_the_openapi_examples_have_the_fields_of_real_answers(
    admin: Api, pos: Api, cafe: Engine
) -> None:
    from kopilka.mechanics.clubs import routes

    who = member(cafe, "600007")
    joined = pos.post(f"/members/{who}/clubs", JOIN).json()
    made = admin.post("/clubs/friends/invites", {"uses": 2}).json()
    assert set(routes.MEMBERSHIP_EXAMPLE) == set(joined)
    assert set(routes.INVITE_EXAMPLE) == set(made)
    listed = pos.get(f"/members/{who}/clubs").json()
    assert set(routes.MEMBER_CLUBS_EXAMPLE["memberships"][0]) == set(listed["memberships"][0])
    history = pos.get(f"/members/{who}/clubs/wine").json()
    assert set(routes.HISTORY_EXAMPLE) == set(history)
    assert set(routes.HISTORY_EXAMPLE["events"][0]) == set(history["events"][0])
    overview = admin.get("/clubs").json()
    assert set(routes.OVERVIEW_EXAMPLE["clubs"][0]) == set(overview["clubs"][0])


def test_the_console_s_member_profile_shows_the_member_s_clubs(
    app_client: TestClient, pos: Api, cafe: Engine
) -> None:
    who = member(cafe, "600008")
    pos.post(f"/members/{who}/clubs", JOIN)
    member_id = pos.get(f"/members/{who}").json()["id"]
    sign_in(app_client, "support")
    page = app_client.get(f"/console/zerno/members/{member_id}?lang=ru")
    assert page.status_code == 200
    assert 'id="club-wine"' in page.text
    assert "действует · оплачено до 20" in page.text  # the API's clock: a month from now
    assert "<code>sommelier</code>" in page.text
