"""A year in the life of the café program, on SQLite and PostgreSQL: purchases every week,
the worker burning their points 365 days later, refunds before and after the burn — and
`verify` proving the books from their rows all along.

The expiry transfer of a lot earned by a purchase refers to that purchase (the lot's
`purchase_id`): the points a purchase earned leave the member once — burnt, or taken back
by a refund, never both.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from kopilka.checkout.purchases import process_purchase
from kopilka.checkout.refunds import refund_purchase
from kopilka.ledger.verify import verify
from kopilka.members.balances import adjust, balance
from kopilka.members.handlers import register_member
from kopilka.platform.tables import transfers
from kopilka.platform.worker import run_due_work
from tests.store.conftest import NOW

DAY = timedelta(days=1)
CARDS = ("300001", "300002", "300003")


def _buy(engine: Engine, card: str, week: int, *, redeem: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "receipt_id": f"Y-{card}-{week}", "location": "kiosk", "member": f"card:{card}",
        "lines": [{"sku": "TEA-400", "qty": 2}, {"sku": "CRS-1", "qty": 1}],
    }  # fmt: skip
    if redeem:
        body["redeem"] = redeem
    at = NOW + week * 7 * DAY
    return process_purchase(engine, "zerno", body, now=at, actor="pos").answer


def _refund(engine: Engine, purchase: dict[str, Any], refund_id: str, day: int,
            lines: list[dict[str, Any]] | None = None) -> dict[str, Any]:  # fmt: skip
    body: dict[str, Any] = {"refund_id": refund_id, **({"lines": lines} if lines else {})}
    return refund_purchase(engine, "zerno", purchase["purchase_id"], body, actor="pos",
                           now=NOW + day * DAY)[0]  # fmt: skip


def _available(engine: Engine, card: str) -> Decimal:
    return Decimal(balance(engine, "zerno", f"card:{card}")["available"])


def _burnt_for(engine: Engine, purchase: dict[str, Any]) -> int:
    with engine.connect() as connection:
        return int(connection.execute(
            select(func.coalesce(func.sum(transfers.c.amount), 0)).where(
                transfers.c.purchase_id == int(purchase["purchase_id"]),
                transfers.c.reason == "expiry")
        ).scalar_one())  # fmt: skip


def _live_a_year(engine: Engine) -> dict[tuple[str, int], dict[str, Any]]:
    """Weekly purchases for 60 weeks (the third member pays with points every fourth week;
    half of the second member's week-1 purchase comes back in week 8), the worker every
    week; what each purchase answered."""
    for card in CARDS:
        register_member(engine, "zerno", {"card": card}, now=NOW)
        adjust(engine, "zerno", f"card:{card}", {"points": "20", "reason": "welcome"},
               actor="op", now=NOW)  # fmt: skip
    bought: dict[tuple[str, int], dict[str, Any]] = {}
    for week in range(60):
        for card in CARDS:
            redeem = "10" if card == CARDS[2] and week % 4 == 3 else None
            bought[card, week] = _buy(engine, card, week, redeem=redeem)
        if week == 8:  # its own lot pays the points back: nothing of it had burnt
            early = _refund(engine, bought[CARDS[1], 1], "RF-early", 8 * 7 + 1,
                            lines=[{"n": 0, "qty": 1}])  # fmt: skip
            assert (early["accrued_back"], early["accrued_burnt"]) == ("1.50", "0.00")
        run_due_work(engine, now=NOW + (week * 7 + 6) * DAY)
    return bought


@pytest.mark.slow
def test_a_year_of_purchases_expiry_and_refunds_verifies(zerno_engine: Engine) -> None:
    bought = _live_a_year(zerno_engine)
    checks, found = verify(zerno_engine)
    assert found == [], found
    first = bought[CARDS[0], 0]
    assert _burnt_for(zerno_engine, first) == 440  # 4.40 earned in week 0, burnt in week 52

    # a refund of a purchase whose points burnt takes nothing back for them a second time
    before = _available(zerno_engine, CARDS[0])
    refunded = _refund(zerno_engine, first, "RF-burnt", 60 * 7)
    assert (refunded["accrued_back"], refunded["accrued_burnt"]) == ("4.40", "4.40")
    assert _available(zerno_engine, CARDS[0]) == before

    # the rest of the half-refunded purchase, after its lot burnt what was left of it
    second = bought[CARDS[1], 1]
    assert _burnt_for(zerno_engine, second) == 290
    before = _available(zerno_engine, CARDS[1])
    late = _refund(zerno_engine, second, "RF-late", 60 * 7 + 1)
    assert (late["accrued_back"], late["accrued_burnt"]) == ("2.90", "2.90")
    assert _available(zerno_engine, CARDS[1]) == before

    # a purchase whose points were spent before the burn: the refund takes them back
    spender = bought[CARDS[2], 0]
    assert _burnt_for(zerno_engine, spender) == 0  # week 3 paid with them
    before = _available(zerno_engine, CARDS[2])
    spent = _refund(zerno_engine, spender, "RF-spent", 60 * 7 + 2)
    assert (spent["accrued_back"], spent["accrued_burnt"]) == ("4.40", "0.00")
    assert _available(zerno_engine, CARDS[2]) == before - Decimal("4.40")

    checks, found = verify(zerno_engine)
    assert "a purchase's points leave the member once: burnt or taken back" in checks
    assert "refund records equal their transfers" in checks
    assert found == [], found
