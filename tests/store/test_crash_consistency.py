"""Crash consistency: a fault at any write of a purchase or a refund leaves all of it or none.

Each operation is first run cleanly to count the writes it sends (INSERT, UPDATE, DELETE —
also inside a `WITH …` statement; an executemany is one write), so the tests don't know or
care which statements the services use. Then, on a fresh member each time, the operation is
run with a fault injected just before the k-th write, just after it (the statement reached
the database, the commit did not), or on the COMMIT itself, for every k. The fault must
propagate, and the database must be exactly as it was: same rows in every table, the
balance unchanged, no purchase or refund row, no transfers, `verify` clean. The same request
run again then makes the whole effect exactly once, and a replay of it answers the same
with no second effect.

On PostgreSQL a purchase's last write carries its transaction's COMMIT in the same round
trip (`Mechanic.writes_after`): a fault after that statement, or on the commit that then
only closes SQLAlchemy's transaction, comes after the transaction ended. The purchase is
then there whole, exactly once — never in part — and the same request again is a replay.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import pytest
from sqlalchemy import Connection, Engine, event, func, select

from kopilka.checkout.purchases import process_purchase
from kopilka.checkout.refunds import refund_purchase
from kopilka.ledger.verify import verify
from kopilka.members.balances import adjust, balance
from kopilka.members.handlers import register_member
from kopilka.platform.tables import metadata, purchases, refunds, transfers
from tests.store.conftest import NOW
from tests.store.test_purchases import receipt

pytestmark = pytest.mark.slow  # a fault at each write, PostgreSQL restarted

THREE_TEAS = [{"sku": "TEA-400", "qty": 3}]  # 450.00
# The fewest writes an operation may send and still be tested: one. A purchase on
# PostgreSQL is a single statement (data-modifying CTEs); its parts are then proved
# all-or-nothing by a fault after that statement and by a fault on the commit.
MIN_WRITES = 1
PER_RUN = ("purchase_id", "member", "receipt_id")  # answer keys naming this run's rows
_WRITE = re.compile(
    r"\b(INSERT\s+INTO|UPDATE\s+\S+\s+SET|DELETE\s+FROM|MERGE\s+INTO)\b", re.IGNORECASE
)


class InjectedFault(Exception):
    """The crash: not a DBAPIError, so the services' retry loop does not swallow it."""


def is_write(statement: str) -> bool:
    """Whether a statement changes rows — on its own or in a `WITH` part (not `FOR UPDATE`)."""
    return _WRITE.search(statement) is not None


# — injecting faults —


@dataclass(frozen=True)
class Fault:
    when: str  # "before" or "after" the k-th write, or "commit"
    write: int = 0  # k, counted from 1; 0 for the commit

    def __str__(self) -> str:
        if self.when == "commit":
            return "a fault on the commit"
        return f"a fault {self.when} write {self.write}"


class Injector:
    """Counts the writes sent and raises `InjectedFault` at its fault (None: never)."""

    def __init__(self, fault: Fault | None) -> None:
        self.fault = fault
        self.writes = 0
        self.fired = 0
        self.ended = False  # a write carried the COMMIT: the transaction is over
        self.ended_at_fault = False

    def before(self, *args: Any) -> None:
        statement: str = args[2]
        if is_write(statement):
            self.writes += 1
            self._at("before", self.writes)

    def after(self, *args: Any) -> None:
        statement: str = args[2]
        if is_write(statement):
            self.ended = statement.rstrip().upper().endswith("COMMIT")
            self._at("after", self.writes)

    def commit(self, _connection: Connection) -> None:
        self._at("commit", 0)

    def _at(self, when: str, write: int) -> None:
        if self.fault == Fault(when, write):
            self.fired += 1
            self.ended_at_fault = self.ended
            raise InjectedFault(str(self.fault))


@contextmanager
def injected(engine: Engine, fault: Fault | None) -> Iterator[Injector]:
    """An injector listening on `engine` for the block; its listeners are gone after it."""
    injector = Injector(fault)
    listeners: list[tuple[str, Callable[..., None]]] = [
        ("before_cursor_execute", injector.before),
        ("after_cursor_execute", injector.after),
        ("commit", injector.commit),
    ]
    for name, listener in listeners:
        event.listen(engine, name, listener)
    try:
        yield injector
    finally:
        for name, listener in listeners:
            event.remove(engine, name, listener)
        assert not any(event.contains(engine, name, fn) for name, fn in listeners)


# — the state of the books —


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order."""
    with engine.connect() as connection:
        return {
            table.name: [
                tuple(row) for row in connection.execute(select(table).order_by(*table.primary_key))
            ]
            for table in metadata.sorted_tables
        }


def row_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            table.name: connection.execute(select(func.count()).select_from(table)).scalar_one()
            for table in metadata.sorted_tables
        }


def changed_tables(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return [name for name in before if before[name] != after[name]]


def assert_books_sound(engine: Engine) -> None:
    checks, found = verify(engine)
    assert checks
    assert found == []


def available(engine: Engine, card: str) -> str:
    return str(balance(engine, "zerno", f"card:{card}")["available"])


def without_ids(answer: dict[str, Any]) -> dict[str, Any]:
    """An answer less its ids (rows, member, receipt), which differ from one run to the next."""
    return {key: value for key, value in answer.items() if key not in PER_RUN}


# — the operations, each on a member of its own —


class Scenario(Protocol):
    before: str  # the member's available points before the operation
    after: str  # and after it

    @property
    def card(self) -> str: ...

    def prepare(self) -> None: ...
    def run(self) -> tuple[dict[str, Any], bool]: ...
    def effects(self) -> tuple[int, int]: ...  # (rows of the operation, transfers under them)


@dataclass
class Purchase:
    """A member with 100.00 points buys three teas (450.00), 30.00 paid with points."""

    engine: Engine
    n: int
    keyed: bool = False
    before: str = "100.00"
    after: str = "74.20"  # 100 − 30 + 420.00 × 1 %

    @property
    def card(self) -> str:
        return f"7000{self.n:03d}"

    @property
    def receipt_id(self) -> str:
        return f"R-{self.n}"

    def prepare(self) -> None:
        register_member(self.engine, "zerno", {"card": self.card}, now=NOW)
        adjust(self.engine, "zerno", f"card:{self.card}", {"points": "100", "reason": "start"},
               actor="op", now=NOW)  # fmt: skip

    def run(self) -> tuple[dict[str, Any], bool]:
        body = receipt(receipt_id=self.receipt_id, member=f"card:{self.card}",
                       lines=THREE_TEAS, redeem="30.00")  # fmt: skip
        key = f"K-{self.n}" if self.keyed else None
        result = process_purchase(self.engine, "zerno", body, now=NOW, actor="pos",
                                  idempotency_key=key)  # fmt: skip
        return result.answer, result.created

    def effects(self) -> tuple[int, int]:
        mine = select(purchases.c.id).where(purchases.c.receipt_id == self.receipt_id)
        with self.engine.connect() as connection:
            rows = connection.execute(select(func.count()).select_from(mine.subquery()))
            moved = connection.execute(select(func.count()).select_from(transfers).where(
                transfers.c.purchase_id.in_(mine), transfers.c.refund_id.is_(None)))  # fmt: skip
            return rows.scalar_one(), moved.scalar_one()


@dataclass
class Refund:
    """That purchase, then one of the three teas refunded: 1.40 off, 10.00 back."""

    engine: Engine
    n: int
    purchase_id: str = ""
    before: str = "74.20"
    after: str = "82.80"  # 74.20 − 1.40 + 10.00

    @property
    def card(self) -> str:
        return f"8000{self.n:03d}"

    def prepare(self) -> None:
        register_member(self.engine, "zerno", {"card": self.card}, now=NOW)
        adjust(self.engine, "zerno", f"card:{self.card}", {"points": "100", "reason": "start"},
               actor="op", now=NOW)  # fmt: skip
        body = receipt(receipt_id=f"RR-{self.n}", member=f"card:{self.card}",
                       lines=THREE_TEAS, redeem="30.00")  # fmt: skip
        result = process_purchase(self.engine, "zerno", body, now=NOW, actor="pos")
        assert result.answer["balance"]["available"] == self.before
        self.purchase_id = result.answer["purchase_id"]

    def run(self) -> tuple[dict[str, Any], bool]:
        body = {"refund_id": "RF-1", "lines": [{"n": 0, "qty": 1}]}
        return refund_purchase(self.engine, "zerno", self.purchase_id, body, actor="pos",
                               now=NOW)  # fmt: skip

    def effects(self) -> tuple[int, int]:
        purchase_id = int(self.purchase_id)
        with self.engine.connect() as connection:
            rows = connection.execute(select(func.count()).select_from(refunds).where(
                refunds.c.purchase_id == purchase_id))  # fmt: skip
            moved = connection.execute(select(func.count()).select_from(transfers).where(
                transfers.c.purchase_id == purchase_id,
                transfers.c.refund_id.is_not(None)))  # fmt: skip
            return rows.scalar_one(), moved.scalar_one()


# — the proof —


@dataclass(frozen=True)
class Outcome:
    answer: dict[str, Any]
    writes: int
    added: dict[str, int]  # rows added to each table


def run_cleanly(engine: Engine, scenario: Scenario) -> Outcome:
    """Run without a fault: the whole effect, once, on sound books."""
    counts = row_counts(engine)
    with injected(engine, None) as counter:
        answer, created = scenario.run()
    assert created
    assert available(engine, scenario.card) == scenario.after
    rows, moved = scenario.effects()
    assert rows == 1
    assert moved >= 1
    assert_books_sound(engine)
    added = {name: count - counts[name] for name, count in row_counts(engine).items()}
    return Outcome(answer, counter.writes, added)


def run_with(engine: Engine, scenario: Scenario, fault: Fault) -> bool:
    """Run with `fault`: it propagates and leaves not a row changed — or, when it came
    after the write that carried the COMMIT, the whole effect once. Which: True for
    the whole."""
    before = snapshot(engine)
    with injected(engine, fault) as injector, pytest.raises(InjectedFault):
        scenario.run()
    assert injector.fired == 1
    assert_books_sound(engine)
    if injector.ended_at_fault:
        assert available(engine, scenario.card) == scenario.after, f"{fault} left a part"
        rows, moved = scenario.effects()
        assert rows == 1
        assert moved >= 1
        return True
    after = snapshot(engine)
    assert changed_tables(before, after) == [], f"{fault} left a partial write"
    assert available(engine, scenario.card) == scenario.before
    assert scenario.effects() == (0, 0)
    return False


def replay(engine: Engine, scenario: Scenario, made: Outcome) -> None:
    """The same request again: the same answer, and no second effect."""
    before = snapshot(engine)
    answer, created = scenario.run()
    assert (answer, created) == (made.answer, False)
    assert changed_tables(before, snapshot(engine)) == []


def faults(when: str, writes: int) -> list[Fault]:
    if when == "commit":
        return [Fault("commit")]
    return [Fault(when, k) for k in range(1, writes + 1)]


def prove_all_or_nothing(
    engine: Engine, scenario_for: Callable[[int], Scenario], when: str
) -> None:
    """The reference run counts the writes; each fault then gets a member of its own."""
    reference = scenario_for(0)
    reference.prepare()
    model = run_cleanly(engine, reference)
    assert model.writes >= MIN_WRITES
    for n, fault in enumerate(faults(when, model.writes), start=1):
        scenario = scenario_for(n)
        scenario.prepare()
        if run_with(engine, scenario, fault):  # ended before the fault: a replay now
            before = snapshot(engine)
            answer, created = scenario.run()
            assert not created, fault
            assert without_ids(answer) == without_ids(model.answer), fault
            assert changed_tables(before, snapshot(engine)) == [], fault
            continue
        made = run_cleanly(engine, scenario)
        assert without_ids(made.answer) == without_ids(model.answer), fault
        assert (made.writes, made.added) == (model.writes, model.added), fault
        replay(engine, scenario, made)


# — the tests —


def test_writes_are_told_from_reads_in_plain_and_cte_statements():
    """The counter sees every kind of write, also inside WITH, and no read as one."""
    assert is_write("INSERT INTO lots (a) VALUES (?)")
    assert is_write("UPDATE accounts SET debits_posted=(accounts.debits_posted + ?)")
    assert is_write("DELETE FROM holds WHERE holds.id = ?")
    assert is_write("WITH parent AS  (INSERT INTO purchases (id) VALUES (1) RETURNING id) "
                    "SELECT parent.id FROM parent")  # fmt: skip
    assert not is_write("SELECT accounts.id FROM accounts FOR UPDATE OF accounts")
    assert not is_write("SELECT lots.id, lots.remaining FROM lots WHERE lots.status = ?")
    assert not is_write("BEGIN IMMEDIATE")


@pytest.mark.parametrize("keyed", [False, True], ids=["receipt", "idempotency-key"])
@pytest.mark.parametrize("when", ["before", "after"])
def test_a_fault_at_each_write_of_a_purchase_leaves_all_of_it_or_none(zerno_engine, when, keyed):
    """A purchase that redeems and accrues, crashed before or after any one of its writes
    (with an Idempotency-Key, its remembered answer too), leaves no trace; run again it
    takes effect once, and a replay answers the same with no second effect."""
    prove_all_or_nothing(zerno_engine, lambda n: Purchase(zerno_engine, n, keyed), when)


@pytest.mark.parametrize("keyed", [False, True], ids=["receipt", "idempotency-key"])
def test_a_failed_commit_of_a_purchase_leaves_none_of_it(zerno_engine, keyed):
    """A purchase whose COMMIT fails leaves no trace, and then goes through once. (On
    PostgreSQL a purchase without an idempotency key sends its COMMIT with its write: a
    fault on the commit that follows finds the purchase whole, and it is a replay.)"""
    prove_all_or_nothing(zerno_engine, lambda n: Purchase(zerno_engine, n, keyed), "commit")


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_fault_at_each_write_of_a_refund_leaves_all_of_it_or_none(zerno_engine, when):
    """A partial refund (accrual clawed back, redemption returned), crashed before or after
    any one of its writes, leaves no trace; run again it takes effect once, and a replay
    answers the same with no second effect."""
    prove_all_or_nothing(zerno_engine, lambda n: Refund(zerno_engine, n), when)


def test_a_failed_commit_of_a_refund_leaves_none_of_it(zerno_engine):
    """A partial refund whose COMMIT fails leaves no trace, and then goes through once."""
    prove_all_or_nothing(zerno_engine, lambda n: Refund(zerno_engine, n), "commit")
