"""A member's points for the length of one transaction: accounts, lots and debt in step.

Every movement of a member's points goes through a `Wallet`: it reads the member's
balances once (row-locked on PostgreSQL; SQLite serialises writers), plans the transfers
and the lot changes in memory, and `flush` writes them in a few batched statements —
the transfers in one multi-row INSERT, the cached totals and lots in one executemany
each. Lots are loaded only when points leave the available balance.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Connection, Select, bindparam, insert, or_, select, update

from kopilka.kernel.ledger import AccountCode, AccountRef, Posting, Reason, balance
from kopilka.kernel.lots import (
    Lot,
    expires_at,
    lot_part_of_credit,
    lot_part_of_debit,
    take_from_lots,
)
from kopilka.kernel.program import Program, SpentPoints
from kopilka.ledger.accounts import member_balances, post, program_account_ids
from kopilka.ledger.one_statement import write_under
from kopilka.platform.statements import NewRow, driver_rows
from kopilka.platform.tables import lots

AVAILABLE, PENDING, HELD, DEBT = (
    AccountCode.AVAILABLE,
    AccountCode.PENDING,
    AccountCode.HELD,
    AccountCode.DEBT,
)


@dataclass
class _NewLot:
    status: str
    amount: int
    remaining: int
    available_at: datetime
    expires_at: datetime | None
    purchase_id: int | None
    reason: str


@dataclass
class Wallet:
    connection: Connection
    program_id: int
    program: Program
    member_id: int
    now: datetime
    balances: dict[AccountCode, int]
    account_ids: dict[AccountCode, int]
    postings: list[Posting] = field(default_factory=list)
    _lots: dict[int, Lot] | None = None
    _taken: dict[int, int] = field(default_factory=dict)  # lot id → points off `remaining`
    _new_lots: dict[int, _NewLot] = field(default_factory=dict)  # negative ids until written
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(-1, -1))
    _activations: list[dict[str, int]] = field(default_factory=list)
    redeemed_uses: list[tuple[int, int]] = field(default_factory=list)  # lots a redemption took

    @classmethod
    def open(
        cls, connection: Connection, program_id: int, program: Program, member_id: int,
        now: datetime,
    ) -> Wallet:  # fmt: skip
        rows = member_balances(connection, program_id, member_id, lock=True)
        return cls(
            connection,
            program_id,
            program,
            member_id,
            now,
            balances={code: value for code, (_, value) in rows.items()},
            account_ids={code: account_id for code, (account_id, _) in rows.items()},
        )

    @classmethod
    def from_rows(
        cls, connection: Connection, program_id: int, program: Program, member_id: int,
        now: datetime, rows: Sequence[Any],
    ) -> Wallet:  # fmt: skip
        """A wallet from rows already read (and locked) with `account_id, code, debits_posted,
        credits_posted` columns — for use cases that read the member in the same query."""
        codes = [(row.account_id, AccountCode(row.code), row) for row in rows]
        return cls(
            connection,
            program_id,
            program,
            member_id,
            now,
            balances={
                code: balance(code, r.debits_posted, r.credits_posted) for _, code, r in codes
            },
            account_ids={code: account_id for account_id, code, _ in codes},
        )

    # — movements —

    def redeem(self, key: str, amount: int, *, hold: bool = False) -> list[tuple[int, int]]:
        """Pay `amount` points (or reserve them for a hold); the lots they came from."""
        into = AccountRef.of_member(self.member_id, HELD) if hold else _program(
            AccountCode.REDEEMED)  # fmt: skip
        reason = Reason.HOLD_RESERVE if hold else Reason.PURCHASE_REDEMPTION
        return self._debit_available(key, amount, into, reason)

    def accrue(
        self, key: str, amount: int, *, reason: Reason, purchase_id: int | None = None,
        pending: bool = False,
    ) -> None:  # fmt: skip
        """Credit earned points (into pending when the program delays them); pay debt first."""
        issuance = _program(AccountCode.ISSUANCE)
        if pending:
            self._move(key, issuance, self._mine(PENDING), amount, reason)
            available_at = self.now + timedelta(days=self.program.accrual.pending_days)
            self._add_lot("pending", amount, available_at, purchase_id, reason)
            return
        part = self._credit_available(key, issuance, amount, reason)
        self._add_lot("available", part, self.now, purchase_id, reason)

    def activate(self, key: str, lot_id: int, amount: int) -> None:
        """A pending lot whose day has come becomes available (and pays debt first)."""
        part = self._credit_available(key, self._mine(PENDING), amount, Reason.ACTIVATION)
        self._activations.append({"lot": lot_id, "remaining": part})

    def clawback(self, key: str, amount: int, *, purchase_id: int, from_pending: bool) -> None:
        """Take back points a refunded purchase earned (its own lot first)."""
        issuance = _program(AccountCode.ISSUANCE)
        if from_pending:
            self._move(key, self._mine(PENDING), issuance, amount, Reason.REFUND_ACCRUAL)
            self._take_pending(amount, purchase_id)
            return
        owed = 0
        if self.program.refunds.spent_points is SpentPoints.DEBT:
            owed = amount - min(amount, max(self.balances[AVAILABLE], 0))
        if amount - owed:
            self._debit_available(f"{key}", amount - owed, issuance, Reason.REFUND_ACCRUAL,
                                  own_purchase=purchase_id)  # fmt: skip
        if owed:
            self._move(f"{key}:debt", self._mine(DEBT), issuance, owed, Reason.DEBT)

    def give_back(
        self, key: str, amount: int, *, source: AccountRef, reason: Reason,
        uses: list[tuple[int, int]],
    ) -> None:  # fmt: skip
        """Return redeemed or held points to the lots they were taken from."""
        before = self.balances[AVAILABLE]
        self._move(key, source, self._mine(AVAILABLE), amount, reason)
        room = lot_part_of_credit(before, amount)
        for lot_id, points in reversed(uses):  # the last taken goes back first
            back = min(points, room)
            if back:
                self._taken[lot_id] = self._taken.get(lot_id, 0) - back
                room -= back

    def settle_hold(self, key: str, amount: int) -> None:
        """A confirmed hold: the reserved points are paid."""
        self._move(key, self._mine(HELD), _program(AccountCode.REDEEMED), amount,
                   Reason.PURCHASE_REDEMPTION)  # fmt: skip

    def adjust(self, key: str, points: int) -> None:
        """An operator's correction: positive credits a lot of its own, negative spends."""
        adjustments = _program(AccountCode.ADJUSTMENTS)
        if points > 0:
            part = self._credit_available(key, adjustments, points, Reason.ADJUSTMENT,
                                          pay_debt=False)  # fmt: skip
            self._add_lot("available", part, self.now, None, Reason.ADJUSTMENT)
        else:
            self._debit_available(key, -points, adjustments, Reason.ADJUSTMENT)

    def reward(self, key: str, points: int, *, valid_days: int | None) -> None:
        """Points the program gives by itself (a trigger): a lot of their own, burning
        `valid_days` from now when given (or sooner, by the program's expiry)."""
        part = self._credit_available(key, _program(AccountCode.ISSUANCE), points,
                                      Reason.TRIGGER)  # fmt: skip
        self._add_lot("available", part, self.now, None, Reason.TRIGGER)
        if valid_days is not None and part > 0:
            lot_id = next(reversed(self._new_lots))
            lot = self._new_lots[lot_id]
            early = self.now + timedelta(days=valid_days)
            if lot.expires_at is None or early < lot.expires_at:
                self._new_lots[lot_id] = replace(lot, expires_at=early)

    def burn_all(self, key: str) -> int:
        """The whole available balance burns (a reset for inactivity); how much burnt."""
        available = self.balances[AVAILABLE]
        if available > 0:
            self._debit_available(key, available, _program(AccountCode.EXPIRED), Reason.EXPIRY)
        return max(available, 0)

    def forfeit_all(self, key: str) -> None:
        """An erased member's points leave the books; their debt is written off."""
        expired, adjustments = _program(AccountCode.EXPIRED), _program(AccountCode.ADJUSTMENTS)
        if self.balances[AVAILABLE] > 0:
            self._debit_available(f"{key}:available", self.balances[AVAILABLE], expired,
                                  Reason.ERASURE)  # fmt: skip
        elif self.balances[AVAILABLE] < 0:
            self._move(f"{key}:available", adjustments, self._mine(AVAILABLE),
                       -self.balances[AVAILABLE], Reason.ERASURE)  # fmt: skip
        if self.balances[PENDING] > 0:
            self._take_pending(self.balances[PENDING], None)
            self._move(f"{key}:pending", self._mine(PENDING), expired, self.balances[PENDING],
                       Reason.ERASURE)  # fmt: skip
        if self.balances[DEBT] > 0:
            self._move(f"{key}:debt", adjustments, self._mine(DEBT), self.balances[DEBT],
                       Reason.ERASURE)  # fmt: skip

    # — writing —

    def flush(
        self, *, actor: str, purchase_id: int | None = None, refund_id: int | None = None,
        note: str | None = None, keys: dict[str, int] | None = None,
    ) -> None:  # fmt: skip
        """Write the planned transfers, totals and lots (nothing when nothing moved).

        Transfer keys may name ids known only now: "{purchase}:redeem" with
        `keys={"purchase": 42}` is written "42:redeem".
        """
        if keys:
            self.postings = [replace(p, key=p.key.format(**keys)) for p in self.postings]
        post(self.connection, self.program_id, self.postings, actor=actor, now=self.now,
             purchase_id=purchase_id, refund_id=refund_id, note=note,
             member_accounts=self._member_refs())  # fmt: skip
        self.postings = []
        taken = [{"lot": lot, "points": points} for lot, points in self._taken.items() if lot > 0]
        if taken:
            self.connection.execute(
                update(lots)
                .where(lots.c.id == bindparam("lot"))
                .values(remaining=lots.c.remaining - bindparam("points")),
                taken,
            )
        self._taken = {}
        if self._activations:
            self.connection.execute(
                update(lots)
                .where(lots.c.id == bindparam("lot"))
                .values(status="available", remaining=bindparam("remaining")),
                self._activations,
            )
        self._activations = []
        new = [self._lot_row(lot, purchase_id) for lot in self._new_lots.values() if lot.amount]
        if new:
            self.connection.execute(insert(lots), new)
        self._new_lots = {}

    def write_under(
        self, parent: NewRow, *, parent_is: str, actor: str, purchase_id: int | None = None
    ) -> int | None:
        """Insert `parent` (`ON CONFLICT DO NOTHING RETURNING id`: a purchase or a refund)
        and, only if it went in, the planned writes; the parent's id, or None.

        On PostgreSQL it is one statement; elsewhere (SQLite, in-process, where a
        statement costs no round trip) the parent goes first and `flush` follows.
        """
        assert not self._activations, "activations are flushed on their own"
        if self.connection.dialect.name != "postgresql":
            new_id = parent.insert(self.connection)
            if new_id is not None:
                links = {"purchase_id": new_id} if parent_is == "purchase" else {
                    "purchase_id": purchase_id, "refund_id": new_id}  # fmt: skip
                self.flush(actor=actor, keys={parent_is: new_id}, **links)
            return new_id
        ids = {**program_account_ids(self.connection, self.program_id), **self._member_refs()}
        new_id = write_under(
            self.connection,
            parent,
            parent_is=parent_is,
            program_id=self.program_id,
            postings=self.postings,
            ids=ids,
            actor=actor,
            now=self.now,
            purchase_id=purchase_id,
            lot_changes=[{"lot": lot, "points": n} for lot, n in self._taken.items() if lot > 0],
            new_lots=[self._lot_row(lot, purchase_id) for lot in self._new_lots.values()],
        )
        self.postings, self._taken, self._new_lots = [], {}, {}
        return new_id

    def _lot_row(self, lot: _NewLot, purchase_id: int | None) -> dict[str, Any]:
        return {
            "program_id": self.program_id,
            "member_id": self.member_id,
            "status": lot.status,
            "amount": lot.amount,
            "remaining": lot.remaining,
            "earned_at": self.now,
            "available_at": lot.available_at,
            "expires_at": lot.expires_at,
            "purchase_id": lot.purchase_id or purchase_id,
            "reason": lot.reason,
        }

    # — the parts —

    def _mine(self, code: AccountCode) -> AccountRef:
        return AccountRef.of_member(self.member_id, code)

    def _member_refs(self) -> dict[AccountRef, int]:
        return {self._mine(code): account_id for code, account_id in self.account_ids.items()}

    def _move(
        self, key: str, debit: AccountRef, credit: AccountRef, amount: int, reason: Reason
    ) -> None:
        if amount <= 0:
            return
        self.postings.append(Posting(key, debit, credit, amount, reason))
        for ref, sign in ((debit, -1), (credit, 1)):
            if ref.owner != "program":
                normal = -1 if ref.code.is_debit_normal else 1
                self.balances[ref.code] += sign * normal * amount

    def _credit_available(
        self, key: str, source: AccountRef, amount: int, reason: Reason, *,
        pay_debt: bool = True,
    ) -> int:  # fmt: skip
        """Credit the available balance, paying debt first; the part that forms a lot."""
        before = self.balances[AVAILABLE]
        self._move(key, source, self._mine(AVAILABLE), amount, reason)
        repaid = min(amount, self.balances[DEBT]) if pay_debt else 0
        self._move(f"{key}:debt", self._mine(AVAILABLE), self._mine(DEBT), repaid,
                   Reason.DEBT_REPAYMENT)  # fmt: skip
        return lot_part_of_credit(before, amount - repaid)

    def _debit_available(
        self, key: str, amount: int, into: AccountRef, reason: Reason,
        own_purchase: int | None = None,
    ) -> list[tuple[int, int]]:  # fmt: skip
        part = lot_part_of_debit(self.balances[AVAILABLE], amount)
        self._move(key, self._mine(AVAILABLE), into, amount, reason)
        uses = take_from_lots(self._available_lots(), part, own_purchase) if part else []
        for lot_id, points in uses:
            self._take(lot_id, points)
        return uses

    def _take(self, lot_id: int, points: int) -> None:
        if lot_id < 0:
            self._new_lots[lot_id].remaining -= points
        else:
            self._taken[lot_id] = self._taken.get(lot_id, 0) + points

    def _take_pending(self, amount: int, purchase_id: int | None) -> None:
        pending = self._load_lots("pending")
        for lot_id, points in take_from_lots(pending, amount, purchase_id):
            self._take(lot_id, points)

    def _add_lot(
        self, status: str, amount: int, available_at: datetime, purchase_id: int | None,
        reason: Reason,
    ) -> None:  # fmt: skip
        if amount <= 0:
            return
        burns = expires_at(self.program.expiry, available_at, self.program.timezone)
        self._new_lots[next(self._ids)] = _NewLot(
            status, amount, amount, available_at, burns, purchase_id, reason.value
        )

    def _available_lots(self) -> list[Lot]:
        touched = {lot_id for lot_id in self._taken if lot_id > 0}  # incl. spent, given back
        if self._lots is None or not touched <= self._lots.keys():
            self._lots = {lot.id: lot for lot in self._load_lots("available", touched)}
        live = [
            Lot(lot.id, lot.remaining - self._taken.get(lot.id, 0), lot.expires_at,
                lot.purchase_id)
            for lot in self._lots.values()
        ]  # fmt: skip
        fresh = [
            Lot(lot_id, lot.remaining, lot.expires_at, lot.purchase_id)
            for lot_id, lot in self._new_lots.items()
            if lot.status == "available"
        ]
        return live + fresh

    def _load_lots(self, status: str, also: set[int] | None = None) -> list[Lot]:
        """The member's lots in `status` with points left (and the lots `also` names)."""
        parameters = {"member_id": self.member_id, "status": status, "also": sorted(also or ())}
        rows: Sequence[Any]
        if self.connection.dialect.name == "postgresql":  # the hot path: see driver_rows
            rows = driver_rows(self.connection, LOTS_SQL, parameters)
        else:
            rows = self.connection.execute(_lots_query(), parameters).all()
        return [Lot(row.id, row.remaining, row.expires_at, row.purchase_id) for row in rows]


LOTS_SQL = """
SELECT id, remaining, expires_at, purchase_id FROM lots
WHERE member_id = %(member_id)s AND status = %(status)s
  AND (remaining > 0 OR id = ANY(%(also)s::int[]))"""


@cache
def _lots_query() -> Select[Any]:
    """LOTS_SQL for SQLAlchemy (SQLite), built once so its compiled form is cached."""
    return select(lots.c.id, lots.c.remaining, lots.c.expires_at, lots.c.purchase_id).where(
        lots.c.member_id == bindparam("member_id"), lots.c.status == bindparam("status"),
        or_(lots.c.remaining > 0, lots.c.id.in_(bindparam("also", expanding=True))),
    )  # fmt: skip


def _program(code: AccountCode) -> AccountRef:
    return AccountRef.of_program(code)
