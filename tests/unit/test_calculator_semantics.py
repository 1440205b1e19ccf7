"""The calculator's semantics, one rule of docs/calculation.md per test, worked by hand."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from kopilka.checkout.calculator import Calculator, Quote
from kopilka.kernel.money import format_minor
from kopilka.kernel.program_parser import parse_program
from kopilka.kernel.receipt import MemberContext, parse_receipt

BASE: dict[str, Any] = {
    "code": "cafe",
    "currency": "RUB",
    "timezone": "Europe/Moscow",
    "partners": [
        {"code": "north", "locations": [{"code": "n1"}, {"code": "n2"}]},
        {"code": "south", "locations": [{"code": "s1", "timezone": "Asia/Yekaterinburg"}]},
    ],
    "catalog": {
        "categories": [
            {"code": "drinks"},
            {"code": "coffee", "parent": "drinks"},
            {"code": "espresso-based", "parent": "coffee"},
        ],
        "products": [
            {"sku": "LATTE", "category": "espresso-based", "price": "200.00"},
            {"sku": "TEA", "category": "drinks", "price": "100.00"},
        ],
    },
    "rules": [],
}
MONDAY_NOON = "2026-03-09T12:00:00+03:00"


def program(rules: list[dict[str, Any]], **settings: Any) -> Calculator:
    document = copy.deepcopy(BASE)
    document["rules"] = rules
    document.update(settings)
    return Calculator(parse_program(document))


def quote(
    calculator: Calculator,
    lines: list[dict[str, Any]],
    *,
    at: str = MONDAY_NOON,
    location: str | None = "n1",
    balance: int | None = None,
    redeem: str = "0",
    tier: str | None = None,
) -> Quote:
    body: dict[str, Any] = {"member": "card:1", "at": at, "lines": lines, "redeem": redeem}
    if location:
        body["location"] = location
    receipt = parse_receipt(body, calculator.program, now=datetime.now(UTC))
    return calculator.quote(receipt, MemberContext(frozenset({"card:1"}), tier, balance=balance))


def figures(q: Quote, digits: int = 2) -> list[str]:
    return [format_minor(line.accrued, digits) for line in q.lines]


def rule(code: str, kind: str, when: dict[str, Any], then: dict[str, Any], **extra: Any):
    return {"code": code, "kind": kind, "when": when, "then": then, **extra}


LATTE = {"sku": "LATTE", "qty": 1}  # 200.00
TEA = {"sku": "TEA", "qty": 1}  # 100.00


class TestWhichRuleWins:
    def test_an_sku_rule_beats_a_category_rule_even_with_a_smaller_coefficient(self):
        calc = program([
            rule("coffee-5x", "product", {"categories": ["coffee"]}, {"multiplier": 5}),
            rule("latte-2x", "product", {"skus": ["LATTE"]}, {"multiplier": 2}),
        ])  # fmt: skip
        assert figures(quote(calc, [LATTE])) == ["4.00"]  # 200 × 1 % × 2

    def test_the_nearer_category_beats_its_ancestor(self):
        calc = program([
            rule("drinks-none", "product", {"categories": ["drinks"]}, {"accrue": False}),
            rule("coffee-3x", "product", {"categories": ["coffee"]}, {"multiplier": 3}),
        ])  # fmt: skip
        # latte is espresso-based ⊂ coffee ⊂ drinks: coffee is nearer; tea only matches drinks
        assert figures(quote(calc, [LATTE, TEA])) == ["6.00", "0.00"]

    def test_a_location_rule_beats_a_partner_rule_which_beats_a_program_rule(self):
        calc = program([
            rule("all", "client", {}, {"multiplier": 9}),
            rule("north", "client", {"partners": ["north"]}, {"multiplier": 3}),
            rule("n2", "client", {"locations": ["n2"]}, {"multiplier": 2}),
        ])  # fmt: skip
        by_place = [figures(quote(calc, [TEA], location=code))[0] for code in ("n1", "n2", "s1")]
        assert by_place == ["3.00", "2.00", "9.00"]

    def test_explicit_priority_beats_specificity(self):
        calc = program([
            rule("latte-2x", "product", {"skus": ["LATTE"]}, {"multiplier": 2}),
            rule("promo", "product", {}, {"multiplier": 4}, priority=1),
        ])  # fmt: skip
        assert figures(quote(calc, [LATTE])) == ["8.00"]

    def test_among_equals_the_largest_coefficient_wins_and_a_full_tie_the_first(self):
        calc = program([
            rule("a", "behaviour", {}, {"multiplier": 2}),
            rule("b", "behaviour", {}, {"percent": 3}),
            rule("c", "behaviour", {}, {"multiplier": 3}),
        ])  # fmt: skip
        q = quote(calc, [TEA])
        assert figures(q) == ["3.00"]
        assert [e.rule for e in q.lines[0].explain] == ["b"]

    def test_accrual_effects_and_limits_are_chosen_separately(self):
        calc = program([
            rule("latte-2x", "product", {"skus": ["LATTE"]}, {"multiplier": 2}),
            rule("drinks-half", "product", {"categories": ["drinks"]}, {"redeem_percent": 50}),
        ])  # fmt: skip
        q = quote(calc, [LATTE], balance=100_000, redeem="max")
        assert format_minor(q.redeemed, 2) == "100.00"  # the limit of the less specific rule
        assert figures(q) == ["2.00"]  # paid 100.00 × 1 % × 2
        assert [e.rule for e in q.lines[0].explain] == ["latte-2x", "drinks-half"]

    def test_accrue_false_anywhere_excludes_the_line_whatever_the_other_kinds_say(self):
        calc = program([
            rule("vip", "client", {}, {"points_per_unit": "50"}),
            rule("no-tea", "product", {"skus": ["TEA"]}, {"accrue": False}),
        ])  # fmt: skip
        assert figures(quote(calc, [TEA, LATTE])) == ["0.00", "50.00"]


class TestEffects:
    def test_points_per_unit_ignore_every_coefficient(self):
        calc = program([
            rule("ppu", "product", {"skus": ["LATTE"]}, {"points_per_unit": "7.5"}),
            rule("triple", "behaviour", {}, {"multiplier": 3}),
        ])  # fmt: skip
        assert figures(quote(calc, [{"sku": "LATTE", "qty": 2}])) == ["15.00"]

    def test_max_points_caps_the_line_after_all_coefficients(self):
        calc = program([
            rule("big", "product", {"skus": ["LATTE"]}, {"percent": 50, "max_points": "30"}),
            rule("triple", "behaviour", {}, {"multiplier": 3}),
        ])  # fmt: skip
        # 200 × 50 % × 3 = 300, capped at 30
        assert figures(quote(calc, [LATTE])) == ["30.00"]

    def test_a_percent_is_read_against_the_base_percent(self):
        calc = program([rule("five", "client", {}, {"percent": 5})], accrual={"base_percent": 2})
        q = quote(calc, [TEA])
        assert figures(q) == ["5.00"]  # K = 5 / 2 = 2.5; 100 × 2 % × 2.5
        assert str(q.lines[0].explain[0].coefficient) == "5/2"

    def test_redeem_percent_zero_means_not_payable_with_points(self):
        calc = program([rule("no-pay", "product", {"skus": ["TEA"]}, {"redeem_percent": 0})])
        q = quote(calc, [TEA, LATTE], balance=100_000, redeem="max")
        assert [line.redeemed for line in q.lines] == [0, 20_000]


class TestConditions:
    def test_a_window_across_midnight_belongs_to_the_day_it_began(self):
        calc = program([
            rule("fri-night", "behaviour",
                 {"weekdays": ["fri"], "time": {"from": "22:00", "to": "02:00"}},
                 {"multiplier": 2}),
        ])  # fmt: skip
        at = {  # 2026-03-13 is a Friday
            "fri 21:59": "2026-03-13T21:59:00+03:00",
            "fri 22:00": "2026-03-13T22:00:00+03:00",
            "sat 01:59": "2026-03-14T01:59:00+03:00",
            "sat 02:00": "2026-03-14T02:00:00+03:00",
            "fri 01:00": "2026-03-13T01:00:00+03:00",  # Thursday night's window
            "sat 23:00": "2026-03-14T23:00:00+03:00",
        }
        got = {name: figures(quote(calc, [TEA], at=moment))[0] for name, moment in at.items()}
        assert got == {"fri 21:59": "1.00", "fri 22:00": "2.00", "sat 01:59": "2.00",
                       "sat 02:00": "1.00", "fri 01:00": "1.00", "sat 23:00": "1.00"}  # fmt: skip

    def test_a_dated_night_window_holds_after_midnight_on_the_next_date(self):
        calc = program([
            rule("new-year", "behaviour",
                 {"dates": ["12-31"], "time": {"from": "20:00", "to": "03:00"}},
                 {"multiplier": 5}),
        ])  # fmt: skip
        night = quote(calc, [TEA], at="2027-01-01T02:30:00+03:00")
        next_night = quote(calc, [TEA], at="2027-01-01T21:00:00+03:00")
        assert figures(night) + figures(next_night) == ["5.00", "1.00"]

    def test_time_is_read_in_the_locations_own_time_zone(self):
        calc = program([
            rule("lunch", "behaviour", {"time": {"from": "12:00", "to": "14:00"}},
                 {"multiplier": 2}),
        ])  # fmt: skip
        # 10:30 in Moscow is 12:30 in Yekaterinburg (s1)
        moscow = quote(calc, [TEA], at="2026-03-09T10:30:00+03:00", location="n1")
        yekaterinburg = quote(calc, [TEA], at="2026-03-09T10:30:00+03:00", location="s1")
        assert figures(moscow) + figures(yekaterinburg) == ["1.00", "2.00"]

    def test_a_time_without_offset_is_local_to_the_location(self):
        calc = program([
            rule("lunch", "behaviour", {"time": {"from": "12:00", "to": "14:00"}},
                 {"multiplier": 2}),
        ])  # fmt: skip
        q = quote(calc, [TEA], at="2026-03-09T12:30:00", location="s1")
        assert figures(q) == ["2.00"]

    def test_receipt_total_bands_include_min_and_exclude_max_net_of_discounts(self):
        calc = program([
            rule("big", "behaviour", {"receipt_total": {"min": "300.00", "max": "500.00"}},
                 {"multiplier": 2}),
        ])  # fmt: skip
        totals = {
            "299.99": [{"sku": "TEA", "qty": 3, "discount": "0.01"}],
            "300.00": [{"sku": "TEA", "qty": 3}],
            "499.99": [{"sku": "TEA", "qty": 5, "discount": "0.01"}],
            "500.00": [{"sku": "TEA", "qty": 5}],
        }
        doubled = {
            name: quote(calc, lines).lines[0].explain != () for name, lines in totals.items()
        }
        assert doubled == {"299.99": False, "300.00": True, "499.99": True, "500.00": False}

    def test_between_includes_both_ends(self):
        calc = program([
            rule("march", "behaviour", {"between": {"from": "2026-03-01", "to": "2026-03-31"}},
                 {"multiplier": 2}),
        ])  # fmt: skip
        days = ["2026-02-28T23:59:00+03:00", "2026-03-01T00:00:00+03:00",
                "2026-03-31T23:59:00+03:00", "2026-04-01T00:00:00+03:00"]  # fmt: skip
        assert [figures(quote(calc, [TEA], at=day))[0] for day in days] == [
            "1.00", "2.00", "2.00", "1.00",
        ]  # fmt: skip

    def test_tier_segment_and_member_conditions_follow_the_member(self):
        calc = program([rule("gold", "client", {"tiers": ["gold"]}, {"multiplier": 4})])
        assert figures(quote(calc, [TEA], tier="gold")) == ["4.00"]
        assert figures(quote(calc, [TEA], tier="silver")) == ["1.00"]

    def test_a_receipt_without_location_matches_only_rules_without_place(self):
        calc = program([
            rule("n1", "client", {"locations": ["n1"]}, {"multiplier": 4}),
            rule("any", "behaviour", {}, {"multiplier": 2}),
        ])  # fmt: skip
        assert figures(quote(calc, [TEA], location=None)) == ["2.00"]


class TestMoneyAndRounding:
    @pytest.mark.parametrize(("rounding", "expected"), [("down", "1.23"), ("half_up", "1.24"),
                                                        ("up", "1.24")])  # fmt: skip
    def test_the_receipt_is_rounded_once_with_the_program_mode(self, rounding, expected):
        calc = program([], points={"precision": 2, "rounding": rounding})
        q = quote(calc, [{"sku": "X", "price": "123.50"}])  # 1.235 points
        assert format_minor(q.accrued, 2) == expected

    def test_rounding_once_per_receipt_is_not_the_sum_of_rounded_lines(self):
        calc = program([], points={"precision": 0, "rounding": "down"})
        lines = [{"sku": f"X{i}", "price": "60.00"} for i in range(5)]  # 0.6 points each
        q = quote(calc, lines)
        assert q.accrued == 3  # ⌊3.0⌋, where per-line rounding would give 0
        assert sorted(line.accrued for line in q.lines) == [0, 0, 1, 1, 1]

    def test_accrual_on_total_ignores_the_part_paid_with_points(self):
        calc = program([], accrual={"on": "total"})
        q = quote(calc, [TEA], balance=100_000, redeem="40.00")
        assert figures(q) == ["1.00"]

    def test_min_payable_keeps_part_of_the_receipt_for_money(self):
        calc = program([], redemption={"min_payable": "1.00"})
        q = quote(calc, [TEA], balance=100_000, redeem="max")
        assert format_minor(q.redeemed, 2) == "99.00"
        assert q.caps.binding == "min_payable"

    def test_a_point_worth_half_a_rouble_redeems_twice_as_many_points(self):
        calc = program([], points={"precision": 2, "rounding": "down", "value": "0.50"})
        q = quote(calc, [TEA], balance=1_000_000, redeem="max")
        # 100.00 RUB payable = 200.00 points; accrual 1 % of 100 RUB = 1.00 RUB = 2.00 points
        assert format_minor(q.redeemed, 2) == "200.00"
        assert format_minor(q.paid, 2) == "0.00"
        plain = quote(calc, [TEA])
        assert format_minor(plain.accrued, 2) == "2.00"

    def test_a_currency_without_minor_units_works_in_whole_yen(self):
        calc = program([], currency="JPY", catalog={"categories": [], "products": []})
        q = quote(calc, [{"sku": "RAMEN", "price": 980, "qty": 2}])
        assert (q.total, format_minor(q.accrued, 2)) == (1960, "19.60")

    def test_a_fractional_quantity_is_rounded_half_up_to_the_kopeck(self):
        calc = program([])
        q = quote(calc, [{"sku": "CHEESE", "price": "899.90", "qty": "0.345"}])
        assert q.lines[0].amount == 31047  # 310.4655 → 310.47
