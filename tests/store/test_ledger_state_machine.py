"""The services driven in random order, checked after every step against a model of the books.

A hypothesis `RuleBasedStateMachine` registers members, buys (with and without points,
held or not), refunds in parts, confirms and cancels holds, lets time pass and runs the
worker, adjusts, and replays everything it did. Each example runs on its own fresh copy
of the café's program (pending days 0 or 1; spent points refunded as a negative balance
or as a debt). After every step:

- the ledger verifies (`verify`: every transfer balances, accounts equal their
  transfers, lots and holds agree) and all debits equal all credits;
- every member's available / pending / held / debt equals what the model expects from
  the answers the services gave (so an answer never says something the books don't);
- no balance is negative unless the program allows it (the default, after a refund
  took back points already spent);
- every replay is answered exactly as the first time, with no second effect.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Engine, func, select

from kopilka.checkout.purchases import process_purchase, settle_hold
from kopilka.checkout.refunds import refund_purchase
from kopilka.kernel.errors import (
    Conflict,
    IdempotencyConflict,
    InsufficientPoints,
    InvalidInput,
    NotFound,
)
from kopilka.kernel.ledger import AccountCode
from kopilka.ledger.accounts import member_balances
from kopilka.ledger.verify import verify
from kopilka.members.balances import adjust, balance
from kopilka.members.handlers import register_member
from kopilka.platform.files import load_document
from kopilka.platform.tables import accounts, programs, transfers
from kopilka.platform.worker import run_due_work
from kopilka.programs.handlers import apply_program
from tests.conftest import EXAMPLES
from tests.store.conftest import NOW

pytestmark = pytest.mark.slow  # a state-machine search over the services

# the café's prices in kopecks; cigarettes can't be paid with points (1 point pays 1 rouble)
PRICES = {"CAP-300": 18000, "TEA-400": 15000, "LUNCH-1": 45000, "CRS-1": 14000, "CIG-1": 25000}
SKUS = st.lists(st.sampled_from(sorted(PRICES)), min_size=1, max_size=3)
MEMBER_ACCOUNTS = (AccountCode.AVAILABLE, AccountCode.PENDING, AccountCode.HELD, AccountCode.DEBT)
HOLD_MINUTES = 60  # the café's `redemption.hold_minutes` (the default)


def minor(text: str) -> int:
    """Points as the answers show them ("12.30") in minor units (1230)."""
    return int(Decimal(text) * 100)


@dataclass
class Books:
    """What one member should have, from the answers the services gave."""

    available: int = 0
    pending: int = 0
    held: int = 0
    debt: int = 0
    refunded_spent: bool = False  # a refund took back points the member had already spent

    def credit(self, points: int) -> None:
        """Earned points arrive: a debt is paid first."""
        repaid = min(points, self.debt)
        if repaid:
            event("an accrual paid a debt")
        self.debt -= repaid
        self.available += points - repaid


@dataclass
class Bought:
    """A purchase as the model remembers it."""

    member: str
    body: dict[str, Any]
    answer: dict[str, Any]
    idempotency_key: str | None
    at: datetime
    status: str  # completed / held / cancelled / expired / refunded / partially_refunded
    lines: dict[int, tuple[Decimal, int, int]]  # n → qty, accrued, redeemed
    returned: dict[int, Decimal] = field(default_factory=dict)
    pending_accrual: int = 0  # of its accrual, what still waits in pending
    available_at: datetime | None = None
    refunds: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)
    settled: dict[str, dict[str, Any]] = field(default_factory=dict)  # confirm/cancel → answer


class LedgerMachine(RuleBasedStateMachine):
    engine: Engine  # set by the test that runs the machine

    members = Bundle("members")
    purchases = Bundle("purchases")

    def __init__(self) -> None:
        super().__init__()
        self.code = f"sm{uuid.uuid4().hex[:10]}"
        self.now = NOW
        self.books: dict[str, Books] = {}
        self.bought: list[Bought] = []
        self.receipts = 0
        self.pending_days = 0
        self.debt_mode = False

    # — set-up —

    @initialize(pending_days=st.sampled_from([0, 0, 1]), debt_mode=st.booleans())
    def apply_the_program(self, pending_days: int, debt_mode: bool) -> None:
        document: Any = copy.deepcopy(load_document(EXAMPLES / "zerno" / "program.yaml"))
        document["code"] = self.code
        document["accrual"] = {**document["accrual"], "pending_days": pending_days}
        document["refunds"] = {"spent_points": "debt" if debt_mode else "negative"}
        apply_program(self.engine, document, actor="machine", now=self.now)
        with self.engine.connect() as connection:
            self.program_id = connection.execute(
                select(programs.c.id).where(programs.c.code == self.code)
            ).scalar_one()
        self.pending_days, self.debt_mode = pending_days, debt_mode

    @precondition(lambda self: len(self.books) < 3)
    @rule(target=members)
    def register(self) -> str:
        """A new member, with a welcome of points to spend."""
        member = str(register_member(self.engine, self.code, {}, now=self.now)["id"])
        self.books[member] = Books()
        self._adjust(member, "100.00")
        return member

    # — purchases —

    @rule(target=purchases, member=members, skus=SKUS, qty=st.integers(1, 3),
          with_key=st.booleans())  # fmt: skip
    def buy(self, member: str, skus: list[str], qty: int, with_key: bool) -> Any:
        return self._buy(member, skus, qty, None, hold=False, with_key=with_key)

    @rule(
        target=purchases,
        member=members,
        skus=SKUS,
        qty=st.integers(1, 3),
        redeem=st.sampled_from(["max", "max", "5.00", "40.00", "500.00"]),
        hold=st.booleans(),
        with_key=st.booleans(),
    )
    def buy_paying_with_points(
        self, member: str, skus: list[str], qty: int, redeem: str, hold: bool, with_key: bool
    ) -> Any:
        return self._buy(member, skus, qty, redeem, hold=hold, with_key=with_key)

    def _buy(
        self, member: str, skus: list[str], qty: int, redeem: str | None, *, hold: bool,
        with_key: bool,
    ) -> Any:  # fmt: skip
        self.receipts += 1
        body: dict[str, Any] = {
            "receipt_id": f"R-{self.receipts}",
            "location": "kiosk",
            "member": member,
            "lines": [{"sku": sku, "qty": qty} for sku in skus],
        }
        if redeem is not None:
            body["redeem"] = redeem
        if hold and redeem is not None:
            body["hold"] = True
        key = f"K-{self.receipts}" if with_key else None
        books = self.books[member]
        payable = sum(PRICES[sku] * qty for sku in skus if sku != "CIG-1")
        most = max(0, min(books.available, payable))
        try:
            result = process_purchase(self.engine, self.code, body, now=self.now,
                                      actor="machine", idempotency_key=key)  # fmt: skip
        except InsufficientPoints:
            assert redeem is not None
            assert redeem != "max"
            assert minor(redeem) > most, "refused though the points were there"
            event("purchase refused: insufficient points")
            return multiple()
        answer = result.answer
        assert result.created
        redeemed, accrued = minor(answer["redeemed"]), minor(answer["accrued"])
        asked = 0 if redeem is None else most if redeem == "max" else minor(redeem)
        assert redeemed == asked
        books.available -= redeemed
        purchase = Bought(
            member, body, answer, key, self.now, answer["status"],
            {line["n"]: (Decimal(line_body["qty"]), minor(line["accrued"]),
                         minor(line["redeemed"]))
             for line, line_body in zip(answer["lines"], body["lines"], strict=True)},
        )  # fmt: skip
        if body.get("hold"):
            assert answer["status"] == "held"
            books.held += redeemed
        else:
            assert answer["status"] == "completed"
            self._accrue(books, purchase, accrued)
        self._expect_answered_balance(member, answer)
        self.bought.append(purchase)
        return purchase

    def _accrue(self, books: Books, purchase: Bought, accrued: int) -> None:
        if self.pending_days:
            books.pending += accrued
            purchase.pending_accrual = accrued
            purchase.available_at = self.now + timedelta(days=self.pending_days)
        else:
            books.credit(accrued)

    @rule(purchase=purchases)
    def replay_a_purchase(self, purchase: Bought) -> None:
        before = self._actual(purchase.member)
        result = process_purchase(self.engine, self.code, copy.deepcopy(purchase.body),
                                  now=self.now, actor="machine",
                                  idempotency_key=purchase.idempotency_key)  # fmt: skip
        assert not result.created
        assert result.answer == purchase.answer
        assert self._actual(purchase.member) == before

    @rule(purchase=purchases)
    def reuse_a_receipt_id_with_another_body(self, purchase: Bought) -> None:
        other = {**copy.deepcopy(purchase.body), "lines": [{"sku": "ESP-60", "qty": 7}]}
        with pytest.raises(IdempotencyConflict):
            process_purchase(self.engine, self.code, other, now=self.now, actor="machine",
                             idempotency_key=purchase.idempotency_key)  # fmt: skip

    # — holds —

    @rule(purchase=purchases, action=st.sampled_from(["confirm", "cancel"]))
    def settle(self, purchase: Bought, action: str) -> None:
        books = self.books[purchase.member]
        held = minor(purchase.answer["redeemed"])
        expires = purchase.at + timedelta(minutes=HOLD_MINUTES)
        call = (self.engine, self.code, purchase.answer["purchase_id"], action)
        done = {"confirm": "completed", "cancel": "cancelled"}[action]
        if action in purchase.settled:  # the same action again answers the first
            answer, created = settle_hold(*call, actor="machine", now=self.now)
            assert (answer, created) == (purchase.settled[action], False)
            return
        refused = (
            purchase.status != "held"
            or purchase.settled
            or (action == "confirm" and self.now >= expires)
        )
        if refused:
            # a purchase that was never held has no hold; a settled one is a conflict
            error = Conflict if purchase.answer["status"] == "held" else NotFound
            with pytest.raises(error):
                settle_hold(*call, actor="machine", now=self.now)
            return
        answer, created = settle_hold(*call, actor="machine", now=self.now)
        event(f"hold {done}")
        assert created
        assert answer["status"] == done
        books.held -= held
        if action == "confirm":
            self._accrue(books, purchase, minor(purchase.answer["accrued"]))
        else:
            books.available += held
        purchase.status, purchase.settled[action] = done, answer
        self._expect_answered_balance(purchase.member, answer)

    # — refunds —

    @rule(purchase=purchases, data=st.data())
    def refund(self, purchase: Bought, data: st.DataObject) -> None:
        lines: dict[int, Decimal] = {}
        if not data.draw(st.booleans(), label="whole"):
            n = data.draw(st.sampled_from(sorted(purchase.lines)), label="line")
            lines = {n: Decimal(data.draw(st.integers(1, 3), label="qty"))}
        self._refund(purchase, lines)

    @rule(purchase=purchases)
    def refund_after_the_points_were_spent(self, purchase: Bought) -> None:
        """The accrual to take back is gone: a negative balance or a debt, as the program says."""
        self.take_every_available_point(purchase.member)
        self._refund(purchase, {})

    def _refund(self, purchase: Bought, lines: dict[int, Decimal]) -> None:
        left = {n: qty - purchase.returned.get(n, Decimal(0))
                for n, (qty, _, _) in purchase.lines.items()}  # fmt: skip
        body: dict[str, Any] = {"refund_id": f"RF-{len(purchase.refunds) + 1}"}
        if lines:
            body["lines"] = [{"n": n, "qty": str(qty)} for n, qty in lines.items()]
        call = (self.engine, self.code, purchase.answer["purchase_id"], body)
        if purchase.status in ("held", "cancelled", "expired"):
            event("refund refused: not completed")
            with pytest.raises(Conflict):
                refund_purchase(*call, actor="machine", now=self.now)
            return
        wanted = lines or {n: qty for n, qty in left.items() if qty}
        if not wanted or any(qty > left[n] for n, qty in wanted.items()):
            event("refund refused: more than bought")
            with pytest.raises(InvalidInput):
                refund_purchase(*call, actor="machine", now=self.now)
            return
        answer, created = refund_purchase(*call, actor="machine", now=self.now)
        event(f"refund made ({'from pending' if purchase.pending_accrual else 'available'})")
        assert created
        accrued_back, redeemed_back = self._expected_refund(purchase, wanted)
        assert (minor(answer["accrued_back"]), minor(answer["redeemed_back"])) == (
            accrued_back, redeemed_back)  # fmt: skip
        for n, qty in wanted.items():
            purchase.returned[n] = purchase.returned.get(n, Decimal(0)) + qty
        everything = all(purchase.returned.get(n, 0) == qty
                         for n, (qty, _, _) in purchase.lines.items())  # fmt: skip
        purchase.status = "refunded" if everything else "partially_refunded"
        assert answer["purchase_status"] == purchase.status
        self._take_back(purchase, accrued_back, redeemed_back)
        purchase.refunds.append((body, answer))

    def _expected_refund(self, purchase: Bought, wanted: dict[int, Decimal]) -> tuple[int, int]:
        """The cumulative proportional figures, computed independently of the service."""

        def back(figure: int, qty: Decimal, before: Decimal, bought: Decimal) -> int:
            after = int(figure * Fraction(before + qty) / Fraction(bought))
            return after - int(figure * Fraction(before) / Fraction(bought))

        accrued = redeemed = 0
        for n, qty in wanted.items():
            bought, line_accrued, line_redeemed = purchase.lines[n]
            before = purchase.returned.get(n, Decimal(0))
            accrued += back(line_accrued, qty, before, bought)
            redeemed += back(line_redeemed, qty, before, bought)
        return accrued, redeemed

    def _take_back(self, purchase: Bought, accrued_back: int, redeemed_back: int) -> None:
        books = self.books[purchase.member]
        books.available += redeemed_back
        if purchase.pending_accrual:
            books.pending -= accrued_back
            purchase.pending_accrual -= accrued_back
            return
        taken = accrued_back
        if self.debt_mode:
            taken = min(accrued_back, max(books.available, 0))
            books.debt += accrued_back - taken
        if taken > books.available:
            event("a refund took back points already spent: negative balance")
            books.refunded_spent = True
        if accrued_back - taken:
            event("a refund left a debt")
        books.available -= taken

    @rule(purchase=purchases)
    def replay_a_refund(self, purchase: Bought) -> None:
        if not purchase.refunds:
            return
        body, first = purchase.refunds[-1]
        before = self._actual(purchase.member)
        answer, created = refund_purchase(self.engine, self.code, purchase.answer["purchase_id"],
                                          copy.deepcopy(body), actor="machine",
                                          now=self.now)  # fmt: skip
        assert (answer, created) == (first, False)
        assert self._actual(purchase.member) == before

    # — adjustments —

    @precondition(lambda self: self.bought)
    @rule(member=members, points=st.sampled_from(["100.00", "7.35", "-3.00", "-1000.00"]))
    def adjust_points(self, member: str, points: str) -> None:
        self._adjust(member, points)

    @precondition(lambda self: self.bought)
    @rule(member=members)
    def take_every_available_point(self, member: str) -> None:
        available = self.books[member].available
        if available > 0:
            self._adjust(member, f"-{Decimal(available) / 100:.2f}")

    def _adjust(self, member: str, points: str) -> None:
        books = self.books[member]
        data = {"points": points, "reason": "machine", "adjustment_id": uuid.uuid4().hex}
        if books.available + minor(points) < 0:
            with pytest.raises(InsufficientPoints):
                adjust(self.engine, self.code, member, data, actor="machine", now=self.now)
            return
        answer = adjust(self.engine, self.code, member, data, actor="machine", now=self.now)
        books.available += minor(points)  # an operator's credit does not pay a debt
        assert minor(answer["available"]) == books.available
        again = adjust(self.engine, self.code, member, data, actor="machine", now=self.now)
        assert again == answer

    # — time and the worker —

    @precondition(lambda self: self.bought)
    @rule(minutes=st.sampled_from([5, 61, 60 * 25]))
    def time_passes_and_the_worker_runs(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)
        run_due_work(self.engine, now=self.now)
        for purchase in self.bought:
            books = self.books[purchase.member]
            expires = purchase.at + timedelta(minutes=HOLD_MINUTES)
            if purchase.status == "held" and self.now >= expires:
                purchase.status = "expired"
                event("hold timed out")
                books.held -= minor(purchase.answer["redeemed"])
                books.available += minor(purchase.answer["redeemed"])
            due = purchase.available_at is not None and purchase.available_at <= self.now
            if due and purchase.pending_accrual:
                event("pending points activated")
                books.pending -= purchase.pending_accrual
                books.credit(purchase.pending_accrual)
                purchase.pending_accrual = 0

    # — what must always hold —

    @invariant()
    def the_books_balance(self) -> None:
        if not self.books:
            return
        report = verify(self.engine)
        assert report[1] == [], report[1]
        # the trial balance, from the transfers alone: what members hold is exactly what
        # the program's own accounts gave out, so the program's side mirrors the members'
        owner = accounts.c.member_id.is_(None)
        with self.engine.connect() as connection:
            net = {True: 0, False: 0}
            for side in (transfers.c.debit_account_id, transfers.c.credit_account_id):
                sign = 1 if side is transfers.c.debit_account_id else -1
                for is_program, amount in connection.execute(
                    select(owner, func.sum(transfers.c.amount))
                    .join(accounts, accounts.c.id == side)
                    .where(transfers.c.program_id == self.program_id)
                    .group_by(owner)
                ):
                    net[bool(is_program)] += sign * int(amount)
        assert net[True] + net[False] == 0
        assert -net[False] == sum(b.available + b.pending + b.held - b.debt
                                  for b in self.books.values())  # fmt: skip

    @invariant()
    def every_member_has_what_the_answers_said(self) -> None:
        for member, books in self.books.items():
            actual = self._actual(member)
            assert actual == (books.available, books.pending, books.held, books.debt)
            assert min(books.pending, books.held, books.debt) >= 0
            if self.debt_mode or not books.refunded_spent:
                assert books.available >= 0, "negative without a refund that allows it"

    # — helpers —

    def _actual(self, member: str) -> tuple[int, int, int, int]:
        with self.engine.connect() as connection:
            rows = member_balances(connection, self.program_id, int(member))
        available, pending, held, debt = (rows[code][1] for code in MEMBER_ACCOUNTS)
        return available, pending, held, debt

    def _expect_answered_balance(self, member: str, answer: dict[str, Any]) -> None:
        books = self.books[member]
        assert {key: minor(value) for key, value in answer["balance"].items()} == {
            "available": books.available, "pending": books.pending, "held": books.held}  # fmt: skip
        figures = balance(self.engine, self.code, member)
        assert minor(figures["available"]) == books.available


def test_the_services_keep_the_books_in_any_order(engine: Engine) -> None:
    LedgerMachine.engine = engine
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=25,
            stateful_step_count=50,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
