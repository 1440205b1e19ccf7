"""Cashback's program-file section and its pure calculation (kopilka.mechanics.cashback.model)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from kopilka.kernel.errors import InvalidInput
from kopilka.kernel.program_parser import parse_program
from kopilka.mechanics.cashback.model import (
    BinRange,
    CashbackAward,
    CashbackSettings,
    cashback_of,
    compute_cashback,
    percent_of,
    share_of,
    show_percent,
)

AT = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
CAMPAIGN: dict[str, Any] = {
    "code": "more-you-spend",
    "name": "Чем больше, тем выше",
    "bands": [
        {"min": "0.00", "percent": 1},
        {"min": "3000.00", "percent": 3},
        {"min": "10000.00", "percent": 5},
    ],
}
DOCUMENT: dict[str, Any] = {
    "code": "shop",
    "currency": "RUB",
    "timezone": "Europe/Moscow",
    "partners": [
        {"code": "zerno", "locations": [{"code": "rest-a"}, {"code": "rest-b"}]},
        {"code": "other", "locations": [{"code": "kiosk"}]},
    ],
    "cashback": {"pending_days": 14, "min_payout": "500.00", "campaigns": [CAMPAIGN]},
}


def settings(**campaign: Any) -> CashbackSettings:
    document = copy.deepcopy(DOCUMENT)
    document["cashback"]["campaigns"] = [{**copy.deepcopy(CAMPAIGN), **campaign}]
    parsed = cashback_of(parse_program(document))
    assert parsed is not None
    return parsed


def problems(cashback: Any) -> list[str]:
    document = {**copy.deepcopy(DOCUMENT), "cashback": cashback}
    with pytest.raises(InvalidInput) as caught:
        parse_program(document)
    return [str(problem) for problem in caught.value.problems]


def with_campaign(**changes: Any) -> dict[str, Any]:
    campaign = {**copy.deepcopy(CAMPAIGN), **changes}
    return {"campaigns": [{k: v for k, v in campaign.items() if v is not None}]}


def cashback(found: CashbackSettings, paid: str, **receipt: Any) -> list[CashbackAward]:
    context = {"location": "rest-a", "partner": "zerno", "method": None, "card_bin": None,
               "at": AT, **receipt}  # fmt: skip
    return compute_cashback(found, paid=int(Decimal(paid) * 100), **context)


# — parsing —


def test_the_documented_section_parses_into_minor_units_and_decimals():
    found = settings(
        payment={"methods": ["card"], "bins": ["220000-220499", "427600"]},
        partners=["zerno"],
        between={"from": "2026-01-01", "to": "2026-12-31"},
        budget="100000.00",
        max_per_receipt="1000.00",
    )
    assert (found.pending_days, found.min_payout) == (14, 50000)
    [campaign] = found.campaigns
    assert [(b.min, b.percent) for b in campaign.bands] == [
        (0, Decimal(1)), (300000, Decimal(3)), (1000000, Decimal(5))]  # fmt: skip
    assert campaign.methods == frozenset({"card"})
    assert campaign.bins == (BinRange("220000", "220499"), BinRange("427600", "427600"))
    assert (campaign.budget, campaign.max_per_receipt) == (10000000, 100000)
    assert campaign.name == "Чем больше, тем выше"
    assert found.campaign("more-you-spend") is campaign


def test_no_section_is_no_cashback_and_defaults_are_zero():
    document = {k: v for k, v in DOCUMENT.items() if k != "cashback"}
    assert cashback_of(parse_program(document)) is None
    minimal = cashback_of(parse_program({**DOCUMENT, "cashback": {"campaigns": [CAMPAIGN]}}))
    assert minimal is not None
    assert (minimal.pending_days, minimal.min_payout) == (0, 0)


@pytest.mark.parametrize(
    ("cashback", "expected"),
    [
        ({"campaigns": [CAMPAIGN], "pending": 3}, "cashback.pending: unknown key; did you mean"),
        (with_campaign(budjet="1.00"), "cashback.campaigns[0] (more-you-spend).budjet: unknown"),
        ({"pending_days": -1, "campaigns": [CAMPAIGN]}, "cashback.pending_days: -1 is less than 0"),
        ({"min_payout": "1.001", "campaigns": [CAMPAIGN]}, "has more than 2 decimals"),
        ({"pending_days": 1}, "cashback.campaigns: is required"),
        ({"campaigns": []}, "cashback.campaigns: is empty: give at least one campaign"),
        (with_campaign(bands=None), "(more-you-spend).bands: is required"),
        (with_campaign(bands=[]), "(more-you-spend).bands: is empty"),
        (with_campaign(bands=[{"min": "10.00", "percent": 1}, {"min": "5.00", "percent": 2}]),
         "bands[1] (5.00).min: bands must ascend"),
        (with_campaign(bands=[{"min": "0", "percent": 1}, {"min": "0", "percent": 2}]),
         "bands[1] (0).min: bands must ascend"),
        (with_campaign(bands=[{"min": "0", "percent": 101}]), "percent: 101 is more than 100"),
        (with_campaign(bands=[{"min": "0", "percent": -1}]), "percent: -1 is less than 0"),
        (with_campaign(bands=[{"min": "0", "percent": "lots"}]), "'lots' is not a percent"),
        (with_campaign(bands=[{"min": "0"}]), "bands[0] (0).percent: is required"),
        (with_campaign(bands=[{"min": "0", "percent": 1, "max": 5}]), "bands[0] (0).max: unknown"),
        (with_campaign(payment={"bins": ["22x000"]}), "'22x000' is not a BIN prefix"),
        (with_campaign(payment={"bins": ["2200-220499"]}), "both ends of a BIN range"),
        (with_campaign(payment={"bins": ["220499-220000"]}), "the range's start is above its end"),
        (with_campaign(payment={"bins": ["123456789"]}), "is not a BIN prefix (1–8 digits)"),
        (with_campaign(payment={"bins": []}), "payment.bins: is empty"),
        (with_campaign(payment={}), "payment: give methods, bins, or both"),
        (with_campaign(payment={"methods": ["card"], "card": True}), "payment.card: unknown key"),
        (with_campaign(partners=["nobody"]), "partners: unknown partner 'nobody'"),
        (with_campaign(locations=["nowhere"]), "locations: unknown location 'nowhere'"),
        (with_campaign(between={"from": "2026-12-31", "to": "2026-01-01"}), "is after to"),
        (with_campaign(between={}), "between: give from, to, or both"),
        (with_campaign(budget="0"), "budget: must be more than 0"),
        (with_campaign(max_per_receipt="-5"), "max_per_receipt: -5 is less than 0"),
        (with_campaign(code=None), "cashback.campaigns[0].code: is required"),
        ({"campaigns": [CAMPAIGN, CAMPAIGN]}, "duplicate campaign code 'more-you-spend'"),
        ({"campaigns": "all"}, "cashback.campaigns: must be a list"),
        ("yes", "cashback: must be a mapping"),
    ],
)  # fmt: skip
def test_each_mistake_is_named_with_its_place(cashback, expected):
    found = problems(cashback)
    assert any(expected in problem for problem in found), found


def test_every_mistake_is_reported_in_one_pass():
    bad = with_campaign(bands=[{"min": "0", "percent": 200}], budget="0",
                        payment={"bins": ["x"]})  # fmt: skip
    assert len(problems(bad)) == 3


# — calculation —


def test_the_band_the_paid_amount_falls_in_gives_its_percent():
    found = settings()
    assert cashback(found, "2999.99")[0].percent == 1
    assert cashback(found, "3000.00")[0].percent == 3  # a band's min is inclusive
    assert cashback(found, "9999.99")[0].percent == 3
    [award] = cashback(found, "10000.00")
    assert award == CashbackAward("more-you-spend", Decimal(5), 1000000, 50000)


def test_below_the_first_band_or_nothing_paid_gives_nothing():
    found = settings(bands=[{"min": "100.00", "percent": 2}])
    assert cashback(found, "99.99") == []
    assert cashback(found, "0") == []
    assert compute_cashback(None, paid=10000, location=None, partner=None, method=None,
                            card_bin=None, at=AT) == []  # fmt: skip


def test_amounts_round_down_to_the_kopeck_exactly():
    found = settings(bands=[{"min": "0", "percent": "2.5"}])
    assert cashback(found, "0.39") == []  # 0.975 kopecks: nothing
    assert cashback(found, "123.45")[0].amount == 308  # 3.08625 → 3.08
    # exact at the limits of what a program file may hold (18 decimals, 15 digits)
    assert percent_of(10**15, Decimal("99.999999999999999999")) == 10**15 - 1
    assert show_percent(Decimal("2.50")) == "2.5"
    assert show_percent(Decimal(100)) == "100"


def test_max_per_receipt_caps_a_campaign():
    found = settings(max_per_receipt="100.00")
    assert cashback(found, "50000.00")[0].amount == 10000  # 5 % = 2500.00, capped


@pytest.mark.parametrize(
    ("payment", "method", "card_bin", "applies"),
    [
        ({"methods": ["card"]}, "card", None, True),
        ({"methods": ["card"]}, "cash", None, False),
        ({"methods": ["card"]}, None, None, False),
        ({"bins": ["220000-220499"]}, "card", "22000012", True),
        ({"bins": ["220000-220499"]}, "card", "220499", True),
        ({"bins": ["220000-220499"]}, "card", "220500", False),
        ({"bins": ["220000-220499"]}, "card", None, False),  # no BIN: no bank to match
        ({"bins": ["4276"]}, "card", "427600", True),  # a prefix
        ({"bins": ["4276", "5"]}, "card", "510000", True),
        ({"bins": ["42760000"]}, "card", "427600", False),  # longer than the BIN sent
        ({"methods": ["card"], "bins": ["427600"]}, "sbp", "427600", False),
    ],
)
def test_payment_method_and_bin_conditions(payment, method, card_bin, applies):
    found = settings(payment=payment)
    assert bool(cashback(found, "1000.00", method=method, card_bin=card_bin)) is applies


def test_partner_location_and_date_conditions():
    by_partner = settings(partners=["zerno"])
    assert cashback(by_partner, "100.00", partner="zerno")
    assert not cashback(by_partner, "100.00", partner="other", location="kiosk")
    assert not cashback(by_partner, "100.00", partner=None, location=None)
    by_location = settings(locations=["rest-b"])
    assert not cashback(by_location, "100.00", location="rest-a")
    assert cashback(by_location, "100.00", location="rest-b")
    dated = settings(between={"from": "2026-03-10", "to": "2026-03-10"})
    assert cashback(dated, "100.00")
    assert not cashback(dated, "100.00", at=datetime(2026, 3, 11, tzinfo=UTC))


def test_each_matching_campaign_gives_its_own_award():
    document = copy.deepcopy(DOCUMENT)
    card = {"code": "bank-card", "bands": [{"min": "0", "percent": "0.5"}],
            "payment": {"methods": ["card"]}}  # fmt: skip
    document["cashback"]["campaigns"].append(card)
    found = cashback_of(parse_program(document))
    assert found is not None
    both = cashback(found, "4000.00", method="card")
    assert [(a.campaign, a.amount) for a in both] == [("more-you-spend", 12000),
                                                       ("bank-card", 2000)]  # fmt: skip
    assert [a.campaign for a in cashback(found, "4000.00", method="cash")] == ["more-you-spend"]


def test_a_refunds_share_rounds_down_and_the_last_takes_the_rest():
    assert share_of(1000, 1, 3) == 333
    assert share_of(1000, 2, 3) == 666
    assert share_of(1000, 3, 3) == 1000
    assert share_of(1000, 5, 3) == 1000
    assert share_of(1000, 0, 3) == 0
