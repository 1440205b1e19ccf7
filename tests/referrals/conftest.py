"""The café of tests/store with a `referrals` section, and the steps of a referral's
life: register, buy, refund, let the worker run."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from kopilka.checkout.purchases import process_purchase
from kopilka.checkout.refunds import refund_purchase
from kopilka.mechanics.referrals.handlers import member_referral, settle_due
from kopilka.members.balances import balance
from kopilka.members.handlers import register_member
from kopilka.platform.files import load_document
from kopilka.programs.handlers import apply_program
from tests.conftest import EXAMPLES
from tests.store.conftest import NOW, engine, zerno_engine

__all__ = ["engine", "zerno_engine"]

DAY = timedelta(days=1)
REFERRALS: dict[str, Any] = {
    "reward": {"referrer": "300", "friend": "150"},
    "waiting_days": 14,
    "min_purchase": "100.00",
    "link": "https://zerno.example/r/{code}",
}
_numbers = itertools.count(1)


def with_referrals(engine: Engine, section: dict[str, Any] | None = None, **more: Any) -> None:
    document: dict[str, Any] = load_document(EXAMPLES / "zerno" / "program.yaml")  # type: ignore[assignment]
    document["referrals"] = {**(section or REFERRALS), **more}
    apply_program(engine, document, actor="test", now=NOW - 30 * DAY)


@pytest.fixture
def cafe(zerno_engine: Engine) -> Engine:
    """The café running referrals: 300 points to the referrer, 150 to the friend, after
    14 days, for a first purchase of at least 100.00."""
    with_referrals(zerno_engine)
    return zerno_engine


def join(engine: Engine, card: str, *, at: datetime = NOW, **more: Any) -> dict[str, Any]:
    return register_member(engine, "zerno", {"card": card, **more}, now=at)


def code_of(engine: Engine, card: str) -> str:
    return str(member_referral(engine, "zerno", f"card:{card}", now=NOW)["code"])


def buy(
    engine: Engine,
    card: str,
    *,
    at: datetime = NOW,
    qty: int = 1,
    payment: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A purchase of `qty` teas (150.00 each) by the member, paid by card (`payment`:
    its `bin` and `last4`, the paying `device`, when given)."""
    body = {
        "receipt_id": f"R-{next(_numbers)}", "location": "kiosk",
        "member": f"card:{card}", "lines": [{"sku": "TEA-400", "qty": qty}],
        "payment": {"method": "card", **(payment or {})},
    }  # fmt: skip
    return process_purchase(engine, "zerno", body, now=at, actor="pos").answer


def refund(engine: Engine, purchase: dict[str, Any], *, at: datetime = NOW) -> None:
    refund_purchase(engine, "zerno", purchase["purchase_id"], {"refund_id": f"RF-{next(_numbers)}"},
                    actor="pos", now=at)  # fmt: skip


def settle(engine: Engine, at: datetime) -> dict[str, int]:
    return settle_due(engine, now=at)


def available(engine: Engine, card: str) -> str:
    return str(balance(engine, "zerno", f"card:{card}")["available"])
