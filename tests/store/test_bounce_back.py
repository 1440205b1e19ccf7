"""Bounce-back coupons on SQLite and PostgreSQL: a receipt over the offer's minimum gives
a personal coupon valid from the next day; it is refused today and taken tomorrow; a
refund that leaves the purchase under the minimum revokes it unused; a used one stays."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from kopilka.checkout.purchases import process_purchase, quote_purchase
from kopilka.checkout.refunds import refund_purchase
from kopilka.kernel.errors import CouponInvalid
from kopilka.ledger.verify import verify
from kopilka.mechanics.coupons import handlers as coupons
from kopilka.members.handlers import register_member
from kopilka.platform.files import load_document
from kopilka.programs.handlers import apply_program
from tests.conftest import EXAMPLES
from tests.store.conftest import NOW

OFFER = {"code": "next-20", "name": "20 % off your next purchase", "coupon": "next-20",
         "min_total": "800.00", "lasts_days": 14}  # fmt: skip
NEXT = {"code": "next-20", "kind": "unique", "effect": {"percent": 20}}


@pytest.fixture
def shop(engine: Engine) -> Engine:
    document = load_document(EXAMPLES / "zerno" / "program.yaml")
    assert isinstance(document, dict)
    document["bounce_back"] = [copy.deepcopy(OFFER)]
    apply_program(engine, document, actor="test", now=NOW)
    coupons.create_campaign(engine, "zerno", copy.deepcopy(NEXT), actor="t", now=NOW)
    register_member(engine, "zerno", {"card": "100001"}, now=NOW)
    register_member(engine, "zerno", {"card": "100002"}, now=NOW)
    return engine


def body(receipt_id: str, *lines: tuple[str, int], coupon: str | None = None,
         card: str = "100001") -> dict[str, Any]:  # fmt: skip
    made: dict[str, Any] = {
        "receipt_id": receipt_id,
        "location": "kiosk",
        "member": f"card:{card}",
        "lines": [{"sku": sku, "qty": qty} for sku, qty in lines],
    }
    if coupon:
        made["coupons"] = [coupon]
    return made


def test_a_big_receipt_gives_a_coupon_for_the_next_day(shop: Engine) -> None:
    small = process_purchase(shop, "zerno", body("B-0", ("LUNCH-1", 1)), now=NOW,
                             actor="pos:test").answer  # fmt: skip
    assert "bounce_back" not in small  # 450 < 800
    quoted = quote_purchase(shop, "zerno", body("Q", ("LUNCH-1", 2)), now=NOW)
    assert quoted["bounce_back"][0]["offer"] == "next-20"
    big = process_purchase(shop, "zerno", body("B-1", ("LUNCH-1", 2)), now=NOW,
                           actor="pos:test").answer  # fmt: skip
    (offer,) = big["bounce_back"]
    assert offer["valid_from"] == "2026-03-11T00:00:00+03:00"  # Moscow's next midnight
    assert offer["valid_until"] == "2026-03-25T00:00:00+03:00"
    (given,) = big["coupons_given"]
    code = given["code"]
    assert coupons.read_coupon(shop, "zerno", code, now=NOW)["status"] == "expired"
    with pytest.raises(CouponInvalid, match="valid from"):
        process_purchase(shop, "zerno", body("B-2", ("TEA-400", 1), coupon=code), now=NOW,
                         actor="pos:test")  # fmt: skip
    tomorrow = NOW + timedelta(days=1)
    with pytest.raises(CouponInvalid, match="another member"):
        process_purchase(shop, "zerno", body("B-3", ("TEA-400", 1), coupon=code, card="100002"),
                         now=tomorrow, actor="pos:test")  # fmt: skip
    used = process_purchase(shop, "zerno", body("B-4", ("TEA-400", 1), coupon=code),
                            now=tomorrow, actor="pos:test").answer  # fmt: skip
    assert used["discount"] == "30.00"  # 20 % of 150
    later = NOW + timedelta(days=15)
    assert coupons.read_coupon(shop, "zerno", code, now=later)["status"] == "used"
    # the purchase that earned it refunded: a used coupon stays used
    refund, _ = refund_purchase(shop, "zerno", big["purchase_id"], {"refund_id": "RF-1"},
                                actor="pos:test", now=tomorrow)  # fmt: skip
    assert "coupons_revoked" not in refund
    assert verify(shop)[1] == []


def test_a_refund_under_the_minimum_revokes_the_unused_coupon(shop: Engine) -> None:
    big = process_purchase(shop, "zerno", body("B-1", ("LUNCH-1", 2), ("TEA-400", 1)), now=NOW,
                           actor="pos:test").answer  # fmt: skip
    code = big["coupons_given"][0]["code"]
    kept, _ = refund_purchase(shop, "zerno", big["purchase_id"],
                              {"refund_id": "RF-1", "lines": [{"n": 1, "qty": 1}]},
                              actor="pos:test", now=NOW)  # fmt: skip
    assert "coupons_revoked" not in kept  # 900 left: still over 800
    under, _ = refund_purchase(shop, "zerno", big["purchase_id"],
                               {"refund_id": "RF-2", "lines": [{"n": 0, "qty": 1}]},
                               actor="pos:test", now=NOW)  # fmt: skip
    assert under["coupons_revoked"] == [code]
    assert under["bounce_back_taken_back"] == ["next-20"]
    assert coupons.read_coupon(shop, "zerno", code, now=NOW + timedelta(days=1))["status"] == (
        "revoked"
    )
    with pytest.raises(CouponInvalid, match="revoked"):
        process_purchase(shop, "zerno", body("B-2", ("TEA-400", 1), coupon=code),
                         now=NOW + timedelta(days=1), actor="pos:test")  # fmt: skip
