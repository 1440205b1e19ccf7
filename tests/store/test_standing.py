"""A member's standing is kept, not summed (issue 17): the purchase, refund and hold
writes add to `member_days` and `member_totals`; tiers, discounts and the balance read
those; revision 0016 builds them for what came before; and nothing on the hot path reads
a member's purchases or transfers to learn it."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from kopilka.checkout.purchases import process_purchase, settle_hold
from kopilka.ledger.verify import verify
from kopilka.members.balances import balance
from kopilka.members.handlers import register_member
from kopilka.platform.migrate import downgrade, upgrade
from kopilka.platform.tables import member_days, member_expiring, member_totals
from tests.store.conftest import NOW, statements_of
from tests.store.test_purchases import receipt
from tests.store.test_tiers import DAY, T0, buy, code, member, program, refund


def days_of(engine: Engine) -> dict[date, tuple[int, int]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(member_days.c.day, member_days.c.spend, member_days.c.purchases)
        ).all()
    return {day: (spend, count) for day, spend, count in rows}


def totals_of(engine: Engine) -> tuple[Any, ...]:
    with engine.connect() as connection:
        row = connection.execute(
            select(member_totals.c.spend, member_totals.c.purchases,
                   member_totals.c.points_accrued, member_totals.c.points_redeemed)
        ).one()  # fmt: skip
    return tuple(row)


def history_of_a_member(engine: Engine) -> str:
    """A member's purchases over three days (12:00 in Moscow): a refund in part, one in
    full, a hold confirmed (counted on its purchase's day) and one cancelled."""
    program(engine)
    anna = member(engine)
    buy(engine, anna, "500.00", at=T0)
    partly = buy(engine, anna, "800.00", at=T0)
    whole = buy(engine, anna, "300.00", at=T0 + DAY)
    held = buy(engine, anna, "200.00", at=T0 + DAY, hold=True)
    cancelled = buy(engine, anna, "700.00", at=T0 + DAY, hold=True)
    refund(engine, partly, T0 + 2 * DAY, lines=[{"n": 0, "qty": "0.5"}])
    refund(engine, whole, T0 + 2 * DAY)
    settle_hold(engine, "kolos", held["purchase_id"], "confirm", actor="pos",
                now=T0 + DAY + timedelta(minutes=1))  # fmt: skip
    settle_hold(engine, "kolos", cancelled["purchase_id"], "cancel", actor="pos",
                now=T0 + DAY + timedelta(minutes=1))  # fmt: skip
    return anna


def test_purchases_refunds_and_holds_keep_the_standing_by_day(engine: Engine) -> None:
    history_of_a_member(engine)
    first = T0.date()
    assert days_of(engine) == {
        first: (50_000 + 80_000 - 40_000, 2),  # half of the 800.00 came back
        first + timedelta(days=1): (20_000, 1),  # 300.00 returned in full: no purchase
    }
    spend, purchases, accrued, redeemed = totals_of(engine)
    assert (spend, purchases, redeemed) == (110_000, 3, 0)
    assert accrued > 0
    assert verify(engine)[1] == []


def test_a_day_is_the_programs_local_day(engine: Engine) -> None:
    program(engine)
    anna = member(engine)
    late = T0.replace(hour=22)  # 01:00 the next day in Moscow
    buy(engine, anna, "100.00", at=late)
    assert days_of(engine) == {T0.date() + timedelta(days=1): (10_000, 1)}


def test_the_balance_lifetime_figures_are_the_kept_ones(engine: Engine) -> None:
    anna = history_of_a_member(engine)
    figures = balance(engine, "kolos", anna)
    accrued = totals_of(engine)[2]
    assert figures["lifetime_accrued"] == f"{accrued // 100}.{accrued % 100:02d}"
    assert figures["lifetime_redeemed"] == "0.00"


def test_a_tier_purchase_and_a_balance_read_no_purchases_nor_transfers(engine: Engine) -> None:
    program(engine)
    anna = member(engine)
    for n in range(5):
        buy(engine, anna, "200.00", at=T0 + n * DAY)
    sent = statements_of(engine, lambda: (buy(engine, anna, "100.00", at=T0 + 6 * DAY),
                                          balance(engine, "kolos", anna)))  # fmt: skip
    seen = [" ".join(sql.lower().split()) for sql in sent]
    reads = [
        sql
        for sql in seen
        if any(f"from {table}" in sql for table in ("purchases", "transfers", "lots"))
    ]
    assert reads == [], reads
    assert code(engine, anna, T0 + 6 * DAY) == "silver"  # 1100.00 in the window


@pytest.mark.real_migration
def test_revision_0016_builds_the_standing_of_what_came_before(engine: Engine) -> None:
    history_of_a_member(engine)
    kept_days, kept_totals = days_of(engine), totals_of(engine)
    downgrade(engine, "0015")
    upgrade(engine)
    assert days_of(engine) == kept_days
    assert totals_of(engine) == kept_totals
    assert verify(engine)[1] == []


@pytest.mark.real_migration
def test_revision_0017_builds_the_expiring_points_of_the_lots_before(zerno_engine: Engine) -> None:
    """The café's points burn 365 days after they are earned: a day each purchase."""
    register_member(zerno_engine, "zerno", {"card": "100009"}, now=NOW)
    for n in range(3):
        process_purchase(zerno_engine, "zerno", receipt(receipt_id=f"R-{n}", member="card:100009"),
                         now=NOW + n * DAY, actor="pos")  # fmt: skip
    paying = receipt(receipt_id="R-pay", member="card:100009", redeem="1.00")
    process_purchase(zerno_engine, "zerno", paying, now=NOW + 3 * DAY, actor="pos")
    kept = expiring_of(zerno_engine)
    assert len(kept) == 4  # the paying purchase earned too
    assert all(points > 0 for points in kept.values())
    assert balance(zerno_engine, "zerno", "card:100009")["expiring"][0]["date"] == min(
        kept).isoformat()  # fmt: skip
    downgrade(zerno_engine, "0016")
    upgrade(zerno_engine)
    assert expiring_of(zerno_engine) == kept
    assert verify(zerno_engine)[1] == []


def expiring_of(engine: Engine) -> dict[date, int]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(member_expiring.c.day, member_expiring.c.points)
            .where(member_expiring.c.points != 0)
        ).all()  # fmt: skip
    return {day: int(points) for day, points in rows}
