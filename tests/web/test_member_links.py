"""Personal links kept by the server (issue 8): each revocable on its own, all of a
member's at once, listed without their tokens, made only by the keys that may hand out
access to an account — through the services and HTTP on SQLite and PostgreSQL.

The token, the page and the card: `tests/web/test_member_page.py`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, select

from kopilka.kernel.errors import InvalidInput, NotFound
from kopilka.members import page as member_page
from kopilka.members.handlers import erase_member
from kopilka.members.link_tables import member_links
from kopilka.members.links import (
    BadLink,
    RevokedLink,
    create_link,
    list_links,
    read_token,
    revoke_link,
    revoke_links,
)
from kopilka.platform.tables import idempotency_keys
from tests.api.conftest import key_for, serving_engine
from tests.store.conftest import NOW
from tests.web.conftest import OTHER, SECRET, other_ids
from tests.web.test_member_page import link, member_app, token_of

MEMBER = "/v1/programs/zerno/members/card:100001"
FIELDS = {"id", "created_at", "expires_at", "revoked_at", "created_by", "label"}


@pytest.fixture
def client(stocked: Engine) -> Iterator[TestClient]:
    with TestClient(member_app(serving_engine(stocked)), base_url="http://testserver") as c:
        yield c


def bearer(engine: Engine, role: str, program: str = "zerno") -> dict[str, str]:
    where = {"location": "kiosk"} if role == "pos" else {}  # a till is at one location
    return {"Authorization": f"Bearer {key_for(engine, role, program, **where)}"}


def page_of(client: TestClient, url: str) -> Any:
    return client.get(url.removeprefix("http://testserver"), headers={"Accept-Language": "en"})


def problem(answer: Any, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    document: dict[str, Any] = answer.json()
    assert document["code"] == code
    return document


# — the services —


def test_a_revoked_link_opens_nothing_and_the_members_other_link_still_does(
    stocked: Engine,
) -> None:
    forever, year = link(stocked, days=None), link(stocked)
    later = NOW + timedelta(days=1)
    [newest, first] = list_links(stocked, "zerno", "card:100001")["items"]
    assert first["expires_at"] is None
    revoked = revoke_link(stocked, "zerno", "card:100001", first["id"], now=later)
    assert revoked["revoked_at"] == later.isoformat()
    assert revoke_link(stocked, "zerno", "1", first["id"], now=later + timedelta(1)) == revoked
    with pytest.raises(RevokedLink):
        read_token(stocked, token_of(forever), secret=SECRET, now=later)
    assert read_token(stocked, token_of(year), secret=SECRET, now=later).link_id == newest["id"]


def test_a_link_is_revoked_only_through_its_own_member(stocked: Engine) -> None:
    link(stocked)
    [mine] = list_links(stocked, "zerno", "card:100001")["items"]
    for member, link_id in (("card:100002", mine["id"]), ("card:100001", "no-such-link"),
                            ("card:100001", "x" * 500), ("card:100001", "a/b")):  # fmt: skip
        with pytest.raises(NotFound):
            revoke_link(stocked, "zerno", member, link_id, now=NOW)
    with pytest.raises(NotFound):  # another program's member, by its own id
        revoke_link(stocked, "zerno", str(other_ids(stocked)[0]), mine["id"], now=NOW)


def test_revoking_all_ends_every_working_link_and_writes_beside_it(stocked: Engine) -> None:
    urls = [link(stocked, days=None), link(stocked, days=7)]
    boris = link(stocked, "card:100002")
    written: list[dict[str, Any]] = []
    answer = revoke_links(stocked, "zerno", "card:100001", now=NOW,
                          after=lambda _c, done: written.append(done))  # fmt: skip
    assert answer == {"member": "1", "revoked": 2, "revoked_at": NOW.isoformat()}
    assert written == [answer]
    for url in urls:
        with pytest.raises(RevokedLink):
            read_token(stocked, token_of(url), secret=SECRET, now=NOW)
    assert read_token(stocked, token_of(boris), secret=SECRET, now=NOW).member_id == 2
    assert revoke_links(stocked, "zerno", "card:100001", now=NOW)["revoked"] == 0
    fresh = link(stocked)  # a member whose links were all revoked may get a new one
    assert read_token(stocked, token_of(fresh), secret=SECRET, now=NOW).member_id == 1


def test_a_link_whose_row_is_gone_opens_nothing(stocked: Engine) -> None:
    url = link(stocked)
    with stocked.begin() as connection:
        connection.execute(delete(member_links))
    with pytest.raises(BadLink):
        read_token(stocked, token_of(url), secret=SECRET, now=NOW)


def test_an_erased_members_links_are_revoked_with_the_erasure_and_stay_listed(
    stocked: Engine,
) -> None:
    url = link(stocked, "card:100002", days=None)
    erase_member(stocked, "zerno", "card:100002", actor="test", now=NOW)
    with TestClient(member_app(serving_engine(stocked))) as client:
        assert page_of(client, url).status_code == 410
    [kept] = list_links(stocked, "zerno", "card:100002")["items"]
    assert kept["revoked_at"] == NOW.isoformat()


def test_the_listing_pages_newest_first_and_names_bad_input(stocked: Engine) -> None:
    for days in (1, 2, 3):
        link(stocked, days=days)
    first = list_links(stocked, "zerno", "card:100001", limit=2)
    assert [item["expires_at"][:10] for item in first["items"]] == ["2026-03-13", "2026-03-12"]
    rest = list_links(stocked, "zerno", "card:100001", before=first["next"], limit=2)
    assert [item["expires_at"][:10] for item in rest["items"]] == ["2026-03-11"]
    assert rest["next"] is None
    link(stocked, "card:100002")
    [boris] = list_links(stocked, "zerno", "card:100002")["items"]
    for before in ("nope", boris["id"]):  # a page starts after one of the member's own
        with pytest.raises(InvalidInput):
            list_links(stocked, "zerno", "card:100001", before=before)
    with pytest.raises(NotFound):
        list_links(stocked, "zerno", "card:404")


def test_a_replayed_request_makes_one_link_and_stores_no_token(stocked: Engine) -> None:
    once = [create_link(stocked, "zerno", "card:100001", now=NOW, days=None, actor="key:1",
                        label="sms", idempotency_key="K-1") for _ in range(2)]  # fmt: skip
    assert [made for _, made in once] == [True, False]
    assert once[0][0] == once[1][0]
    assert len(list_links(stocked, "zerno", "card:100001")["items"]) == 1
    with stocked.connect() as connection:
        remembered = connection.execute(select(idempotency_keys.c.answer)).scalar_one()
    assert set(remembered) == {"link", "member_id"}  # the row's data; the token is signed anew


# — over HTTP —


def test_a_link_without_an_end_is_revoked_and_the_other_still_opens(
    client: TestClient, stocked: Engine
) -> None:
    support = bearer(stocked, "support")
    forever = client.post(f"{MEMBER}/link", headers=support, json={"days": None}).json()
    other = client.post(f"{MEMBER}/link", headers=support, json={"label": "email"}).json()
    assert set(forever) == {"id", "url", "expires_at"}
    assert forever["expires_at"] is None
    revoked = client.delete(f"{MEMBER}/links/{forever['id']}", headers=support)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_at"] is not None
    again = client.delete(f"{MEMBER}/links/{forever['id']}", headers=support)
    assert again.json() == revoked.json()
    gone = page_of(client, forever["url"])
    assert gone.status_code == 410
    assert "This link was revoked" in gone.text
    assert gone.headers["cache-control"] == "no-store"
    ru = client.get(forever["url"].removeprefix("http://testserver") + "?lang=ru")
    assert "Эта ссылка отозвана" in ru.text
    assert page_of(client, other["url"]).status_code == 200


def test_revoking_all_over_http_is_replayed_by_its_key(client: TestClient,
                                                       stocked: Engine) -> None:  # fmt: skip
    admin = bearer(stocked, "admin")
    urls = [client.post(f"{MEMBER}/link", headers=admin).json()["url"] for _ in range(2)]
    keyed = {**admin, "Idempotency-Key": "K-revoke"}
    first = client.post(f"{MEMBER}/links/revoke", headers=keyed)
    assert first.status_code == 200, first.text
    assert first.json()["revoked"] == 2
    replay = client.post(f"{MEMBER}/links/revoke", headers=keyed)
    assert replay.json() == first.json()  # the first answer, not "0 revoked"
    assert [page_of(client, url).status_code for url in urls] == [410, 410]
    problem(client.post("/v1/programs/zerno/members/card:100002/links/revoke", headers=keyed),
            409, "idempotency_conflict")  # fmt: skip


def test_a_replayed_link_request_answers_the_same_link(client: TestClient,
                                                       stocked: Engine) -> None:  # fmt: skip
    keyed = {**bearer(stocked, "partner"), "Idempotency-Key": "K-link"}
    first = client.post(f"{MEMBER}/link", headers=keyed, json={"days": 30})
    again = client.post(f"{MEMBER}/link", headers=keyed, json={"days": 30})
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    assert page_of(client, again.json()["url"]).status_code == 200
    listed = client.get(f"{MEMBER}/links", headers=keyed).json()["items"]
    assert [item["id"] for item in listed] == [first.json()["id"]]
    problem(client.post(f"{MEMBER}/link", headers=keyed, json={"days": 7}), 409,
            "idempotency_conflict")  # fmt: skip


def test_the_listing_never_shows_a_token(client: TestClient, stocked: Engine) -> None:
    partner = bearer(stocked, "partner")
    made = client.post(f"{MEMBER}/link", headers=partner, json={"label": "partner site"})
    listed = client.get(f"{MEMBER}/links", headers=bearer(stocked, "analyst"))
    assert listed.status_code == 200, listed.text
    [item] = listed.json()["items"]
    assert set(item) == FIELDS
    assert (item["id"], item["label"]) == (made.json()["id"], "partner site")
    assert item["created_by"].startswith("key:")
    assert token_of(made.json()["url"]) not in listed.text
    assert token_of(made.json()["url"]).split(".")[1] not in listed.text  # not even its signature


@pytest.mark.parametrize("role", ["admin", "support", "partner"])
def test_admin_support_and_partner_keys_make_links(client: TestClient, stocked: Engine,
                                                   role: str) -> None:  # fmt: skip
    made = client.post(f"{MEMBER}/link", headers=bearer(stocked, role), json={"days": 7})
    assert made.status_code == 201, made.text
    assert page_of(client, made.json()["url"]).status_code == 200


def test_a_pos_key_makes_lists_and_revokes_no_link(client: TestClient, stocked: Engine) -> None:
    link(stocked)
    [mine] = list_links(stocked, "zerno", "card:100001")["items"]
    pos = bearer(stocked, "pos")
    problem(client.post(f"{MEMBER}/link", headers=pos, json={"days": None}), 403, "forbidden")
    problem(client.get(f"{MEMBER}/links", headers=pos), 403, "forbidden")
    problem(client.delete(f"{MEMBER}/links/{mine['id']}", headers=pos), 403, "forbidden")
    problem(client.post(f"{MEMBER}/links/revoke", headers=pos), 403, "forbidden")
    analyst = bearer(stocked, "analyst")  # reads, but neither makes nor revokes
    problem(client.delete(f"{MEMBER}/links/{mine['id']}", headers=analyst), 403, "forbidden")
    assert list_links(stocked, "zerno", "card:100001")["items"] == [mine]


def test_another_programs_member_is_not_found(client: TestClient, stocked: Engine) -> None:
    link(stocked)
    [mine] = list_links(stocked, "zerno", "card:100001")["items"]
    admin = bearer(stocked, "admin")
    olga = f"/v1/programs/zerno/members/{other_ids(stocked)[0]}"
    problem(client.post(f"{olga}/link", headers=admin), 404, "not_found")
    problem(client.get(f"{olga}/links", headers=admin), 404, "not_found")
    problem(client.post(f"{olga}/links/revoke", headers=admin), 404, "not_found")
    problem(client.delete(f"{olga}/links/{mine['id']}", headers=admin), 404, "not_found")
    # a zerno member through the other program's key, and zerno's link under Boris
    north = bearer(stocked, "admin", OTHER)
    problem(client.get(f"{MEMBER}/links", headers=north), 404, "not_found")
    boris = "/v1/programs/zerno/members/card:100002"
    problem(client.delete(f"{boris}/links/{mine['id']}", headers=admin), 404, "not_found")
    assert page_of(client, link(stocked)).status_code == 200


def test_bad_input_is_named(client: TestClient, stocked: Engine) -> None:
    admin = bearer(stocked, "admin")
    for body, field in (({"label": ""}, "label"), ({"label": 5}, "label"),
                        ({"label": "x" * 201}, "label"), ({"days": 0}, "days"),
                        ({"url": "x"}, "url")):  # fmt: skip
        answer = problem(client.post(f"{MEMBER}/link", headers=admin, json=body), 422,
                         "validation_error")  # fmt: skip
        assert field in {error["loc"] for error in answer["errors"]}, answer
    for query in ("?limit=0", "?limit=501", "?before=nope", "?before=" + "x" * 40):
        problem(client.get(f"{MEMBER}/links{query}", headers=admin), 422, "validation_error")
    problem(client.delete(f"{MEMBER}/links/%00", headers=admin), 404, "not_found")
    problem(client.post(f"{MEMBER}/link", headers={**admin, "Idempotency-Key": " "}), 422,
            "validation_error")  # fmt: skip


def test_the_openapi_document_has_the_routes_and_real_examples(
    client: TestClient, stocked: Engine
) -> None:
    admin = bearer(stocked, "admin")
    made = client.post(f"{MEMBER}/link", headers=admin, json={"label": "sms"}).json()
    listed = client.get(f"{MEMBER}/links", headers=admin).json()
    revoked = client.delete(f"{MEMBER}/links/{made['id']}", headers=admin).json()
    all_revoked = client.post(f"{MEMBER}/links/revoke", headers=admin).json()
    paths = client.get("/openapi.json").json()["paths"]
    member = "/v1/programs/{program}/members/{member}"

    def example(path: str, method: str, status: str) -> Any:
        answer = paths[member + path][method]["responses"][status]
        return answer["content"]["application/json"]["example"]

    assert set(example("/link", "post", "201")) == set(made)
    assert "200" in paths[member + "/link"]["post"]["responses"]  # a replay
    assert set(example("/links", "get", "200")) == set(listed)
    assert set(example("/links", "get", "200")["items"][0]) == FIELDS
    assert set(example("/links/{link}", "delete", "200")) == set(revoked)
    assert set(example("/links/revoke", "post", "200")) == set(all_revoked)
    assert member_page.LINK_MAKERS == ("admin", "support", "partner")
