"""Invariants of every quote, over random programs, receipts and members (hypothesis).

Each property is one sentence of docs/calculation.md that must hold whatever the input.
"""

from __future__ import annotations

import copy
import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any, NamedTuple

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from kopilka.checkout.calculator import Calculator
from kopilka.kernel.errors import InsufficientPoints
from kopilka.kernel.money import format_minor
from kopilka.kernel.program import RULE_KINDS, Program
from kopilka.kernel.program_parser import parse_program
from kopilka.kernel.receipt import MemberContext, Receipt, parse_receipt

pytestmark = pytest.mark.slow  # property searches (hypothesis)

LOCATIONS = ["a1", "a2", "b1"]
CATEGORIES = {"drinks": None, "coffee": "drinks", "food": None, "tobacco": None}
SKUS = {"CAP": "coffee", "TEA": "drinks", "SOUP": "food", "CIG": "tobacco"}
TIERS = ["base", "silver", "gold"]
SEGMENTS = ["s1", "s2"]
CARDS = ["card:1", "card:2"]
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

times = st.integers(0, 23).map(lambda h: f"{h:02d}:00")


@st.composite
def conditions(draw: st.DrawFn) -> dict[str, Any]:
    when: dict[str, Any] = {}
    if draw(st.booleans()):
        when["weekdays"] = draw(st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=3))
    if draw(st.booleans()):
        start, end = draw(times), draw(times)
        assume(start != end)
        when["time"] = {"from": start, "to": end}
    if draw(st.integers(0, 4)) == 0:
        when["dates"] = [draw(st.sampled_from(["03-08", "01-01", "2026-06-15"]))]
    if draw(st.integers(0, 3)) == 0:
        when["receipt_total"] = {"min": str(draw(st.integers(0, 2000)))}
    pick = st.integers(0, 3)
    if draw(pick) == 0:
        when["locations"] = draw(st.lists(st.sampled_from(LOCATIONS), min_size=1, max_size=2))
    if draw(pick) == 0:
        when["partners"] = [draw(st.sampled_from(["pa", "pb"]))]
    if draw(pick) == 0:
        when["categories"] = [draw(st.sampled_from(list(CATEGORIES)))]
    if draw(pick) == 0:
        when["skus"] = [draw(st.sampled_from(list(SKUS)))]
    if draw(pick) == 0:
        when["tiers"] = [draw(st.sampled_from(TIERS))]
    if draw(pick) == 0:
        when["segments"] = [draw(st.sampled_from(SEGMENTS))]
    if draw(pick) == 0:
        when["members"] = [draw(st.sampled_from(CARDS))]
    return when


@st.composite
def effects(draw: st.DrawFn, *, coefficients_only: bool = False) -> dict[str, Any]:
    kinds = ["multiplier", "percent"] if coefficients_only else [
        "multiplier", "percent", "points_per_unit", "accrue", "none"]  # fmt: skip
    effect = draw(st.sampled_from(kinds))
    then: dict[str, Any] = {}
    if effect == "multiplier":
        then["multiplier"] = str(draw(st.decimals("0", "5", places=1)))
    elif effect == "percent":
        then["percent"] = draw(st.integers(0, 30))
    elif effect == "points_per_unit":
        then["points_per_unit"] = str(draw(st.integers(0, 20)))
    elif effect == "accrue":
        then["accrue"] = False
    if not coefficients_only and effect != "none" and draw(st.booleans()):
        then["max_points"] = str(draw(st.integers(0, 50)))
    if not coefficients_only and (effect == "none" or draw(st.booleans())):
        then["redeem_percent"] = draw(st.integers(0, 100))
    return then


@st.composite
def documents(draw: st.DrawFn, *, coefficients_only: bool = False) -> dict[str, Any]:
    rules = [
        {
            "code": f"r{i}",
            "kind": draw(st.sampled_from(["client", "product", "behaviour"])),
            "when": draw(conditions()),
            "then": draw(effects(coefficients_only=coefficients_only)),
            "priority": 0 if coefficients_only else draw(st.integers(-1, 1)),
        }
        for i in range(draw(st.integers(0, 8)))
    ]
    return {
        "code": "p",
        "currency": draw(st.sampled_from(["RUB", "JPY"])),
        "timezone": "Europe/Moscow",
        "points": {
            "precision": draw(st.integers(0, 3)),
            "rounding": draw(st.sampled_from(["down", "half_up", "up"])),
            "value": draw(st.sampled_from(["1", "0.5", "2", "1.00"])),
        },
        "accrual": {
            "base_percent": draw(st.sampled_from([1, 2, "1.5"])),
            "on": draw(st.sampled_from(["paid", "total"])),
        },
        "redemption": {
            "base_percent": draw(st.integers(0, 100)),
            "min_payable": str(draw(st.integers(0, 50))),
        },
        "partners": [
            {"code": "pa", "locations": [{"code": "a1"}, {"code": "a2"}]},
            {"code": "pb", "locations": [{"code": "b1", "timezone": "Asia/Tokyo"}]},
        ],
        "catalog": {
            "categories": [
                {"code": code, "parent": parent} if parent else {"code": code}
                for code, parent in CATEGORIES.items()
            ],
            "products": [{"sku": sku, "category": category} for sku, category in SKUS.items()],
        },
        "tiers": {
            "levels": [
                {"code": "base"},
                {"code": "silver", "qualify": {"purchases": 2}},
                {"code": "gold", "qualify": {"purchases": 5}},
            ]
        },
        "rules": rules,
    }


@st.composite
def receipt_bodies(draw: st.DrawFn, currency: str) -> dict[str, Any]:
    whole = currency == "JPY"
    lines = []
    for _ in range(draw(st.integers(1, 10))):
        minor = draw(st.integers(0, 100_000))
        line: dict[str, Any] = {
            "sku": draw(st.sampled_from([*SKUS, "OTHER"])),
            "qty": draw(st.sampled_from(["1", "2", "3", "0.5", "0.345"])),
            "price": str(minor) if whole else f"{minor // 100}.{minor % 100:02d}",
        }
        if draw(st.integers(0, 4)) == 0:
            line["discount"] = "1" if whole else "0.01"
            assume(minor >= 2)
        lines.append(line)
    moment = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=draw(st.integers(0, 525_600)))
    body: dict[str, Any] = {"lines": lines, "at": moment.isoformat()}
    if draw(st.booleans()):
        body["location"] = draw(st.sampled_from(LOCATIONS))
    return body


@st.composite
def members(draw: st.DrawFn) -> MemberContext:
    return MemberContext(
        frozenset({draw(st.sampled_from(CARDS))}),
        draw(st.sampled_from([None, *TIERS])),
        frozenset(draw(st.lists(st.sampled_from(SEGMENTS), max_size=2))),
        draw(st.one_of(st.none(), st.integers(0, 10_000_000))),
    )


class Case(NamedTuple):
    document: dict[str, Any]
    body: dict[str, Any]
    member: MemberContext
    redeem: str

    @property
    def program(self) -> Program:
        return parse_program(self.document)

    def receipt(self, program: Program, redeem: str | None = None, **changes: Any) -> Receipt:
        body = {**self.body, **changes, "redeem": self.redeem if redeem is None else redeem}
        return parse_receipt(body, program, now=datetime(2026, 1, 1, tzinfo=UTC))


@st.composite
def cases(draw: st.DrawFn, *, coefficients_only: bool = False) -> Case:
    document = draw(documents(coefficients_only=coefficients_only))
    body = draw(receipt_bodies(document["currency"]))
    return Case(document, body, draw(members()), draw(st.sampled_from(["0", "max"])))


def money_of_points(program: Program, points: int) -> Fraction:
    """Money minor units a number of point minor units pays for (exact)."""
    value = Fraction(program.points.value)
    scale = Fraction(10**program.money_digits, 10**program.points.precision)
    return Fraction(points) * value * scale


def points_text(program: Program, minor: int) -> str:
    return format_minor(minor, program.points.precision)


@PROPERTY
@given(cases())
def test_the_lines_add_up_to_the_receipt(case: Case):
    program = case.program
    q = Calculator(program).quote(case.receipt(program), case.member)
    assert sum(line.redeemed for line in q.lines) == q.redeemed
    assert sum(line.accrued for line in q.lines) == q.accrued
    assert sum(line.amount + line.discount for line in q.lines) == q.total
    assert sum(line.discount for line in q.lines) == q.discount
    # money paid with points is rounded half-up per line: within half a unit per line
    gap = q.total - q.discount - q.paid - money_of_points(program, q.redeemed)
    assert abs(gap) <= Fraction(len(q.lines), 2)


@PROPERTY
@given(cases())
def test_redemption_never_passes_a_cap_nor_a_lines_redeemable(case: Case):
    program = case.program
    q = Calculator(program).quote(case.receipt(program), case.member)
    assert 0 <= q.redeemed <= q.max_redeemable
    assert q.max_redeemable <= max(0, min(q.caps.lines, q.caps.min_payable))
    if case.member.balance is not None:
        assert q.redeemed <= case.member.balance
    assert all(line.redeemed <= line.redeemable for line in q.lines)
    net = q.total - q.discount
    assert money_of_points(program, q.redeemed) <= max(0, net - program.redemption.min_payable)


@PROPERTY
@given(cases())
def test_accrual_is_never_negative(case: Case):
    program = case.program
    q = Calculator(program).quote(case.receipt(program), case.member)
    assert q.accrued >= 0
    assert all(line.accrued >= 0 for line in q.lines)


@PROPERTY
@given(cases(), st.sampled_from(["client", "product", "behaviour"]))
def test_a_line_excluded_by_accrue_false_accrues_nothing(case: Case, kind: str):
    document = copy.deepcopy(case.document)
    excluding = {"categories": ["tobacco"]}
    document["rules"].append(
        {"code": "no-tobacco", "kind": kind, "priority": 9, "when": excluding,
         "then": {"accrue": False}}
    )  # fmt: skip
    program = parse_program(document)
    tobacco = [{"sku": "CIG", "qty": "2", "price": "100"}, *case.body["lines"]]
    q = Calculator(program).quote(case.receipt(program, "0", lines=tobacco), case.member)
    assert q.lines[0].accrued == 0


@PROPERTY
@given(cases(), st.data())
def test_a_quote_is_a_pure_function_of_its_inputs(case: Case, data: st.DataObject):
    program = case.program
    calculator = Calculator(program)
    first = calculator.quote(case.receipt(program), case.member)
    for _ in range(3):  # other receipts in between must not leak through the memos
        other = data.draw(receipt_bodies(case.document["currency"]))
        calculator.quote(case.receipt(program, "0", **other), data.draw(members()))
    assert calculator.quote(case.receipt(program), case.member) == first
    assert Calculator(program).quote(case.receipt(program), case.member) == first


@PROPERTY
@given(cases(coefficients_only=True), st.data())
def test_raising_a_coefficient_never_lowers_accrual(case: Case, data: st.DataObject):
    """With coefficient rules only and no redemption, a larger coefficient in any rule can
    only raise its line: if the rule still wins its kind, K grows; if it starts winning, it
    beat a smaller one; the other kinds' coefficients are unchanged."""
    assume(case.document["rules"])
    raised = copy.deepcopy(case.document)
    rule = data.draw(st.sampled_from(raised["rules"]))
    then = rule["then"]
    if "multiplier" in then:
        then["multiplier"] = str(Decimal(then["multiplier"]) + 1)
    else:
        then["percent"] += 1
    before_program, after_program = case.program, parse_program(raised)
    before = Calculator(before_program).quote(case.receipt(before_program, "0"), case.member)
    after = Calculator(after_program).quote(case.receipt(after_program, "0"), case.member)
    assert after.accrued >= before.accrued


@PROPERTY
@given(cases())
def test_asking_for_max_then_for_that_amount_gives_the_same_answer(case: Case):
    program = case.program
    calculator = Calculator(program)
    most = calculator.quote(case.receipt(program, "max"), case.member)
    exact = points_text(program, most.max_redeemable)
    assert calculator.quote(case.receipt(program, exact), case.member) == most
    beyond = points_text(program, most.max_redeemable + 1)
    with pytest.raises(InsufficientPoints):
        calculator.quote(case.receipt(program, beyond), case.member)


@PROPERTY
@given(cases())
def test_a_receipt_without_a_member_accrues_and_redeems_nothing(case: Case):
    program = case.program
    q = Calculator(program).quote(case.receipt(program, "max"), None)
    assert (q.accrued, q.redeemed, q.max_redeemable) == (0, 0, 0)


@PROPERTY
@given(cases(), st.randoms(use_true_random=False))
def test_receipt_figures_do_not_depend_on_the_order_of_lines(case: Case, rng: Any):
    program = case.program
    calculator = Calculator(program)
    shuffled = rng.sample(case.body["lines"], len(case.body["lines"]))
    a = calculator.quote(case.receipt(program, "max"), case.member)
    b = calculator.quote(case.receipt(program, "max", lines=shuffled), case.member)
    assert (a.total, a.redeemed, a.paid, a.accrued, a.max_redeemable) == (
        b.total, b.redeemed, b.paid, b.accrued, b.max_redeemable)  # fmt: skip


@PROPERTY
@given(cases(coefficients_only=True))
def test_accrual_equals_an_independent_reference_computation(case: Case):
    program = case.program
    receipt = case.receipt(program, "0")
    q = Calculator(program).quote(receipt, case.member)
    assert q.accrued == reference_accrual(program, receipt, case.member)


# --- an independent statement of the formula, for coefficient rules only --------------------


def reference_accrual(program: Program, receipt: Receipt, member: MemberContext) -> int:
    """Σ amount × base % × K1 × K2 × K3 in exact fractions, rounded once (no redemption)."""
    total = sum(line.amount for line in receipt.lines)
    exact = Fraction(0)
    for line in receipt.lines:
        rate = Fraction(program.accrual.base_percent) / 100
        for kind in RULE_KINDS:
            matching = [r for r in program.rules if r.kind is kind
                        and holds(program, r, receipt, line, member, total)]  # fmt: skip
            if matching:
                winner = max(matching, key=lambda r: rank(program, r, line)).accrual
                assert winner is not None
                rate *= winner.coefficient
        exact += line.amount * rate
    exact_points: Fraction = (
        exact / 10**program.money_digits / Fraction(program.points.value)
        * 10**program.points.precision
    )  # fmt: skip
    rounding = program.points.rounding.value
    if rounding == "down":
        return math.floor(exact_points)
    if rounding == "up":
        return math.ceil(exact_points)
    return math.floor(exact_points + Fraction(1, 2))


def rank(program: Program, rule: Any, line: Any) -> tuple[Any, ...]:
    lineage = program.category_lineage(line.category) if line.category else ()
    when = rule.when
    product = 2 if when.skus else 1 if when.categories else 0
    nearness = -min((lineage.index(c) for c in when.categories or () if c in lineage), default=0)
    place = 2 if when.locations else 1 if when.partners else 0
    order = -program.rules.index(rule)
    return (rule.priority, product, nearness if product == 1 else 0, place,
            rule.accrual.coefficient, order)  # fmt: skip


def holds(program: Program, rule: Any, receipt: Receipt, line: Any, member: MemberContext,
          total: int) -> bool:  # fmt: skip
    when, at = rule.when, receipt.at
    minute = at.hour * 60 + at.minute
    day = at.date()
    if when.time is not None:
        start, end = when.time.start, when.time.end
        inside = start <= minute < end if start < end else (minute >= start or minute < end)
        if not inside:
            return False
        if start > end and minute < end:  # after midnight in a window begun the day before
            day = day - timedelta(days=1)
    if when.weekdays is not None and day.weekday() not in when.weekdays:
        return False
    dated = when.month_days is not None or when.full_dates is not None
    in_month_days = (day.month, day.day) in (when.month_days or ())
    if dated and not in_month_days and day not in (when.full_dates or ()):
        return False
    if when.receipt_total is not None and not when.receipt_total.contains(total):
        return False
    location = program.locations.get(receipt.location or "")
    if when.locations is not None and (location is None or location.code not in when.locations):
        return False
    if when.partners is not None and (location is None or location.partner not in when.partners):
        return False
    if when.skus is not None and line.sku not in when.skus:
        return False
    lineage = program.category_lineage(line.category) if line.category else ()
    if when.categories is not None and not set(lineage) & when.categories:
        return False
    if when.tiers is not None and member.tier not in when.tiers:
        return False
    if when.segments is not None and not member.segments & when.segments:
        return False
    return not (when.members is not None and not member.refs & when.members)
