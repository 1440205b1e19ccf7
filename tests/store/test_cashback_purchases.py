"""Cashback through the purchase service on SQLite and PostgreSQL: a purchase answers its
cashback (a quote shows what it would be), on the money paid after discounts and points;
a hold gives it at confirm and never when cancelled; a refund claws back its share; one
receipt carries a discount, a coupon, points and cashback at once, each explained."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine

from kopilka.checkout.purchases import process_purchase, quote_purchase, settle_hold
from kopilka.checkout.refunds import refund_purchase
from kopilka.ledger.verify import verify
from kopilka.mechanics.cashback.handlers import member_cashback
from kopilka.mechanics.coupons import handlers as coupons
from kopilka.members.balances import make_adjustment
from kopilka.members.handlers import register_member
from kopilka.platform.files import load_document
from kopilka.programs.handlers import apply_program
from tests.conftest import EXAMPLES
from tests.store.conftest import NOW

CASHBACK: dict[str, Any] = {
    "pending_days": 14,
    "campaigns": [
        {"code": "grows",
         "bands": [{"min": "0.00", "percent": 1}, {"min": "1000.00", "percent": 3}]},
        {"code": "bank", "bands": [{"min": "0.00", "percent": 2}],
         "payment": {"methods": ["card"], "bins": ["220000-220499"]}},
    ],
}  # fmt: skip
LUNCH_DEAL = {"code": "lunch-10", "percent": 10, "when": {"categories": ["lunch"]}}


@pytest.fixture
def cafe(zerno_engine: Engine) -> Engine:
    document = load_document(EXAMPLES / "zerno" / "program.yaml")
    assert isinstance(document, dict)
    document["cashback"] = copy.deepcopy(CASHBACK)
    document["discounts"] = [LUNCH_DEAL]
    apply_program(zerno_engine, document, actor="test", now=NOW)
    register_member(zerno_engine, "zerno", {"card": "100001"}, now=NOW)
    return zerno_engine


def receipt(receipt_id: str, qty: int = 3, **more: Any) -> dict[str, Any]:
    return {"receipt_id": receipt_id, "location": "kiosk", "member": "card:100001",
            "at": "2026-03-10T12:00:00+03:00", "lines": [{"sku": "LUNCH-1", "qty": qty}],
            "payment": {"method": "card", "bin": "22001234"}, **more}  # fmt: skip


def buy(engine: Engine, body: dict[str, Any]) -> dict[str, Any]:
    return process_purchase(engine, "zerno", body, now=NOW, actor="t").answer


def test_a_purchase_answers_its_cashback_on_the_money_paid(cafe: Engine) -> None:
    quoted = quote_purchase(cafe, "zerno", receipt("Q"), now=NOW)
    answer = buy(cafe, receipt("R1"))
    # 3 × 450.00 = 1350.00, −10 % lunch = 1215.00 paid: 3 % + 2 % (the bank's card)
    assert answer["paid"] == "1215.00"
    assert answer["cashback"]["amount"] == "60.75"
    assert answer["cashback"]["status"] == "pending"
    assert quoted["cashback"]["amount"] == "60.75"
    assert member_cashback(cafe, "zerno", "card:100001")["pending"] == "60.75"
    assert buy(cafe, receipt("R1"))["cashback"] == answer["cashback"]  # a replay: the same
    assert verify(cafe)[1] == []


def test_a_refund_claws_back_its_share_of_the_cashback(cafe: Engine) -> None:
    answer = buy(cafe, receipt("R1"))
    part = refund_purchase(cafe, "zerno", answer["purchase_id"],
                           {"refund_id": "RF1", "lines": [{"n": 0, "qty": 1}]},
                           actor="t", now=NOW)[0]  # fmt: skip
    assert part["cashback_back"] == "20.25"  # a third
    rest = refund_purchase(cafe, "zerno", answer["purchase_id"], {"refund_id": "RF2"},
                           actor="t", now=NOW)[0]  # fmt: skip
    assert rest["cashback_back"] == "40.50"
    assert member_cashback(cafe, "zerno", "card:100001")["pending"] == "0.00"
    assert verify(cafe)[1] == []


def test_a_hold_gives_cashback_at_confirm_and_none_when_cancelled(cafe: Engine) -> None:
    make_adjustment(cafe, "zerno", "card:100001", {"points": "100", "reason": "start"},
                    actor="t", now=NOW)  # fmt: skip
    held = buy(cafe, receipt("R1", redeem="100", hold=True))
    assert held["cashback"]["status"] == "on_confirm"
    assert member_cashback(cafe, "zerno", "card:100001")["pending"] == "0.00"
    confirmed = settle_hold(cafe, "zerno", held["purchase_id"], "confirm", actor="t", now=NOW)[0]
    assert confirmed["cashback"]["status"] == "pending"
    assert confirmed["cashback"]["amount"] == "55.75"  # on 1115.00 paid with money
    cancelled = buy(cafe, receipt("R2", qty=1, hold=True))
    answer = settle_hold(cafe, "zerno", cancelled["purchase_id"], "cancel", actor="t", now=NOW)[0]
    assert answer["cashback"] is None
    assert member_cashback(cafe, "zerno", "card:100001")["pending"] == "55.75"
    assert verify(cafe)[1] == []


def test_one_receipt_with_a_discount_a_coupon_points_and_cashback(cafe: Engine) -> None:
    soup_free = {"code": "soup", "kind": "public", "public_code": "SOUP",
                 "effect": {"free_sku": "SOUP-1"}}  # fmt: skip
    coupons.create_campaign(cafe, "zerno", soup_free, actor="t", now=NOW)
    make_adjustment(cafe, "zerno", "card:100001", {"points": "50", "reason": "start"},
                    actor="t", now=NOW)  # fmt: skip
    body = receipt("R1", redeem="50", coupons=["soup"])
    body["lines"] = [{"sku": "LUNCH-1", "qty": 2}, {"sku": "SOUP-1", "qty": 1}]
    answer = buy(cafe, body)
    lunch, soup = answer["lines"]
    assert lunch["explain"][0] == {"discount": "lunch-10", "amount": "90.00"}
    assert soup["explain"][:2] == [
        {"discount": "lunch-10", "amount": "22.00"},
        {"discount": "coupon:soup", "amount": "198.00"},
    ]  # the rest
    assert soup["amount"] == "0.00"
    assert soup["accrued"] == "0.00"  # a free line earns nothing
    assert answer["coupons"][0]["applied"] is True
    assert answer["discount"] == "310.00"
    assert answer["redeemed"] == "50.00"
    assert answer["paid"] == "760.00"  # 1120 − 310 − 50
    assert answer["cashback"]["amount"] == "22.80"  # 1 % + 2 % of 760.00
    assert verify(cafe)[1] == []


def test_a_refund_restores_the_coupon_and_claws_back_cashback_and_points(cafe: Engine) -> None:
    bonus = {"code": "bonus", "kind": "public", "public_code": "BONUS",
             "effect": {"points": "25"}, "limits": {"per_member": 1}}  # fmt: skip
    coupons.create_campaign(cafe, "zerno", bonus, actor="t", now=NOW)
    answer = buy(cafe, receipt("R1", coupons=["bonus"]))
    accrued = Decimal(answer["accrued"])
    assert Decimal(answer["balance"]["available"]) == accrued + 25  # and the coupon's 25
    assert answer["cashback"]["amount"] == "60.75"
    refund = refund_purchase(cafe, "zerno", answer["purchase_id"], {"refund_id": "RF1"},
                             actor="t", now=NOW)[0]  # fmt: skip
    assert refund["coupons_returned"] == ["BONUS"]
    assert Decimal(refund["accrued_back"]) == accrued + 25
    assert refund["cashback_back"] == "60.75"
    assert refund["balance"]["available"] == "0.00"
    assert member_cashback(cafe, "zerno", "card:100001")["pending"] == "0.00"
    again = quote_purchase(cafe, "zerno", receipt("Q", coupons=["bonus"]), now=NOW)
    assert again["coupons"][0]["applied"] is True  # the returned coupon counts no more
    assert verify(cafe)[1] == []


def test_cashback_comes_back_with_the_money_not_with_the_points(cafe: Engine) -> None:
    make_adjustment(cafe, "zerno", "card:100001", {"points": "405", "reason": "start"},
                    actor="t", now=NOW)  # fmt: skip
    body = receipt("R1", redeem="405")
    body["lines"] = [{"sku": "LUNCH-1", "qty": 1}, {"sku": "CIG-1", "qty": 1}]
    answer = buy(cafe, body)
    # the lunch (405.00 after its discount) is paid with points; the cigarettes can't be
    assert (answer["paid"], answer["cashback"]["amount"]) == ("250.00", "7.50")
    lunch = refund_purchase(cafe, "zerno", answer["purchase_id"],
                            {"refund_id": "RF1", "lines": [{"n": 0, "qty": 1}]},
                            actor="t", now=NOW)[0]  # fmt: skip
    assert lunch["cashback_back"] is None or lunch["cashback_back"] == "0.00"
    cigarettes = refund_purchase(cafe, "zerno", answer["purchase_id"],
                                 {"refund_id": "RF2", "lines": [{"n": 1, "qty": 1}]},
                                 actor="t", now=NOW)[0]  # fmt: skip
    assert cigarettes["cashback_back"] == "7.50"
    assert verify(cafe)[1] == []
