"""A member's balance of one unit for the length of one transaction: points or money.

A `Purse` is the one wallet of every unit (`POINTS`, `CASHBACK`, whatever comes next): it
reads the member's accounts of its unit once — row-locked on PostgreSQL, in one query;
SQLite serialises writers — plans the transfers in memory with their idempotency keys,
keeping the balances in step, and `flush` writes them: the transfers in one multi-row
INSERT, the cached totals in one executemany.

A `Wallet` is the points purse: points also form lots (for expiry, first in first out)
and may be held for a purchase not yet confirmed, so it plans the lot changes beside the
transfers and writes them in the same flush — or, for a purchase or a refund on
PostgreSQL, in the parent's one statement (`write_under`). Lots are loaded only when
points leave the available balance.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Insert, Select, Update, bindparam, insert, or_, select, update

from kopilka.kernel.ledger import AccountCode, AccountRef, Posting, Reason, balance
from kopilka.kernel.lots import (
    Lot,
    expires_at,
    lot_part_of_credit,
    lot_part_of_debit,
    take_from_lots,
)
from kopilka.kernel.program import Program, SpentPoints
from kopilka.ledger.accounts import (
    POINTS,
    Unit,
    post,
    posting_ids,
    unit_balances,
)
from kopilka.ledger.one_statement import write_under
from kopilka.platform.statements import NewRow, driver_rows
from kopilka.platform.tables import lots

AVAILABLE, PENDING, HELD, DEBT = (
    AccountCode.AVAILABLE,
    AccountCode.PENDING,
    AccountCode.HELD,
    AccountCode.DEBT,
)
ISSUANCE, REDEEMED, ADJUSTMENTS, EXPIRED = (
    AccountCode.ISSUANCE,
    AccountCode.REDEEMED,
    AccountCode.ADJUSTMENTS,
    AccountCode.EXPIRED,
)


@dataclass
class Purse:
    """A member's accounts of one unit, and the transfers planned on them."""

    connection: Connection
    program_id: int
    member_id: int
    now: datetime
    unit: Unit
    balances: dict[AccountCode, int]
    account_ids: dict[AccountCode, int]
    postings: list[Posting] = field(default_factory=list)

    @classmethod
    def open(
        cls, connection: Connection, program_id: int, member_id: int, now: datetime, *,
        unit: Unit,
    ) -> Purse:  # fmt: skip
        """The member's purse of `unit`, its accounts locked until commit (and opened first
        for a unit opened at first use)."""
        rows = unit_balances(connection, program_id, member_id, unit, lock=True,
                             open_missing=unit.opened_at_first_use)  # fmt: skip
        return cls(connection, program_id, member_id, now, unit, *_split(rows))

    def sibling(self, unit: Unit) -> Purse | None:
        """The member's purse of `unit` from the accounts this one was read with — a
        purchase's load reads (and locks) every account of the member, so their cashback
        needs no read of its own; None when the member has not got them all yet (a unit
        opened at first use: `open` opens them)."""
        if any(code not in self.account_ids for code in unit.accounts):
            return None
        return Purse(self.connection, self.program_id, self.member_id, self.now, unit,
                     {code: self.balances[code] for code in unit.accounts},
                     {code: self.account_ids[code] for code in unit.accounts})  # fmt: skip

    @property
    def owner(self) -> str:
        return self.unit.owner_of(self.member_id)

    def move(
        self, key: str, debit: AccountCode, credit: AccountCode | AccountRef, amount: int,
        reason: Reason,
    ) -> None:  # fmt: skip
        """Plan a transfer between two accounts of the unit — the member's own or the
        program's; nothing when there is nothing to move."""
        if amount <= 0:
            return
        self.postings.append(Posting(key, self.ref(debit), self.ref(credit), amount, reason))
        self._book(debit, -amount)
        self._book(credit, amount)

    def credit_available(
        self, key: str, source: AccountCode, amount: int, reason: Reason, *,
        pay_debt: bool = True,
    ) -> int:  # fmt: skip
        """Credit the available balance, and pay the member's debt from it first (one more
        transfer, keyed "<key>:debt"); what is left of `amount` once the debt is paid."""
        self.move(key, source, self.unit.available, amount, reason)
        repaid = min(amount, self.balances[self.unit.debt]) if pay_debt else 0
        self.move(f"{key}:debt", self.unit.available, self.unit.debt, repaid,
                  self.unit.repayment)  # fmt: skip
        return amount - repaid

    def flush(
        self, *, actor: str, purchase_id: int | None = None, refund_id: int | None = None,
        note: str | None = None, keys: dict[str, int] | None = None,
    ) -> None:  # fmt: skip
        """Write the planned transfers and the member's cached totals (nothing when nothing
        moved).

        Transfer keys may name ids known only now: "{purchase}:redeem" with
        `keys={"purchase": 42}` is written "42:redeem".
        """
        if keys:
            self.postings = [replace(p, key=p.key.format(**keys)) for p in self.postings]
        post(self.connection, self.program_id, self.postings, actor=actor, now=self.now,
             purchase_id=purchase_id, refund_id=refund_id, note=note,
             member_accounts=self.account_refs())  # fmt: skip
        self.postings = []

    def write_under(self, parent: NewRow, *, actor: str, purchase_id: int) -> int | None:
        """Insert `parent` (a row of the purchase `purchase_id`'s, `ON CONFLICT DO NOTHING
        RETURNING id`) and, only if it went in, the planned transfers (of that purchase);
        the parent's id, or None. One statement on PostgreSQL; elsewhere the parent goes
        first and `flush` follows."""
        if self.connection.dialect.name != "postgresql":
            new_id = parent.insert(self.connection)
            if new_id is not None:
                self.flush(actor=actor, purchase_id=purchase_id)
            return new_id
        ids = posting_ids(self.connection, self.program_id, self.postings, self.account_refs())
        new_id = write_under(self.connection, parent, parent_is=parent.table.name,
                             program_id=self.program_id, postings=self.postings, ids=ids,
                             actor=actor, now=self.now, purchase_id=purchase_id,
                             lot_changes=[], new_lots=[])  # fmt: skip
        self.postings = []
        return new_id

    def ref(self, code: AccountCode | AccountRef) -> AccountRef:
        """The account `code` names: the member's own, or the program's. A code of another
        unit is refused — points never move into money, nor money into points. An account
        the program keeps apart by owner (a charity's) is named by its reference."""
        if isinstance(code, AccountRef):
            if code.owner == "program" or code.code.is_member_account:
                raise ValueError(f"{code} is named by its code, not by reference")
            return code
        if code in self.unit.accounts:
            return AccountRef(self.owner, code)
        if code in self.unit.program_accounts:
            return AccountRef.of_program(code)
        raise ValueError(f"{code.value} is not an account of {self.unit.name}")

    def account_refs(self) -> dict[AccountRef, int]:
        """The member's accounts by reference, with their ids."""
        return {AccountRef(self.owner, code): id_ for code, id_ in self.account_ids.items()}

    def _book(self, code: AccountCode | AccountRef, credited: int) -> None:
        """Keep the member's balance of `code` in step with a planned transfer (`credited`
        is negative for a debit); the program's accounts keep no balance here."""
        if code in self.unit.accounts:
            self.balances[code] += -credited if code.is_debit_normal else credited


def _split(
    rows: dict[AccountCode, tuple[int, int]],
) -> tuple[dict[AccountCode, int], dict[AccountCode, int]]:
    """Accounts' (id, balance) by code as two maps: balances, and account ids."""
    return (
        {code: value for code, (_, value) in rows.items()},
        {code: account_id for code, (account_id, _) in rows.items()},
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
    """The member's points: their purse of `POINTS`, and what only points have — lots
    (spent soonest-burning first, and given back to the lots they came from) and holds."""

    purse: Purse
    program: Program
    redeemed_uses: list[tuple[int, int]] = field(default_factory=list)  # lots a redemption took
    _lots: dict[int, Lot] | None = None
    _taken: dict[int, int] = field(default_factory=dict)  # lot id → points off `remaining`
    _new_lots: dict[int, _NewLot] = field(default_factory=dict)  # negative ids until written
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(-1, -1))
    _activations: list[dict[str, int]] = field(default_factory=list)

    @classmethod
    def open(
        cls, connection: Connection, program_id: int, program: Program, member_id: int,
        now: datetime,
    ) -> Wallet:  # fmt: skip
        return cls(Purse.open(connection, program_id, member_id, now, unit=POINTS), program)

    @classmethod
    def from_rows(
        cls, connection: Connection, program_id: int, program: Program, member_id: int,
        now: datetime, rows: Sequence[Any], *, lots: Sequence[Any] | None = None,
    ) -> Wallet:  # fmt: skip
        """A wallet from rows already read (and locked) with `account_id, code, debits_posted,
        credits_posted` columns — for use cases that read the member in the same query;
        `lots`: their available lots with points left, read with them (`LOTS_COLUMNS`)."""
        found: dict[AccountCode, tuple[int, int]] = {}
        for row in rows:
            code = AccountCode(row.code)
            found[code] = (row.account_id, balance(code, row.debits_posted, row.credits_posted))
        purse = Purse(connection, program_id, member_id, now, POINTS, *_split(found))
        wallet = cls(purse, program)
        if lots is not None:
            wallet._lots = {row.id: Lot(row.id, row.remaining, row.expires_at, row.purchase_id)
                            for row in lots}  # fmt: skip
        return wallet

    @property
    def balances(self) -> dict[AccountCode, int]:
        return self.purse.balances

    def planned(self, reason: Reason) -> int:
        """The points of the transfers planned (not yet written) with `reason`."""
        return sum(posting.amount for posting in self.purse.postings if posting.reason is reason)

    # — movements —

    def redeem(self, key: str, amount: int, *, hold: bool = False) -> list[tuple[int, int]]:
        """Pay `amount` points (or reserve them for a hold); the lots they came from."""
        reason = Reason.HOLD_RESERVE if hold else Reason.PURCHASE_REDEMPTION
        return self._debit_available(key, amount, HELD if hold else REDEEMED, reason)

    def accrue(
        self, key: str, amount: int, *, reason: Reason, purchase_id: int | None = None,
        pending: bool = False, source: AccountCode = ISSUANCE,
    ) -> None:  # fmt: skip
        """Credit earned points (into pending when the program delays them); pay debt first.
        `source`: the program's account they come from (points another program sent come
        from the exchange's clearing account)."""
        now = self.purse.now
        if pending:
            self.purse.move(key, source, PENDING, amount, reason)
            available_at = now + timedelta(days=self.program.accrual.pending_days)
            self._add_lot("pending", amount, available_at, purchase_id, reason)
            return
        part = self._credit_lot_part(key, source, amount, reason)
        self._add_lot("available", part, now, purchase_id, reason)

    def activate(self, key: str, lot_id: int, amount: int) -> None:
        """A pending lot whose day has come becomes available (and pays debt first)."""
        part = self._credit_lot_part(key, PENDING, amount, Reason.ACTIVATION)
        self._activations.append({"lot": lot_id, "remaining": part})

    def clawback(self, key: str, amount: int, *, purchase_id: int, from_pending: bool) -> None:
        """Take back points a refunded purchase earned (its own lot first)."""
        if from_pending:
            self.purse.move(key, PENDING, ISSUANCE, amount, Reason.REFUND_ACCRUAL)
            self._take_pending(amount, purchase_id)
            return
        owed = 0
        if self.program.refunds.spent_points is SpentPoints.DEBT:
            owed = amount - min(amount, max(self.balances[AVAILABLE], 0))
        if amount - owed:
            self._debit_available(key, amount - owed, ISSUANCE, Reason.REFUND_ACCRUAL,
                                  own_purchase=purchase_id)  # fmt: skip
        if owed:
            self.purse.move(f"{key}:debt", DEBT, ISSUANCE, owed, Reason.DEBT)

    def give_back(
        self, key: str, amount: int, *, source: AccountRef, reason: Reason,
        uses: list[tuple[int, int]],
    ) -> None:  # fmt: skip
        """Return redeemed or held points to the lots they were taken from."""
        if self.purse.ref(source.code) != source:
            raise ValueError(f"{source} is neither this member's nor the program's")
        before = self.balances[AVAILABLE]
        self.purse.move(key, source.code, AVAILABLE, amount, reason)
        room = lot_part_of_credit(before, amount)
        for lot_id, points in reversed(uses):  # the last taken goes back first
            back = min(points, room)
            if back:
                self._taken[lot_id] = self._taken.get(lot_id, 0) - back
                room -= back

    def spend(
        self, key: str, amount: int, *, into: AccountCode | AccountRef, reason: Reason
    ) -> list[tuple[int, int]]:
        """Move `amount` available points to a program account `into` (an exchange's hold, a
        charity's account), taken from the lots that burn first; the lots they came from
        (for `give_back`)."""
        return self._debit_available(key, amount, into, reason)

    def give_from_new_lots(self, key: str, amount: int, *, into: AccountRef, reason: Reason) -> int:
        """Up to `amount` of the points this wallet has just credited to the available
        balance (a purchase's round-up) moved to `into`, off the lots those credits made —
        nothing else of the member's is read (a purchase reads no lots to earn); the
        points moved (none when the credits paid a debt and made no lot)."""
        fresh = [
            Lot(lot_id, lot.remaining, lot.expires_at, lot.purchase_id)
            for lot_id, lot in self._new_lots.items()
            if lot.status == "available"
        ]
        amount = min(amount, sum(lot.remaining for lot in fresh), self.balances[AVAILABLE])
        if amount <= 0:
            return 0
        self.purse.move(key, AVAILABLE, into, amount, reason)
        for lot_id, points in take_from_lots(fresh, amount):
            self._take(lot_id, points)
        return amount

    def settle_hold(self, key: str, amount: int) -> None:
        """A confirmed hold: the reserved points are paid."""
        self.purse.move(key, HELD, REDEEMED, amount, Reason.PURCHASE_REDEMPTION)

    def adjust(self, key: str, points: int) -> None:
        """An operator's correction: positive credits a lot of its own, negative spends."""
        if points > 0:
            part = self._credit_lot_part(key, ADJUSTMENTS, points, Reason.ADJUSTMENT,
                                         pay_debt=False)  # fmt: skip
            self._add_lot("available", part, self.purse.now, None, Reason.ADJUSTMENT)
        else:
            self._debit_available(key, -points, ADJUSTMENTS, Reason.ADJUSTMENT)

    def reward(self, key: str, points: int, *, valid_days: int | None) -> None:
        """Points the program gives by itself (a trigger): a lot of their own, burning
        `valid_days` from now when given (or sooner, by the program's expiry)."""
        now = self.purse.now
        part = self._credit_lot_part(key, ISSUANCE, points, Reason.TRIGGER)
        self._add_lot("available", part, now, None, Reason.TRIGGER)
        if valid_days is not None and part > 0:
            lot_id = next(reversed(self._new_lots))
            lot = self._new_lots[lot_id]
            early = now + timedelta(days=valid_days)
            if lot.expires_at is None or early < lot.expires_at:
                self._new_lots[lot_id] = replace(lot, expires_at=early)

    def burn_all(self, key: str) -> int:
        """The whole available balance burns (a reset for inactivity); how much burnt."""
        available = self.balances[AVAILABLE]
        if available > 0:
            self._debit_available(key, available, EXPIRED, Reason.EXPIRY)
        return max(available, 0)

    def forfeit_all(self, key: str) -> None:
        """An erased member's points leave the books; their debt is written off."""
        available, pending, debt = (self.balances[code] for code in (AVAILABLE, PENDING, DEBT))
        if available > 0:
            self._debit_available(f"{key}:available", available, EXPIRED, Reason.ERASURE)
        elif available < 0:
            self.purse.move(f"{key}:available", ADJUSTMENTS, AVAILABLE, -available,
                            Reason.ERASURE)  # fmt: skip
        if pending > 0:
            self._take_pending(pending, None)
            self.purse.move(f"{key}:pending", PENDING, EXPIRED, pending, Reason.ERASURE)
        if debt > 0:
            self.purse.move(f"{key}:debt", ADJUSTMENTS, DEBT, debt, Reason.ERASURE)

    # — writing —

    def flush(
        self, *, actor: str, purchase_id: int | None = None, refund_id: int | None = None,
        note: str | None = None, keys: dict[str, int] | None = None,
    ) -> None:  # fmt: skip
        """Write the planned transfers and totals (see `Purse.flush`), then the lots."""
        self.purse.flush(actor=actor, purchase_id=purchase_id, refund_id=refund_id, note=note,
                         keys=keys)  # fmt: skip
        self._write_lots(purchase_id)

    def write_under(
        self,
        parent: NewRow,
        *,
        parent_is: str,
        actor: str,
        purchase_id: int | None = None,
        commit: bool = False,
    ) -> int | None:
        """Insert `parent` (`ON CONFLICT DO NOTHING RETURNING id`: a purchase or a refund)
        and, only if it went in, the planned writes; the parent's id, or None.

        On PostgreSQL it is one statement (with the COMMIT in the same round trip when
        `commit`: nothing is written after it); elsewhere (SQLite, in-process, where a
        statement costs no round trip) the parent goes first and `flush` follows.
        """
        assert not self._activations, "activations are flushed on their own"
        purse = self.purse
        if purse.connection.dialect.name != "postgresql":
            new_id = parent.insert(purse.connection)
            if new_id is not None:
                links = {"purchase_id": new_id} if parent_is == "purchase" else {
                    "purchase_id": purchase_id, "refund_id": new_id}  # fmt: skip
                self.flush(actor=actor, keys={parent_is: new_id}, **links)
            return new_id
        ids = posting_ids(purse.connection, purse.program_id, purse.postings, purse.account_refs())
        new_id = write_under(
            purse.connection,
            parent,
            parent_is=parent_is,
            program_id=purse.program_id,
            postings=purse.postings,
            ids=ids,
            actor=actor,
            now=purse.now,
            purchase_id=purchase_id,
            lot_changes=[{"lot": lot, "points": n} for lot, n in self._taken.items() if lot > 0],
            new_lots=[self._lot_row(lot, purchase_id) for lot in self._new_lots.values()],
            commit=commit,
        )
        purse.postings, self._taken, self._new_lots = [], {}, {}
        return new_id

    def _write_lots(self, purchase_id: int | None) -> None:
        """The lots' planned changes: points taken off, pending lots activated, new lots."""
        connection = self.purse.connection
        taken = [{"lot": lot, "points": points} for lot, points in self._taken.items() if lot > 0]
        if taken:
            connection.execute(_take_from_lots(), taken)
        self._taken = {}
        if self._activations:
            connection.execute(_activate_lots(), self._activations)
        self._activations = []
        new = [self._lot_row(lot, purchase_id) for lot in self._new_lots.values() if lot.amount]
        if new:
            connection.execute(_insert_lots(), new)
        self._new_lots = {}

    def _lot_row(self, lot: _NewLot, purchase_id: int | None) -> dict[str, Any]:
        return {
            "program_id": self.purse.program_id,
            "member_id": self.purse.member_id,
            "status": lot.status,
            "amount": lot.amount,
            "remaining": lot.remaining,
            "earned_at": self.purse.now,
            "available_at": lot.available_at,
            "expires_at": lot.expires_at,
            "purchase_id": lot.purchase_id or purchase_id,
            "reason": lot.reason,
            "expiry_day": expiry_day(lot.expires_at, self.program.timezone),
        }

    # — the parts —

    def _credit_lot_part(
        self, key: str, source: AccountCode, amount: int, reason: Reason, *,
        pay_debt: bool = True,
    ) -> int:  # fmt: skip
        """Credit the available balance, paying debt first; the part that forms a lot."""
        before = self.balances[AVAILABLE]
        kept = self.purse.credit_available(key, source, amount, reason, pay_debt=pay_debt)
        return lot_part_of_credit(before, kept)

    def _debit_available(
        self, key: str, amount: int, into: AccountCode | AccountRef, reason: Reason,
        own_purchase: int | None = None,
    ) -> list[tuple[int, int]]:  # fmt: skip
        part = lot_part_of_debit(self.balances[AVAILABLE], amount)
        self.purse.move(key, AVAILABLE, into, amount, reason)
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
        connection = self.purse.connection
        parameters = {"member_id": self.purse.member_id, "status": status,
                      "also": sorted(also or ())}  # fmt: skip
        rows: Sequence[Any]
        if connection.dialect.name == "postgresql":  # the hot path: see driver_rows
            rows = driver_rows(connection, LOTS_SQL, parameters)
        else:
            rows = connection.execute(_lots_query(), parameters).all()
        return [Lot(row.id, row.remaining, row.expires_at, row.purchase_id) for row in rows]


def expiry_day(expires_at: datetime | None, timezone: str) -> date | None:
    """The last day points burning at `expires_at` can be spent, in `timezone`: a lot
    burning at midnight is spent by the eve."""
    if expires_at is None:
        return None
    return (expires_at - timedelta(microseconds=1)).astimezone(ZoneInfo(timezone)).date()


# The statements `_write_lots` runs, built once (SQLAlchemy works out the cache key of
# every new statement object anew: most of a statement's cost on SQLite).
@cache
def _take_from_lots() -> Update:
    return (
        update(lots)
        .where(lots.c.id == bindparam("lot"))
        .values(remaining=lots.c.remaining - bindparam("points"))
    )


@cache
def _activate_lots() -> Update:
    return (
        update(lots)
        .where(lots.c.id == bindparam("lot"))
        .values(status="available", remaining=bindparam("remaining"))
    )


@cache
def _insert_lots() -> Insert:
    return insert(lots)


LOTS_COLUMNS = ("id", "remaining", "expires_at", "purchase_id")
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
