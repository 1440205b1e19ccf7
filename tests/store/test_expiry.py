"""Points that burn: FIFO lots, warnings before, idempotent runs, refunds after, two workers.

The café program burns points 365 days after they became available and warns 14 days
before (`expiry: {after_days: 365, warn_days: 14}`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from kopilka.checkout.refunds import refund_purchase
from kopilka.ledger.verify import verify
from kopilka.mechanics.expiry.handlers import expire_due_points, warn_of_expiry
from kopilka.members.balances import adjust, balance
from kopilka.members.handlers import register_member
from kopilka.platform.tables import events, transfers
from kopilka.platform.worker import run_due_work
from tests.store.conftest import NOW, at_once
from tests.store.test_lots import buy, figures, member, with_settings

DAY = timedelta(days=1)


def expiry_transfers(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(
            select(func.count()).select_from(transfers).where(transfers.c.reason == "expiry")
        ).scalar_one())  # fmt: skip


def event_rows(engine: Engine, kind: str) -> list[tuple[str, dict[str, Any]]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(events.c.occasion, events.c.data).where(events.c.kind == kind)
            .order_by(events.c.id)
        )  # fmt: skip
        return [(row.occasion, row.data) for row in rows]


def test_what_was_not_spent_in_time_burns_oldest_first(zerno_engine: Engine) -> None:
    member(zerno_engine, "100")  # lot A: 100.00, burns NOW + 365 days
    adjust(zerno_engine, "zerno", "card:100009", {"points": "50", "reason": "later"},
           actor="op", now=NOW + 100 * DAY)  # fmt: skip  # lot B: burns 100 days after A
    buy(zerno_engine, "R-1", at=NOW + 200 * DAY, redeem="30")  # taken from A, which burns first
    assert expire_due_points(zerno_engine, now=NOW + 364 * DAY) == 0
    assert figures(zerno_engine)["available"] == "124.20"  # 150 − 30 + 4.20 earned
    assert expire_due_points(zerno_engine, now=NOW + 365 * DAY) == 1
    assert figures(zerno_engine)["available"] == "54.20"  # A's 70.00 left burnt: B and 4.20 stay
    assert expire_due_points(zerno_engine, now=NOW + 366 * DAY) == 0  # nothing twice
    assert expiry_transfers(zerno_engine) == 1
    [(_, data)] = event_rows(zerno_engine, "expiry")
    assert data == {"points_minor": 7000, "lots": 1}
    assert verify(zerno_engine)[1] == []


def test_a_run_for_the_same_moment_burns_nothing_the_second_time(zerno_engine: Engine) -> None:
    member(zerno_engine, "100")
    later = NOW + 400 * DAY
    first = run_due_work(zerno_engine, now=later)
    again = run_due_work(zerno_engine, now=later)
    assert (first["lots_expired"], again["lots_expired"]) == (1, 0)
    assert figures(zerno_engine)["available"] == "0.00"
    assert expiry_transfers(zerno_engine) == 1
    history = [(item["reason"], item["points"]) for item in _history(zerno_engine)]
    assert history[0] == ("expiry", "-100.00")
    assert verify(zerno_engine)[1] == []


def _history(engine: Engine) -> list[dict[str, str]]:
    from kopilka.members.balances import history

    items: list[dict[str, str]] = history(engine, "zerno", "card:100009")["items"]
    return items


def test_members_are_warned_once_before_their_points_burn(zerno_engine: Engine) -> None:
    member(zerno_engine, "100")
    assert warn_of_expiry(zerno_engine, now=NOW + 350 * DAY) == 0  # 15 days before: not yet
    assert warn_of_expiry(zerno_engine, now=NOW + 352 * DAY) == 1
    assert warn_of_expiry(zerno_engine, now=NOW + 353 * DAY) == 0  # the same date: once
    [(occasion, data)] = event_rows(zerno_engine, "expiry.warning")
    assert data["points_minor"] == 10000
    assert occasion == data["date"] == str((NOW + 365 * DAY).date())


def test_points_given_back_by_a_refund_after_their_lot_burnt_burn_at_the_next_run(
    zerno_engine: Engine,
) -> None:
    member(zerno_engine, "100")
    bought = buy(zerno_engine, "R-1", at=NOW + 10 * DAY, redeem="30")
    assert expire_due_points(zerno_engine, now=NOW + 370 * DAY) == 1  # A's 70.00
    refund_purchase(zerno_engine, "zerno", bought["purchase_id"], {"refund_id": "RF-1"},
                    actor="pos", now=NOW + 371 * DAY)  # fmt: skip
    after_refund = figures(zerno_engine)
    assert expire_due_points(zerno_engine, now=NOW + 371 * DAY) == 1  # the 30 came back to A
    assert figures(zerno_engine)["available"] < after_refund["available"]
    assert verify(zerno_engine)[1] == []


def test_calendar_period_expiry_burns_at_the_end_of_the_period_after(
    zerno_engine: Engine,
) -> None:
    with_settings(zerno_engine, expiry={"after_days": None, "period": "month", "warn_days": None})
    member(zerno_engine, "100")  # NOW is 2026-03-10: burns when May begins in Moscow,
    # 2026-04-30 21:00 UTC
    assert expire_due_points(zerno_engine, now=NOW.replace(month=4, day=30, hour=20)) == 0
    assert expire_due_points(zerno_engine, now=NOW.replace(month=5, day=1, hour=1)) == 1
    assert verify(zerno_engine)[1] == []


@pytest.mark.slow
def test_two_workers_at_once_burn_each_lot_exactly_once(zerno_engine: Engine) -> None:
    if zerno_engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time")
    for n in range(60):
        card = f"2000{n:03d}"
        register_member(zerno_engine, "zerno", {"card": card}, now=NOW)
        for k in range(3):
            adjust(zerno_engine, "zerno", f"card:{card}", {"points": "10", "reason": f"g{k}"},
                   actor="op", now=NOW + k * DAY)  # fmt: skip
    later = NOW + 400 * DAY
    burned = at_once(lambda: expire_due_points(zerno_engine, now=later, batch=7))
    assert sum(burned) == 180
    assert expiry_transfers(zerno_engine) == 180
    assert balance(zerno_engine, "zerno", "card:2000007")["available"] == "0.00"
    assert verify(zerno_engine)[1] == []
