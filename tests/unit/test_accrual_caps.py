"""The program's accrual caps (`accrual.max_percent`, `accrual.max_points_per_receipt`),
worked by hand: coefficients multiply, a rule's `max_points` caps the line, then the
program's line cap, then the receipt cap — before the receipt's one rounding, so the
lines still add up to the receipt — each cap that bites explained on the line."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from kopilka.checkout.calculator import Calculator, CapEntry, Quote
from kopilka.checkout.wire import quote_json
from kopilka.kernel.errors import InvalidInput
from kopilka.kernel.program_parser import parse_program
from tests.unit.test_calculator_semantics import BASE, LATTE, TEA, figures, program, quote, rule

LUNCH = {"sku": "LUNCH", "qty": 1, "price": "670.00", "category": "lunch"}
# the stack of the outside check: VIP 50 % × lunch 5 % × Monday 20 % on a 1 % base
STACK = [
    rule("vip-50", "client", {}, {"percent": 50}),
    rule("lunch-5", "product", {"categories": ["lunch"]}, {"percent": 5}),
    rule("monday-20", "behaviour", {"weekdays": ["mon"]}, {"percent": 20}),
]
LUNCH_CATEGORY = {"categories": [*BASE["catalog"]["categories"], {"code": "lunch"}],
                  "products": BASE["catalog"]["products"]}  # fmt: skip


def capped(**accrual: Any) -> dict[str, Any]:
    return {"catalog": LUNCH_CATEGORY, "accrual": {"base_percent": 1, **accrual}}


def explain(calc: Calculator, q: Quote, n: int = 0) -> list[dict[str, Any]]:
    """Line n's `explain` as the API answers it."""
    return list(quote_json(q, calc.program, status="quote")["lines"][n]["explain"])


class TestTheLineCap:
    def test_without_caps_the_stack_multiplies_to_5000_percent(self):
        q = quote(program(STACK, catalog=LUNCH_CATEGORY), [LUNCH])
        assert figures(q) == ["33500.00"]  # 670.00 × 1 % × 50 × 5 × 20: what the demo did
        assert q.lines[0].capped == ()

    def test_max_percent_caps_the_stack_at_its_share_of_the_line_and_says_so(self):
        calc = program(STACK, **capped(max_percent=10))
        q = quote(calc, [LUNCH])
        assert figures(q) == ["67.00"]  # 10 % of 670.00
        rules = [entry.get("rule") for entry in explain(calc, q)]
        assert rules == ["vip-50", "lunch-5", "monday-20", None]
        assert explain(calc, q)[-1] == {"cap": "accrual.max_percent", "max_percent": "10",
                                  "uncapped": "33500.00"}  # fmt: skip

    def test_a_line_under_the_cap_is_untouched_and_unexplained(self):
        q = quote(program([], **capped(max_percent=10)), [LATTE, TEA])
        assert figures(q) == ["2.00", "1.00"]
        assert [line.capped for line in q.lines] == [(), ()]

    def test_the_cap_is_a_share_of_the_paid_part_when_points_accrue_on_paid(self):
        calc = program(STACK, **capped(max_percent=10, on="paid"))
        q = quote(calc, [LUNCH], balance=100_00, redeem="70")
        assert figures(q) == ["60.00"]  # (670.00 − 70.00 paid with points) × 10 %

    def test_a_rules_smaller_max_points_decides_and_the_program_cap_does_not_bite(self):
        rules = [*STACK[:2], rule("monday-20", "behaviour", {"weekdays": ["mon"]},
                                  {"percent": 20, "max_points": "40"})]  # fmt: skip
        q = quote(program(rules, **capped(max_percent=10)), [LUNCH])
        assert figures(q) == ["40.00"]
        assert q.lines[0].capped == ()

    def test_points_per_unit_are_capped_too(self):
        rules = [rule("tea-50", "product", {"skus": ["TEA"]}, {"points_per_unit": "50"})]
        q = quote(program(rules, **capped(max_percent="7.5")), [{**TEA, "qty": 2}])
        assert figures(q) == ["15.00"]  # 7.5 % of 200.00, not 2 × 50
        assert q.lines[0].capped == (
            CapEntry("accrual.max_percent", 100_00, max_percent=Decimal("7.5")),
        )


class TestTheReceiptCap:
    def test_the_cap_is_spread_over_the_lines_and_they_add_up_to_it(self):
        calc = program(STACK, **capped(max_percent=10, max_points_per_receipt="100"))
        lines = [LUNCH, {**LUNCH, "price": "335.00"}, {**LUNCH, "price": "101.00"}]
        q = quote(calc, lines)
        # line caps: 67.00 + 33.50 + 10.10 = 110.60 → 100.00 spread 670 : 335 : 101
        assert q.accrued == 100_00
        assert figures(q) == ["60.58", "30.29", "9.13"]
        assert sum(line.accrued for line in q.lines) == q.accrued
        assert [entry["cap"] for entry in explain(calc, q, 0) if "cap" in entry] == [
            "accrual.max_percent", "accrual.max_points_per_receipt"]  # fmt: skip
        assert explain(calc, q, 1)[-1] == {"cap": "accrual.max_points_per_receipt",
                                     "max_points_per_receipt": "100.00",
                                     "uncapped": "33.50"}  # fmt: skip

    def test_a_receipt_under_the_cap_is_rounded_as_always(self):
        calc = program([], **capped(max_points_per_receipt="100"))
        q = quote(calc, [LATTE, TEA])
        assert figures(q) == ["2.00", "1.00"]
        assert [line.capped for line in q.lines] == [(), ()]

    def test_a_whole_cap_stays_whole_whatever_the_rounding(self):
        for rounding in ("down", "half_up", "up"):
            calc = program([rule("x", "client", {}, {"multiplier": "3.333"})],
                           **capped(max_points_per_receipt="1.01"),
                           points={"precision": 2, "rounding": rounding})  # fmt: skip
            q = quote(calc, [LATTE, TEA, TEA])  # 400.00 × 3.333 % = 13.332
            assert q.accrued == 1_01, rounding
            assert sum(line.accrued for line in q.lines) == 1_01

    def test_an_excluded_line_gets_no_share_and_no_entry(self):
        rules = [*STACK, rule("no-tea", "product", {"skus": ["TEA"]}, {"accrue": False})]
        q = quote(program(rules, **capped(max_points_per_receipt="10")), [LUNCH, TEA])
        assert figures(q) == ["10.00", "0.00"]
        assert q.lines[1].capped == ()

    def test_a_cap_of_zero_gives_nothing(self):
        q = quote(program(STACK, **capped(max_points_per_receipt=0)), [LUNCH])
        assert figures(q) == ["0.00"]


class TestValidation:
    @pytest.mark.parametrize(
        ("accrual", "loc", "message"),
        [
            ({"max_percent": 0}, "accrual.max_percent", "must be more than 0"),
            ({"max_percent": 101}, "accrual.max_percent", "101 is more than 100"),
            ({"max_percent": -5}, "accrual.max_percent", "-5 is less than 0"),
            ({"max_percent": "ten"}, "accrual.max_percent", "is not a number"),
            ({"max_points_per_receipt": "-1"}, "accrual.max_points_per_receipt", "less than 0"),
            ({"max_points_per_receipt": "0.001"}, "accrual.max_points_per_receipt", "decimal"),
            ({"max_points_per_receipt": "x"}, "accrual.max_points_per_receipt", "not an amount"),
            ({"max_pct": 10}, "accrual.max_pct", "unknown key"),
        ],
    )
    def test_a_bad_cap_is_named_with_its_place(self, accrual, loc, message):
        with pytest.raises(InvalidInput) as refused:
            parse_program({**BASE, "accrual": accrual})
        assert [(p.loc, message in p.message) for p in refused.value.problems] == [(loc, True)], (
            refused.value.problems
        )

    def test_caps_are_read_in_the_programs_units(self):
        program_ = parse_program({**BASE, "points": {"precision": 0},
                                  "accrual": {"max_percent": "12.5",
                                              "max_points_per_receipt": 300}})  # fmt: skip
        assert (str(program_.accrual.max_percent), program_.accrual.max_points_per_receipt) == (
            "12.5", 300)  # fmt: skip

    def test_absent_caps_are_no_caps(self):
        accrual = parse_program(BASE).accrual
        assert (accrual.max_percent, accrual.max_points_per_receipt) == (None, None)
