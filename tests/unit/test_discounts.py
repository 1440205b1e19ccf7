"""Discounts, one worked case per kind, stacking and caps — figures worked by hand."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from kopilka.checkout.calculator import Calculator
from kopilka.checkout.wire import quote_json
from kopilka.kernel.errors import InvalidInput
from kopilka.kernel.program_parser import parse_program
from kopilka.kernel.receipt import MemberContext, parse_receipt
from kopilka.mechanics.discounts.model import Discount, FreeUnit, Offer, PercentOff

BASE: dict[str, Any] = {
    "code": "shop",
    "currency": "RUB",
    "timezone": "Europe/Moscow",
    "accrual": {"base_percent": 10},
    "partners": [
        {"code": "bakery", "locations": [{"code": "b1"}]},
        {"code": "cinema", "locations": [{"code": "c1"}]},
    ],
    "catalog": {
        "categories": [{"code": "food"}, {"code": "bread", "parent": "food"}, {"code": "other"}],
        "products": [
            {"sku": "BUN", "category": "bread", "price": "50.00"},
            {"sku": "LOAF", "category": "bread", "price": "120.00"},
            {"sku": "COFFEE", "category": "food", "price": "150.00"},
            {"sku": "TICKET", "category": "other", "price": "400.00"},
        ],
    },
}
MONDAY_NOON = "2026-03-09T12:00:00+03:00"


def answer(
    discounts: list[dict[str, Any]], lines: list[tuple[str, Any]], *, member: bool = True,
    at: str = MONDAY_NOON, location: str = "b1", offers: tuple[Offer, ...] = (),
    **context: Any,
) -> dict[str, Any]:  # fmt: skip
    """The quote's JSON for `lines` of (sku, qty) under a program with `discounts`."""
    document = copy.deepcopy(BASE)
    limits = context.pop("limits", None)
    document["discounts"] = discounts
    if limits:
        document["discount_limits"] = limits
    document["discount_cards"] = [{"code": "gold", "fee": "990.00", "valid_days": 365}]
    calculator = Calculator(parse_program(document))
    body = {"location": location, "at": at,
            "lines": [{"sku": sku, "qty": qty} for sku, qty in lines]}  # fmt: skip
    if member:
        body["member"] = "card:1"
    receipt = parse_receipt(body, calculator.program, now=datetime.now(UTC))
    shopper = MemberContext(frozenset({"card:1"}), **context) if member else None
    quote = calculator.quote(receipt, shopper, offers)
    return quote_json(quote, calculator.program, status="quote")


def line_discounts(result: dict[str, Any]) -> list[str]:
    return [line["discount"] for line in result["lines"]]


def test_a_percent_off_the_lines_of_a_category_and_points_on_what_is_left() -> None:
    result = answer([{"code": "bread-10", "percent": 10, "when": {"categories": ["bread"]}}],
                    [("BUN", 3), ("COFFEE", 1)])  # fmt: skip
    assert line_discounts(result) == ["15.00", "0.00"]
    assert result["discount"] == "15.00"
    assert result["total"] == "300.00"
    assert result["paid"] == "285.00"
    assert result["accrued"] == "28.50"  # 10 % of 135.00 + 150.00
    assert result["lines"][0]["explain"][0] == {"discount": "bread-10", "amount": "15.00"}
    assert result["discounts"] == [{"code": "bread-10", "name": None, "amount": "15.00"}]


def test_a_fixed_amount_is_spread_over_its_lines_and_never_exceeds_them() -> None:
    result = answer([{"code": "minus-100", "amount": "100.00"}], [("BUN", 1), ("COFFEE", 1)])
    assert line_discounts(result) == ["25.00", "75.00"]  # 100 spread 50:150
    small = answer([{"code": "minus-100", "amount": "100.00", "when": {"skus": ["BUN"]}}],
                   [("BUN", 1), ("COFFEE", 1)])  # fmt: skip
    assert line_discounts(small) == ["50.00", "0.00"]


def test_an_accumulative_discount_grows_with_lifetime_spend() -> None:
    bands = [{"spend": "0", "percent": 3}, {"spend": "10000.00", "percent": 5},
             {"spend": "50000.00", "percent": 7}]  # fmt: skip
    discount = [{"code": "loyal", "accumulative": bands}]
    assert answer(discount, [("TICKET", 1)], lifetime_spend=0)["discount"] == "12.00"
    assert answer(discount, [("TICKET", 1)], lifetime_spend=999_999)["discount"] == "12.00"
    assert answer(discount, [("TICKET", 1)], lifetime_spend=1_000_000)["discount"] == "20.00"
    assert answer(discount, [("TICKET", 1)], lifetime_spend=6_000_000)["discount"] == "28.00"
    assert answer(discount, [("TICKET", 1)], member=False)["discount"] == "0.00"


def test_a_time_limited_discount_holds_on_its_days_and_hours_only() -> None:
    happy = [{"code": "morning", "percent": 20,
              "when": {"weekdays": ["mon"], "time": {"from": "08:00", "to": "11:00"}}}]  # fmt: skip
    assert answer(happy, [("BUN", 1)], at="2026-03-09T09:00:00+03:00")["discount"] == "10.00"
    assert answer(happy, [("BUN", 1)], at="2026-03-09T11:00:00+03:00")["discount"] == "0.00"
    assert answer(happy, [("BUN", 1)], at="2026-03-10T09:00:00+03:00")["discount"] == "0.00"
    dated = [{"code": "march", "percent": 50,
              "when": {"between": {"from": "2026-03-01", "to": "2026-03-08"}}}]  # fmt: skip
    assert answer(dated, [("BUN", 1)], at="2026-03-08T23:59:00+03:00")["discount"] == "25.00"
    assert answer(dated, [("BUN", 1)])["discount"] == "0.00"


def test_a_cross_discount_needs_a_recent_purchase_at_the_other_partner() -> None:
    cross = [
        {"code": "bread-then-film", "percent": 25,
         "when": {"partners": ["cinema"], "bought_at": {"partners": ["bakery"], "days": 7}}}
    ]  # fmt: skip
    recent = {"bakery": datetime(2026, 3, 5, 10, tzinfo=UTC)}
    old = {"bakery": datetime(2026, 2, 1, 10, tzinfo=UTC)}
    assert answer(cross, [("TICKET", 1)], location="c1", last_bought=recent)["discount"] == (
        "100.00"
    )
    assert answer(cross, [("TICKET", 1)], location="c1", last_bought=old)["discount"] == "0.00"
    assert answer(cross, [("TICKET", 1)], location="b1", last_bought=recent)["discount"] == "0.00"


def test_a_personal_discount_for_one_member_or_a_segment() -> None:
    mine = [{"code": "for-you", "percent": 10, "when": {"members": ["card:1"]}}]
    theirs = [{"code": "for-them", "percent": 10, "when": {"members": ["card:2"]}}]
    segment = [{"code": "sleepers", "percent": 30, "when": {"segments": ["sleepers"]}}]
    assert answer(mine, [("BUN", 2)])["discount"] == "10.00"
    assert answer(theirs, [("BUN", 2)])["discount"] == "0.00"
    assert answer(segment, [("BUN", 2)], segments=frozenset({"sleepers"}))["discount"] == "30.00"
    assert answer(segment, [("BUN", 2)])["discount"] == "0.00"


def test_a_receipt_threshold_compares_the_receipt_net_of_earlier_discounts() -> None:
    discounts: list[dict[str, Any]] = [
        {"code": "big-basket", "amount": "50.00", "when": {"receipt_total": {"min": "500.00"}}},
        {"code": "bread-10", "percent": 10, "priority": 1, "when": {"categories": ["bread"]}},
    ]
    # 10 loaves: 1200.00 − 120.00 = 1080.00 ≥ 500.00 → both
    assert answer(discounts, [("LOAF", 10)])["discount"] == "170.00"
    # 5 buns: 250.00 → no threshold; 4 loaves 480 + coffee 150 = 630; bread −48 → 582 ≥ 500
    assert answer(discounts, [("LOAF", 4), ("COFFEE", 1)])["discount"] == "98.00"
    # 4 loaves and a bun: 530 − 53 = 477 < 500 → the threshold fails after the bread discount
    assert answer(discounts, [("LOAF", 4), ("BUN", 1)])["discount"] == "53.00"


def test_a_first_purchase_discount() -> None:
    welcome = [{"code": "welcome", "percent": 15, "when": {"first_purchase": True}}]
    assert answer(welcome, [("COFFEE", 2)], purchases=0)["discount"] == "45.00"
    assert answer(welcome, [("COFFEE", 2)], purchases=1)["discount"] == "0.00"
    assert answer(welcome, [("COFFEE", 2)], member=False)["discount"] == "0.00"


def test_buy_two_get_one_free_gives_the_cheapest_units() -> None:
    deal = [{"code": "3-for-2", "buy_get": {"buy": 2, "get": 1}, "when": {"categories": ["food"]}}]
    # units: 50 50 50 120 150 150 → 2 groups of 3 → the two cheapest (50, 50) free
    result = answer(deal, [("BUN", 3), ("LOAF", 1), ("COFFEE", 2)])
    assert line_discounts(result) == ["100.00", "0.00", "0.00"]
    assert answer(deal, [("BUN", 2)])["discount"] == "0.00"


def test_every_nth_item_at_a_percent_off() -> None:
    deal = [{"code": "second-half", "nth_item": {"n": 2, "percent": 50}}]
    result = answer(deal, [("COFFEE", 1), ("LOAF", 1), ("BUN", 1)])
    # 3 units → one pair → the cheapest unit (BUN 50) at half price
    assert line_discounts(result) == ["0.00", "0.00", "25.00"]


def test_the_cheapest_item_free_once_per_receipt() -> None:
    deal = [{"code": "cheapest-free", "cheapest_free": {"min_items": 3}}]
    assert answer(deal, [("COFFEE", 2), ("LOAF", 1)])["discount"] == "120.00"
    assert answer(deal, [("COFFEE", 6)])["discount"] == "150.00"  # once, not per three
    assert answer(deal, [("COFFEE", 2)])["discount"] == "0.00"


def test_a_bundle_price_for_each_complete_set() -> None:
    breakfast = [{"code": "breakfast", "name": "Завтрак",
                  "bundle": {"items": [{"sku": "COFFEE"}, {"sku": "BUN", "qty": 2}],
                             "price": "200.00"}}]  # fmt: skip
    # one set: 150 + 50 + 50 = 250 → 200; the 50 saved spread 150:100 over the lines
    result = answer(breakfast, [("COFFEE", 1), ("BUN", 3)])
    assert line_discounts(result) == ["30.00", "20.00"]
    two = answer(breakfast, [("COFFEE", 2), ("BUN", 4)])
    assert two["discount"] == "100.00"
    assert answer(breakfast, [("COFFEE", 1), ("BUN", 1)])["discount"] == "0.00"


def test_a_paid_discount_card_holder_gets_its_discount() -> None:
    club = [{"code": "club-5", "percent": 5, "when": {"cards": ["gold"]}}]
    assert answer(club, [("TICKET", 1)], cards=frozenset({"gold"}))["discount"] == "20.00"
    assert answer(club, [("TICKET", 1)], cards=frozenset())["discount"] == "0.00"


def test_stackable_discounts_add_up_in_priority_order() -> None:
    stack = [{"code": "ten", "percent": 10}, {"code": "hundred", "amount": "100.00", "priority": 5}]
    # hundred first (priority 5): 400 → 300; then 10 % of 300 = 30
    result = answer(stack, [("TICKET", 1)])
    assert result["discount"] == "130.00"
    assert [d["code"] for d in result["discounts"]] == ["hundred", "ten"]


def test_an_exclusive_discount_applies_alone_when_it_gives_more() -> None:
    discounts = [{"code": "ten", "percent": 10}, {"code": "five", "percent": 5},
                 {"code": "vip", "percent": 20, "stacking": "exclusive"}]  # fmt: skip
    result = answer(discounts, [("TICKET", 1)])
    assert result["discount"] == "80.00"
    assert [d["code"] for d in result["discounts"]] == ["vip"]
    assert any("ten not applied" in note for note in result["notes"])
    smaller = [{"code": "ten", "percent": 10}, {"code": "five", "percent": 5},
               {"code": "vip", "percent": 12, "stacking": "exclusive"}]  # fmt: skip
    result = answer(smaller, [("TICKET", 1)])
    assert result["discount"] == "58.00"  # 40 + 5 % of 360 = 18 beats 48
    assert any("vip not applied: it is exclusive" in note for note in result["notes"])


def test_the_most_total_discount_per_receipt_and_per_line() -> None:
    discounts = [{"code": "half", "percent": 50}, {"code": "more", "percent": 50}]
    capped = answer(discounts, [("TICKET", 1)], limits={"receipt_percent": 60})
    assert capped["discount"] == "240.00"  # 200 + 50 % of 200 = 300, capped at 60 % of 400
    per_line = answer(discounts, [("TICKET", 1), ("BUN", 2)], limits={"line_percent": 70})
    assert line_discounts(per_line) == ["280.00", "70.00"]
    one = answer([{"code": "half", "percent": 50, "max_amount": "150.00"}], [("TICKET", 1)])
    assert one["discount"] == "150.00"


def test_lines_free_by_a_coupon_earn_no_points_unless_it_says_so() -> None:
    free_bun = Offer(Discount("coupon:BUN", FreeUnit("BUN")), coupon="ABCD-EFGH")
    result = answer([], [("BUN", 1), ("COFFEE", 1)], offers=(free_bun,))
    assert line_discounts(result) == ["50.00", "0.00"]
    assert result["lines"][0]["accrued"] == "0.00"
    assert result["accrued"] == "15.00"
    assert result["discounts"][0]["coupon"] == "ABCD-EFGH"
    earning = Offer(Discount("coupon:10", PercentOff(Decimal(10)), earn_points=True), coupon="X")
    result = answer([], [("COFFEE", 1)], offers=(earning,))
    assert result["paid"] == "135.00"
    assert result["accrued"] == "15.00"  # on the 150.00 before the coupon


def test_a_discount_with_no_matching_line_or_condition_gives_nothing_and_says_nothing() -> None:
    result = answer([{"code": "bread-10", "percent": 10, "when": {"categories": ["bread"]}}],
                    [("COFFEE", 1)])  # fmt: skip
    assert result["discount"] == "0.00"
    assert result["discounts"] == []
    assert result["notes"] == []


@pytest.mark.parametrize(
    ("discount", "message"),
    [
        ({"code": "x"}, "give exactly one effect"),
        ({"code": "x", "percent": 10, "amount": "5"}, "give exactly one effect"),
        ({"code": "x", "percent": 110}, "more than 100"),
        ({"code": "x", "percent": 5, "stacking": "alone"}, "not one of stackable|exclusive"),
        ({"code": "x", "accumulative": [{"spend": "100", "percent": 3},
                                        {"spend": "50", "percent": 5}]}, "bands must rise"),
        ({"code": "x", "nth_item": {"n": 1}}, "less than 2"),
        ({"code": "x", "bundle": {"items": [{"sku": "BUN"}], "price": "10"}}, "two units or more"),
        ({"code": "x", "bundle": {"items": [{"sku": "NOPE", "qty": 2}], "price": "1"}},
         "unknown sku 'NOPE'"),
        ({"code": "x", "percent": 5, "when": {"cards": ["gold"]}}, "unknown discount card"),
        ({"code": "x", "percent": 5, "when": {"bought_at": {"partners": ["zoo"]}}},
         "unknown partner 'zoo'"),
        ({"code": "x", "percent": 5, "when": {"categories": ["bred"]}}, "unknown category"),
        ({"code": "x", "percent": 5, "when": {"weekday": ["mon"]}}, "did you mean 'weekdays'"),
    ],
)  # fmt: skip
def test_a_bad_discount_is_refused_by_name(discount: dict[str, Any], message: str) -> None:
    document = copy.deepcopy(BASE)
    document["discounts"] = [discount]
    with pytest.raises(InvalidInput) as refused:
        parse_program(document)
    assert message in str([str(p) for p in refused.value.problems])


def test_line_discounts_always_add_up_to_the_receipt_discount() -> None:
    discounts = [{"code": "a", "percent": "33.3"}, {"code": "b", "amount": "0.07"}]
    result = answer(discounts, [("BUN", 3), ("LOAF", 1), ("COFFEE", 7)])
    total = sum(int(d.replace(".", "")) for d in line_discounts(result))
    assert f"{total // 100}.{total % 100:02d}" == result["discount"]
    assert sum(int(d["amount"].replace(".", "")) for d in result["discounts"]) == total


def test_units_given_free_earn_no_fixed_points_per_unit() -> None:
    document = copy.deepcopy(BASE)
    document["rules"] = [{"code": "bun-10", "kind": "product", "when": {"skus": ["BUN"]},
                          "then": {"points_per_unit": "10"}}]  # fmt: skip
    document["discounts"] = [
        {"code": "free-buns", "percent": 100, "when": {"skus": ["BUN"]}},
        {"code": "half", "percent": 50, "when": {"skus": ["LOAF"]}},
    ]
    document["rules"].append({"code": "loaf-10", "kind": "product", "when": {"skus": ["LOAF"]},
                              "then": {"points_per_unit": "10"}})  # fmt: skip
    calculator = Calculator(parse_program(document))
    body = {"member": "card:1", "location": "b1", "at": MONDAY_NOON,
            "lines": [{"sku": "BUN", "qty": 2}, {"sku": "LOAF", "qty": 2}]}  # fmt: skip
    receipt = parse_receipt(body, calculator.program, now=datetime.now(UTC))
    quote = calculator.quote(receipt, MemberContext(frozenset({"card:1"})))
    bun, loaf = quote.lines
    assert bun.accrued == 0  # both buns free: no points for them
    assert loaf.accrued == 1000  # half price: points for what was paid, 2 × 10 × ½


def test_a_huge_quantity_is_priced_by_groups_not_unit_by_unit() -> None:
    deal = [{"code": "3-for-2", "buy_get": {"buy": 2, "get": 1}}]
    result = answer(deal, [("BUN", 3_000_000_000)])  # a billion sets: one group
    assert result["discount"] == "50000000000.00"
