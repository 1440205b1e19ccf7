"""The contract of shared/API.md over HTTP: members, quotes, purchases, replays, refunds,
keys and roles, problem JSON for every refusal."""

from __future__ import annotations

import copy
import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from kopilka.platform.files import load_document
from kopilka.platform.http.app import create_app
from kopilka.platform.limits import FailedAuthLimiter
from kopilka.programs.handlers import apply_program
from tests.api.conftest import Api, key_for
from tests.conftest import EXAMPLES
from tests.store.conftest import NOW

RECEIPT: dict[str, Any] = {
    "receipt_id": "R-1",
    "location": "kiosk",
    "member": "card:100009",
    "at": "2026-03-10T12:00:00+03:00",  # not in the café's happy hours, whenever tests run
    "lines": [{"sku": "TEA-400", "qty": 3}],
}


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    document: dict[str, Any] = response.json()
    assert (document["status"], document["code"]) == (status, code)
    assert document["detail"]
    return document


def test_without_a_valid_key_nothing_is_answered(client: TestClient) -> None:
    problem(client.get("/v1/programs/zerno/members/1"), 401, "unauthorized")
    wrong = client.get("/v1/programs/zerno/members/1", headers={"Authorization": "Bearer kpk_x"})
    problem(wrong, 401, "unauthorized")


def test_a_member_buys_replays_and_refunds(admin: Api) -> None:
    member = admin.post("/members", {"card": "100009", "email": "Anna@Example.RU"})
    assert member.status_code == 201, member.text
    assert member.json()["email"] == "anna@example.ru"
    problem(admin.post("/members", {"card": "100009"}), 409, "conflict")
    adjusted = admin.post("/members/card:100009/adjustments", {"points": "100", "reason": "start"})
    assert adjusted.status_code == 201, adjusted.text

    quote = admin.post("/purchases/quote", {**RECEIPT, "redeem": "30"})
    assert quote.status_code == 200, quote.text
    assert (quote.json()["redeemed"], quote.json()["accrued"]) == ("30.00", "4.20")
    assert admin.get("/members/card:100009/balance").json()["available"] == "100.00"

    first = admin.post("/purchases", {**RECEIPT, "redeem": "30"})
    assert first.status_code == 201, first.text
    assert first.json()["balance"]["available"] == "74.20"
    again = admin.post("/purchases", {**RECEIPT, "redeem": "30"})
    assert (again.status_code, again.json()) == (200, first.json())
    problem(admin.post("/purchases", {**RECEIPT, "redeem": "10"}), 409, "idempotency_conflict")

    purchase_id = first.json()["purchase_id"]
    refund = admin.post(f"/purchases/{purchase_id}/refunds", {"refund_id": "RF-1"})
    assert refund.status_code == 201, refund.text
    replay = admin.post(f"/purchases/{purchase_id}/refunds", {"refund_id": "RF-1"})
    assert (replay.status_code, replay.json()) == (200, refund.json())
    assert admin.get("/members/card:100009/balance").json()["available"] == "100.00"
    assert admin.get(f"/purchases/{purchase_id}").json()["status"] == "refunded"
    history = admin.get("/members/card:100009/history").json()
    assert len(history["items"]) >= 4


def test_more_points_than_allowed_is_refused_and_writes_nothing(admin: Api) -> None:
    admin.post("/members", {"card": "100009"})
    problem(admin.post("/purchases", {**RECEIPT, "redeem": "5"}), 422, "insufficient_points")
    assert admin.get("/members/card:100009/history").json()["items"] == []


def test_bad_bodies_are_named_never_a_500(admin: Api, client: TestClient) -> None:
    raw = client.post("/v1/programs/zerno/purchases", content=b'{"receipt_id": ',
                      headers={"Authorization": f"Bearer {admin.key}"})  # fmt: skip
    assert "not valid JSON" in problem(raw, 422, "validation_error")["detail"]
    admin.post("/members", {"card": "100009"})
    wrong = admin.post("/purchases", {**RECEIPT, "lines": "tea"})
    assert problem(wrong, 422, "validation_error")["errors"]
    huge = client.post("/v1/programs/zerno/members", content=b"[" + b"1," * 600_000 + b"1]",
                       headers={"Authorization": f"Bearer {admin.key}"})  # fmt: skip
    problem(huge, 413, "payload_too_large")
    problem(admin.get("/members/card:404"), 404, "not_found")
    problem(admin.post("/members", [1, 2]), 422, "validation_error")


def test_another_programs_key_sees_nothing_as_if_it_did_not_exist(
    admin: Api, client: TestClient, zerno_engine: Engine
) -> None:
    document: Any = copy.deepcopy(load_document(EXAMPLES / "zerno" / "program.yaml"))
    document["code"] = "other"
    apply_program(zerno_engine, document, actor="test", now=NOW)
    admin.post("/members", {"card": "100009"})
    stranger = Api(client, key_for(zerno_engine, "admin", program="other"))
    for response in (
        client.get("/v1/programs/zerno/members/card:100009",
                   headers={"Authorization": f"Bearer {stranger.key}"}),
        client.post("/v1/programs/zerno/purchases", json=RECEIPT,
                    headers={"Authorization": f"Bearer {stranger.key}"}),
    ):  # fmt: skip
        problem(response, 404, "not_found")
    problem(stranger.get("/members/card:100009"), 404, "not_found")


def test_roles_and_locations_limit_what_a_key_does(admin: Api, client: TestClient,
                                                   zerno_engine: Engine) -> None:  # fmt: skip
    admin.post("/members", {"card": "100009"})
    pos = Api(client, key_for(zerno_engine, "pos", location="kiosk"))
    analyst = Api(client, key_for(zerno_engine, "analyst"))
    assert pos.post("/purchases", {**RECEIPT, "receipt_id": "P-1"}).status_code == 201
    problem(pos.post("/purchases", {**RECEIPT, "location": "rest-a"}), 403, "forbidden")
    problem(pos.post("/members/card:100009/adjustments", {"points": "5", "reason": "x"}),
            403, "forbidden")  # fmt: skip
    assert analyst.get("/members/card:100009/balance").status_code == 200
    problem(analyst.post("/purchases", RECEIPT), 403, "forbidden")


def test_a_pos_key_acts_at_its_own_location_whatever_the_body_says(
    admin: Api, client: TestClient, zerno_engine: Engine
) -> None:
    """A null or absent location is the key's own: rest-a's 50 % redemption cap holds,
    the purchase is stored at rest-a, and rest-a's key can refund it."""
    admin.post("/members", {"card": "100009"})
    admin.post("/members/card:100009/adjustments", {"points": "1000", "reason": "t"})
    pos = Api(client, key_for(zerno_engine, "pos", location="rest-a"))
    lines = [{"sku": "LUNCH-1", "qty": 1, "price": "450.00"}]
    lunch = {**RECEIPT, "location": None, "lines": lines, "redeem": "max"}
    for body in (lunch, {key: value for key, value in lunch.items() if key != "location"}):
        quoted = pos.post("/purchases/quote", body).json()
        assert (quoted["redeemed"], quoted["paid"]) == ("225.00", "225.00"), quoted
    bought = pos.post("/purchases", lunch)
    assert bought.status_code == 201, bought.text
    assert bought.json()["redeemed"] == "225.00"
    refunded = pos.post(f"/purchases/{bought.json()['purchase_id']}/refunds", {"refund_id": "RF"})
    assert refunded.status_code == 201, refunded.text


def test_a_purchase_is_never_stored_without_a_location_of_the_program(admin: Api) -> None:
    admin.post("/members", {"card": "100009"})
    for location in (None, "nowhere"):
        body = {**RECEIPT, "receipt_id": f"NL-{location}", "location": location}
        refused = problem(admin.post("/purchases", body), 422, "validation_error")
        assert [error["loc"] for error in refused["errors"]] == ["location"]
    assert admin.get("/members/card:100009/history").json()["items"] == []


def test_a_key_is_bound_only_to_a_location_the_program_has(admin: Api) -> None:
    refused = problem(admin.post("/keys", {"role": "pos", "location": "nowhere"}), 422,
                      "validation_error")  # fmt: skip
    assert "kiosk" in refused["errors"][0]["message"]
    assert all(key["location"] != "nowhere" for key in admin.get("/keys").json()["items"])
    assert admin.post("/keys", {"role": "pos", "location": "rest-a"}).status_code == 201


def test_keys_are_made_shown_once_listed_and_revoked(admin: Api, client: TestClient) -> None:
    made = admin.post("/keys", {"role": "support", "label": "help desk"})
    assert made.status_code == 201, made.text
    key = made.json()["key"]
    assert key.startswith("kpk_")
    assert len(key) >= 4 + 32
    listed = admin.get("/keys").json()["items"]
    assert all("key" not in item for item in listed)
    support = Api(client, key)
    assert support.get("/members/card:1").status_code == 404  # authenticated, no such member
    revoked = client.delete(f"/v1/programs/zerno/keys/{made.json()['id']}",
                            headers={"Authorization": f"Bearer {admin.key}"})  # fmt: skip
    assert revoked.json()["revoked_at"]
    problem(support.get("/members/card:1"), 401, "unauthorized")


def test_a_hold_is_confirmed_over_http(admin: Api) -> None:
    admin.post("/members", {"card": "100009"})
    admin.post("/members/card:100009/adjustments", {"points": "100", "reason": "start"})
    held = admin.post("/purchases", {**RECEIPT, "redeem": "30", "hold": True})
    assert held.json()["status"] == "held"
    confirmed = admin.post(f"/purchases/{held.json()['purchase_id']}/confirm")
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "completed"


def test_the_service_says_it_is_up_and_ready_and_describes_itself(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json() == {"status": "ok"}
    spec = client.get("/openapi.json").json()
    assert "/v1/programs/{program}/purchases" in spec["paths"]


def test_guessing_keys_is_refused_after_too_many_failures_but_valid_keys_still_work(
    zerno_engine: Engine,
) -> None:
    """Every till behind one address keeps working while one of them polls with a revoked
    key: the limit refuses failures, never a valid key."""
    limiter = FailedAuthLimiter(failures=3, window=60)
    with TestClient(create_app(zerno_engine, failed_auth=limiter)) as client:
        good, revoked = key_for(zerno_engine, "admin"), key_for(zerno_engine, "pos",
                                                                 location="kiosk")  # fmt: skip
        client.delete(f"/v1/programs/zerno/keys/{_key_id(client, good, revoked)}",
                      headers={"Authorization": f"Bearer {good}"})  # fmt: skip
        members = "/v1/programs/zerno/members/card:100009"
        for n in range(3):
            guess = {"Authorization": f"Bearer {revoked if n else 'kpk_guess'}"}
            problem(client.get(members, headers=guess), 401, "unauthorized")
        refused = client.get(members, headers={"Authorization": f"Bearer {revoked}"})
        problem(refused, 429, "too_many_requests")
        assert refused.headers["retry-after"]
        for _ in range(3):  # a valid key, from the same address, is answered
            answered = client.get(members, headers={"Authorization": f"Bearer {good}"})
            problem(answered, 404, "not_found")  # no such member: authenticated, not refused
        other = key_for(zerno_engine, "admin", program="zerno")
        assert (
            client.get(
                "/v1/programs/zerno/keys", headers={"Authorization": f"Bearer {other}"}
            ).status_code
            == 200
        )


def _key_id(client: TestClient, admin_key: str, key: str) -> str:
    headers = {"Authorization": f"Bearer {admin_key}"}
    listed = client.get("/v1/programs/zerno/keys", headers=headers).json()["items"]
    [record] = [item for item in listed if key.startswith(item["prefix"])]
    return str(record["id"])


def test_the_limiter_forgets_failures_after_its_window() -> None:
    now = [0.0]
    limiter = FailedAuthLimiter(failures=2, window=10, clock=lambda: now[0])
    limiter.failed("a")
    limiter.failed("a")
    assert limiter.retry_after("a") == 10
    assert limiter.retry_after("b") == 0
    now[0] = 10.5
    assert limiter.retry_after("a") == 0


def test_values_longer_than_storage_allows_are_refused_by_name(admin: Api) -> None:
    long = "x" * 201
    cases = [
        ("/members", {"name": long}, "name"),
        ("/members", {"external_id": long}, "external_id"),
        ("/members", {"email": "a" * 320 + "@example.ru"}, "email"),
        ("/purchases", {"receipt_id": long, "lines": [{"sku": "CAP-300", "qty": 1}]},
         "receipt_id"),
        ("/keys", {"role": "pos", "location": "k" * 65}, "location"),
        ("/keys", {"role": "analyst", "label": long}, "label"),
    ]  # fmt: skip
    for path, body, field in cases:
        response = admin.post(path, body)
        assert response.status_code == 422, (path, response.text)
        assert field in {p["loc"] for p in response.json()["errors"]}, response.json()
    purchase = {"receipt_id": "L-1", "lines": [{"sku": "CAP-300", "qty": 1}]}
    replayed = admin.post("/purchases", purchase, headers={"Idempotency-Key": long})
    assert replayed.status_code == 422
    assert replayed.json()["errors"][0]["loc"] == "Idempotency-Key"


def test_the_openapi_examples_have_the_fields_of_real_answers(admin: Api) -> None:
    from kopilka.platform.http import examples

    member = admin.post("/members", {"card": "100009", "consents": {"sms": True}}).json()
    adjusted = admin.post("/members/card:100009/adjustments", {"points": "100", "reason": "w"})
    receipt = {**RECEIPT, "redeem": "30"}
    quoted = admin.post("/purchases/quote", receipt).json()
    bought = admin.post("/purchases", receipt).json()
    refunded = admin.post(f"/purchases/{bought['purchase_id']}/refunds",
                          {"refund_id": "RF-1", "lines": [{"n": 0, "qty": 1}]}).json()  # fmt: skip
    real = {
        "MEMBER": member, "ADJUSTMENT": adjusted.json(), "QUOTE": quoted, "PURCHASE": bought,
        "REFUND": refunded, "BALANCE": admin.get("/members/card:100009/balance").json(),
        "HISTORY": admin.get("/members/card:100009/history").json(),
        "KEY": admin.post("/keys", {"role": "analyst"}).json(),
        "VERSIONS": admin.get("/versions").json(),
        "VALIDATION_PROBLEM": admin.post("/members", {"balance": "1"}).json(),
        "INSUFFICIENT_POINTS": admin.post("/purchases", {**receipt, "receipt_id": "R-9",
                                                         "redeem": "9999"}).json(),
    }  # fmt: skip
    for name, answer in real.items():
        assert set(getattr(examples, name)) == set(answer), name
    assert set(examples.PURCHASE["lines"][0]) == set(bought["lines"][0])
    assert set(examples.HISTORY["items"][0]) == set(real["HISTORY"]["items"][0])
    document = admin.client.get("/openapi.json").json()
    purchase = document["paths"]["/v1/programs/{program}/purchases"]["post"]["responses"]
    assert purchase["201"]["content"]["application/json"]["example"] == examples.PURCHASE


def test_an_idempotency_key_makes_any_post_answer_once(admin: Api) -> None:
    def twice(path: str, body: Any, key: str) -> tuple[Any, Any]:
        headers = {"Idempotency-Key": key}
        return admin.post(path, body, headers=headers), admin.post(path, body, headers=headers)

    first, again = twice("/members", {"card": "100009"}, "K-member")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()  # no 409 for the card the first call registered
    first, again = twice("/members/card:100009/adjustments", {"points": "50", "reason": "x"},
                         "K-adjust")  # fmt: skip
    assert (first.status_code, again.status_code) == (201, 200)
    assert admin.get("/members/card:100009/balance").json()["available"] == "50.00"
    bought = admin.post("/purchases", {**RECEIPT, "redeem": "10"}).json()
    refund = {"refund_id": "RF-1", "lines": [{"n": 0, "qty": 1}]}
    first, again = twice(f"/purchases/{bought['purchase_id']}/refunds", refund, "K-refund")
    assert (first.status_code, again.status_code, first.json()) == (201, 200, again.json())
    first, again = twice("/members/card:100009/block", None, "K-block")
    assert first.json() == again.json()
    assert first.json()["status"] == "blocked"
    other = admin.post("/members", {"card": "100010"}, headers={"Idempotency-Key": "K-member"})
    problem(other, 409, "idempotency_conflict")  # the same key, another request
    assert admin.get("/members/card:100010").status_code == 404


def test_fired_triggers_and_expiries_are_read_as_the_members_events(
    admin: Api, zerno_engine: Engine
) -> None:
    from kopilka.platform.worker import run_due_work

    document = admin.get("").json()["document"]
    document["triggers"] = [{"code": "welcome", "on": "registration",
                             "reward": {"points": "100", "valid_days": 30}}]  # fmt: skip
    applied = admin.client.put(admin.base, json=document,
                               headers={"Authorization": f"Bearer {admin.key}"})  # fmt: skip
    assert applied.status_code == 201, applied.text
    assert [t["code"] for t in admin.get("/triggers").json()["items"]] == ["welcome"]
    admin.post("/members", {"card": "100009"})
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    run_due_work(zerno_engine, now=now)
    run_due_work(zerno_engine, now=now + timedelta(days=31))  # the welcome points burn
    listed = admin.get("/members/card:100009/events").json()
    kinds = [(item["kind"], item.get("points")) for item in listed["items"]]
    assert kinds == [("expiry", "100.00"), ("trigger.welcome", "100.00")]
    assert set(listed["items"][1]) == set(examples_event_keys())
    assert admin.get("/members/card:100009/balance").json()["available"] == "0.00"


def examples_event_keys() -> set[str]:
    from kopilka.platform.http import examples

    return set(examples.EVENTS["items"][2])


def test_the_interactive_docs_are_served_from_the_package_with_no_cdn(
    client: TestClient,
) -> None:
    for page in ("/docs", "/redoc"):
        html = client.get(page)
        assert html.status_code == 200, page
        sources = re.findall(r'(?:src|href)="([^"]+)"', html.text)
        assert sources, page
        assert all(source.startswith("/") for source in sources), sources  # nothing remote
        for source in sources:
            assert client.get(source).status_code == 200, source
    assert "fonts.googleapis" not in client.get("/redoc").text
