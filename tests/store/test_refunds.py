"""Refunds: points come back in proportion, exactly once, never more than was bought."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from kopilka.checkout.purchases import process_purchase
from kopilka.checkout.refunds import refund_purchase
from kopilka.kernel.errors import IdempotencyConflict, InvalidInput, NotFound
from kopilka.members.balances import adjust, balance
from kopilka.members.handlers import register_member
from tests.store.conftest import NOW
from tests.store.test_purchases import receipt

THREE_TEAS = [{"sku": "TEA-400", "qty": 3}]  # 450.00


@pytest.fixture
def bought(zerno_engine):
    """A member with 100.00 points buys three teas paying 30.00 of them with points."""
    register_member(zerno_engine, "zerno", {"card": "100009"}, now=NOW)
    adjust(zerno_engine, "zerno", "card:100009", {"points": "100", "reason": "start"},
           actor="op", now=NOW)  # fmt: skip
    result = process_purchase(zerno_engine, "zerno", receipt(
        member="card:100009", lines=THREE_TEAS, redeem="30.00"), now=NOW, actor="pos")  # fmt: skip
    # paid 420.00 × 1 % = 4.20 accrued; balance 100 − 30 + 4.20 = 74.20
    assert result.answer["balance"]["available"] == "74.20"
    return result.answer["purchase_id"]


def refund(engine: Engine, purchase_id: str, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    return refund_purchase(engine, "zerno", purchase_id, body, actor="pos", now=NOW)


def available(engine: Engine) -> str:
    return str(balance(engine, "zerno", "card:100009")["available"])


def test_a_whole_refund_takes_back_the_accrual_and_returns_the_redemption(zerno_engine, bought):
    answer, created = refund(zerno_engine, bought, {"refund_id": "RF-1"})
    assert created
    assert (answer["accrued_back"], answer["redeemed_back"]) == ("4.20", "30.00")
    assert answer["purchase_status"] == "refunded"
    assert available(zerno_engine) == "100.00"


def test_partial_refunds_add_up_to_exactly_the_whole(zerno_engine, bought):
    first, _ = refund(zerno_engine, bought, {"refund_id": "RF-1", "lines": [{"n": 0, "qty": 1}]})
    # ⌊4.20 / 3⌋ = 1.40, ⌊30.00 / 3⌋ = 10.00
    assert (first["accrued_back"], first["redeemed_back"]) == ("1.40", "10.00")
    assert first["purchase_status"] == "partially_refunded"
    refund(zerno_engine, bought, {"refund_id": "RF-2", "lines": [{"n": 0, "qty": 1}]})
    last, _ = refund(zerno_engine, bought, {"refund_id": "RF-3"})
    assert last["purchase_status"] == "refunded"
    assert available(zerno_engine) == "100.00"


def test_refunding_more_than_was_bought_is_refused_and_writes_nothing(zerno_engine, bought):
    with pytest.raises(InvalidInput, match="more than"):
        refund(zerno_engine, bought, {"refund_id": "RF-1", "lines": [{"n": 0, "qty": 4}]})
    refund(zerno_engine, bought, {"refund_id": "RF-2"})
    with pytest.raises(InvalidInput, match="already refunded"):
        refund(zerno_engine, bought, {"refund_id": "RF-3"})
    assert available(zerno_engine) == "100.00"


def test_a_refund_replayed_answers_the_same_and_moves_nothing(zerno_engine, bought):
    body = {"refund_id": "RF-1", "lines": [{"n": 0, "qty": 1}]}
    first, _ = refund(zerno_engine, bought, body)
    again, created = refund(zerno_engine, bought, body)
    assert (again, created) == (first, False)
    with pytest.raises(IdempotencyConflict):
        refund(zerno_engine, bought, {"refund_id": "RF-1", "lines": [{"n": 0, "qty": 2}]})
    assert available(zerno_engine) == "82.80"  # 74.20 − 1.40 + 10.00


def test_a_refund_after_the_points_were_spent_leaves_a_negative_balance(zerno_engine, bought):
    adjust(zerno_engine, "zerno", "card:100009", {"points": "-74.20", "reason": "spent"},
           actor="op", now=NOW)  # fmt: skip
    refund(zerno_engine, bought, {"refund_id": "RF-1"})
    assert available(zerno_engine) == "25.80"  # 0 + 30.00 − 4.20


def test_an_unknown_purchase_or_line_is_named(zerno_engine, bought):

    with pytest.raises(NotFound):
        refund(zerno_engine, "999999", {"refund_id": "RF-1"})
    with pytest.raises(InvalidInput, match="no such line"):
        refund(zerno_engine, bought, {"refund_id": "RF-1", "lines": [{"n": 5, "qty": 1}]})
