"""Coupon campaigns read and checked against the program; whether a coupon applies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from kopilka.kernel.errors import Problem
from kopilka.kernel.program import Program
from kopilka.mechanics.coupons.model import (
    Campaign,
    CouponState,
    Units,
    campaign_document,
    check_coupon,
    coupon_status,
    program_problems,
    read_campaign,
)

AT = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
LINES = [("CAP-300", "coffee", 36000), ("CRS-1", None, 14000)]  # 500.00 in all


def campaign(zerno: Program, **document: Any) -> Campaign:
    problems: list[Problem] = []
    base: dict[str, Any] = {"code": "c", "kind": "unique", "effect": {"percent": 10}}
    read = read_campaign({**base, **document}, Units.of(zerno), problems)
    assert problems == []
    assert read is not None
    return read


def problems_of(zerno: Program, document: dict[str, Any]) -> list[str]:
    problems: list[Problem] = []
    read = read_campaign(document, Units.of(zerno), problems)
    if read is not None:
        problems += program_problems(read, zerno)
    return [str(problem) for problem in problems]


def state(camp: Campaign, **changes: Any) -> CouponState:
    values: dict[str, Any] = {
        "coupon_id": 7, "code": "7KXM3HPR4D", "campaign": camp, "owner_member_id": None,
        "uses": 0, "member_uses": 0, "campaign_uses": 0, "campaign_discount": 0,
        "status": "available",
    }  # fmt: skip
    return CouponState(**{**values, **changes})


def check(zerno: Program, coupon: CouponState | None, **kw: Any) -> Any:
    options: dict[str, Any] = {
        "program": zerno,
        "lines": LINES,
        "location": "rest-a",
        "member_id": 1,
        "tier": None,
        "segments": frozenset(),
        "at": AT,
    }
    return check_coupon(coupon, "7kxm-3hpr-4d", **{**options, **kw})  # fmt: skip


# — reading campaigns —


def test_a_campaign_reads_every_key_and_defaults_a_unique_code_to_one_use(zerno):
    camp = campaign(
        zerno, name="Весна", valid={"from": "2026-03-01", "until": "2026-03-31"},
        limits={"per_member": 2, "total": 100, "budget": "5000.50"},
        conditions={"min_sum": "300", "categories": ["coffee"], "partners": ["zerno"],
                    "tiers": ["vip"], "segments": ["sleepers"]},
        effect={"amount": "100.00", "skus": ["CAP-300"], "earn_points": True},
    )  # fmt: skip
    assert camp.limits.per_code == 1
    assert camp.limits.budget == 500050
    assert camp.conditions.min_sum == 30000
    assert camp.effect.amount == 10000
    assert camp.effect.earn_points
    # dates are the program's days: from the start of the first to the end of the last
    assert camp.valid_from == datetime.fromisoformat("2026-03-01T00:00:00+03:00")
    assert camp.valid_until == datetime.fromisoformat("2026-04-01T00:00:00+03:00")


def test_a_stored_document_reads_back_to_the_same_campaign(zerno):
    camp = campaign(zerno, valid={"from": "2026-03-01T10:00:00"},
                    limits={"budget": "10"}, effect={"points": "200"})  # fmt: skip
    problems: list[Problem] = []
    again = read_campaign(campaign_document(camp, Units.of(zerno)), Units.of(zerno), problems)
    assert again == camp
    assert camp.valid_from == datetime.fromisoformat("2026-03-01T10:00:00+03:00")


def test_a_public_campaign_needs_its_code_and_reads_it_upper_case(zerno):
    camp = campaign(zerno, kind="public", public_code="Spring10")
    assert (camp.public_code, camp.limits.per_code) == ("SPRING10", None)
    assert problems_of(zerno, {"code": "p", "kind": "public", "effect": {"percent": 5}}) == [
        "public_code: is required for a public campaign (e.g. SPRING10)"
    ]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"kind": "single"}, "kind: 'single' is not one of unique|public"),
        ({"effect": {"percent": 10, "amount": "5"}},
         "effect: give exactly one of percent, amount, points, free_sku (not percent, amount)"),
        ({"effect": {}}, "effect: give exactly one of percent, amount, points, free_sku"),
        ({"effect": {"percent": 120}}, "effect.percent: 120 is more than 100"),
        ({"effect": {"amount": "1.005"}}, "effect.amount: 1.005 has more than 2 decimals (money)"),
        ({"effect": {"free_sku": "NOPE"}}, "effect.free_sku: 'NOPE' is not a product of the "
                                           "program"),
        ({"effect": {"percent": 5, "categories": ["shoes"]}},
         "effect.categories: 'shoes' is not a category of the program"),
        ({"conditions": {"locations": ["moon"]}},
         "conditions.locations: 'moon' is not a location of the program"),
        ({"conditions": {"partners": ["other"]}},
         "conditions.partners: 'other' is not a partner of the program"),
        ({"conditions": {"tiers": ["gold"]}}, "conditions.tiers: 'gold' is not a tier of the "
                                              "program"),
        ({"conditions": {"skus": ["X"]}}, "conditions.skus: 'X' is not a product of the program"),
        ({"conditions": {"min_sum": "abc"}}, "conditions.min_sum: 'abc' is not an amount"),
        ({"limits": {"per_code": 0}}, "limits.per_code: 0 is less than 1"),
        ({"limits": {"budget": "0"}}, "limits.budget: must be more than 0; leave it out for "
                                      "no budget"),
        ({"valid": {"from": "2026-04-01", "until": "2026-03-01"}}, "valid.until: must be after "
                                                                   "`from`"),
        ({"valid": {"from": "soon"}}, "valid.from: 'soon' is not a date (YYYY-MM-DD) or a time "
                                      "(2026-03-01T10:00:00, with or without an offset) in "
                                      "the years 1970–9998"),
        ({"valid": {"until": "9999-12-31"}}, "valid.until: '9999-12-31' is not a date "
         "(YYYY-MM-DD) or a time (2026-03-01T10:00:00, with or without an offset) in the "
         "years 1970–9998"),
        ({"valid": {"from": "9999-12-31T23:59:59-05:00"}}, "valid.from: "
         "'9999-12-31T23:59:59-05:00' is not a date (YYYY-MM-DD) or a time "
         "(2026-03-01T10:00:00, with or without an offset) in the years 1970–9998"),
        ({"issued_only": True, "kind": "public", "public_code": "ABC"},
         "issued_only: a public code is not issued to members: use a unique campaign, or "
         "leave issued_only out"),
        ({"public_code": "ABC"}, "public_code: a unique campaign's codes are generated in "
                                 "batches: leave public_code out"),
        ({"colour": "red"}, "colour: unknown key; known keys: code, name, kind, public_code, "
                            "valid, limits, conditions, effect, issued_only, paused"),
    ],
)  # fmt: skip
def test_every_problem_is_named_with_its_place(zerno, change, expected):
    document = {"code": "c", "kind": "unique", "effect": {"percent": 10}, **change}
    assert expected in problems_of(zerno, document)


# — does it apply? —


def test_a_coupon_that_applies_carries_its_effect(zerno):
    camp = campaign(zerno, limits={"budget": "100.00"})
    result = check(zerno, state(camp, campaign_discount=2500))
    assert (result.reason, result.coupon_id, result.campaign) == (None, 7, "c")
    assert result.effect.percent == Decimal(10)
    assert result.budget_left == 7500
    assert result.code == "7kxm-3hpr-4d"


def test_an_unknown_code_is_not_found(zerno):
    result = check(zerno, None)
    assert (result.reason, result.coupon_id, result.effect) == ("not_found", None, None)


@pytest.mark.parametrize(
    ("at", "reason"),
    [
        (datetime.fromisoformat("2026-02-28T23:59:59+03:00"), "expired"),  # before it starts
        (datetime.fromisoformat("2026-03-01T00:00:00+03:00"), None),  # its first moment
        (datetime.fromisoformat("2026-03-31T23:59:59+03:00"), None),  # its last day
        (datetime.fromisoformat("2026-04-01T00:00:00+03:00"), "expired"),  # `until` excluded
    ],
)
def test_the_validity_window_includes_its_first_and_last_day(zerno, at, reason):
    camp = campaign(zerno, valid={"from": "2026-03-01", "until": "2026-03-31"})
    assert check(zerno, state(camp), at=at).reason == reason


def test_a_paused_campaign_is_expired(zerno):
    result = check(zerno, state(campaign(zerno, paused=True)))
    assert (result.reason, result.detail) == ("expired", "the campaign c is paused")


def test_a_used_up_code_is_used(zerno):
    result = check(zerno, state(campaign(zerno), uses=1))
    assert (result.reason, result.detail) == ("used", "the coupon was used once; it allows once")
    assert check(zerno, state(campaign(zerno, limits={"per_code": 3}), uses=2)).reason is None


@pytest.mark.parametrize(
    ("limits", "counts", "detail"),
    [
        ({"per_member": 1}, {"member_uses": 1}, "the member has used this campaign's coupons "
                                                "once; it allows once per member"),
        ({"total": 10}, {"campaign_uses": 10}, "the campaign's 10 redemptions are all taken"),
        ({"budget": "100"}, {"campaign_discount": 10000}, "the campaign's budget is spent"),
    ],
)  # fmt: skip
def test_campaign_limits_reached(zerno, limits, counts, detail):
    result = check(zerno, state(campaign(zerno, limits=limits), **counts))
    assert (result.reason, result.detail) == ("limit_reached", detail)


def test_another_members_coupon_is_not_yours(zerno):
    camp = campaign(zerno)
    assert check(zerno, state(camp, owner_member_id=2)).reason == "not_yours"
    assert check(zerno, state(camp, owner_member_id=1)).reason is None
    issued_only = campaign(zerno, issued_only=True)
    assert check(zerno, state(issued_only)).reason == "not_yours"
    assert check(zerno, state(issued_only, owner_member_id=1)).reason is None


@pytest.mark.parametrize(
    "document",
    [{"limits": {"per_member": 1}}, {"issued_only": True}, {"effect": {"points": "200"}}],
)
def test_a_coupon_that_needs_a_member_does_not_apply_to_an_anonymous_receipt(zerno, document):
    result = check(zerno, state(campaign(zerno, **document)), member_id=None)
    assert result.reason == "conditions_not_met"
    assert result.detail == "the coupon is for a member: name the member on the receipt"


def test_an_issued_coupon_needs_its_member_on_the_receipt(zerno):
    result = check(zerno, state(campaign(zerno), owner_member_id=2), member_id=None)
    assert result.reason == "conditions_not_met"
    assert check(zerno, state(campaign(zerno)), member_id=None).reason is None


@pytest.mark.parametrize(
    ("conditions", "options", "detail"),
    [
        ({"min_sum": "500.01"}, {}, "the receipt is 500.00; the coupon needs 500.01"),
        ({"locations": ["rest-b"]}, {}, "the coupon is valid at locations rest-b only"),
        ({"locations": ["rest-b"]}, {"location": None},
         "the coupon is valid at locations rest-b only"),
        ({"partners": ["zerno"]}, {"location": None}, "the coupon is valid at partners zerno only"),
        ({"tiers": ["vip"]}, {"tier": "base"}, "the coupon is valid for tiers vip only"),
        ({"segments": ["sleepers"]}, {"segments": frozenset({"newcomers"})},
         "the coupon is for the segments sleepers only"),
        ({"skus": ["LUNCH-1"]}, {}, "the receipt has no LUNCH-1"),
        ({"categories": ["lunch"]}, {}, "the receipt has no category lunch"),
    ],
)  # fmt: skip
def test_each_unmet_condition_is_said_in_words(zerno, conditions, options, detail):
    result = check(zerno, state(campaign(zerno, conditions=conditions)), **options)
    assert (result.reason, result.detail) == ("conditions_not_met", detail)


@pytest.mark.parametrize(
    ("conditions", "options"),
    [
        ({"min_sum": "500.00"}, {}),  # the sum itself is enough
        ({"partners": ["zerno"]}, {}),  # rest-a is zerno's
        ({"locations": ["rest-a"]}, {}),
        ({"tiers": ["vip"]}, {"tier": "vip"}),
        ({"segments": ["sleepers"]}, {"segments": frozenset({"sleepers", "x"})}),
        ({"categories": ["drinks"]}, {}),  # coffee is a drink
        ({"categories": ["bakery"]}, {}),  # CRS-1 is sent without one: the catalog's
        ({"skus": ["CRS-1"]}, {}),
    ],
)
def test_met_conditions(zerno, conditions, options):
    assert check(zerno, state(campaign(zerno, conditions=conditions)), **options).reason is None


def test_the_effect_needs_its_target_lines_on_the_receipt(zerno):
    for_lunch = campaign(zerno, effect={"percent": 10, "categories": ["lunch"]})
    assert check(zerno, state(for_lunch)).detail == (
        "the coupon is for category lunch: none on the receipt"
    )
    for_drinks = campaign(zerno, effect={"amount": "50", "categories": ["drinks"]})
    assert check(zerno, state(for_drinks)).reason is None
    free_tea = campaign(zerno, effect={"free_sku": "TEA-400"})
    assert check(zerno, state(free_tea)).detail == "the receipt has no TEA-400 to give free"
    free_cap = campaign(zerno, effect={"free_sku": "CAP-300"})
    assert check(zerno, state(free_cap)).effect.free_sku == "CAP-300"


def test_reasons_come_in_order_expired_before_used_before_not_yours(zerno):
    ended = campaign(zerno, valid={"until": "2026-03-01"})
    assert check(zerno, state(ended, uses=1, owner_member_id=2)).reason == "expired"
    assert check(zerno, state(campaign(zerno), uses=1, owner_member_id=2)).reason == "used"


def test_a_coupons_status(zerno):
    camp = campaign(zerno, valid={"until": "2026-03-31"})
    assert coupon_status(camp, None, 0, AT) == "available"
    assert coupon_status(camp, 5, 0, AT) == "issued"
    assert coupon_status(camp, 5, 1, AT) == "used"
    assert coupon_status(camp, 5, 0, AT + timedelta(days=30)) == "expired"
    assert coupon_status(campaign(zerno, paused=True), None, 0, AT) == "paused"
