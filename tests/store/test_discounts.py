"""Discounts through the purchase service on SQLite and PostgreSQL: the member's history
(lifetime spend, first purchase, where they bought) and paid cards read from the rows;
refunds take discounted amounts back; managing discounts makes program versions."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from kopilka.checkout.purchases import process_purchase, quote_purchase
from kopilka.checkout.refunds import refund_purchase
from kopilka.kernel.errors import InvalidInput, NotFound
from kopilka.ledger.verify import verify
from kopilka.mechanics.discounts.handlers import (
    buy_discount_card,
    delete_discount,
    list_discounts,
    member_cards,
    put_discount,
)
from kopilka.members.handlers import register_member
from kopilka.platform.tables import purchases
from kopilka.programs.handlers import apply_program
from tests.store.conftest import at_once

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)  # a Tuesday, 12:00 in Moscow
DAY = timedelta(days=1)

PROGRAM: dict[str, Any] = {
    "code": "gorod",
    "currency": "RUB",
    "timezone": "Europe/Moscow",
    "accrual": {"base_percent": 10},
    "partners": [
        {"code": "bakery", "locations": [{"code": "b1"}]},
        {"code": "cinema", "locations": [{"code": "c1"}]},
    ],
    "catalog": {
        "categories": [{"code": "food"}, {"code": "film"}],
        "products": [
            {"sku": "BUN", "category": "food", "price": "100.00"},
            {"sku": "TICKET", "category": "film", "price": "500.00"},
        ],
    },
    "discount_cards": [
        {"code": "gold", "name": "Золотая карта", "fee": "990.00", "valid_days": 365}
    ],
    "discounts": [
        {
            "code": "loyal",
            "accumulative": [{"spend": "0", "percent": 0}, {"spend": "1000.00", "percent": 5}],
        },
        {"code": "welcome", "amount": "50.00", "when": {"first_purchase": True}},
        {
            "code": "bun-then-film",
            "percent": 20,
            "when": {"partners": ["cinema"], "bought_at": {"partners": ["bakery"], "days": 7}},
        },
        {"code": "gold-10", "percent": 10, "when": {"cards": ["gold"]}},
    ],
}


@pytest.fixture
def gorod(engine: Engine) -> Engine:
    apply_program(engine, PROGRAM, actor="test", now=T0)
    register_member(engine, "gorod", {"card": "100001"}, now=T0)
    return engine


def buy(engine: Engine, receipt: str, lines: list[tuple[str, int]], *, at: datetime,
        location: str = "b1") -> dict[str, Any]:  # fmt: skip
    body = {"receipt_id": receipt, "location": location, "member": "card:100001",
            "at": at.isoformat(), "lines": [{"sku": s, "qty": q} for s, q in lines]}  # fmt: skip
    return process_purchase(engine, "gorod", body, now=at, actor="test").answer


def codes(answer: dict[str, Any]) -> list[str]:
    return [d["code"] for d in answer["discounts"]]


def test_first_purchase_then_accumulative_from_the_stored_spend(gorod: Engine) -> None:
    first = buy(gorod, "R1", [("BUN", 6)], at=T0)
    assert codes(first) == ["welcome"]
    assert first["paid"] == "550.00"
    assert first["accrued"] == "55.00"  # points on what is left
    second = buy(gorod, "R2", [("BUN", 5)], at=T0 + DAY)
    assert codes(second) == []  # 550.00 spent: below 1000.00
    third = buy(gorod, "R3", [("BUN", 5)], at=T0 + 2 * DAY)
    assert codes(third) == ["loyal"]  # 1050.00 spent now
    assert third["discount"] == "25.00"
    with gorod.connect() as connection:
        spends = connection.execute(select(purchases.c.spend).order_by(purchases.c.id)).scalars()
        assert list(spends) == [55000, 50000, 47500]  # net of discounts
    assert verify(gorod)[1] == []


def test_a_refund_takes_back_spend_so_the_band_and_first_purchase_follow(gorod: Engine) -> None:
    first = buy(gorod, "R1", [("BUN", 11)], at=T0)
    assert codes(first) == ["welcome"]
    refund_purchase(gorod, "gorod", first["purchase_id"], {"refund_id": "RF1"},
                    actor="test", now=T0 + DAY)  # fmt: skip
    again = quote_purchase(gorod, "gorod", {"location": "b1", "member": "card:100001",
                                            "lines": [{"sku": "BUN", "qty": 11}]},
                           now=T0 + 2 * DAY)  # fmt: skip
    assert codes(again) == ["welcome"]  # a wholly returned purchase does not count


def test_a_cross_discount_reads_where_the_member_bought_lately(gorod: Engine) -> None:
    film = {"location": "c1", "member": "card:100001", "lines": [{"sku": "TICKET", "qty": 1}]}
    assert "bun-then-film" not in codes(quote_purchase(gorod, "gorod", film, now=T0))
    buy(gorod, "R1", [("BUN", 1)], at=T0)
    assert "bun-then-film" in codes(quote_purchase(gorod, "gorod", film, now=T0 + DAY))
    assert "bun-then-film" not in codes(quote_purchase(gorod, "gorod", film, now=T0 + 8 * DAY))


def test_a_paid_card_is_in_force_for_its_days_and_buying_again_extends_it(gorod: Engine) -> None:
    card, created = buy_discount_card(gorod, "gorod", "card:100001",
                                      {"card": "gold", "payment_ref": "T-1"},
                                      actor="test", now=T0)  # fmt: skip
    assert created
    assert card["fee"] == "990.00"
    assert card["valid_until"].startswith("2027-03-10")
    receipt = {"location": "b1", "member": "card:100001", "lines": [{"sku": "BUN", "qty": 1}]}
    assert "gold-10" in codes(quote_purchase(gorod, "gorod", receipt, now=T0 + DAY))
    assert "gold-10" not in codes(quote_purchase(gorod, "gorod", receipt, now=T0 + 366 * DAY))
    renewed, _ = buy_discount_card(gorod, "gorod", "card:100001", {"card": "gold"},
                                   actor="test", now=T0 + 300 * DAY)  # fmt: skip
    assert renewed["valid_from"].startswith("2027-03-10")
    assert "gold-10" in codes(quote_purchase(gorod, "gorod", receipt, now=T0 + 366 * DAY))
    held = member_cards(gorod, "gorod", "card:100001", now=T0 + DAY)["items"]
    assert [item["in_force"] for item in held] == [False, True]


def test_a_card_the_program_does_not_sell_is_refused_by_name(gorod: Engine) -> None:
    with pytest.raises(InvalidInput, match="unknown discount card 'platinum'"):
        buy_discount_card(gorod, "gorod", "card:100001", {"card": "platinum"}, actor="t", now=T0)


def test_managing_discounts_makes_program_versions(gorod: Engine) -> None:
    answer, created = put_discount(gorod, "gorod", "tuesday", {"percent": 7,
                                   "when": {"weekdays": ["tue"]}}, actor="t", now=T0)  # fmt: skip
    assert created
    assert answer["version"] == 2
    receipt = {"location": "b1", "lines": [{"sku": "BUN", "qty": 1}]}
    assert codes(quote_purchase(gorod, "gorod", receipt, now=T0)) == ["tuesday"]
    answer, created = put_discount(gorod, "gorod", "tuesday", {"percent": 8,
                                   "when": {"weekdays": ["tue"]}}, actor="t", now=T0)  # fmt: skip
    assert not created
    assert quote_purchase(gorod, "gorod", receipt, now=T0)["discount"] == "8.00"
    with pytest.raises(InvalidInput, match=r"discounts\[5\] \(bad\)\.percent: 120 is more"):
        put_discount(gorod, "gorod", "bad", {"percent": 120}, actor="t", now=T0)
    assert delete_discount(gorod, "gorod", "tuesday", actor="t", now=T0)["version"] == 4
    assert [d["code"] for d in list_discounts(gorod, "gorod")["items"]] == [
        "loyal", "welcome", "bun-then-film", "gold-10"]  # fmt: skip
    with pytest.raises(NotFound):
        delete_discount(gorod, "gorod", "tuesday", actor="t", now=T0)


def test_discounts_changed_at_once_are_all_kept(gorod: Engine) -> None:
    numbers = itertools.count()

    def add() -> int:
        n = next(numbers)
        answer, _ = put_discount(gorod, "gorod", f"d-{n}", {"percent": 1 + n}, actor="t", now=T0)
        return int(answer["version"])

    versions = at_once(add, times=8)
    assert sorted(versions) == list(range(2, 10))  # each change its own version
    codes_kept = {d["code"] for d in list_discounts(gorod, "gorod")["items"]}
    assert {f"d-{n}" for n in range(8)} <= codes_kept
