"""The saga killed at every step between two programs of one Kopilka — the source after
its hold, the target inside its credit's transaction and after its commit, the source
after its confirm — then the worker: nothing is created or lost, and both sides agree."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest
from sqlalchemy import Engine

from kopilka.mechanics.exchange.credits import local_source, receive_credit
from kopilka.mechanics.exchange.reconciliation import reconciliation
from kopilka.mechanics.exchange.saga import member_exchange
from tests.exchange.conftest import (
    MINUTE,
    TO_ZERNO,
    Killed,
    assert_sound,
    available,
    exchange,
    killed_at,
    set_up,
    worker,
)
from tests.store.conftest import NOW, at_once

AFTER_TIMEOUT = NOW + 16 * MINUTE
# (step, side, what the worker makes of it)
STEPS = [
    ("hold", "zerno", "reversed"),  # the source died before asking the credit
    ("credit", "north", "reversed"),  # the target died before its credit committed
    ("credited", "north", "confirmed"),  # the target credited; its answer was lost
    ("settled", "zerno", "confirmed"),  # the source died after confirming: nothing left
]


def state(engine: Engine, transaction_id: str) -> str:
    return str(member_exchange(engine, "zerno", "card:100001", transaction_id)["state"])


def balances(engine: Engine) -> tuple[Decimal, Decimal]:
    return available(engine, "zerno", "100001"), available(engine, "north", "900001")


@pytest.mark.parametrize(("step", "side", "outcome"), STEPS)
def test_a_saga_killed_at_a_step_is_finished_or_reversed_by_the_worker(
    pair: Engine, step: str, side: str, outcome: str
) -> None:
    with killed_at(step, side), pytest.raises(Killed):
        exchange(pair, "1000", transaction_id="killed")
    assert worker(pair, NOW + 5 * MINUTE) == {}  # not before its time-out
    worker(pair, AFTER_TIMEOUT)
    assert state(pair, "killed") == outcome
    moved = {"reversed": (Decimal("5000.00"), Decimal("5000")),
             "confirmed": (Decimal("4000.00"), Decimal("5780"))}  # fmt: skip
    assert balances(pair) == moved[outcome]
    assert worker(pair, AFTER_TIMEOUT + MINUTE) == {}  # settled once
    assert_sound(pair, NOW, AFTER_TIMEOUT)


@pytest.mark.parametrize(("step", "side"), [(step, side) for step, side, _ in STEPS])
def test_a_killed_saga_s_repeat_finishes_it_without_the_worker(
    pair: Engine, step: str, side: str
) -> None:
    with killed_at(step, side), pytest.raises(Killed):
        exchange(pair, "1000", transaction_id="killed")
    answer, is_new = exchange(pair, "1000", transaction_id="killed")
    assert not is_new
    assert answer["state"] == "confirmed"  # the credit asked again, once
    assert balances(pair) == (Decimal("4000.00"), Decimal("5780"))
    assert worker(pair, AFTER_TIMEOUT) == {}
    assert_sound(pair)


def test_a_credit_arriving_after_the_source_reversed_is_refused(pair: Engine) -> None:
    with killed_at("hold", "zerno"), pytest.raises(Killed):
        exchange(pair, "1000", transaction_id="late")
    worker(pair, AFTER_TIMEOUT)
    late = {"transaction_id": "late", "member": "card:900001", "points": "780"}
    answer, _ = receive_credit(pair, "north", local_source("zerno"), late, now=AFTER_TIMEOUT)
    assert answer["state"] == "reversed"
    assert balances(pair) == (Decimal("5000.00"), Decimal("5000"))
    assert_sound(pair, NOW, AFTER_TIMEOUT)


def test_a_killed_saga_shows_in_the_reconciliation_until_the_worker_ran(pair: Engine) -> None:
    with killed_at("credited", "north"), pytest.raises(Killed):
        exchange(pair, "1000", transaction_id="open")
    source = reconciliation(pair, "zerno", NOW.date())["items"]
    target = reconciliation(pair, "north", NOW.date())["items"]
    assert [(i["transaction_id"], i["issue"]) for i in source] == [("open", "held_not_settled")]
    assert [(i["issue"]) for i in target] == ["credited_not_confirmed"]
    worker(pair, AFTER_TIMEOUT)
    assert_sound(pair)


@pytest.mark.parametrize(
    ("to_member", "reason"),
    [("card:999999", "unknown_member"), ("ext:nobody", "unknown_member")],
)
def test_an_unknown_member_at_the_target_reverses_with_its_reason(
    pair: Engine, to_member: str, reason: str
) -> None:
    answer, _ = exchange(pair, "1000", to_member=to_member)
    assert answer["state"] == "reversed"
    assert answer["reason"].startswith(reason)
    assert balances(pair) == (Decimal("5000.00"), Decimal("5000"))
    assert_sound(pair)


def test_a_target_that_receives_nothing_from_the_source_reverses(engine: Engine) -> None:
    set_up(engine, to_zerno={**TO_ZERNO, "receive": False})
    answer, _ = exchange(engine, "1000")
    assert (answer["state"], answer["reason"].split(":")[0]) == ("reversed", "pair_closed")
    assert balances(engine) == (Decimal("5000.00"), Decimal("5000"))
    assert_sound(engine)


@pytest.mark.parametrize("step", ["hold", "credit", "credited"])
def test_the_worker_and_a_repeat_at_once_settle_a_saga_once(pair: Engine, step: str) -> None:
    """Whichever wins — the repeat crediting and confirming, or the worker giving the
    transaction up and reversing — the saga is settled once, both sides agree."""
    with killed_at(step), pytest.raises(Killed):
        exchange(pair, "1000", transaction_id="raced")

    def repeat() -> object:
        return exchange(pair, "1000", transaction_id="raced", at=AFTER_TIMEOUT)

    def work_due() -> object:
        return worker(pair, AFTER_TIMEOUT)

    turns: Iterator[Callable[[], object]] = iter([repeat, work_due])
    lock = threading.Lock()

    def one() -> object:
        with lock:
            work = next(turns)
        return work()

    at_once(one)
    settled = state(pair, "raced")
    moved = {"reversed": (Decimal("5000.00"), Decimal("5000")),
             "confirmed": (Decimal("4000.00"), Decimal("5780"))}  # fmt: skip
    assert balances(pair) == moved[settled]
    assert_sound(pair, NOW, AFTER_TIMEOUT)
