"""Discounts, coupons and cashback over HTTP with real keys, on SQLite and PostgreSQL: the
program's discounts managed as versions, paid cards, a purchase refused for a coupon that
does not apply (`422 coupon_invalid` with its reason), and guessing codes slowed down."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.api.conftest import Api, key_for
from tests.api.test_http import problem

RECEIPT: dict[str, Any] = {
    "location": "kiosk",
    "at": "2026-03-10T12:00:00+03:00",
    "lines": [{"sku": "LUNCH-1", "qty": 2}],
}


def put(api: Api, path: str, body: Any) -> Any:
    return api.client.put(api.base + path, json=body,
                          headers={"Authorization": f"Bearer {api.key}"})  # fmt: skip


def delete(api: Api, path: str) -> Any:
    return api.client.delete(api.base + path, headers={"Authorization": f"Bearer {api.key}"})


def test_an_admin_adds_changes_and_removes_a_discount(admin: Api) -> None:
    made = put(admin, "/discounts/lunch-10", {"percent": 10, "when": {"categories": ["lunch"]}})
    assert made.status_code == 201, made.text
    quoted = admin.post("/purchases/quote", RECEIPT).json()
    assert quoted["discount"] == "90.00"
    assert quoted["discounts"] == [{"code": "lunch-10", "name": None, "amount": "90.00"}]
    assert quoted["lines"][0]["explain"][0] == {"discount": "lunch-10", "amount": "90.00"}
    changed = put(admin, "/discounts/lunch-10", {"percent": 20, "when": {"categories": ["lunch"]}})
    assert changed.status_code == 200, changed.text
    assert admin.post("/purchases/quote", RECEIPT).json()["discount"] == "180.00"
    listed = admin.get("/discounts").json()
    assert [d["code"] for d in listed["items"]] == ["lunch-10"]
    bad = problem(put(admin, "/discounts/x", {"percent": 120}), 422, "validation_error")
    assert "120 is more than 100" in bad["detail"]
    assert delete(admin, "/discounts/lunch-10").status_code == 200
    assert admin.post("/purchases/quote", RECEIPT).json()["discount"] == "0.00"
    problem(delete(admin, "/discounts/lunch-10"), 404, "not_found")


def test_only_an_admin_changes_discounts(client: TestClient, zerno_engine: Engine) -> None:
    pos = Api(client, key_for(zerno_engine, "pos", location="kiosk"))
    problem(put(pos, "/discounts/x", {"percent": 5}), 403, "forbidden")
    assert pos.get("/discounts").status_code == 200


def test_a_paid_discount_card(admin: Api) -> None:
    document = admin.get("").json()["document"]
    document["discount_cards"] = [{"code": "gold", "fee": "990.00", "valid_days": 365}]
    document["discounts"] = [{"code": "gold-5", "percent": 5, "when": {"cards": ["gold"]}}]
    assert put(admin, "", document).status_code == 201
    assert admin.post("/members", {"card": "100009"}).status_code == 201
    mine = {**RECEIPT, "member": "card:100009"}
    assert admin.post("/purchases/quote", mine).json()["discount"] == "0.00"
    bought = admin.post("/members/card:100009/discount-cards", {"card": "gold"},
                        headers={"Idempotency-Key": "card-1"})  # fmt: skip
    assert bought.status_code == 201, bought.text
    again = admin.post("/members/card:100009/discount-cards", {"card": "gold"},
                       headers={"Idempotency-Key": "card-1"})  # fmt: skip
    assert (again.status_code, again.json()) == (200, bought.json())
    assert admin.post("/purchases/quote", mine).json()["discount"] == "45.00"
    held = admin.get("/members/card:100009/discount-cards").json()["items"]
    assert [item["in_force"] for item in held] == [True]
    problem(admin.post("/members/card:100009/discount-cards", {"card": "tin"}), 422,
            "validation_error")  # fmt: skip


def test_a_purchase_with_a_coupon_that_does_not_apply_is_refused_whole(admin: Api) -> None:
    made = admin.post("/coupon-campaigns", {"code": "big", "kind": "public", "public_code": "BIG",
                                            "effect": {"amount": "100.00"},
                                            "conditions": {"min_sum": "5000.00"}})  # fmt: skip
    assert made.status_code == 201, made.text
    quoted = admin.post("/purchases/quote", {**RECEIPT, "coupons": ["big"]}).json()
    assert quoted["coupons"][0]["applied"] is False
    assert quoted["coupons"][0]["reason"] == "conditions_not_met"
    bought = admin.post("/purchases", {**RECEIPT, "receipt_id": "R-1", "coupons": ["big"]})
    refused = problem(bought, 422, "coupon_invalid")
    assert (refused["coupon"], refused["reason"]) == ("big", "conditions_not_met")
    assert admin.get("/purchases/1").status_code == 404  # nothing written


def test_guessing_coupon_codes_in_quotes_is_slowed_down(
    client: TestClient, zerno_engine: Engine
) -> None:
    pos = Api(client, key_for(zerno_engine, "pos", location="kiosk"))
    for n in range(10):
        answer = pos.post("/purchases/quote", {**RECEIPT, "coupons": [f"GUESS-{n:04d}"]})
        assert answer.json()["coupons"][0]["reason"] == "not_found"
    problem(pos.post("/purchases/quote", {**RECEIPT, "coupons": ["GUESS-9999"]}), 429,
            "too_many_requests")  # fmt: skip
    assert pos.post("/purchases/quote", RECEIPT).status_code == 200  # no coupon: not limited
    other = Api(client, key_for(zerno_engine, "pos", location="kiosk"))
    assert other.post("/purchases/quote", {**RECEIPT, "coupons": ["X"]}).status_code == 200


def test_a_coupon_life_cycle_end_to_end(admin: Api) -> None:
    """Generated, issued by SMS, gifted to a friend, redeemed, refused to its first owner,
    given back by a refund, and redeemed again."""
    campaign = {"code": "friends", "kind": "unique", "effect": {"percent": 20},
                "limits": {"per_member": 1}}  # fmt: skip
    assert admin.post("/coupon-campaigns", campaign).status_code == 201
    assert admin.post("/coupon-campaigns/friends/batches", {"count": 5}).status_code == 201
    code = admin.get("/coupon-campaigns/friends/codes", params={"format": "json"}).json()[
        "items"][0]["code"]  # fmt: skip
    for card in ("100001", "100002"):
        assert admin.post("/members", {"card": card}).status_code == 201
    issued = admin.post(f"/coupons/{code}/issue", {"member": "card:100001", "channel": "sms"})
    assert issued.status_code == 201, issued.text
    gifted = admin.post(f"/coupons/{code}/gift", {"from": "card:100001", "to": "card:100002"})
    assert gifted.status_code == 201, gifted.text
    mine = {**RECEIPT, "member": "card:100001", "coupons": [code]}
    assert admin.post("/purchases/quote", mine).json()["coupons"][0]["reason"] == "not_yours"
    friend = {**RECEIPT, "member": "card:100002", "coupons": [code], "receipt_id": "R-1"}
    bought = admin.post("/purchases", friend)
    assert bought.status_code == 201, bought.text
    assert bought.json()["coupons"][0]["discount"] == "180.00"
    assert admin.get(f"/coupons/{code}").json()["uses"] == 1
    again = admin.post("/purchases", {**friend, "receipt_id": "R-2"})
    assert problem(again, 422, "coupon_invalid")["reason"] == "used"
    purchase_id = bought.json()["purchase_id"]
    refund = admin.post(f"/purchases/{purchase_id}/refunds", {"refund_id": "RF-1"})
    assert refund.status_code == 201, refund.text
    assert refund.json()["coupons_returned"] == [code]
    assert admin.post("/purchases", {**friend, "receipt_id": "R-3"}).status_code == 201
    counted = admin.get("/coupon-campaigns/friends").json()
    assert counted["redemptions"]["count"] == 1  # the returned one no longer counts
