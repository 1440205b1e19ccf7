"""The café of tests/store with a `charity` section: two charities (one closed since
yesterday), round-ups to a whole point; and the steps of a member's giving."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from kopilka.checkout.purchases import process_purchase, settle_hold
from kopilka.checkout.refunds import refund_purchase
from kopilka.ledger.verify import verify
from kopilka.mechanics.charity.handlers import choose, donate
from kopilka.members.balances import balance, make_adjustment
from kopilka.members.handlers import register_member
from kopilka.platform.files import load_document
from kopilka.platform.tables import accounts, lots, transfers
from kopilka.programs.handlers import apply_program
from tests.conftest import EXAMPLES
from tests.store.conftest import NOW, engine, zerno_engine

__all__ = ["NOW", "engine", "zerno_engine"]

DAY = timedelta(days=1)
CHARITY: dict[str, Any] = {
    "charities": [
        {"code": "children", "name": "Фонд «Дети»", "link": "https://children.example"},
        {"code": "forest", "name": "Лес", "until": str((NOW - DAY).date())},
    ],
    "round_up": {"step": "1"},
}
_numbers = itertools.count(1)


def program_with_charity(code: str = "zerno", section: dict[str, Any] | None = None) -> Any:
    document: dict[str, Any] = load_document(EXAMPLES / "zerno" / "program.yaml")  # type: ignore[assignment]
    document["code"] = code
    document["charity"] = section or CHARITY
    return document


@pytest.fixture
def cafe(zerno_engine: Engine) -> Engine:
    apply_program(zerno_engine, program_with_charity(), actor="test", now=NOW - 30 * DAY)
    return zerno_engine


def join(engine: Engine, card: str, *, points: str | None = None) -> str:
    """A member of the café (with `points` given by an operator); their id."""
    member = register_member(engine, "zerno", {"card": card}, now=NOW - DAY)
    if points is not None:
        make_adjustment(engine, "zerno", f"card:{card}", {"points": points, "reason": "gift"},
                        actor="test", now=NOW - DAY)  # fmt: skip
    return str(member["id"])


def give(engine: Engine, card: str, charity: str, points: str, **more: Any) -> Any:
    answer, _made = donate(engine, "zerno", f"card:{card}", {"charity": charity, "points": points},
                           actor="pos", now=NOW, **more)  # fmt: skip
    return answer


def round_up_to(engine: Engine, card: str, charity: str = "children") -> Any:
    return choose(engine, "zerno", f"card:{card}", {"charity": charity}, now=NOW)


def buy(engine: Engine, card: str, *, qty: int = 1, hold: bool = False) -> dict[str, Any]:
    """`qty` teas (150.00 each) at the kiosk: 1 % is 1.50 points each."""
    body: dict[str, Any] = {
        "receipt_id": f"R-{next(_numbers)}", "location": "kiosk", "member": f"card:{card}",
        "lines": [{"sku": "TEA-400", "qty": qty}], "payment": {"method": "card"},
    }  # fmt: skip
    if hold:
        body["hold"] = True
    return process_purchase(engine, "zerno", body, now=NOW, actor="pos").answer


def refund(engine: Engine, purchase: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = refund_purchase(
        engine, "zerno", purchase["purchase_id"], {"refund_id": f"RF-{next(_numbers)}"},
        actor="pos", now=NOW + DAY)[0]  # fmt: skip
    return answer


def settle(engine: Engine, purchase: dict[str, Any], action: str) -> dict[str, Any]:
    answer, _ = settle_hold(engine, "zerno", purchase["purchase_id"], action, actor="pos",
                            now=NOW)  # fmt: skip
    return answer


def available(engine: Engine, card: str) -> str:
    return str(balance(engine, "zerno", f"card:{card}")["available"])


def charity_balance(engine: Engine, charity: str) -> int:
    """The points in the charity's ledger account (minor units), from its transfers."""
    with engine.connect() as connection:
        account = connection.execute(
            select(accounts.c.id).where(accounts.c.owner == f"charity:{charity}")
        ).scalar_one()
        moved = connection.execute(
            select(transfers.c.amount, transfers.c.credit_account_id, transfers.c.reason).where(
                (transfers.c.credit_account_id == account)
                | (transfers.c.debit_account_id == account)
            )
        ).all()
    return sum(row.amount if row.credit_account_id == account else -row.amount for row in moved)


def lots_left(engine: Engine, member_id: str) -> int:
    """The points left in the member's available lots."""
    query = select(lots.c.remaining).where(lots.c.member_id == int(member_id),
                                           lots.c.status == "available")  # fmt: skip
    with engine.connect() as connection:
        return sum(connection.execute(query).scalars())


def sound(engine: Engine) -> None:
    """`kopilka verify` finds nothing wrong (the charity's check included)."""
    checks, found = verify(engine)
    assert "charity accounts equal their donations" in checks
    assert found == []
