"""Every example of seed 002 ("Бонусный процессинг"), worked by hand against examples/zerno.

The program: base 1 % accrual, 100 % redemption; points worth 1.00 RUB, two decimals,
rounded down. Figures in comments are the hand computation the assertion checks.
Dates: 2026-03-09 is a Monday, 2026-03-10 a Tuesday, 2026-03-08 a Sunday.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from kopilka.checkout.calculator import Calculator, Quote
from kopilka.kernel.errors import InsufficientPoints
from kopilka.kernel.money import format_minor
from kopilka.kernel.program import Program
from kopilka.kernel.receipt import MemberContext, parse_receipt

TUESDAY_MORNING = "2026-03-10T11:00:00+03:00"
TEA = {"sku": "TEA-400", "qty": 1}  # 150.00, drinks — no product rule
CROISSANT = {"sku": "CRS-1", "qty": 1}  # 140.00, bakery — no product rule


@pytest.fixture(scope="module")
def calculator(zerno: Program) -> Calculator:
    return Calculator(zerno)


def quote(
    calculator: Calculator,
    lines: list[dict[str, Any]],
    *,
    at: str = TUESDAY_MORNING,
    location: str = "kiosk",
    member: str | None = "card:100009",
    tier: str | None = None,
    segments: tuple[str, ...] = (),
    balance: int | None = None,
    redeem: str = "0",
) -> Quote:
    body = {"location": location, "member": member, "at": at, "lines": lines, "redeem": redeem}
    receipt = parse_receipt(body, calculator.program, now=datetime.now(UTC))
    context = (
        MemberContext(frozenset({member}), tier, frozenset(segments), balance) if member else None
    )
    return calculator.quote(receipt, context)


def pts(minor: int) -> str:
    return format_minor(minor, 2)


def rules_of(q: Quote, n: int) -> list[str]:
    return [entry.rule for entry in q.lines[n].explain]


class TestBaseRate:
    def test_with_no_rule_a_member_gets_one_percent_of_the_receipt(self, calculator):
        q = quote(calculator, [TEA, CROISSANT])
        # 290.00 × 1 % = 2.90; lines 150 → 1.50, 140 → 1.40
        assert (pts(q.accrued), pts(q.lines[0].accrued), pts(q.lines[1].accrued)) == (
            "2.90",
            "1.50",
            "1.40",
        )
        assert q.lines[0].explain == ()

    def test_with_no_rule_the_whole_receipt_may_be_paid_with_points(self, calculator):
        q = quote(calculator, [TEA, CROISSANT], balance=100_000, redeem="max")
        # base redemption 100 %: 290.00; accrual on the paid part 0.00 → 0
        assert (pts(q.redeemed), pts(q.paid), pts(q.accrued)) == ("290.00", "0.00", "0.00")


class TestClientRules:
    @pytest.mark.parametrize(
        ("card", "expected"),
        [("card:100001", "12.00"), ("card:100002", "24.00"), ("card:100003", "36.00")],
    )
    def test_a_card_of_5_10_or_15_percent(self, calculator, card, expected):
        q = quote(calculator, [{"sku": "ESP-60", "qty": 2}], member=card)  # 240.00
        # 240.00 × 1 % × (5 | 10 | 15) = 12.00 | 24.00 | 36.00
        assert pts(q.accrued) == expected

    def test_one_card_earns_5_percent_in_restaurant_a_and_8_in_b(self, calculator):
        in_a = quote(calculator, [TEA], location="rest-a", member="card:100004")
        in_b = quote(calculator, [TEA], location="rest-b", member="card:100004")
        elsewhere = quote(calculator, [TEA], location="kiosk", member="card:100004")
        # 150.00 × 5 % = 7.50; × 8 % = 12.00; the kiosk has no rule for the card: 1.50
        assert (pts(in_a.accrued), pts(in_b.accrued), pts(elsewhere.accrued)) == (
            "7.50",
            "12.00",
            "1.50",
        )
        assert rules_of(in_a, 0)[0] == "card-rest-a-5"

    def test_the_temporary_vip_status_gives_50_percent_until_its_date(self, calculator):
        before = quote(calculator, [TEA], tier="vip", at="2026-12-31T23:59:00+03:00")
        after = quote(calculator, [TEA], tier="vip", at="2027-01-01T00:00:00+03:00")
        # 150.00 × 50 % = 75.00 on the last day; base 1.50 from 1 January
        assert (pts(before.accrued), pts(after.accrued)) == ("75.00", "1.50")

    def test_newcomers_pay_with_points_up_to_30_percent_of_the_receipt(self, calculator):
        q = quote(
            calculator, [TEA, CROISSANT], segments=("newcomers",), balance=100_000, redeem="max"
        )
        # 290.00 × 30 % = 87.00 (45.00 + 42.00); paid 203.00 × 1 % = 2.03
        assert (pts(q.max_redeemable), pts(q.redeemed), pts(q.paid), pts(q.accrued)) == (
            "87.00",
            "87.00",
            "203.00",
            "2.03",
        )
        assert [pts(line.redeemed) for line in q.lines] == ["45.00", "42.00"]


class TestProductRules:
    def test_cappuccino_earns_double_points(self, calculator):
        q = quote(calculator, [{"sku": "CAP-300", "qty": 1}, {"sku": "ESP-60", "qty": 1}])
        # 180.00 × 1 % × 2 = 3.60; 120.00 × 1 % = 1.20
        assert [pts(line.accrued) for line in q.lines] == ["3.60", "1.20"]
        assert rules_of(q, 0) == ["cappuccino-double"]

    def test_lunch_dishes_earn_5_percent(self, calculator):
        q = quote(calculator, [{"sku": "LUNCH-1", "qty": 1}, {"sku": "SOUP-1", "qty": 2}])
        # 450.00 × 5 % = 22.50; 440.00 × 5 % = 22.00
        assert pts(q.accrued) == "44.50"

    def test_cigarettes_earn_nothing_and_cannot_be_paid_with_points(self, calculator):
        q = quote(calculator, [{"sku": "CIG-1", "qty": 1}, TEA], balance=100_000, redeem="50.00")
        # cigarettes: redeemable 0, accrued 0; all 50.00 points go to the tea;
        # tea paid 100.00 × 1 % = 1.00
        cigarettes, tea = q.lines
        assert (pts(cigarettes.redeemable), pts(cigarettes.redeemed)) == ("0.00", "0.00")
        assert pts(cigarettes.accrued) == "0.00"
        assert (pts(tea.redeemed), pts(tea.accrued)) == ("50.00", "1.00")
        assert pts(q.max_redeemable) == "150.00"

    def test_paying_cigarettes_with_points_is_refused(self, calculator):
        with pytest.raises(InsufficientPoints, match=r"at most 0\.00"):
            quote(calculator, [{"sku": "CIG-1", "qty": 1}], balance=100_000, redeem="1.00")


class TestBehaviourRules:
    def test_triple_points_from_16_to_18(self, calculator):
        at_16 = quote(calculator, [TEA], at="2026-03-10T16:00:00+03:00")
        at_1759 = quote(calculator, [TEA], at="2026-03-10T17:59:00+03:00")
        at_18 = quote(calculator, [TEA], at="2026-03-10T18:00:00+03:00")
        # 150.00 × 1 % × 3 = 4.50 from 16:00 up to (not including) 18:00
        assert [pts(q.accrued) for q in (at_16, at_1759, at_18)] == ["4.50", "4.50", "1.50"]

    def test_happy_hours_are_read_in_the_locations_time_zone(self, calculator):
        # 13:30 UTC is 16:30 in Moscow
        q = quote(calculator, [TEA], at="2026-03-10T13:30:00Z")
        assert pts(q.accrued) == "4.50"

    def test_every_monday_earns_20_percent(self, calculator):
        q = quote(calculator, [TEA], at="2026-03-09T12:00:00+03:00")
        # 150.00 × 20 % = 30.00
        assert pts(q.accrued) == "30.00"

    def test_on_a_monday_afternoon_the_larger_behaviour_coefficient_wins(self, calculator):
        q = quote(calculator, [TEA], at="2026-03-09T16:30:00+03:00")
        # happy hours K3 = 3 and Monday K3 = 20 are equally specific: the largest, 20
        assert pts(q.accrued) == "30.00"
        assert rules_of(q, 0) == ["monday-20"]

    def test_8_march_earns_8_percent(self, calculator):
        q = quote(calculator, [TEA], at="2026-03-08T12:00:00+03:00")
        # 150.00 × 8 % = 12.00
        assert pts(q.accrued) == "12.00"

    def test_restaurant_a_takes_points_for_up_to_half_of_a_receipt(self, calculator):
        q = quote(calculator, [TEA, CROISSANT], location="rest-a", balance=100_000, redeem="max")
        # 290.00 × 50 % = 145.00; paid 145.00 × 1 % = 1.45
        assert (pts(q.redeemed), pts(q.accrued)) == ("145.00", "1.45")

    def test_restaurant_b_takes_points_for_up_to_80_percent(self, calculator):
        q = quote(calculator, [TEA, CROISSANT], location="rest-b", balance=100_000, redeem="max")
        # 290.00 × 80 % = 232.00; paid 58.00 × 1 % = 0.58
        assert (pts(q.redeemed), pts(q.accrued)) == ("232.00", "0.58")


class TestCombinations:
    def test_coefficients_of_different_kinds_multiply(self, calculator):
        q = quote(
            calculator,
            [{"sku": "CAP-300", "qty": 1}],
            member="card:100002",
            at="2026-03-10T16:30:00+03:00",
        )
        # 180.00 × 1 % × K1 10 × K2 2 × K3 3 = 108.00
        assert pts(q.accrued) == "108.00"
        assert rules_of(q, 0) == ["card-10", "cappuccino-double", "happy-hours"]

    def test_the_lowest_redemption_limit_wins(self, calculator):
        q = quote(
            calculator,
            [TEA, CROISSANT],
            location="rest-b",
            segments=("newcomers",),
            balance=100_000,
            redeem="max",
        )
        # P1 30 % (newcomers) and P3 80 % (restaurant B): min = 30 % → 87.00
        assert pts(q.redeemed) == "87.00"

    def test_the_balance_caps_redemption_and_names_the_cap_when_exceeded(self, calculator):
        q = quote(calculator, [TEA], balance=4_000, redeem="max")
        assert pts(q.redeemed) == "40.00"
        with pytest.raises(InsufficientPoints, match="available points"):
            quote(calculator, [TEA], balance=4_000, redeem="40.01")

    def test_a_receipt_without_a_member_accrues_nothing(self, calculator):
        q = quote(calculator, [TEA], member=None)
        assert (q.accrued, q.max_redeemable) == (0, 0)
        assert q.notes
