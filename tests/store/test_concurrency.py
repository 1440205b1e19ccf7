"""Real parallel connections: a member's purchases never overdraw; one receipt, one effect."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier
from typing import Any

from kopilka.checkout.purchases import process_purchase
from kopilka.kernel.errors import InsufficientPoints
from kopilka.members.balances import adjust, balance
from kopilka.members.handlers import register_member
from tests.store.conftest import NOW


def redeem_ten(receipt_id: str) -> dict[str, Any]:
    # 10.00 of a 10.00 line paid with points: nothing left to accrue on
    return {"receipt_id": receipt_id, "location": "kiosk", "member": "card:100009",
            "at": "2026-03-10T11:00:00+03:00",
            "lines": [{"sku": "GIFT", "qty": 1, "price": "10.00"}], "redeem": "10.00"}  # fmt: skip


def run_at_once(count: int, task: Any) -> list[Any]:
    """Run `task(i)` in `count` threads released together; results or exceptions, in order."""
    barrier = Barrier(count)

    def started(i: int) -> Any:
        barrier.wait()
        try:
            return task(i)
        except Exception as error:  # collected, not raised: the test counts outcomes
            return error

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(started, range(count)))


def test_fifty_concurrent_redemptions_of_ten_from_a_hundred_exactly_ten_succeed(zerno_engine):
    register_member(zerno_engine, "zerno", {"card": "100009"}, now=NOW)
    adjust(zerno_engine, "zerno", "card:100009", {"points": "100.00", "reason": "test"},
           actor="test", now=NOW)  # fmt: skip
    outcomes = run_at_once(50, lambda i: process_purchase(
        zerno_engine, "zerno", redeem_ten(f"R-{i}"), now=NOW, actor="pos"))  # fmt: skip
    succeeded = [o for o in outcomes if not isinstance(o, Exception)]
    refused = [o for o in outcomes if isinstance(o, InsufficientPoints)]
    assert (len(succeeded), len(refused)) == (10, 40), [
        o for o in outcomes if isinstance(o, Exception) and not isinstance(o, InsufficientPoints)
    ][:3]
    assert balance(zerno_engine, "zerno", "card:100009")["available"] == "0.00"


def test_one_receipt_sent_twenty_times_at_once_has_one_effect_and_one_answer(zerno_engine):
    register_member(zerno_engine, "zerno", {"card": "100009"}, now=NOW)
    body = {"receipt_id": "R-SAME", "location": "kiosk", "member": "card:100009",
            "at": "2026-03-10T11:00:00+03:00", "lines": [{"sku": "TEA-400", "qty": 1}]}  # fmt: skip
    outcomes = run_at_once(20, lambda _: process_purchase(
        zerno_engine, "zerno", body, now=NOW, actor="pos"))  # fmt: skip
    assert not [o for o in outcomes if isinstance(o, Exception)]
    assert sum(o.created for o in outcomes) == 1
    assert len({repr(o.answer) for o in outcomes}) == 1
    assert balance(zerno_engine, "zerno", "card:100009")["available"] == "1.50"
