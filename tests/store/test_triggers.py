"""Triggers fire once per member per occasion — over a simulated year, with two workers.

The café program with a trigger of every kind (shared/API.md's example), run by the
worker day after day with an injected clock.
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from kopilka.checkout.purchases import process_purchase
from kopilka.checkout.refunds import refund_purchase
from kopilka.ledger.verify import verify
from kopilka.mechanics.triggers.handlers import fire_triggers
from kopilka.members.balances import balance, history
from kopilka.members.handlers import register_member, update_member
from kopilka.platform.files import load_document
from kopilka.platform.tables import events, transfers
from kopilka.platform.worker import run_due_work
from kopilka.programs.handlers import apply_program
from tests.conftest import EXAMPLES
from tests.store.conftest import NOW, at_once
from tests.store.test_purchases import receipt

DAY = timedelta(days=1)
TRIGGERS: list[dict[str, Any]] = [
    {"code": "welcome", "on": "registration", "reward": {"points": "100", "valid_days": 30}},
    {"code": "profile", "on": "profile_complete", "reward": {"points": "50"}},
    {"code": "birthday", "on": "birthday", "days_before": 3,
     "reward": {"points": "300", "valid_days": 14}},
    {"code": "sleepers", "on": "inactivity", "days": 60, "reward": {"points": "200"}},
    {"code": "check-point", "on": "check_point", "period": "month", "min": {"purchases": 4},
     "reward": {"points": "150"}},
    {"code": "fifth", "on": "purchase_number", "number": 5, "reward": {"points": "100"}},
]  # fmt: skip


def with_triggers(engine: Engine, triggers: list[dict[str, Any]]) -> None:
    document: dict[str, Any] = load_document(EXAMPLES / "zerno" / "program.yaml")  # type: ignore[assignment]
    document["triggers"] = triggers
    apply_program(engine, document, actor="test", now=NOW - 10 * DAY)


def fired(engine: Engine, code: str) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(
            select(events.c.occasion).where(events.c.kind == f"trigger.{code}")
            .order_by(events.c.id)
        ).scalars())  # fmt: skip


def buy(engine: Engine, receipt_id: str, at: Any) -> dict[str, Any]:
    body = receipt(receipt_id=receipt_id, member="card:100009",
                   lines=[{"sku": "TEA-400", "qty": 1}])  # fmt: skip
    return process_purchase(engine, "zerno", body, now=at, actor="pos").answer


def test_welcome_and_profile_fire_once_and_their_points_burn_when_valid_days_end(
    zerno_engine: Engine,
) -> None:
    with_triggers(zerno_engine, TRIGGERS[:2])
    register_member(zerno_engine, "zerno", {"card": "100009", "phone": "+79120000001"}, now=NOW)
    assert fire_triggers(zerno_engine, now=NOW) == 1
    assert fire_triggers(zerno_engine, now=NOW + DAY) == 0
    assert balance(zerno_engine, "zerno", "card:100009")["available"] == "100.00"
    update_member(zerno_engine, "zerno", "card:100009",
                  {"email": "a@example.ru", "name": "Анна", "birthday": "1990-05-01"},
                  now=NOW + DAY)  # fmt: skip
    assert fire_triggers(zerno_engine, now=NOW + 2 * DAY) == 1
    assert fire_triggers(zerno_engine, now=NOW + 3 * DAY) == 0
    reasons = [(i["reason"], i["note"]) for i in history(zerno_engine, "zerno", "card:100009")[
        "items"]]  # fmt: skip
    assert reasons[:2] == [("trigger", "trigger profile"), ("trigger", "trigger welcome")]
    run_due_work(zerno_engine, now=NOW + 31 * DAY)  # the welcome points were valid 30 days
    assert balance(zerno_engine, "zerno", "card:100009")["available"] == "50.00"
    assert verify(zerno_engine)[1] == []


def test_birthday_fires_once_a_year_days_before(zerno_engine: Engine) -> None:
    with_triggers(zerno_engine, [TRIGGERS[2]])
    register_member(zerno_engine, "zerno", {"card": "100009", "birthday": "1990-03-20"},
                    now=NOW)  # fmt: skip  # NOW is 2026-03-10
    assert fire_triggers(zerno_engine, now=NOW + 6 * DAY) == 0  # 03-16: four days before
    assert fire_triggers(zerno_engine, now=NOW + 7 * DAY) == 1  # 03-17: three days before
    assert fire_triggers(zerno_engine, now=NOW + 10 * DAY) == 0
    assert fire_triggers(zerno_engine, now=NOW + 372 * DAY) == 1  # 2027-03-17
    assert fired(zerno_engine, "birthday") == ["2026", "2027"]


def test_inactivity_fires_once_per_spell_and_a_reset_burns_everything(
    zerno_engine: Engine,
) -> None:
    reset = {"code": "reset", "on": "inactivity", "days": 180, "burn_all": True}
    with_triggers(zerno_engine, [TRIGGERS[3], reset])
    register_member(zerno_engine, "zerno", {"card": "100009"}, now=NOW)
    buy(zerno_engine, "R-1", NOW + DAY)
    assert fire_triggers(zerno_engine, now=NOW + 60 * DAY) == 0  # 59 days since
    assert fire_triggers(zerno_engine, now=NOW + 61 * DAY) == 1
    assert fire_triggers(zerno_engine, now=NOW + 90 * DAY) == 0  # the same spell
    assert balance(zerno_engine, "zerno", "card:100009")["available"] == "201.50"
    buy(zerno_engine, "R-2", NOW + 100 * DAY)  # a new spell begins
    assert fire_triggers(zerno_engine, now=NOW + 161 * DAY) == 1
    assert fire_triggers(zerno_engine, now=NOW + 281 * DAY) == 1  # 180 days: the reset
    assert balance(zerno_engine, "zerno", "card:100009")["available"] == "0.00"
    assert verify(zerno_engine)[1] == []


def test_check_point_and_nth_purchase_count_purchases_not_refunded(
    zerno_engine: Engine,
) -> None:
    with_triggers(zerno_engine, TRIGGERS[4:])
    register_member(zerno_engine, "zerno", {"card": "100009"}, now=NOW)
    start = NOW.replace(day=1) + 31 * DAY  # 2026-04-01
    bought = [buy(zerno_engine, f"R-{n}", start + n * DAY) for n in range(4)]
    refund_purchase(zerno_engine, "zerno", bought[0]["purchase_id"], {"refund_id": "RF"},
                    actor="pos", now=start + 5 * DAY)  # fmt: skip  # a buy-and-return
    assert fire_triggers(zerno_engine, now=start + 6 * DAY) == 0  # 3 count, not 4
    buy(zerno_engine, "R-4", start + 7 * DAY)
    assert fire_triggers(zerno_engine, now=start + 8 * DAY) == 1  # 4 in April
    buy(zerno_engine, "R-5", start + 9 * DAY)
    assert fire_triggers(zerno_engine, now=start + 10 * DAY) == 1  # the fifth that counts
    assert fire_triggers(zerno_engine, now=start + 11 * DAY) == 0
    assert fired(zerno_engine, "check-point") == ["2026-04-01"]
    assert fired(zerno_engine, "fifth") == ["5"]


@pytest.mark.slow
def test_every_trigger_fires_once_over_a_year_with_two_workers_at_once(
    zerno_engine: Engine,
) -> None:
    if zerno_engine.dialect.name != "postgresql":
        pytest.skip("two workers at once: PostgreSQL")
    with_triggers(zerno_engine, TRIGGERS)
    for n in range(8):
        register_member(zerno_engine, "zerno", {
            "card": f"20000{n}", "phone": f"+7912000000{n}", "email": f"m{n}@example.ru",
            "name": "Гость", "birthday": f"1990-0{n % 9 + 1}-15"}, now=NOW)  # fmt: skip
    for day in range(0, 365, 5):
        moment = NOW + day * DAY
        if day % 20 == 0:
            for n in range(0, 8, 2):  # half the members buy now and then
                body = receipt(receipt_id=f"Y-{day}-{n}", member=f"card:20000{n}",
                               lines=[{"sku": "TEA-400", "qty": 1}])  # fmt: skip
                process_purchase(zerno_engine, "zerno", body, now=moment, actor="pos")
        at_once(partial(fire_triggers, zerno_engine, now=moment))
    with zerno_engine.connect() as connection:
        events_by_occasion = connection.execute(
            select(events.c.member_id, events.c.kind, events.c.occasion, func.count())
            .group_by(events.c.member_id, events.c.kind, events.c.occasion)
        ).all()  # fmt: skip
        rewards = connection.execute(
            select(func.count()).select_from(transfers).where(transfers.c.reason == "trigger")
        ).scalar_one()
    assert events_by_occasion
    assert all(row[3] == 1 for row in events_by_occasion)  # once per member and occasion
    kinds = {row.kind for row in events_by_occasion}
    assert {"trigger.welcome", "trigger.profile", "trigger.birthday", "trigger.sleepers",
            "trigger.fifth"} <= kinds  # fmt: skip
    assert rewards == len(events_by_occasion)  # one reward transfer per firing
    assert verify(zerno_engine)[1] == []


def test_a_check_point_on_spend_counts_what_refunds_left(zerno_engine: Engine) -> None:
    big = {"code": "big", "on": "check_point", "period": "month", "min": {"spend": "400.00"},
           "reward": {"points": "40"}}  # fmt: skip
    with_triggers(zerno_engine, [big])
    register_member(zerno_engine, "zerno", {"card": "100009"}, now=NOW)
    start = NOW.replace(day=1) + 31 * DAY  # 2026-04-01
    first = buy(zerno_engine, "R-1", start)  # 150.00 each
    buy(zerno_engine, "R-2", start + DAY)
    buy(zerno_engine, "R-3", start + 2 * DAY)
    refund_purchase(zerno_engine, "zerno", first["purchase_id"], {"refund_id": "RF"},
                    actor="pos", now=start + 3 * DAY)  # fmt: skip
    assert fire_triggers(zerno_engine, now=start + 3 * DAY) == 0  # 300.00 left
    buy(zerno_engine, "R-4", start + 4 * DAY)
    assert fire_triggers(zerno_engine, now=start + 5 * DAY) == 1  # 450.00
    assert fired(zerno_engine, "big") == ["2026-04-01"]
