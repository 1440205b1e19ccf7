"""The coalition's pure model (issue 19, begun): partners' terms read from the program
file with every mistake named, and a period's statement worked out exactly — one
rounding per line, half up — so that it reconciles to the ledger to the kopeck."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kopilka.kernel.errors import Problem
from kopilka.kernel.reading import Reader
from kopilka.mechanics.coalition.model import (
    Billing,
    Fees,
    Flows,
    Line,
    PartnerTerms,
    Role,
    money,
    parse_partner_terms,
    reserve,
    settle,
)

PARTNERS = frozenset({"cafe", "books", "fuel"})


def terms(**changes: Any) -> PartnerTerms:
    values: dict[str, Any] = {
        "partner": "cafe", "role": Role.BOTH, "partner_percent": Decimal(100),
        "price_per_point": Decimal("0.80"), "reimbursement_per_point": Decimal("0.70"),
        "fees": Fees(), "billing": Billing.POSTPAID, "reserve_percent": Decimal(0),
        "earning_until": None, "redeeming_until": None,
    }  # fmt: skip
    return PartnerTerms(**{**values, **changes})


def read(items: list[dict[str, Any]]) -> tuple[tuple[PartnerTerms, ...], list[Problem]]:
    problems: list[Problem] = []
    top = Reader({"partner_terms": items}, "", problems, ("partner_terms",))
    return parse_partner_terms(top, PARTNERS, 2), problems


def test_a_statement_charges_issued_points_and_reimburses_redeemed_ones() -> None:
    flows = Flows(issued=1_000_000, redeemed=250_050, earned_here_spent_elsewhere=300_000,
                  earned_elsewhere_spent_here=50_000)  # fmt: skip
    fees = Fees(per_period=150_000, percent_of_issued=Decimal("2.5"),
                percent_of_redeemed=Decimal(1))  # fmt: skip
    statement = settle(terms(fees=fees), flows, opening=10_000, point_digits=2, money_digits=2)
    assert [(line.what, line.amount) for line in statement.lines] == [
        ("points issued, funded by the partner", 800_000),  # 10,000.00 points × 0.80
        ("points redeemed, reimbursed", -175_035),  # 2,500.50 × 0.70 = 1,750.35
        ("fee on points issued", 20_000),  # 2.5 % of 8,000.00
        ("fee on points redeemed", 1_750),  # 1 % of 1,750.35 = 17.5035 → 17.50
        ("fee for the period", 150_000),
    ]
    assert statement.net == 796_715
    assert statement.closing == 806_715
    assert statement.flows.earned_here_spent_elsewhere == 300_000


def test_the_program_funds_its_share_and_corrections_ride_in_the_next_period() -> None:
    flows = Flows(issued=100_000, redeemed=0, earned_here_spent_elsewhere=0,
                  earned_elsewhere_spent_here=0)  # fmt: skip
    split = settle(terms(partner_percent=Decimal(40)), flows, 0, point_digits=2,
                   money_digits=2)  # fmt: skip
    assert [line.amount for line in split.lines] == [32_000]  # 40 % of 1,000.00 × 0.80
    assert settle(terms(partner_percent=Decimal(0)), flows, 0, point_digits=2,
                  money_digits=2).lines == ()  # fmt: skip
    corrected = settle(
        terms(),
        flows,
        0,
        point_digits=2,
        money_digits=2,
        corrections=[Line("correction of 2026-11: a claim", -1_234)],
    )
    assert corrected.lines[-1] == Line("correction of 2026-11: a claim", -1_234)
    assert corrected.net == 80_000 - 1_234


def test_one_rounding_per_line_half_up() -> None:
    assert money(Decimal("0.005"), 2) == 1
    assert money(Decimal("0.0049"), 2) == 0
    assert money(Decimal("-0.005"), 2) == -1  # half away from zero
    assert money(Decimal("12.5"), 0) == 13


@given(st.integers(0, 10**12), st.integers(0, 10**12), st.integers(0, 100))
def test_a_statement_is_its_lines_and_never_a_float(issued: int, redeemed: int,
                                                     share: int) -> None:  # fmt: skip
    flows = Flows(issued, redeemed, 0, 0)
    statement = settle(terms(partner_percent=Decimal(share)), flows, 7, point_digits=2,
                       money_digits=2)  # fmt: skip
    assert all(isinstance(line.amount, int) for line in statement.lines)
    assert statement.closing == 7 + sum(line.amount for line in statement.lines)
    expected = money(Decimal(issued) / 100 * Decimal("0.80") * share / 100, 2)
    assert sum(line.amount for line in statement.lines if line.amount > 0) == expected


def test_the_reserve_holds_a_share_of_the_outstanding_points_value() -> None:
    held = reserve(terms(reserve_percent=Decimal(20)), 500_000, point_digits=2, money_digits=2)
    assert held == 70_000  # 5,000.00 points × 0.70 × 20 %


def test_an_exit_stops_earning_then_redeeming() -> None:
    leaving = terms(earning_until=date(2026, 12, 31), redeeming_until=date(2027, 3, 31))
    assert leaving.earns_on(date(2026, 12, 31))
    assert not leaving.earns_on(date(2027, 1, 1))
    assert leaving.burns_on(date(2027, 3, 31))
    assert not leaving.burns_on(date(2027, 4, 1))
    assert not terms(role=Role.BURNS).earns_on(date(2026, 1, 1))
    assert not terms(role=Role.EARNS).burns_on(date(2026, 1, 1))


def test_the_section_reads_each_partner_s_terms() -> None:
    found, problems = read([
        {"partner": "cafe", "role": "both", "price_per_point": "0.80",
         "reimbursement_per_point": "0.70", "billing": "prepaid", "reserve_percent": 20,
         "fees": {"per_period": "1500.00", "percent_of_issued": "2.5"}},
        {"partner": "books", "role": "earns", "funded_by": {"partner_percent": 40}},
        {"partner": "fuel", "role": "burns", "funded_by": "program",
         "earning_until": "2026-12-31", "redeeming_until": "2027-03-31"},
    ])  # fmt: skip
    assert problems == []
    cafe, books, fuel = found
    assert (cafe.billing, cafe.fees.per_period, cafe.reserve_percent) == (
        Billing.PREPAID,
        150_000,
        Decimal(20),
    )
    assert (books.partner_percent, books.billing) == (Decimal(40), Billing.POSTPAID)
    assert (fuel.partner_percent, fuel.redeeming_until) == (Decimal(0), date(2027, 3, 31))


@pytest.mark.parametrize(("item", "message"), [
    ({"partner": "moon", "role": "both"}, "'moon' is not a partner of the program"),
    ({"partner": "cafe", "role": "sells"}, "role"),
    ({"partner": "cafe", "role": "both", "funded_by": "nobody"}, "is not partner, program or"),
    ({"partner": "cafe", "role": "both", "funded_by": {"partner_percent": 140}},
     "more than 100"),
    ({"partner": "cafe", "role": "both", "price_per_point": "-1"}, "less than 0"),
    ({"partner": "cafe", "role": "both", "earning_until": "2027-01-01",
      "redeeming_until": "2026-12-31"}, "is before earning_until"),
    ({"partner": "cafe", "role": "both", "fees": {"per_period": "1.005"}}, "decimals"),
])  # fmt: skip
def test_every_mistake_is_named(item: dict[str, Any], message: str) -> None:
    _, problems = read([item])
    assert any(message in problem.message or message in problem.loc for problem in problems), (
        problems
    )


def test_a_partner_s_terms_given_twice_are_refused() -> None:
    _, problems = read([{"partner": "cafe", "role": "both"}, {"partner": "cafe", "role": "burns"}])
    assert [p.message for p in problems] == ["the terms of 'cafe' are given twice"]
