"""Stamp cards' model (issue 18): what a receipt earns on a card, where the card stands
after it, and the program file's `stamp_cards` section read and refused by name."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kopilka.kernel.errors import Problem
from kopilka.kernel.reading import Reader
from kopilka.mechanics.stamps.model import (
    OnRefund,
    StampCard,
    StampLine,
    StampPer,
    StampReward,
    advance,
    parse_stamp_cards,
)

DAY = date(2026, 12, 4)


def card(**changes: Any) -> StampCard:
    values: dict[str, Any] = {
        "code": "coffee", "name": "Every 6th coffee", "stamps": 6, "per": StampPer.UNIT,
        "amount": None, "skus": frozenset({"CAP-300", "ESP-60"}), "categories": None,
        "min_spend": 0, "max_per_receipt": None, "valid_from": None, "valid_until": None,
        "reward": StampReward(points=5000), "on_refund": OnRefund.CLAW_BACK,
    }  # fmt: skip
    return StampCard(**{**values, **changes})


def line(sku: str, qty: str = "1", amount: int = 30000, *categories: str) -> StampLine:
    return StampLine(sku, tuple(categories), Decimal(qty), amount)


def test_a_unit_card_stamps_each_whole_qualifying_unit() -> None:
    lines = [line("CAP-300", "2"), line("ESP-60", "0.5"), line("ESP-60", "0.5"), line("CRS-1")]
    assert card().earned(lines, DAY) == 3  # 2 + 0.5 + 0.5; the croissant does not count
    assert card().earned([line("CRS-1", "4")], DAY) == 0
    assert card(max_per_receipt=2).earned(lines, DAY) == 2


def test_a_line_given_free_earns_no_stamp() -> None:
    """The free coffee a full card gave (its coupon took all of the line) is no stamp
    towards the next card."""
    lines = [line("CAP-300", "1", 0), line("CAP-300", "2", 36000)]
    assert card().earned(lines, DAY) == 2
    assert card().earned([line("CAP-300", "1", 0)], DAY) == 0


def test_a_receipt_card_stamps_once_and_an_amount_card_per_amount_spent() -> None:
    lines = [line("CAP-300", "3", 90000), line("ESP-60", "1", 25000)]
    assert card(per=StampPer.RECEIPT).earned(lines, DAY) == 1
    assert card(per=StampPer.AMOUNT, amount=50000).earned(lines, DAY) == 2  # 1,150.00 // 500.00
    assert card(per=StampPer.AMOUNT, amount=50000, max_per_receipt=1).earned(lines, DAY) == 1


def test_categories_match_the_line_s_category_or_one_above_it() -> None:
    drinks = card(skus=None, categories=frozenset({"drinks"}), per=StampPer.RECEIPT)
    assert drinks.earned([line("TEA-400", "1", 20000, "tea", "drinks")], DAY) == 1
    assert drinks.earned([line("CRS-1", "1", 20000, "bakery")], DAY) == 0
    anything = card(skus=None, per=StampPer.RECEIPT)
    assert anything.earned([line("CRS-1", "1", 20000, "bakery")], DAY) == 1


def test_nothing_is_earned_below_the_minimum_outside_the_window_or_for_nothing_paid() -> None:
    lines = [line("CAP-300", "1", 30000)]
    assert card(min_spend=30001).earned(lines, DAY) == 0
    assert card(min_spend=30000).earned(lines, DAY) == 1
    assert card(valid_from=date(2026, 12, 5)).earned(lines, DAY) == 0
    assert card(valid_until=date(2026, 12, 3)).earned(lines, DAY) == 0
    assert card(valid_from=DAY, valid_until=DAY).earned(lines, DAY) == 1
    assert card().earned([line("CAP-300", "1", 0)], DAY) == 0  # a free coffee earns no stamp


def test_a_card_gives_its_reward_at_n_stamps_and_starts_again() -> None:
    six = card()
    assert advance(six, 4, 1) == (0, 5)
    assert advance(six, 5, 1) == (1, 0)
    assert advance(six, 5, 8) == (2, 1)
    assert advance(six, -2, 3) == (0, 1)  # owed stamps are made up first


@given(st.integers(min_value=-50, max_value=500), st.integers(min_value=0, max_value=500),
       st.integers(min_value=1, max_value=40))  # fmt: skip
def test_no_stamp_is_lost_or_made_on_the_way_to_a_reward(before: int, earned: int, n: int) -> None:
    rewards, after = advance(card(stamps=n), before, earned)
    assert rewards * n + after == before + earned
    assert rewards >= 0
    assert after < n


def parse(document: Any) -> tuple[tuple[StampCard, ...], list[Problem]]:
    problems: list[Problem] = []
    cards = parse_stamp_cards(Reader({"stamp_cards": document}, "", problems, ["stamp_cards"]),
                              point_digits=2, money_digits=2)  # fmt: skip
    return cards, problems


def test_the_section_reads_every_kind_of_card() -> None:
    cards, problems = parse([
        {"code": "coffee", "name": "Every 6th coffee free", "stamps": 6, "per": "unit",
         "skus": ["CAP-300", "ESP-60"], "max_per_receipt": 2,
         "valid": {"from": "2026-01-01", "until": "2026-12-31"},
         "reward": {"coupon": "FREE-COFFEE"}, "on_refund": "keep"},
        {"code": "lunch", "stamps": 3, "per": "amount", "amount": "500.00",
         "categories": ["lunch"], "min_spend": "300.00", "reward": {"points": "50"}},
    ])  # fmt: skip
    assert problems == []
    coffee, lunch = cards
    free = StampReward(coupon="FREE-COFFEE")
    assert coffee == card(name="Every 6th coffee free", max_per_receipt=2,
                          valid_from=date(2026, 1, 1), valid_until=date(2026, 12, 31),
                          reward=free, on_refund=OnRefund.KEEP)  # fmt: skip
    assert (lunch.per, lunch.amount, lunch.min_spend, lunch.reward) == (
        StampPer.AMOUNT, 50000, 30000, StampReward(points=5000))  # fmt: skip
    assert lunch.name == "lunch"
    assert lunch.on_refund is OnRefund.CLAW_BACK


@pytest.mark.parametrize(("item", "where", "words"), [
    ({"stamps": 0}, "stamp_cards[0] (c).stamps", "less than 1"),
    ({"stamps": 1001}, "stamp_cards[0] (c).stamps", "more than 1000"),
    ({"per": "visit"}, "stamp_cards[0] (c).per", "is not one of receipt|unit|amount"),
    ({"per": "amount"}, "stamp_cards[0] (c).amount", "is required"),
    ({"amount": "5.00"}, "stamp_cards[0] (c).amount", "does not apply to per: unit"),
    ({"reward": {"points": "5", "coupon": "X"}}, "stamp_cards[0] (c).reward", "exactly one"),
    ({"reward": {}}, "stamp_cards[0] (c).reward", "exactly one"),
    ({"valid": {"from": "2026-02-01", "until": "2026-01-01"}}, "stamp_cards[0] (c).valid",
     "before it starts"),
    ({"on_refund": "maybe"}, "stamp_cards[0] (c).on_refund", "claw_back|keep"),
    ({"stamp": 6}, "stamp_cards[0] (c).stamp", ""),
])  # fmt: skip
def test_a_mistake_in_a_card_is_named_where_it_is(item: dict[str, Any], where: str,
                                                  words: str) -> None:  # fmt: skip
    base = {"code": "c", "stamps": 6, "per": "unit", "reward": {"points": "10"}}
    _, problems = parse([{**base, **item}])
    assert any(p.loc == where and words in p.message for p in problems), problems


def test_two_cards_of_one_code_are_refused() -> None:
    base = {"code": "c", "stamps": 6, "per": "unit", "reward": {"points": "10"}}
    _, problems = parse([base, base])
    assert [p.message for p in problems] == ["duplicate stamp card code 'c'"]
