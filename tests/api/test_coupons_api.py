"""Coupons over HTTP with real keys: campaigns, batches, export, issue, gift, look-ups and
the guessing limit — on SQLite and on PostgreSQL."""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from kopilka.mechanics.coupons.limits import CouponGuessLimiter
from tests.api.conftest import Api, key_for
from tests.api.test_http import problem

CAMPAIGN = {
    "code": "spring",
    "kind": "unique",
    "name": "Весна",
    "limits": {"per_member": 1},
    "effect": {"percent": 10, "categories": ["coffee"]},
}


def patch(api: Api, path: str, body: Any) -> Any:
    return api.client.patch(api.base + path, json=body,
                            headers={"Authorization": f"Bearer {api.key}"})  # fmt: skip


def with_codes(admin: Api, count: int = 3) -> list[str]:
    assert admin.post("/coupon-campaigns", CAMPAIGN).status_code == 201
    assert admin.post("/coupon-campaigns/spring/batches", {"count": count}).status_code == 201
    page = admin.get("/coupon-campaigns/spring/codes", params={"format": "json"}).json()
    return [item["code"] for item in page["items"]]


def test_an_admin_creates_reads_changes_and_lists_campaigns(admin: Api) -> None:
    made = admin.post("/coupon-campaigns", CAMPAIGN, headers={"Idempotency-Key": "c-1"})
    assert made.status_code == 201, made.text
    assert made.json()["limits"]["per_code"] == 1
    again = admin.post("/coupon-campaigns", CAMPAIGN, headers={"Idempotency-Key": "c-1"})
    assert (again.status_code, again.json()) == (200, made.json())
    problem(admin.post("/coupon-campaigns", CAMPAIGN), 409, "conflict")
    paused = patch(admin, "/coupon-campaigns/spring", {"paused": True})
    assert paused.json()["status"] == "paused", paused.text
    assert admin.get("/coupon-campaigns/spring").json()["paused"] is True
    assert [c["code"] for c in admin.get("/coupon-campaigns").json()["items"]] == ["spring"]
    problem(admin.get("/coupon-campaigns/nope"), 404, "not_found")


def test_every_problem_of_a_campaign_is_named(admin: Api) -> None:
    bad = {"code": "x", "kind": "unique", "effect": {"percent": 10, "skus": ["NOPE"]},
           "conditions": {"tiers": ["gold"]}, "limits": {"total": -1}}  # fmt: skip
    document = problem(admin.post("/coupon-campaigns", bad), 422, "validation_error")
    assert {error["loc"] for error in document["errors"]} == {"limits.total"}
    bad["limits"] = {}
    document = problem(admin.post("/coupon-campaigns", bad), 422, "validation_error")
    assert [error["loc"] for error in document["errors"]] == ["conditions.tiers", "effect.skus"]
    problem(admin.post("/coupon-campaigns", ["not", "a", "campaign"]), 422, "validation_error")
    problem(patch(admin, "/coupon-campaigns/x", {"code": "y"}), 422, "validation_error")


def test_roles(client: TestClient, zerno_engine: Engine, admin: Api) -> None:
    with_codes(admin)
    analyst = Api(client, key_for(zerno_engine, "analyst"))
    support = Api(client, key_for(zerno_engine, "support"))
    pos = Api(client, key_for(zerno_engine, "pos", location="kiosk"))
    assert analyst.get("/coupon-campaigns/spring").status_code == 200
    assert analyst.get("/coupon-campaigns/spring/batches").status_code == 200
    problem(analyst.post("/coupon-campaigns", {**CAMPAIGN, "code": "b"}), 403, "forbidden")
    problem(analyst.get("/coupon-campaigns/spring/codes"), 403, "forbidden")
    problem(support.post("/coupon-campaigns/spring/batches", {"count": 1}), 403, "forbidden")
    problem(pos.get("/coupon-campaigns"), 403, "forbidden")
    problem(patch(support, "/coupon-campaigns/spring", {"paused": True}), 403, "forbidden")


def test_codes_are_exported_as_csv(admin: Api) -> None:
    codes = with_codes(admin, 5)
    admin.post("/members", {"card": "100001"})
    admin.post(f"/coupons/{codes[0]}/issue", {"member": "card:100001", "channel": "push"})
    export = admin.get("/coupon-campaigns/spring/codes")
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    assert "attachment" in export.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert [row["code"] for row in rows] == codes
    assert (rows[0]["status"], rows[0]["card"], rows[0]["channel"]) == ("issued", "100001", "push")
    issued = admin.get("/coupon-campaigns/spring/codes", params={"status": "issued"})
    assert len(list(csv.DictReader(io.StringIO(issued.text)))) == 1
    problem(admin.get("/coupon-campaigns/spring/codes", params={"status": "lost"}), 422,
            "validation_error")  # fmt: skip
    problem(admin.get("/coupon-campaigns/nope/codes"), 404, "not_found")
    page = admin.get("/coupon-campaigns/spring/codes", params={"format": "json", "limit": 2})
    assert (len(page.json()["items"]), page.json()["next"] is not None) == (2, True)


def test_a_card_a_spreadsheet_would_compute_is_exported_as_text(admin: Api) -> None:
    codes = with_codes(admin, 1)
    assert admin.post("/members", {"card": "-A1-B1"}).status_code == 201
    issued = admin.post(f"/coupons/{codes[0]}/issue", {"member": "card:-A1-B1", "channel": "sms"})
    assert issued.status_code == 201, issued.text
    [row] = list(csv.DictReader(io.StringIO(admin.get("/coupon-campaigns/spring/codes").text)))
    assert (row["card"], row["status"]) == ("'-A1-B1", "issued")


def test_a_coupon_is_issued_resent_gifted_and_looked_up(
    client: TestClient, zerno_engine: Engine, admin: Api
) -> None:
    code = with_codes(admin)[0]
    admin.post("/members", {"card": "100001"})
    admin.post("/members", {"card": "100002"})
    support = Api(client, key_for(zerno_engine, "support"))
    pos = Api(client, key_for(zerno_engine, "pos", location="kiosk"))
    issued = support.post(f"/coupons/{code.lower()}/issue",
                          {"member": "card:100001", "channel": "sms"})  # fmt: skip
    assert issued.status_code == 201, issued.text
    assert (issued.json()["code"], issued.json()["status"]) == (code, "issued")
    resent = support.post(f"/coupons/{code}/issue", {"member": "card:100001", "channel": "email"})
    assert (resent.status_code, resent.json()["channel"]) == (200, "email")
    problem(support.post(f"/coupons/{code}/issue", {"member": "card:100002", "channel": "sms"}),
            409, "conflict")  # fmt: skip
    problem(support.post(f"/coupons/{code}/issue", {"member": "card:100002"}), 422,
            "validation_error")  # fmt: skip
    gifted = pos.post(f"/coupons/{code}/gift", {"from": "card:100001", "to": "card:100002"})
    assert gifted.status_code == 201, gifted.text
    looked = pos.get(f"/coupons/{code}")
    assert (looked.json()["owner"], looked.json()["campaign"]) == (gifted.json()["owner"],
                                                                   "spring")  # fmt: skip
    held = admin.get("/members/card:100002/coupons").json()["items"]
    assert [item["code"] for item in held] == [code]
    problem(pos.get("/coupons/NOPE-NOPE-NO"), 404, "not_found")


def test_a_pos_key_guessing_codes_is_slowed_down(client: TestClient, zerno_engine: Engine,
                                                 admin: Api) -> None:  # fmt: skip
    code = with_codes(admin)[0]
    pos = Api(client, key_for(zerno_engine, "pos", location="kiosk"))
    other_pos = Api(client, key_for(zerno_engine, "pos", location="rest-a"))
    for n in range(10):
        problem(pos.get(f"/coupons/GUESS{n:04d}"), 404, "not_found")
    refused = problem(pos.get(f"/coupons/{code}"), 429, "too_many_requests")
    assert "retry in" in refused["detail"]
    assert other_pos.get(f"/coupons/{code}").status_code == 200  # per key
    for n in range(12):  # an admin's look-ups are not counted
        problem(admin.get(f"/coupons/GUESS{n:04d}"), 404, "not_found")
    assert admin.get(f"/coupons/{code}").status_code == 200


def test_the_guess_limiter_counts_per_key_and_per_member() -> None:
    now = [0.0]
    limiter = CouponGuessLimiter(clock=lambda: now[0])
    for _ in range(5):
        limiter.failed(1, 42)
    assert limiter.retry_after(1, None) == 0
    assert limiter.retry_after(2, 42) == 60  # the member is refused whatever the key
    for _ in range(5):
        limiter.failed(1, None)
    assert limiter.retry_after(1, None) == 60
    now[0] = 61
    assert limiter.retry_after(1, 42) == 0


def test_a_member_is_counted_once_whatever_reference_names_them(
    client: TestClient, zerno_engine: Engine, admin: Api
) -> None:
    """Five unknown codes a minute for a member, whether named by id, card, phone (in two
    spellings), email (in two cases) or external id, through any number of keys."""
    with_codes(admin)
    made = admin.post("/members", {"card": "100077", "phone": "+79123456700",
                                   "email": "guess@example.ru", "external_id": "G-77"})  # fmt: skip
    refs = [made.json()["id"], "card:100077", "phone:+79123456700", "phone:8 912 345-67-00",
            "email:guess@example.ru", "email:GUESS@example.ru", "ext:G-77"]  # fmt: skip
    tills = [Api(client, key_for(zerno_engine, "pos", location="kiosk")) for _ in refs]
    receipt = {"location": "kiosk", "lines": [{"sku": "TEA-400", "qty": 1}]}
    for n, (till, ref) in enumerate(zip(tills[:5], refs, strict=False)):
        quoted = till.post("/purchases/quote", {**receipt, "member": ref,
                                                "coupons": [f"GUESS-{n:04d}"]})  # fmt: skip
        assert quoted.json()["coupons"][0]["reason"] == "not_found", quoted.text
    for till, ref in zip(tills[5:], refs[5:], strict=True):
        body = {**receipt, "member": ref, "coupons": ["GUESS-9999"]}
        problem(till.post("/purchases/quote", body), 429, "too_many_requests")
    body = {**receipt, "member": "card:100077", "coupons": ["GUESS-9999"]}
    problem(tills[0].post("/purchases/quote", body), 429, "too_many_requests")


def test_another_programs_key_sees_no_coupon(client: TestClient, zerno_engine: Engine,
                                             admin: Api) -> None:  # fmt: skip
    code = with_codes(admin)[0]
    stranger = Api(client, key_for(zerno_engine, "admin", program="other"), program="zerno")
    problem(stranger.get(f"/coupons/{code}"), 404, "not_found")
    problem(stranger.get("/coupon-campaigns/spring"), 404, "not_found")
