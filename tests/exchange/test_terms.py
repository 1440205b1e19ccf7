"""The pair's terms: the minimum, the fee, the rate's rounding, the daily limit (raced),
refusals before anything is held, and repeats of a transaction id."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import Engine

from kopilka.kernel.errors import IdempotencyConflict, InsufficientPoints, InvalidInput
from kopilka.mechanics.exchange.model import Fee, Rate, credit_of, fee_of
from kopilka.mechanics.exchange.saga import ExchangeRefused, start_exchange
from tests.exchange.conftest import TO_NORTH, assert_sound, available, exchange, set_up
from tests.store.conftest import NOW, at_once


def test_the_fee_is_a_percent_rounded_half_up_plus_fixed_points() -> None:
    assert fee_of(Fee(Decimal("2"), 500), 12345) == 500 + 247  # 246.9 → 247
    assert fee_of(Fee(Decimal("2.5"), 0), 10) == 0  # 0.25 → 0
    assert fee_of(Fee(Decimal("2.5"), 0), 20) == 1  # 0.5 → 1
    assert fee_of(Fee(Decimal("0"), 900), 500) == 500  # never more than the points


def test_the_credit_is_rounded_down_to_the_target_s_precision() -> None:
    rate = Rate(Decimal("1000"), Decimal("800"))
    assert credit_of(97599, rate, 2, 0) == 780  # 975.99 → 780.792 → 780
    assert credit_of(97599, rate, 2, 2) == 78079  # → 780.79
    assert credit_of(1, Rate(Decimal("3"), Decimal("1")), 2, 2) == 0  # 0.0033… → 0
    assert credit_of(100, Rate(Decimal("3"), Decimal("1")), 0, 2) == 3333


def test_an_exchange_below_the_minimum_is_refused_and_writes_nothing(pair: Engine) -> None:
    with pytest.raises(InvalidInput, match=r"at least 100\.00 points"):
        exchange(pair, "99.99")
    assert available(pair, "zerno", "100001") == Decimal("5000.00")
    assert_sound(pair)


def test_an_exchange_worth_nothing_at_the_target_is_refused(engine: Engine) -> None:
    set_up(engine, to_north={**TO_NORTH, "min": "0", "fee": {"points": "1"}})
    with pytest.raises(InvalidInput, match="worth nothing"):
        exchange(engine, "2.00")  # 1.00 after the fee, 0.8 north points: 0


def test_the_rate_rounds_the_credit_down(pair: Engine) -> None:
    answer, _ = exchange(pair, "1000.99")
    # fee 5.00 + 20.0198 → 20.02 = 25.02; 975.97 × 0.8 = 780.776 → 780
    assert (answer["fee"], answer["credited"]) == ("25.02", "780")
    assert available(pair, "north", "900001") == Decimal("5780")
    assert_sound(pair)


def test_more_than_the_member_has_is_refused(pair: Engine) -> None:
    with pytest.raises(InsufficientPoints, match=r"5000\.00 points available"):
        exchange(pair, "5000.01", member="card:100002", transaction_id="big")
    exchange(pair, "3000", member="card:100002")
    with pytest.raises(InsufficientPoints):
        exchange(pair, "2000.01", member="card:100002")
    assert_sound(pair)


def test_the_daily_limit_counts_the_points_given_that_day(pair: Engine) -> None:
    exchange(pair, "2000")
    with pytest.raises(ExchangeRefused, match=r"leaves 1000\.00 for today") as refused:
        exchange(pair, "1000.01")
    assert refused.value.refused_by == "daily_limit"
    exchange(pair, "1000")
    exchange(pair, "500", at=NOW.replace(hour=21, minute=30))  # 00:30 in Moscow: a new day
    assert available(pair, "zerno", "100001") == Decimal("1500.00")
    assert_sound(pair, NOW, NOW.replace(hour=21, minute=30))


def test_two_exchanges_racing_for_the_day_s_limit_do_not_both_pass(pair: Engine) -> None:
    def one() -> str:
        try:
            return str(exchange(pair, "2000")[0]["state"])
        except ExchangeRefused as refused:
            return refused.refused_by

    assert sorted(at_once(one)) == ["confirmed", "daily_limit"]
    assert available(pair, "zerno", "100001") == Decimal("3000.00")
    assert_sound(pair)


def test_a_reversed_exchange_gives_its_points_back_to_the_day_s_limit(pair: Engine) -> None:
    answer, _ = exchange(pair, "3000", to_member="card:999999")
    assert answer["state"] == "reversed"
    assert exchange(pair, "3000")[0]["state"] == "confirmed"
    assert_sound(pair)


def test_a_repeat_answers_the_exchange_as_it_stands(pair: Engine) -> None:
    first, is_new = exchange(pair, "1000", transaction_id="same")
    again, again_new = exchange(pair, "1000", transaction_id="same")
    assert (is_new, again_new) == (True, False)
    assert again == first
    assert available(pair, "zerno", "100001") == Decimal("4000.00")
    assert available(pair, "north", "900001") == Decimal("5780")
    assert_sound(pair)


def test_the_same_id_with_another_body_is_an_idempotency_conflict(pair: Engine) -> None:
    exchange(pair, "1000", transaction_id="same")
    with pytest.raises(IdempotencyConflict):
        exchange(pair, "1001", transaction_id="same")
    with pytest.raises(IdempotencyConflict):  # another member of the program
        exchange(pair, "1000", transaction_id="same", member="card:100002")


def test_copies_of_one_exchange_at_once_exchange_once(pair: Engine) -> None:
    answers = at_once(lambda: exchange(pair, "1000", transaction_id="twice"), times=4)
    assert sorted(is_new for _, is_new in answers) == [False, False, False, True]
    assert available(pair, "zerno", "100001") == Decimal("4000.00")
    assert available(pair, "north", "900001") == Decimal("5780")
    assert_sound(pair)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"to_program": "north", "to_member": "card:900001", "points": "1"}, "transaction_id"),
        ({"transaction_id": "a b", "to_program": "north", "to_member": "x", "points": "1"},
         "transaction_id"),
        ({"transaction_id": "t", "to_program": "south", "to_member": "x", "points": "100"},
         "to_program"),
        ({"transaction_id": "t", "to_program": "north", "to_member": "x", "points": "1.001"},
         "points"),
        ({"transaction_id": "t", "to_program": "north", "to_member": "x", "points": "-5"},
         "points"),
        ({"transaction_id": "t", "to_program": "north", "to_member": "x", "points": "١٠٠"},
         "points"),
        ({"transaction_id": "t", "to_program": "north", "to_member": "x", "points": "1",
          "extra": 1}, "extra"),
    ],
)  # fmt: skip
def test_a_bad_request_names_its_field(pair: Engine, body: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as invalid:
        start_exchange(pair, "zerno", "card:100001", body, actor="test", now=NOW)
    assert field in {problem.loc for problem in invalid.value.problems}


def test_a_pair_closed_to_sending_refuses_before_holding(engine: Engine) -> None:
    set_up(engine, to_north={**TO_NORTH, "send": False})
    with pytest.raises(ExchangeRefused, match="closed") as refused:
        exchange(engine, "1000")
    assert refused.value.refused_by == "pair_closed"
    assert available(engine, "zerno", "100001") == Decimal("5000.00")
