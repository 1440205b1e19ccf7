"""Lots, pending points and debts: points spent oldest-first, delayed, and owed after refunds."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from kopilka.checkout.purchases import process_purchase
from kopilka.checkout.refunds import refund_purchase
from kopilka.ledger.pending import activate_due_points
from kopilka.ledger.verify import verify
from kopilka.members.balances import adjust, balance
from kopilka.members.handlers import register_member
from kopilka.platform.files import load_document
from kopilka.platform.tables import lots
from kopilka.programs.handlers import apply_program
from tests.conftest import EXAMPLES
from tests.store.conftest import NOW
from tests.store.test_purchases import receipt

THREE_TEAS = [{"sku": "TEA-400", "qty": 3}]  # 450.00: 4.50 points, or 4.20 after 30 redeemed


def with_settings(engine: Engine, **sections: dict[str, Any]) -> None:
    """Apply the café's program with some sections changed, as its next version."""
    document: dict[str, Any] = load_document(EXAMPLES / "zerno" / "program.yaml")  # type: ignore[assignment]
    for name, values in sections.items():
        document[name] = {**(document.get(name) or {}), **values}
    apply_program(engine, document, actor="test", now=NOW)


def member(engine: Engine, start: str | None = None) -> None:
    register_member(engine, "zerno", {"card": "100009"}, now=NOW)
    if start:
        adjust(engine, "zerno", "card:100009", {"points": start, "reason": "start"}, actor="op",
               now=NOW)  # fmt: skip


def buy(engine: Engine, receipt_id: str, *, at=NOW, **changes: Any) -> dict[str, Any]:
    body = receipt(receipt_id=receipt_id, member="card:100009", lines=THREE_TEAS, **changes)
    return process_purchase(engine, "zerno", body, now=at, actor="pos").answer


def figures(engine: Engine) -> dict[str, Any]:
    return balance(engine, "zerno", "card:100009")


def lot_rows(engine: Engine) -> list[tuple[str, int, int, str]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(lots.c.status, lots.c.amount, lots.c.remaining, lots.c.reason).order_by(
                lots.c.id
            )
        )
        return [tuple(row) for row in rows]


def test_points_are_spent_from_the_lot_that_burns_first(zerno_engine):
    member(zerno_engine, "10")  # a lot of 10.00 burning in 365 days
    buy(zerno_engine, "R-1", at=NOW + timedelta(days=30))  # a lot of 4.50, burning 30 days later
    buy(zerno_engine, "R-2", at=NOW + timedelta(days=31), redeem="12.00")
    assert lot_rows(zerno_engine)[:2] == [
        ("available", 1000, 0, "adjustment"),  # the oldest went first …
        ("available", 450, 250, "purchase.accrual"),  # … then 2.00 of the next
    ]
    assert verify(zerno_engine)[1] == []


def test_the_balance_lists_what_burns_when(zerno_engine):
    member(zerno_engine, "10")
    buy(zerno_engine, "R-1", at=NOW + timedelta(days=1))
    expiring = figures(zerno_engine)["expiring"]
    assert expiring == [
        {"date": "2027-03-10", "points": "10.00"},  # 365 days after 2026-03-10 12:00 MSK
        {"date": "2027-03-11", "points": "4.50"},
    ]


def test_a_refund_returns_redeemed_points_to_the_lots_they_came_from(zerno_engine):
    member(zerno_engine, "100")
    bought = buy(zerno_engine, "R-1", redeem="30.00")
    refund_purchase(zerno_engine, "zerno", bought["purchase_id"], {"refund_id": "RF-1"},
                    actor="pos", now=NOW)  # fmt: skip
    assert lot_rows(zerno_engine) == [("available", 10000, 10000, "adjustment"),
                                      ("available", 420, 0, "purchase.accrual")]  # fmt: skip
    assert figures(zerno_engine)["available"] == "100.00"
    assert verify(zerno_engine)[1] == []


def test_pending_points_become_available_after_pending_days_once(zerno_engine):
    with_settings(zerno_engine, accrual={"pending_days": 14})
    member(zerno_engine)
    answer = buy(zerno_engine, "R-1")
    assert answer["accrued_status"] == "pending"
    assert answer["balance"] == {"available": "0.00", "pending": "4.50", "held": "0.00"}
    assert activate_due_points(zerno_engine, now=NOW + timedelta(days=13)) == 0
    assert activate_due_points(zerno_engine, now=NOW + timedelta(days=14)) == 1
    assert activate_due_points(zerno_engine, now=NOW + timedelta(days=14)) == 0
    assert (figures(zerno_engine)["available"], figures(zerno_engine)["pending"]) == (
        "4.50", "0.00")  # fmt: skip
    assert verify(zerno_engine)[1] == []


def test_a_refund_before_activation_takes_the_points_off_pending(zerno_engine):
    with_settings(zerno_engine, accrual={"pending_days": 14})
    member(zerno_engine)
    answer = buy(zerno_engine, "R-1")
    refund_purchase(zerno_engine, "zerno", answer["purchase_id"],
                    {"refund_id": "RF-1", "lines": [{"n": 0, "qty": 1}]}, actor="pos",
                    now=NOW)  # fmt: skip
    assert figures(zerno_engine)["pending"] == "3.00"
    activate_due_points(zerno_engine, now=NOW + timedelta(days=14))
    assert figures(zerno_engine)["available"] == "3.00"
    assert verify(zerno_engine)[1] == []


@pytest.mark.parametrize(
    ("spent_points", "available", "debt_repaid_by_next_purchase"),
    [("negative", "-4.50", "0.00"), ("debt", "0.00", "0.00")],
)
def test_a_refund_of_spent_points_follows_the_program_setting(
    zerno_engine, spent_points, available, debt_repaid_by_next_purchase
):
    with_settings(zerno_engine, refunds={"spent_points": spent_points})
    member(zerno_engine)
    first = buy(zerno_engine, "R-1")  # 4.50 accrued …
    adjust(
        zerno_engine,
        "zerno",
        "card:100009",
        {"points": "-4.50", "reason": "spent"},
        actor="op",
        now=NOW,
    )  # … and spent
    refund_purchase(zerno_engine, "zerno", first["purchase_id"], {"refund_id": "RF-1"},
                    actor="pos", now=NOW)  # fmt: skip
    assert figures(zerno_engine)["available"] == available
    # either way the next 4.50 accrued first fills the hole, then counts
    buy(zerno_engine, "R-2")
    assert figures(zerno_engine)["available"] == debt_repaid_by_next_purchase
    buy(zerno_engine, "R-3")
    assert figures(zerno_engine)["available"] == "4.50"
    assert verify(zerno_engine)[1] == []
