"""Coupons in the purchase flow on SQLite and PostgreSQL: a quote explains a coupon that
does not apply, a purchase with one is refused whole, a coupon's discount comes before
points, its points are credited apart, and a refund or a cancel gives the coupon back."""

from __future__ import annotations

import copy
import itertools
import random
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from kopilka.checkout.purchases import process_purchase, quote_purchase, settle_hold
from kopilka.checkout.refunds import refund_purchase
from kopilka.kernel.errors import CouponInvalid, InvalidInput
from kopilka.ledger.verify import verify
from kopilka.mechanics.coupons import handlers as coupons
from kopilka.mechanics.coupons.tables import coupon_redemptions
from kopilka.members.handlers import register_member
from kopilka.platform.files import load_document
from kopilka.programs.handlers import apply_program
from tests.conftest import EXAMPLES
from tests.store.conftest import NOW, at_once

TEN_OFF_TEA = {"code": "tea-10", "kind": "unique",
               "effect": {"percent": 10, "skus": ["TEA-400"]}}  # fmt: skip
POINTS = {"code": "bonus", "kind": "public", "public_code": "BONUS200",
          "effect": {"points": "200"}, "limits": {"per_member": 1}}  # fmt: skip
MIN_SUM = {"code": "big", "kind": "public", "public_code": "BIG50",
           "effect": {"amount": "50.00"}, "conditions": {"min_sum": "1000.00"}}  # fmt: skip


def campaign(engine: Engine, document: dict[str, Any], count: int = 0) -> list[str]:
    coupons.create_campaign(engine, "zerno", copy.deepcopy(document), actor="t", now=NOW)
    if not count:
        return []
    coupons.create_batch(engine, "zerno", document["code"], {"count": count}, actor="t",
                         now=NOW, rng=random.Random(7))  # fmt: skip
    return [i["code"] for i in coupons.code_page(engine, "zerno", document["code"],
                                                 limit=count)["items"]]  # fmt: skip


def body(receipt_id: str, *codes: str, **more: Any) -> dict[str, Any]:
    return {"receipt_id": receipt_id, "location": "kiosk", "member": "card:100001",
            "lines": [{"sku": "TEA-400", "qty": 2}, {"sku": "CAP-300", "qty": 1}],
            "coupons": list(codes), **more}  # fmt: skip


@pytest.fixture
def shop(zerno_engine: Engine) -> Engine:
    register_member(zerno_engine, "zerno", {"card": "100001"}, now=NOW)
    return zerno_engine


def buy(engine: Engine, receipt: dict[str, Any]) -> dict[str, Any]:
    return process_purchase(engine, "zerno", receipt, now=NOW, actor="t").answer


def test_a_coupon_discount_comes_before_points_and_is_used_once(shop: Engine) -> None:
    code = campaign(shop, TEN_OFF_TEA, 1)[0]
    answer = buy(shop, body("R1", code.lower().replace("-", "")))  # as people type it
    assert answer["coupons"] == [{"code": code.lower().replace("-", ""), "applied": True,
                                  "campaign": "tea-10", "discount": "30.00",
                                  "points": "0.00"}]  # fmt: skip
    assert answer["discount"] == "30.00"
    tea = answer["lines"][0]
    assert tea["discount"] == "30.00"
    assert tea["explain"][0] == {"discount": "coupon:tea-10", "amount": "30.00"}
    with pytest.raises(CouponInvalid) as refused:
        buy(shop, body("R2", code))
    assert refused.value.reason == "used"
    quoted = quote_purchase(shop, "zerno", body("R3", code), now=NOW)
    assert quoted["coupons"][0]["applied"] is False
    assert quoted["coupons"][0]["reason"] == "used"
    assert quoted["discount"] == "0.00"
    assert (
        buy(shop, body("R1", code.lower().replace("-", "")))["purchase_id"]
        == (answer["purchase_id"])
    )  # a replay answers the first result though its coupon is used now


def test_every_refusal_reason_in_a_quote_and_nothing_written_by_a_purchase(shop: Engine) -> None:
    campaign(shop, MIN_SUM)
    quoted = quote_purchase(shop, "zerno", body("Q", "BIG50", "NOPE-NOPE-NO"), now=NOW)
    assert [(c["applied"], c.get("reason")) for c in quoted["coupons"]] == [
        (False, "conditions_not_met"), (False, "not_found")]  # fmt: skip
    assert "1000.00" in quoted["coupons"][0]["detail"]
    with pytest.raises(CouponInvalid) as refused:
        buy(shop, body("R1", "BIG50"))
    assert refused.value.reason == "conditions_not_met"
    with shop.connect() as connection:
        assert (
            connection.execute(select(func.count()).select_from(coupon_redemptions)).scalar() == 0
        )


def test_a_points_coupon_credits_points_apart_and_a_refund_takes_them_back(shop: Engine) -> None:
    campaign(shop, POINTS)
    answer = buy(shop, body("R1", "bonus200"))
    assert answer["coupons"][0]["points"] == "200.00"
    before = answer["balance"]["available"]
    assert float(before) >= 200  # the rules' accrual plus the coupon's 200
    refund = refund_purchase(shop, "zerno", answer["purchase_id"], {"refund_id": "RF1"},
                             actor="t", now=NOW)[0]  # fmt: skip
    assert refund["coupons_returned"] == ["BONUS200"]
    assert refund["balance"]["available"] == "0.00"
    again = buy(shop, body("R2", "BONUS200"))  # per_member 1, but the first was returned
    assert again["coupons"][0]["applied"] is True
    assert verify(shop)[1] == []


def test_a_partial_refund_keeps_the_coupon_used(shop: Engine) -> None:
    code = campaign(shop, TEN_OFF_TEA, 1)[0]
    answer = buy(shop, body("R1", code))
    refund = refund_purchase(shop, "zerno", answer["purchase_id"],
                             {"refund_id": "RF1", "lines": [{"n": 0, "qty": 1}]},
                             actor="t", now=NOW)[0]  # fmt: skip
    assert "coupons_returned" not in refund
    assert quote_purchase(shop, "zerno", body("Q", code), now=NOW)["coupons"][0]["reason"] == (
        "used"
    )


def test_a_cancelled_hold_gives_its_coupon_back(shop: Engine) -> None:
    code = campaign(shop, TEN_OFF_TEA, 1)[0]
    held = buy(shop, body("R1", code, hold=True))
    assert held["status"] == "held"
    settle_hold(shop, "zerno", held["purchase_id"], "cancel", actor="t", now=NOW)
    assert buy(shop, body("R2", code))["coupons"][0]["applied"] is True


def test_one_single_use_code_in_twenty_purchases_at_once_wins_once(shop: Engine) -> None:
    if shop.dialect.name != "postgresql":
        pytest.skip("concurrent writers: PostgreSQL")
    code = campaign(shop, TEN_OFF_TEA, 1)[0]
    numbers = itertools.count()

    def attempt() -> str:
        try:
            buy(shop, body(f"R{next(numbers)}", code))
        except CouponInvalid as refused:
            return refused.reason
        return "won"

    outcomes = at_once(attempt, times=20)
    assert outcomes.count("won") == 1
    assert set(outcomes) == {"won", "used"}
    with shop.connect() as connection:
        assert (
            connection.execute(select(func.count()).select_from(coupon_redemptions)).scalar() == 1
        )
    assert verify(shop)[1] == []


def test_a_receipt_takes_one_coupon_of_a_campaign_and_each_coupon_once(shop: Engine) -> None:
    first, second = campaign(shop, TEN_OFF_TEA, 2)
    quoted = quote_purchase(shop, "zerno", body("Q", first, second, first.lower()), now=NOW)
    assert [(c["applied"], c.get("reason")) for c in quoted["coupons"]] == [
        (True, None), (False, "limit_reached"), (False, "used")]  # fmt: skip
    assert quoted["discount"] == "30.00"  # one coupon's worth, as the purchase would give
    with pytest.raises(CouponInvalid) as refused:
        buy(shop, body("R1", first, second))
    assert refused.value.reason == "limit_reached"


def test_a_quote_shows_the_balance_a_points_coupon_leaves(shop: Engine) -> None:
    campaign(shop, POINTS)
    quoted = quote_purchase(shop, "zerno", body("Q", "BONUS200"), now=NOW)
    bought = buy(shop, body("R1", "BONUS200"))
    assert quoted["balance"] == bought["balance"]


def test_more_than_ten_coupons_on_a_receipt_are_refused(shop: Engine) -> None:
    with pytest.raises(InvalidInput, match="at most 10 per receipt"):
        quote_purchase(shop, "zerno", body("Q", *[f"C{n}" for n in range(11)]), now=NOW)


def test_a_coupon_with_nothing_left_to_take_off_is_not_used_up(shop: Engine) -> None:
    document = load_document(EXAMPLES / "zerno" / "program.yaml")
    assert isinstance(document, dict)
    document["discounts"] = [{"code": "all-20", "percent": 20}]
    document["discount_limits"] = {"receipt_percent": 20}
    apply_program(shop, document, actor="t", now=NOW)
    campaign(shop, MIN_SUM | {"conditions": {}})
    quoted = quote_purchase(shop, "zerno", body("Q", "BIG50"), now=NOW)
    assert quoted["coupons"][0]["reason"] == "conditions_not_met"
    assert "nothing is left" in quoted["coupons"][0]["detail"]
    with pytest.raises(CouponInvalid):
        buy(shop, body("R1", "BIG50"))


def test_a_receipt_with_coupons_is_priced_once(shop: Engine, monkeypatch) -> None:
    """The coupons' step runs inside the receipt's one pricing: the program's discounts are
    worked out once, and the coupons checked against the lines they leave."""
    from kopilka.checkout.calculator import quote as calculator

    code = campaign(shop, TEN_OFF_TEA, 1)[0]
    priced: list[object] = []
    real = calculator.price  # type: ignore[attr-defined]

    def counted(*args: Any, **kw: Any) -> Any:
        priced.append(kw.get("offers"))
        return real(*args, **kw)

    monkeypatch.setattr(calculator, "price", counted)
    quoted = quote_purchase(shop, "zerno", body("Q", code, "BONUS200"), now=NOW)
    assert [c["applied"] for c in quoted["coupons"]] == [True, False]
    assert quoted["coupons"][1]["reason"] == "not_found"
    assert buy(shop, body("R1", code))["coupons"][0]["discount"] == "30.00"
    assert len(priced) == 2  # once for the quote, once for the purchase
    assert all(callable(offers) for offers in priced)  # the coupons' step, in the pricing
