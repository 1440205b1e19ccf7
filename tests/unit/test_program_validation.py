"""Every validation error of program files and receipts: named with its place, all at once.

A program file is checked in one pass; `InvalidInput.problems` holds one `Problem` per
mistake, each with the place it was found (`rules[3] (happy-hours).when.time.from`) and
what is wrong. Receipts are checked against their program the same way, and the command
line prints the same problems as RFC 9457 problem JSON.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from kopilka.kernel.errors import InvalidInput, Problem
from kopilka.kernel.program import Program, TimeWindow
from kopilka.kernel.program_parser import parse_program
from kopilka.kernel.receipt import Receipt, parse_receipt
from kopilka.platform.files import parse_text

KOPILKA = Path(sys.executable).parent / "kopilka"
NOW = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)

# A small program that is valid as it is; every test changes one thing in a deep copy.
_BASE: dict[str, Any] = {
    "code": "zerno",
    "name": "Кофейня «Зерно»",
    "currency": "RUB",
    "timezone": "Europe/Moscow",
    "points": {"precision": 2, "rounding": "down", "value": "1.00"},
    "accrual": {"base_percent": 1, "on": "paid", "pending_days": 0},
    "redemption": {"base_percent": 100, "min_payable": "0.00"},
    "expiry": {"after_days": 365},
    "partners": [
        {
            "code": "zerno",
            "name": "Зерно",
            "locations": [
                {"code": "rest-a", "name": "Ресторан А", "timezone": "Europe/Moscow"},
                {"code": "rest-e", "name": "Ресторан Е", "timezone": "Asia/Yekaterinburg"},
            ],
        },
        {"code": "bakery", "name": "Пекарня", "locations": [{"code": "bake-1"}]},
    ],
    "catalog": {
        "categories": [
            {"code": "drinks", "name": "Напитки"},
            {"code": "coffee", "name": "Кофе", "parent": "drinks"},
            {"code": "tobacco", "name": "Табак"},
        ],
        "products": [
            {"sku": "CAP-300", "name": "Капучино", "category": "coffee", "price": "180.00"},
            {"sku": "BAG", "name": "Пакет"},
        ],
    },
    "rules": [
        {
            "code": "happy-hours",
            "kind": "behaviour",
            "when": {"weekdays": ["mon", "tue"], "time": {"from": "16:00", "to": "18:00"}},
            "then": {"multiplier": 3},
        },
        {
            "code": "no-tobacco",
            "kind": "product",
            "when": {"categories": ["tobacco"]},
            "then": {"accrue": False, "redeem_percent": 0},
        },
    ],
    "tiers": {
        "window": {"days": 365},
        "review": "month",
        "levels": [
            {"code": "base", "name": "Базовый"},
            {"code": "gold", "name": "Золото", "qualify": {"spend": "30000.00"}},
        ],
    },
    "triggers": [
        {"code": "welcome", "on": "registration", "reward": {"points": "100", "valid_days": 30}},
        {"code": "sleepers", "on": "inactivity", "days": 60, "reward": {"points": "200"}},
    ],
}


def program_data() -> dict[str, Any]:
    """A fresh, valid program document to change."""
    return copy.deepcopy(_BASE)


def changed(*path: str | int, value: object) -> dict[str, Any]:
    """The valid program with `value` set at `path` (created when missing)."""
    data = program_data()
    target: Any = data
    for step in path[:-1]:
        if isinstance(step, str) and step not in target:
            target[step] = {}
        target = target[step]
    target[path[-1]] = value
    return data


def rule(then: dict[str, Any] | None = None, **when: object) -> dict[str, Any]:
    """A program whose only rule is `x` with the given `when` and `then`."""
    body: dict[str, Any] = {
        "code": "x",
        "kind": "behaviour",
        "then": {"multiplier": 2} if then is None else then,
    }
    if when:
        body["when"] = dict(when)
    return changed("rules", value=[body])


def problems_of(data: object) -> tuple[Problem, ...]:
    with pytest.raises(InvalidInput) as caught:
        parse_program(data)
    assert caught.value.problems, "InvalidInput without a problem"
    return caught.value.problems


def problem_at(data: object, loc: str, *fragments: str) -> Problem:
    """The one problem of `data` at `loc` whose message has every fragment."""
    problems = problems_of(data)
    found = [p for p in problems if p.loc == loc and all(f in p.message for f in fragments)]
    assert found, f"no problem at {loc!r} with {fragments}; got {[str(p) for p in problems]}"
    return found[0]


def walk(value: object) -> Iterator[object]:
    """Every key and value of a parsed document, depth first."""
    yield value
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


# --- the base itself --------------------------------------------------------------------


def test_the_base_program_of_these_tests_is_valid() -> None:
    program = parse_program(program_data())
    assert program.code == "zerno"
    assert set(program.locations) == {"rest-a", "rest-e", "bake-1"}


def test_a_problem_reads_as_its_place_then_its_message() -> None:
    problem = problem_at(changed("currency", value="rub"), "currency")
    assert str(problem) == f"currency: {problem.message}"


# --- unknown keys -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "loc", "suggestion"),
    [
        (("nmae",), "nmae", "name"),
        (("points", "precison"), "points.precison", "precision"),
        (("accrual", "base_precent"), "accrual.base_precent", "base_percent"),
        (("redemption", "min_payble"), "redemption.min_payble", "min_payable"),
        (("expiry", "warn_day"), "expiry.warn_day", "warn_days"),
        (("rules", 0, "prority"), "rules[0] (happy-hours).prority", "priority"),
        (("rules", 0, "when", "weekday"), "rules[0] (happy-hours).when.weekday", "weekdays"),
        (("rules", 0, "when", "time", "form"), "rules[0] (happy-hours).when.time.form", "from"),
        (("rules", 0, "then", "multipler"), "rules[0] (happy-hours).then.multipler", "multiplier"),
        (("partners", 0, "locatons"), "partners[0] (zerno).locatons", "locations"),
        (
            ("partners", 0, "locations", 0, "timezon"),
            "partners[0] (zerno).locations[0] (rest-a).timezon",
            "timezone",
        ),
        (("catalog", "product"), "catalog.product", "products"),
        (("catalog", "categories", 1, "parnt"), "catalog.categories[1] (coffee).parnt", "parent"),
        (("catalog", "products", 0, "prise"), "catalog.products[0] (CAP-300).prise", "price"),
        (("tiers", "level"), "tiers.level", "levels"),
        (("tiers", "levels", 1, "qualifiy"), "tiers.levels[1] (gold).qualifiy", "qualify"),
        (("triggers", 0, "rewrd"), "triggers[0] (welcome).rewrd", "reward"),
        (
            ("triggers", 0, "reward", "valid_day"),
            "triggers[0] (welcome).reward.valid_day",
            "valid_days",
        ),
    ],
)
def test_an_unknown_key_is_named_with_its_place_and_the_nearest_known_key(
    path: tuple[str | int, ...], loc: str, suggestion: str
) -> None:
    problem = problem_at(changed(*path, value=1), loc, "unknown key")
    assert f"did you mean '{suggestion}'?" in problem.message


def test_the_example_misspelt_multiplier_is_located_by_the_rule_code() -> None:
    data = rule(then={"multipler": 3})
    problem = problem_at(data, "rules[0] (x).then.multipler", "unknown key")
    assert "'multiplier'" in problem.message


def test_an_unknown_key_like_no_known_key_lists_the_known_keys() -> None:
    problem = problem_at(changed("points", "zzzzzz", value=1), "points.zzzzzz", "unknown key")
    assert "known keys: precision, rounding, value" in problem.message


# --- wrong types ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "loc"),
    [
        (("accrual", "base_percent"), "accrual.base_percent"),
        (("points", "value"), "points.value"),
        (("rules", 0, "then", "multiplier"), "rules[0] (happy-hours).then.multiplier"),
        (("redemption", "min_payable"), "redemption.min_payable"),
    ],
)
def test_a_string_where_a_number_is_expected_is_refused(
    path: tuple[str | int, ...], loc: str
) -> None:
    problem = problem_at(changed(*path, value="lots"), loc)
    assert problem.message.startswith("'lots' is not a")


def test_a_string_where_a_whole_number_is_expected_is_refused() -> None:
    problem_at(changed("points", "precision", value="two"), "points.precision", "whole number")


@pytest.mark.parametrize(
    ("path", "loc"),
    [
        (("rules",), "rules"),
        (("partners",), "partners"),
        (("partners", 0, "locations"), "partners[0] (zerno).locations"),
        (("catalog", "products"), "catalog.products"),
        (("rules", 0, "when", "weekdays"), "rules[0] (happy-hours).when.weekdays"),
        (("rules", 0, "when", "dates"), "rules[0] (happy-hours).when.dates"),
        (("rules", 0, "when", "skus"), "rules[0] (happy-hours).when.skus"),
        (("triggers",), "triggers"),
    ],
)
def test_a_number_where_a_list_is_expected_is_refused(
    path: tuple[str | int, ...], loc: str
) -> None:
    problem = problem_at(changed(*path, value=5), loc)
    assert problem.message == "must be a list, not 5"


@pytest.mark.parametrize(
    ("path", "loc"),
    [
        (("name",), "name"),
        (("code",), "code"),
        (("timezone",), "timezone"),
        (("currency",), "currency"),
        (("rules", 0, "code"), "rules[0].code"),
        (("rules", 0, "when", "time", "from"), "rules[0] (happy-hours).when.time.from"),
        (
            ("partners", 0, "locations", 0, "timezone"),
            "partners[0] (zerno).locations[0] (rest-a).timezone",
        ),
    ],
)
def test_a_mapping_where_a_string_is_expected_is_refused(
    path: tuple[str | int, ...], loc: str
) -> None:
    problem = problem_at(changed(*path, value={"a": 1}), loc)
    assert problem.message.startswith("a mapping is not a")


@pytest.mark.parametrize(
    ("path", "loc"),
    [
        (("points",), "points"),
        (("accrual",), "accrual"),
        (("catalog",), "catalog"),
        (("tiers",), "tiers"),
        (("rules", 0), "rules[0]"),
        (("rules", 0, "then"), "rules[0] (happy-hours).then"),
        (("rules", 0, "when"), "rules[0] (happy-hours).when"),
    ],
)
def test_a_list_where_a_mapping_is_expected_is_refused(
    path: tuple[str | int, ...], loc: str
) -> None:
    problem = problem_at(changed(*path, value=["a"]), loc)
    assert problem.message == "must be a mapping, not a list"


def test_a_whole_document_that_is_not_a_mapping_is_refused() -> None:
    problems = problems_of(["code", "zerno"])
    assert Problem("", "must be a mapping, not a list") in problems
    assert str(problems[0]) == "must be a mapping, not a list"


@pytest.mark.parametrize(
    ("path", "loc", "message"),
    [
        (("points", "precision"), "points.precision", "true is not a whole number"),
        (("points", "value"), "points.value", "true is not a number"),
        (("accrual", "base_percent"), "accrual.base_percent", "true is not a number"),
        (("accrual", "pending_days"), "accrual.pending_days", "true is not a whole number"),
        (("rules", 0, "priority"), "rules[0] (happy-hours).priority", "true is not a whole number"),
        (
            ("rules", 0, "then", "multiplier"),
            "rules[0] (happy-hours).then.multiplier",
            "true is not a number",
        ),
        (("expiry", "after_days"), "expiry.after_days", "true is not a whole number"),
        (("triggers", 1, "days"), "triggers[1] (sleepers).days", "true is not a whole number"),
    ],
)
def test_a_boolean_is_never_taken_for_a_number(
    path: tuple[str | int, ...], loc: str, message: str
) -> None:
    problem_at(changed(*path, value=True), loc, message)


def test_a_boolean_is_never_taken_for_an_amount() -> None:
    data = rule(receipt_total={"min": False})
    problem_at(data, "rules[0] (x).when.receipt_total.min", "false is not an amount")


def test_a_required_key_that_is_missing_is_named() -> None:
    data = program_data()
    del data["code"], data["currency"]
    data["rules"][0].pop("kind")
    data["rules"][0].pop("then")
    locs = {p.loc for p in problems_of(data) if p.message == "is required"}
    assert {
        "code",
        "currency",
        "rules[0] (happy-hours).kind",
        "rules[0] (happy-hours).then",
    } <= locs


# --- the documented example ---------------------------------------------------------------


def test_a_time_that_is_not_a_time_is_named_with_its_place() -> None:
    data = program_data()
    happy = data["rules"][0]
    data["rules"] = [
        {"code": "a", "kind": "client", "then": {"multiplier": 2}},
        {"code": "b", "kind": "product", "then": {"percent": 5}},
        {"code": "c", "kind": "product", "then": {"redeem_percent": 10}},
        {**happy, "when": {"time": {"from": "25:00", "to": "18:00"}}},
    ]
    problems = problems_of(data)
    assert len(problems) == 1
    assert str(problems[0]).startswith(
        "rules[3] (happy-hours).when.time.from: '25:00' is not a time"
    )


@pytest.mark.parametrize("text", ["12:60", "noon", "1600", "-1:00", "16:00:00", ""])
def test_other_times_that_are_not_times_are_refused(text: str) -> None:
    data = rule(time={"from": text, "to": "18:00"})
    problem_at(data, "rules[0] (x).when.time.from", "is not a time")


# --- references to what the program does not declare ------------------------------------


@pytest.mark.parametrize(
    ("key", "code", "message"),
    [
        ("categories", "cofee", "unknown category 'cofee'"),
        ("skus", "CAP-999", "unknown sku 'CAP-999'"),
        ("locations", "rest-z", "unknown location 'rest-z'"),
        ("partners", "nobody", "unknown partner 'nobody'"),
        ("tiers", "platinum", "unknown tier 'platinum'"),
    ],
)
def test_a_rule_naming_something_the_program_does_not_declare_is_refused(
    key: str, code: str, message: str
) -> None:
    known = {
        "categories": "coffee",
        "skus": "CAP-300",
        "locations": "rest-a",
        "partners": "zerno",
        "tiers": "gold",
    }[key]
    data = rule()
    data["rules"][0]["when"] = {key: [known, code]}
    problems = problems_of(data)
    assert [str(p) for p in problems] == [f"rules[0] (x).when.{key}: {message}"]


def test_a_rule_may_name_any_tier_when_the_program_declares_no_tiers() -> None:
    data = rule(tiers=["platinum"])
    del data["tiers"]
    program = parse_program(data)
    assert program.rules[0].when.tiers == frozenset({"platinum"})


def test_a_rule_may_name_declared_things() -> None:
    data = rule(
        categories=["drinks"],
        skus=["CAP-300"],
        locations=["bake-1"],
        partners=["bakery"],
        tiers=["base"],
        segments=["sleepers"],
        members=["card:100001"],
    )
    assert parse_program(data).rules[0].when.locations == frozenset({"bake-1"})


def test_a_code_in_a_list_of_codes_must_be_a_string() -> None:
    problem_at(rule(categories=["coffee", 5]), "rules[0] (x).when.categories[1]", "5 is not a code")


def test_an_empty_list_of_codes_is_refused() -> None:
    problem_at(rule(skus=[]), "rules[0] (x).when.skus", "is empty")


def test_an_unknown_parent_category_is_refused() -> None:
    data = changed("catalog", "categories", 1, "parent", value="drink")
    problem = problem_at(data, "catalog.categories[1] (coffee).parent")
    assert problem.message == "unknown category 'drink'"


def test_a_product_with_an_unknown_category_is_refused() -> None:
    data = changed("catalog", "products", 0, "category", value="cofee")
    problem = problem_at(data, "catalog.products[0] (CAP-300).category")
    assert problem.message == "unknown category 'cofee'"


# --- duplicate codes ------------------------------------------------------------------------


def _duplicate_rule(data: dict[str, Any]) -> str:
    data["rules"].append({"code": "happy-hours", "kind": "client", "then": {"multiplier": 2}})
    return "rules[2] (happy-hours).code"


def _duplicate_partner(data: dict[str, Any]) -> str:
    data["partners"].append({"code": "zerno", "locations": [{"code": "rest-b"}]})
    return "partners[2] (zerno).code"


def _duplicate_location_in_one_partner(data: dict[str, Any]) -> str:
    data["partners"][0]["locations"].append({"code": "rest-a"})
    return "partners[0] (zerno).locations[2] (rest-a).code"


def _duplicate_location_across_partners(data: dict[str, Any]) -> str:
    data["partners"][1]["locations"].append({"code": "rest-a"})
    return "partners[1] (bakery).locations[1] (rest-a).code"


def _duplicate_category(data: dict[str, Any]) -> str:
    data["catalog"]["categories"].append({"code": "drinks"})
    return "catalog.categories[3] (drinks).code"


def _duplicate_sku(data: dict[str, Any]) -> str:
    data["catalog"]["products"].append({"sku": "CAP-300", "price": "1.00"})
    return "catalog.products[2] (CAP-300).sku"


def _duplicate_tier(data: dict[str, Any]) -> str:
    data["tiers"]["levels"].append({"code": "gold", "qualify": {"purchases": 3}})
    return "tiers.levels[2] (gold).code"


def _duplicate_trigger(data: dict[str, Any]) -> str:
    data["triggers"].append({"code": "welcome", "on": "registration", "reward": {"points": "1"}})
    return "triggers[2] (welcome).code"


@pytest.mark.parametrize(
    ("add_duplicate", "what"),
    [
        (_duplicate_rule, "rule code 'happy-hours'"),
        (_duplicate_partner, "partner code 'zerno'"),
        (_duplicate_location_in_one_partner, "location code 'rest-a'"),
        (_duplicate_location_across_partners, "location code 'rest-a'"),
        (_duplicate_category, "category code 'drinks'"),
        (_duplicate_sku, "sku 'CAP-300'"),
        (_duplicate_tier, "tier code 'gold'"),
        (_duplicate_trigger, "trigger code 'welcome'"),
    ],
    ids=lambda v: getattr(v, "__name__", "")[1:] or None,
)
def test_a_code_declared_twice_is_refused_where_it_is_repeated(
    add_duplicate: Any, what: str
) -> None:
    data = program_data()
    loc = add_duplicate(data)
    problems = problems_of(data)
    assert [str(p) for p in problems] == [f"{loc}: duplicate {what}"]


# --- the category tree ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "categories",
    [
        [{"code": "a", "parent": "b"}, {"code": "b", "parent": "a"}],
        [{"code": "a", "parent": "b"}, {"code": "b", "parent": "c"}, {"code": "c", "parent": "a"}],
        [{"code": "a", "parent": "a"}],
    ],
    ids=["two-categories", "three-categories", "own-parent"],
)
def test_a_cycle_in_the_category_tree_is_refused_once(categories: list[dict[str, str]]) -> None:
    data = changed("catalog", "categories", value=[{"code": "top"}, *categories])
    data["catalog"]["products"] = []
    data["rules"] = [data["rules"][0]]
    problems = problems_of(data)
    assert len(problems) == 1
    assert problems[0].loc == "catalog.categories"
    assert "cycle" in problems[0].message
    for category in categories:
        assert category["code"] in problems[0].message


def test_a_deep_category_tree_without_a_cycle_is_accepted() -> None:
    tree = [{"code": "c0"}] + [{"code": f"c{i}", "parent": f"c{i - 1}"} for i in range(1, 30)]
    data = changed("catalog", "categories", value=tree)
    data["catalog"]["products"] = []
    data["rules"] = [data["rules"][0]]
    assert parse_program(data).category_lineage("c29")[-1] == "c0"


# --- what a rule does ---------------------------------------------------------------------


def test_a_rule_with_an_empty_then_is_refused() -> None:
    problem = problem_at(rule(then={}), "rules[0] (x).then")
    assert "neither an accrual effect" in problem.message
    assert "nor a redemption limit" in problem.message


def test_a_rule_whose_then_has_only_max_points_is_refused() -> None:
    problem = problem_at(rule(then={"max_points": "50"}), "rules[0] (x).then")
    assert "max_points caps an accrual effect" in problem.message
    assert "neither an accrual effect" in problem.message


def test_max_points_beside_only_a_redemption_limit_is_refused() -> None:
    data = rule(then={"max_points": "50", "redeem_percent": 30})
    problem_at(data, "rules[0] (x).then.max_points", "caps an accrual effect")


@pytest.mark.parametrize(
    "then",
    [
        {"redeem_percent": 30},
        {"accrue": False},
        {"percent": 5, "max_points": "50"},
        {"points_per_unit": "10", "redeem_percent": 0},
        {"multiplier": "1.5", "max_points": "50", "redeem_percent": 100},
    ],
)
def test_a_rule_with_one_effect_and_or_a_redemption_limit_is_accepted(then: dict[str, Any]) -> None:
    parse_program(rule(then=then))


@pytest.mark.parametrize(
    ("then", "named"),
    [
        ({"multiplier": 2, "percent": 5}, "multiplier and percent"),
        ({"percent": 5, "accrue": False}, "percent and accrue"),
        ({"points_per_unit": "10", "multiplier": 2}, "multiplier and points_per_unit"),
        ({"multiplier": 2, "accrue": False, "redeem_percent": 10}, "multiplier and accrue"),
    ],
)
def test_two_accrual_effects_in_one_rule_are_refused(then: dict[str, Any], named: str) -> None:
    problem = problem_at(rule(then=then), "rules[0] (x).then", "two accrual effects")
    assert named in problem.message


def test_accrue_true_is_refused() -> None:
    problem = problem_at(rule(then={"accrue": True}), "rules[0] (x).then.accrue")
    assert "accrue: false" in problem.message


def test_accrue_that_is_not_a_boolean_is_refused() -> None:
    problem_at(rule(then={"accrue": "no"}), "rules[0] (x).then.accrue", "not true or false")


@pytest.mark.parametrize(
    ("value", "message"), [(101, "101 is more than 100"), (-1, "-1 is less than 0")]
)
def test_a_redeem_percent_outside_0_to_100_is_refused(value: int, message: str) -> None:
    data = rule(then={"multiplier": 2, "redeem_percent": value})
    problem_at(data, "rules[0] (x).then.redeem_percent", message)


@pytest.mark.parametrize("key", ["multiplier", "percent", "points_per_unit"])
def test_a_negative_accrual_effect_is_refused(key: str) -> None:
    problem_at(rule(then={key: -2}), f"rules[0] (x).then.{key}", "-2 is less than 0")


def test_a_percent_against_a_zero_base_percent_is_refused() -> None:
    data = rule(then={"percent": 5})
    data["accrual"]["base_percent"] = 0
    problem_at(data, "rules[0] (x).then.percent", "base_percent, which is 0")


def test_an_unknown_rule_kind_is_refused() -> None:
    data = changed("rules", 0, "kind", value="loyalty")
    problem_at(
        data, "rules[0] (happy-hours).kind", "'loyalty' is not one of client|product|behaviour"
    )


# --- conditions ---------------------------------------------------------------------------


def test_a_weekday_with_a_bad_name_is_refused() -> None:
    problem = problem_at(rule(weekdays=["mon", "funday"]), "rules[0] (x).when.weekdays[1]")
    assert problem.message.startswith("'funday' is not a weekday")


def test_an_empty_list_of_weekdays_is_refused() -> None:
    problem_at(rule(weekdays=[]), "rules[0] (x).when.weekdays", "is empty")


@pytest.mark.parametrize("text", ["02-30", "2026-13-01", "13-01", "2026-02-29", "3-8", "08.03"])
def test_a_date_that_does_not_exist_is_refused(text: str) -> None:
    problem = problem_at(rule(dates=["03-08", text]), "rules[0] (x).when.dates[1]")
    assert problem.message.startswith(f"'{text}' is not a date")


def test_february_29_is_accepted_as_a_date_every_year() -> None:
    when = parse_program(rule(dates=["02-29", "2028-02-29"])).rules[0].when
    assert when.month_days == frozenset({(2, 29)})
    assert when.full_dates is not None
    assert len(when.full_dates) == 1


def test_between_with_from_after_to_is_refused() -> None:
    data = rule(between={"from": "2026-03-31", "to": "2026-03-01"})
    problem = problem_at(data, "rules[0] (x).when.between")
    assert "after" in problem.message


def test_between_with_a_bad_date_is_refused() -> None:
    data = rule(between={"from": "2026-02-30"})
    problem_at(data, "rules[0] (x).when.between.from", "'2026-02-30' is not a date")


def test_between_with_neither_end_is_refused() -> None:
    problem_at(rule(between={}), "rules[0] (x).when.between", "give from, to, or both")


@pytest.mark.parametrize(("low", "high"), [("1000.00", "1000.00"), ("1000.00", "500.00")])
def test_a_receipt_total_with_min_not_below_max_is_refused(low: str, high: str) -> None:
    data = rule(receipt_total={"min": low, "max": high})
    problem_at(data, "rules[0] (x).when.receipt_total", "min must be less than max")


def test_a_negative_receipt_total_is_refused() -> None:
    problem_at(
        rule(receipt_total={"min": "-1"}), "rules[0] (x).when.receipt_total.min", "less than 0"
    )


@pytest.mark.parametrize(("start", "end"), [("16:00", "16:00"), ("00:00", "00:00")])
def test_a_time_window_from_and_to_the_same_time_is_refused(start: str, end: str) -> None:
    data = rule(time={"from": start, "to": end})
    problem_at(data, "rules[0] (x).when.time", "same time")


def test_24_00_is_accepted_as_the_end_of_a_time_window() -> None:
    window = parse_program(rule(time={"from": "18:00", "to": "24:00"})).rules[0].when.time
    assert window == TimeWindow(18 * 60, 24 * 60)
    assert window.contains(23 * 60 + 59)
    assert not window.contains(17 * 60)


def test_24_00_is_refused_as_the_start_of_a_time_window() -> None:
    data = rule(time={"from": "24:00", "to": "02:00"})
    problem_at(data, "rules[0] (x).when.time.from", "'24:00' is not a time")


def test_a_time_window_may_cross_midnight() -> None:
    window = parse_program(rule(time={"from": "22:00", "to": "02:00"})).rules[0].when.time
    assert window is not None
    assert window.crosses_midnight
    assert window.contains(60)


def test_a_time_window_needs_both_ends() -> None:
    problem_at(rule(time={"from": "16:00"}), "rules[0] (x).when.time.to", "is required")


def test_a_time_window_of_the_whole_day_is_not_called_empty() -> None:
    window = parse_program(rule(time={"from": "00:00", "to": "24:00"})).rules[0].when.time
    assert window is not None
    assert window.contains(0)
    assert window.contains(24 * 60 - 1)


# --- amounts and their decimals -----------------------------------------------------------


def test_money_with_more_decimals_than_roubles_have_is_refused() -> None:
    data = changed("redemption", "min_payable", value="0.001")
    problem = problem_at(data, "redemption.min_payable")
    assert problem.message == "0.001 has more than 2 decimals (money)"
    price = changed("catalog", "products", 0, "price", value="180.005")
    problem_at(price, "catalog.products[0] (CAP-300).price", "more than 2 decimals (money)")
    total = rule(receipt_total={"min": "999.999"})
    problem_at(total, "rules[0] (x).when.receipt_total.min", "more than 2 decimals (money)")


def test_money_with_any_decimals_is_refused_in_yen() -> None:
    data = rule(receipt_total={"min": "100.5"})
    data["currency"] = "JPY"
    data["catalog"]["products"][0]["price"] = "180"
    data["tiers"]["levels"][1]["qualify"]["spend"] = "30000"
    problem = problem_at(data, "rules[0] (x).when.receipt_total.min")
    assert problem.message == "100.5 has more than 0 decimals (money)"


def test_whole_yen_written_with_zero_decimals_are_accepted() -> None:
    data = rule(receipt_total={"min": "100.00"})
    data["currency"] = "JPY"
    data["catalog"]["products"][0]["price"] = "180"
    data["tiers"]["levels"][1]["qualify"]["spend"] = "30000.00"
    program = parse_program(data)
    assert program.money_digits == 0
    assert program.rules[0].when.receipt_total is not None
    assert program.rules[0].when.receipt_total.min == 100


def test_points_with_more_decimals_than_the_precision_are_refused() -> None:
    data = rule(then={"multiplier": 2, "max_points": "1.234"})
    problem = problem_at(data, "rules[0] (x).then.max_points")
    assert problem.message == "1.234 has more than 2 decimals (points)"


def test_points_with_decimals_are_refused_when_the_precision_is_0() -> None:
    data = rule(then={"points_per_unit": "0.5"})
    data["points"]["precision"] = 0
    problem_at(data, "rules[0] (x).then.points_per_unit", "0.5 has more than 0 decimals (points)")
    reward = changed("triggers", 0, "reward", "points", value="10.5")
    reward["points"]["precision"] = 0
    problem_at(reward, "triggers[0] (welcome).reward.points", "more than 0 decimals (points)")


@pytest.mark.parametrize(("value", "message"), [(7, "7 is more than 6"), (-1, "-1 is less than 0")])
def test_a_points_precision_outside_0_to_6_is_refused(value: int, message: str) -> None:
    problem_at(changed("points", "precision", value=value), "points.precision", message)


def test_a_point_value_of_zero_is_refused() -> None:
    problem_at(changed("points", "value", value="0"), "points.value", "must be more than 0")


def test_a_huge_whole_number_is_refused_without_a_crash() -> None:
    data = changed("points", "precision", value=Decimal("1e5000"))
    problem_at(data, "points.precision", "too large")


def test_a_huge_amount_is_refused_without_a_crash() -> None:
    data = changed("redemption", "min_payable", value="1e999999")
    problems = problems_of(data)
    assert any(p.loc == "redemption.min_payable" for p in problems)


# --- settings -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Mars/Olympus", "Europe/Moskva", "UTC+3", "../etc/passwd"])
def test_an_invalid_time_zone_is_refused(name: str) -> None:
    problem = problem_at(changed("timezone", value=name), "timezone")
    assert problem.message == f"{name!r} is not a time zone (e.g. Europe/Moscow)"
    location = changed("partners", 0, "locations", 1, "timezone", value=name)
    problem_at(location, "partners[0] (zerno).locations[1] (rest-e).timezone", "not a time zone")


@pytest.mark.parametrize(
    ("name", "message"),
    [("Europe", "not a time zone"), ("x" * 300, "300 characters long; at most 200")],
    ids=["directory", "too-long"],
)
def test_a_time_zone_that_is_a_directory_or_too_long_is_refused(name: str, message: str) -> None:
    problem_at(changed("timezone", value=name), "timezone", message)


@pytest.mark.parametrize("currency", ["rub", "RUBL", "RU", "R1B", "РУБ", 643])
def test_a_currency_that_is_not_three_upper_case_letters_is_refused(currency: object) -> None:
    problem = problem_at(changed("currency", value=currency), "currency")
    assert "is not an ISO 4217 currency code" in problem.message


@pytest.mark.parametrize("code", ["Zerno", "zerno_1", "-zerno", "зерно", "zer no", ""])
def test_a_program_code_that_is_not_a_slug_is_refused(code: str) -> None:
    problem = problem_at(changed("code", value=code), "code")
    assert "is not a" in problem.message


@pytest.mark.parametrize("code", ["happy hours", "-x", "a" * 65])
def test_a_rule_code_that_is_not_a_code_is_refused(code: str) -> None:
    problems = problems_of(changed("rules", 0, "code", value=code))
    assert any(p.loc.endswith(".code") and "is not a code" in p.message for p in problems)


@pytest.mark.parametrize("rounding", ["nearest", "DOWN", "half-up", 1])
def test_a_points_rounding_other_than_down_half_up_or_up_is_refused(rounding: object) -> None:
    problem = problem_at(changed("points", "rounding", value=rounding), "points.rounding")
    assert problem.message.endswith("is not one of down|half_up|up")


@pytest.mark.parametrize("rounding", ["down", "half_up", "up"])
def test_each_documented_rounding_is_accepted(rounding: str) -> None:
    assert (
        parse_program(changed("points", "rounding", value=rounding)).points.rounding.value
        == rounding
    )


def test_accrual_on_must_be_paid_or_total() -> None:
    problem_at(changed("accrual", "on", value=True), "accrual.on", "true is not one of paid|total")


def test_expiry_needs_exactly_one_of_after_days_or_period() -> None:
    both = changed("expiry", value={"after_days": 30, "period": "year"})
    problem_at(both, "expiry", "exactly one")
    problem_at(changed("expiry", value={}), "expiry", "exactly one")


def test_a_location_outside_the_globe_is_refused() -> None:
    data = changed("partners", 0, "locations", 0, "lat", value=91)
    problem_at(data, "partners[0] (zerno).locations[0] (rest-a).lat", "91 is more than 90")


def test_a_tier_level_after_the_first_needs_a_qualification() -> None:
    data = program_data()
    data["tiers"]["levels"][1].pop("qualify")
    data["tiers"]["levels"][0]["qualify"] = {"spend": "1.00"}
    locs = {p.loc for p in problems_of(data)}
    assert locs == {"tiers.levels[0] (base).qualify", "tiers.levels[1] (gold).qualify"}


def test_a_trigger_with_an_unknown_occasion_or_a_foreign_key_is_refused() -> None:
    data = program_data()
    data["triggers"][0]["on"] = "signup"
    data["triggers"][1]["number"] = 5
    problem_at(data, "triggers[0] (welcome).on", "'signup' is not one of")
    problem_at(data, "triggers[1] (sleepers).number", "does not apply to a trigger on inactivity")


# --- all at once --------------------------------------------------------------------------


def test_every_problem_of_a_file_is_reported_in_one_invalid_input() -> None:
    data = program_data()
    data["currency"] = "rub"
    data["points"]["rounding"] = "nearest"
    data["rules"][0]["then"] = {"multipler": 3}
    data["catalog"]["products"][0]["category"] = "cofee"
    with pytest.raises(InvalidInput) as caught:
        parse_program(data)
    locs = {p.loc for p in caught.value.problems}
    assert len(caught.value.problems) >= 4
    assert {
        "currency",
        "points.rounding",
        "rules[0] (happy-hours).then.multipler",
        "rules[0] (happy-hours).then",
        "catalog.products[0] (CAP-300).category",
    } <= locs
    more = len(caught.value.problems) - 1
    assert str(caught.value) == f"{caught.value.problems[0]} (and {more} more)"
    assert caught.value.code == "validation_error"


# --- YAML and JSON ------------------------------------------------------------------------

_YAML_PROGRAM = """\
code: zerno
currency: RUB
timezone: Europe/Moscow
points: {precision: 2, rounding: down, value: 1.00}
accrual: {base_percent: 1.5, on: paid}
rules:
  - code: happy-hours
    kind: behaviour
    when:
      time: {from: 16:00, to: 18:00}
      between: {from: 2026-03-01, to: 2026-03-31}
    then: {multiplier: 2.5, max_points: 50.25}
"""


def test_yaml_on_stays_a_string_key() -> None:
    data = parse_text(_YAML_PROGRAM, name="p.yaml", as_json=False)
    assert isinstance(data, dict)
    assert data["accrual"] == {"base_percent": Decimal("1.5"), "on": "paid"}
    assert True not in data["accrual"]
    assert parse_program(data).accrual.on.value == "paid"


def test_an_unquoted_yaml_time_is_read_as_a_time() -> None:
    data = parse_text(_YAML_PROGRAM, name="p.yaml", as_json=False)
    assert isinstance(data, dict)
    assert data["rules"][0]["when"]["time"] == {"from": "16:00", "to": "18:00"}
    assert parse_program(data).rules[0].when.time == TimeWindow(16 * 60, 18 * 60)


def test_yaml_floats_become_decimal_never_float() -> None:
    data = parse_text(_YAML_PROGRAM, name="p.yaml", as_json=False)
    assert not any(isinstance(v, float) for v in walk(data))
    assert isinstance(data, dict)
    assert data["points"]["value"] == Decimal("1.00")
    assert str(data["points"]["value"]) == "1.00"
    assert data["rules"][0]["then"]["max_points"] == Decimal("50.25")
    program = parse_program(data)
    assert program.rules[0].max_points == 5025
    assert program.accrual.base_percent == Decimal("1.5")


def test_a_yaml_float_that_a_binary_float_would_round_is_read_exactly() -> None:
    data = parse_text("a: 0.1\nb: 1_000.10\nc: 1e3\n", name="p.yaml", as_json=False)
    assert data == {"a": Decimal("0.1"), "b": Decimal("1000.10"), "c": Decimal("1e3")}
    assert not any(isinstance(v, float) for v in walk(data))


def test_json_floats_become_decimal_never_float() -> None:
    data = parse_text('{"a": 0.1, "b": [1.50, 2]}', name="p.json", as_json=True)
    assert data == {"a": Decimal("0.1"), "b": [Decimal("1.50"), 2]}
    assert not any(isinstance(v, float) for v in walk(data))


def test_a_yaml_syntax_error_is_invalid_input_naming_the_line() -> None:
    text = "code: zerno\ncurrency: RUB\nrules: [\n  {code: a\n"
    with pytest.raises(InvalidInput) as caught:
        parse_text(text, name="prog.yaml", as_json=False)
    (problem,) = caught.value.problems
    assert problem.loc.startswith("prog.yaml:")
    line = int(problem.loc.split(":")[1])
    assert 3 <= line <= 5
    assert "not valid YAML" in problem.message


def test_a_yaml_indentation_error_names_its_line() -> None:
    text = "code: zerno\npoints:\n  precision: 2\n rounding: down\n"
    with pytest.raises(InvalidInput) as caught:
        parse_text(text, name="prog.yaml", as_json=False)
    (problem,) = caught.value.problems
    assert problem.loc.startswith("prog.yaml:4:")


def test_a_yaml_duplicate_key_is_invalid_input_naming_the_line() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_text("code: a\nname: b\ncode: c\n", name="prog.yaml", as_json=False)
    assert caught.value.problems[0].loc.startswith("prog.yaml:3:")


def test_an_infinite_yaml_number_is_invalid_input() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_text("value: .inf\n", name="prog.yaml", as_json=False)
    assert caught.value.problems[0].loc.startswith("prog.yaml:1:")


def test_a_json_syntax_error_is_invalid_input_naming_the_line() -> None:
    text = '{\n  "code": "zerno",\n  "currency": "RUB",,\n}'
    with pytest.raises(InvalidInput) as caught:
        parse_text(text, name="prog.json", as_json=True)
    (problem,) = caught.value.problems
    assert problem.loc.startswith("prog.json:3:")
    assert "not valid JSON" in problem.message


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "yaml"])
def test_a_number_too_long_to_read_is_invalid_input(as_json: bool) -> None:
    digits = "1" * 5000
    text = f'{{"a": {digits}}}' if as_json else f"a: {digits}\n"
    with pytest.raises(InvalidInput):
        parse_text(text, name="prog", as_json=as_json)


# --- receipts -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def program() -> Program:
    return parse_program(program_data())


def receipt_data(**changes: object) -> dict[str, Any]:
    body: dict[str, Any] = {
        "receipt_id": "R-1001",
        "location": "rest-a",
        "member": "card:100001",
        "at": "2026-03-09T16:30:00+03:00",
        "lines": [
            {"sku": "CAP-300", "qty": 2, "price": "180.00"},
            {"sku": "X-1", "category": "tobacco", "qty": 1, "price": "250.00", "discount": "0.00"},
        ],
        "redeem": "50.00",
        "coupons": [],
        "payment": {"method": "card"},
        "hold": False,
    }
    body.update(changes)
    return body


def receipt_problems(program: Program, data: object) -> tuple[Problem, ...]:
    with pytest.raises(InvalidInput) as caught:
        parse_receipt(data, program, now=NOW)
    return caught.value.problems


def with_line(n: int, **changes: object) -> dict[str, Any]:
    data = receipt_data()
    data["lines"][n].update(changes)
    return data


def test_the_example_receipt_is_valid(program: Program) -> None:
    receipt = parse_receipt(receipt_data(), program, now=NOW)
    assert receipt.total == 61000
    assert receipt.redeem == 5000


def test_a_receipt_with_an_unknown_key_is_refused(program: Program) -> None:
    problems = receipt_problems(program, receipt_data(reciept_id="R-1"))
    assert [p.loc for p in problems] == ["reciept_id"]
    assert "did you mean 'receipt_id'?" in problems[0].message


def test_a_receipt_line_with_an_unknown_key_is_refused(program: Program) -> None:
    problems = receipt_problems(program, with_line(0, quantity=2))
    assert problems[0].loc == "lines[0] (CAP-300).quantity"
    assert "unknown key" in problems[0].message


def test_a_receipt_with_no_lines_is_refused(program: Program) -> None:
    problems = receipt_problems(program, receipt_data(lines=[]))
    assert [str(p) for p in problems] == ["lines: is empty; a receipt has at least one line"]
    missing = receipt_data()
    del missing["lines"]
    assert [str(p) for p in receipt_problems(program, missing)] == ["lines: is required"]


def test_lines_that_are_not_a_list_are_reported_once(program: Program) -> None:
    problems = receipt_problems(program, receipt_data(lines="CAP-300"))
    assert [str(p) for p in problems] == ["lines: must be a list, not 'CAP-300'"]


def test_a_quantity_of_zero_is_refused(program: Program) -> None:
    problems = receipt_problems(program, with_line(0, qty=0))
    assert [str(p) for p in problems] == ["lines[0] (CAP-300).qty: must be more than 0"]


@pytest.mark.parametrize(
    ("qty", "message"),
    [("two", "'two' is not a number"), (-1, "-1 is less than 0"), (True, "true is not a number")],
)
def test_a_quantity_that_is_not_a_positive_number_is_refused(
    program: Program, qty: object, message: str
) -> None:
    problems = receipt_problems(program, with_line(1, qty=qty))
    assert [str(p) for p in problems] == [f"lines[1] (X-1).qty: {message}"]


def test_a_fractional_quantity_of_weighed_goods_is_accepted(program: Program) -> None:
    receipt = parse_receipt(with_line(0, qty="0.333"), program, now=NOW)
    assert receipt.lines[0].amount == 5994  # 0.333 × 180.00 = 59.94


def test_a_price_with_more_decimals_than_the_currency_is_refused(program: Program) -> None:
    problems = receipt_problems(program, with_line(0, price="180.001"))
    assert [str(p) for p in problems] == [
        "lines[0] (CAP-300).price: 180.001 has more than 2 decimals (money, RUB)"
    ]


def test_a_discount_more_than_the_line_is_refused(program: Program) -> None:
    problems = receipt_problems(program, with_line(0, discount="360.01"))
    assert [str(p) for p in problems] == [
        "lines[0] (CAP-300).discount: 360.01 is more than the line's 360.00"
    ]


def test_a_discount_of_the_whole_line_is_accepted(program: Program) -> None:
    receipt = parse_receipt(with_line(0, discount="360.00"), program, now=NOW)
    assert receipt.lines[0].amount == 0


def test_an_unknown_location_is_refused(program: Program) -> None:
    problems = receipt_problems(program, receipt_data(location="rest-z"))
    assert [str(p) for p in problems] == ["location: 'rest-z' is not a location of program zerno"]


@pytest.mark.parametrize(
    ("redeem", "message"),
    [
        ("lots", "'lots' is not an amount of points or \"max\""),
        ("MAX", "'MAX' is not an amount of points or \"max\""),
        ("-5", "-5 is less than 0"),
        ("10.001", "10.001 has more than 2 decimals (points)"),
    ],
)
def test_a_redemption_that_is_not_an_amount_of_points_is_refused(
    program: Program, redeem: str, message: str
) -> None:
    problems = receipt_problems(program, receipt_data(redeem=redeem))
    assert [str(p) for p in problems] == [f"redeem: {message}"]


def test_redeem_max_and_whole_amounts_are_accepted(program: Program) -> None:
    assert parse_receipt(receipt_data(redeem="max"), program, now=NOW).redeem == "max"
    assert parse_receipt(receipt_data(redeem=12), program, now=NOW).redeem == 1200


@pytest.mark.parametrize(
    "at", ["yesterday", "09.03.2026 16:30", "2026-03-09T25:00:00+03:00", 1741527000]
)
def test_an_at_that_is_not_iso_8601_is_refused(program: Program, at: object) -> None:
    problems = receipt_problems(program, receipt_data(at=at))
    assert len(problems) == 1
    assert problems[0].loc == "at"
    assert "is not an ISO 8601 time" in problems[0].message


def test_a_price_is_required_for_a_sku_without_a_catalog_price(program: Program) -> None:
    data = receipt_data(lines=[{"sku": "BAG", "qty": 1}, {"sku": "NEW-1", "qty": 1}])
    problems = receipt_problems(program, data)
    assert [str(p) for p in problems] == [
        "lines[0] (BAG).price: is required (sku 'BAG' has no catalog price)",
        "lines[1] (NEW-1).price: is required (sku 'NEW-1' has no catalog price)",
    ]


def test_a_catalog_price_is_used_when_the_line_has_none(program: Program) -> None:
    receipt = parse_receipt(receipt_data(lines=[{"sku": "CAP-300", "qty": 2}]), program, now=NOW)
    assert receipt.lines[0].price == 18000
    assert receipt.lines[0].category == "coffee"


def test_a_time_without_offset_is_read_in_the_locations_time_zone(program: Program) -> None:
    receipt = parse_receipt(
        receipt_data(location="rest-e", at="2026-03-09T16:30:00"), program, now=NOW
    )
    assert receipt.at.utcoffset() == timedelta(hours=5)
    assert (receipt.at.hour, receipt.at.minute) == (16, 30)
    assert receipt.at.tzinfo == ZoneInfo("Asia/Yekaterinburg")


def test_a_time_with_an_offset_is_the_same_moment_in_the_locations_time_zone(
    program: Program,
) -> None:
    receipt = parse_receipt(
        receipt_data(location="rest-e", at="2026-03-09T16:30:00+03:00"), program, now=NOW
    )
    assert receipt.at == datetime(2026, 3, 9, 13, 30, tzinfo=UTC)
    assert receipt.at.hour == 18


def test_a_time_without_offset_or_location_is_read_in_the_programs_time_zone(
    program: Program,
) -> None:
    data = receipt_data(at="2026-03-09T16:30:00")
    del data["location"]
    receipt = parse_receipt(data, program, now=NOW)
    assert receipt.at.utcoffset() == timedelta(hours=3)


def test_a_receipt_without_at_is_taken_at_now(program: Program) -> None:
    data = receipt_data()
    del data["at"]
    receipt: Receipt = parse_receipt(data, program, now=NOW)
    assert receipt.at == NOW


def test_every_problem_of_a_receipt_is_reported_at_once(program: Program) -> None:
    data = receipt_data(location="rest-z", redeem="lots", at="soon", colour="red")
    data["lines"][0]["qty"] = 0
    data["lines"][1]["price"] = "1.001"
    problems = receipt_problems(program, data)
    assert {p.loc for p in problems} == {
        "location",
        "redeem",
        "at",
        "colour",
        "lines[0] (CAP-300).qty",
        "lines[1] (X-1).price",
    }


def test_a_receipt_that_is_not_a_mapping_is_refused(program: Program) -> None:
    problems = receipt_problems(program, ["CAP-300"])
    assert problems[0] == Problem("", "must be a mapping, not a list")


def test_an_absurd_quantity_is_refused_without_a_crash(program: Program) -> None:
    problems = receipt_problems(program, with_line(0, qty="1e30"))
    assert any(p.loc == "lines[0] (CAP-300).qty" for p in problems)


@pytest.mark.parametrize("where", ["price", "redeem"])
def test_an_absurd_amount_in_a_receipt_is_refused_without_a_crash(
    program: Program, where: str
) -> None:
    data = with_line(0, price="1e999999") if where == "price" else receipt_data(redeem="1e999999")
    problems = receipt_problems(program, data)
    assert problems


# --- the command line ----------------------------------------------------------------------


def run_kopilka(*args: str | Path) -> tuple[int, dict[str, Any], str]:
    done = subprocess.run(
        [str(KOPILKA), *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )
    document = json.loads(done.stdout) if done.stdout.strip() else {}
    return done.returncode, document, done.stderr


def write_json(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def assert_validation_problem(document: dict[str, Any]) -> list[dict[str, str]]:
    assert document["code"] == "validation_error"
    assert document["status"] == 422
    assert document["type"].endswith("validation_error")
    errors = document["errors"]
    assert isinstance(errors, list)
    assert errors
    for error in errors:
        assert set(error) == {"loc", "message"}
    return errors


def test_kopilka_program_check_prints_every_problem_as_problem_json(tmp_path: Path) -> None:
    data = changed("rules", 0, "when", "time", "from", value="25:00")
    data["currency"] = "rub"
    path = write_json(tmp_path / "program.json", data)
    code, document, stderr = run_kopilka("program", "check", path)
    assert code == 1
    errors = assert_validation_problem(document)
    assert {
        "loc": "rules[0] (happy-hours).when.time.from",
        "message": "'25:00' is not a time (HH:MM, 00:00–23:59)",
    } in errors
    assert any(e["loc"] == "currency" for e in errors)
    assert "validation_error" in stderr


def test_kopilka_program_check_accepts_a_valid_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "program.yaml"
    path.write_text(_YAML_PROGRAM, encoding="utf-8")
    code, document, _ = run_kopilka("program", "check", path)
    assert code == 0
    assert document["code"] == "zerno"
    assert document["rules"] == 1


def test_kopilka_program_check_names_the_line_of_a_yaml_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "program.yaml"
    path.write_text("code: zerno\nrules: [\n  {code: a\n", encoding="utf-8")
    code, document, _ = run_kopilka("program", "check", path)
    assert code == 1
    (error,) = assert_validation_problem(document)
    assert error["loc"].startswith(f"{path}:")


def test_kopilka_quote_with_an_invalid_program_prints_a_validation_problem(
    tmp_path: Path,
) -> None:
    program_file = write_json(tmp_path / "program.json", rule(then={"multipler": 3}))
    receipt_file = write_json(tmp_path / "receipt.json", receipt_data())
    code, document, _ = run_kopilka("quote", program_file, receipt_file)
    assert code == 1
    errors = assert_validation_problem(document)
    assert any(e["loc"] == "rules[0] (x).then.multipler" for e in errors)


def test_kopilka_quote_with_an_invalid_receipt_prints_a_validation_problem(
    tmp_path: Path,
) -> None:
    program_file = write_json(tmp_path / "program.json", program_data())
    receipt_file = write_json(tmp_path / "receipt.json", with_line(0, qty="two"))
    code, document, _ = run_kopilka("quote", program_file, receipt_file)
    assert code == 1
    errors = assert_validation_problem(document)
    assert errors == [{"loc": "lines[0] (CAP-300).qty", "message": "'two' is not a number"}]


def test_kopilka_quote_redeeming_beyond_the_balance_is_insufficient_points(
    tmp_path: Path,
) -> None:
    program_file = write_json(tmp_path / "program.json", program_data())
    receipt_file = write_json(tmp_path / "receipt.json", receipt_data(redeem="50.00"))
    code, document, stderr = run_kopilka("quote", program_file, receipt_file, "--balance", "10.00")
    assert code == 1
    assert document["code"] == "insufficient_points"
    assert document["status"] == 422
    assert "errors" not in document
    assert "insufficient_points" in stderr


def test_kopilka_quote_within_the_balance_answers_the_quote(tmp_path: Path) -> None:
    program_file = write_json(tmp_path / "program.json", program_data())
    receipt_file = write_json(tmp_path / "receipt.json", receipt_data(redeem="10.00"))
    code, document, _ = run_kopilka("quote", program_file, receipt_file, "--balance", "10.00")
    assert code == 0
    assert document["redeemed"] == "10.00"


def test_kopilka_with_a_missing_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    code, document, _ = run_kopilka("program", "check", missing)
    assert code == 1
    errors = assert_validation_problem(document)
    assert errors == [{"loc": str(missing), "message": "no such file"}]
    receipt_file = write_json(tmp_path / "receipt.json", receipt_data())
    code, document, _ = run_kopilka("quote", missing, receipt_file)
    assert code == 1
    assert assert_validation_problem(document)[0]["loc"] == str(missing)


@pytest.mark.parametrize("value", [Decimal("2.0"), Decimal("3.0E+2")])
def test_a_whole_number_written_with_a_point_is_refused_as_it_would_not_read_back(
    value: Decimal,
) -> None:
    problem_at(changed("points", "precision", value=value), "points.precision",
               "without a point")  # fmt: skip


def test_a_code_ending_in_a_newline_is_not_a_code() -> None:
    problem_at(changed("code", value="zerno\n"), "code", "not a slug")
