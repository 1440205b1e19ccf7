"""Balances, history and manual adjustments."""

from __future__ import annotations

import pytest

from kopilka.checkout.purchases import process_purchase
from kopilka.kernel.errors import IdempotencyConflict, InsufficientPoints, InvalidInput
from kopilka.members.balances import adjust, balance, history
from kopilka.members.handlers import register_member
from tests.store.conftest import NOW
from tests.store.test_purchases import receipt


@pytest.fixture(autouse=True)
def member(zerno_engine):
    return register_member(zerno_engine, "zerno", {"card": "100009"}, now=NOW)


def test_an_adjustment_needs_a_reason_and_a_non_zero_amount(zerno_engine):
    with pytest.raises(InvalidInput, match="reason"):
        adjust(zerno_engine, "zerno", "card:100009", {"points": "5"}, actor="op", now=NOW)
    with pytest.raises(InvalidInput, match="points"):
        adjust(zerno_engine, "zerno", "card:100009", {"points": "0", "reason": "x"}, actor="op",
               now=NOW)  # fmt: skip


def test_an_adjustment_cannot_take_more_than_is_available(zerno_engine):
    adjust(zerno_engine, "zerno", "card:100009", {"points": "5", "reason": "gift"}, actor="op",
           now=NOW)  # fmt: skip
    with pytest.raises(InsufficientPoints):
        adjust(zerno_engine, "zerno", "card:100009", {"points": "-5.01", "reason": "fix"},
               actor="op", now=NOW)  # fmt: skip


def test_an_adjustment_replayed_with_its_id_happens_once(zerno_engine):
    data = {"points": "5", "reason": "gift", "adjustment_id": "A-1"}
    adjust(zerno_engine, "zerno", "card:100009", data, actor="op", now=NOW)
    adjust(zerno_engine, "zerno", "card:100009", data, actor="op", now=NOW)
    assert balance(zerno_engine, "zerno", "card:100009")["available"] == "5.00"
    with pytest.raises(IdempotencyConflict):
        adjust(zerno_engine, "zerno", "card:100009", {**data, "points": "6"}, actor="op", now=NOW)


def test_balance_and_history_say_where_every_point_came_from(zerno_engine):
    adjust(zerno_engine, "zerno", "card:100009", {"points": "10", "reason": "sorry"},
           actor="support:olga", now=NOW)  # fmt: skip
    process_purchase(zerno_engine, "zerno", receipt(member="card:100009", redeem="4.00"),
                     now=NOW, actor="pos")  # fmt: skip
    assert balance(zerno_engine, "zerno", "card:100009") == {
        "available": "8.86", "pending": "0.00", "held": "0.00",  # 10 − 4 + 286.00 × 1 %
        "lifetime_accrued": "2.86", "lifetime_redeemed": "4.00",
        "expiring": [{"date": "2027-03-10", "points": "8.86"}],  # a year after
    }  # fmt: skip
    page = history(zerno_engine, "zerno", "card:100009", limit=2)
    assert [(i["reason"], i["points"]) for i in page["items"]] == [
        ("purchase.accrual", "2.86"), ("purchase.redemption", "-4.00")]  # fmt: skip
    assert page["items"][0]["receipt_id"] == "R-1"
    rest = history(zerno_engine, "zerno", "card:100009", before=int(page["next"]))
    assert [(i["reason"], i["points"], i["actor"], i["note"]) for i in rest["items"]] == [
        ("adjustment", "10.00", "support:olga", "sorry")]  # fmt: skip
    assert rest["next"] is None
