"""Writing and reading the ledger with SQLAlchemy Core.

Only member accounts keep cached running totals (updated in the transaction of their
transfers); the program's own accounts (issuance, redeemed …) are touched by every
purchase, so caching their totals would make one row every purchase waits on — their
balances are sums over `transfers`, which `kopilka verify` recomputes anyway.

A member's accounts come in units: points ("member:<id>") and cashback money
("cashback:<id>"), each a `Unit` — what a `Purse` (kopilka.ledger.wallet) is opened on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine, Insert, Update, bindparam, insert, select, text, update

from kopilka.kernel.ledger import (
    CASHBACK_MEMBER_ACCOUNTS,
    MEMBER_ACCOUNTS,
    PROGRAM_ACCOUNTS,
    AccountCode,
    AccountRef,
    Posting,
    Reason,
    balance,
)
from kopilka.kernel.program import Program
from kopilka.platform.db import is_postgresql
from kopilka.platform.tables import accounts, transfers


@dataclass(frozen=True, slots=True)
class Unit:
    """What a member's accounts count — points, cashback money, or a currency to come.

    Each unit keeps its own accounts: the member's are owned by "<owner>:<member id>", so
    nothing that reads one unit's balances sees another's, and a transfer never moves
    between units. Amounts are integers in the unit's minor units (`digits` per whole one,
    by the program's settings)."""

    name: str
    owner: str  # the member's accounts' owner is "<owner>:<member id>"
    accounts: tuple[AccountCode, ...]  # the member's, in the order they are opened
    program_accounts: tuple[AccountCode, ...]  # where the unit comes from and goes
    available: AccountCode  # what the member may spend
    debt: AccountCode  # taken back after it was spent: later credits pay it first …
    repayment: Reason  # … by a transfer with this reason
    opened_at_first_use: bool  # members registered before the unit existed have none of it
    digits: Callable[[Program], int]

    def owner_of(self, member_id: int) -> str:
        return f"{self.owner}:{member_id}"


POINTS = Unit(
    name="points",
    owner="member",
    accounts=MEMBER_ACCOUNTS,
    program_accounts=(AccountCode.ISSUANCE, AccountCode.REDEEMED, AccountCode.ADJUSTMENTS,
                      AccountCode.EXPIRED, AccountCode.EXCHANGE_HELD,
                      AccountCode.EXCHANGE_CLEARING, AccountCode.EXCHANGE_FEES),
    available=AccountCode.AVAILABLE,
    debt=AccountCode.DEBT,
    repayment=Reason.DEBT_REPAYMENT,
    opened_at_first_use=False,  # opened at registration
    digits=lambda program: program.points.precision,
)  # fmt: skip
CASHBACK = Unit(
    name="cashback",
    owner="cashback",
    accounts=CASHBACK_MEMBER_ACCOUNTS,
    program_accounts=(AccountCode.CASHBACK_ISSUANCE, AccountCode.CASHBACK_PAID_OUT),
    available=AccountCode.CASHBACK_AVAILABLE,
    debt=AccountCode.CASHBACK_DEBT,
    repayment=Reason.CASHBACK_DEBT_REPAYMENT,
    opened_at_first_use=True,
    digits=lambda program: program.money_digits,  # money, in the currency's minor units
)


def open_accounts(connection: Connection, program_id: int, member_id: int | None = None) -> None:
    """Create the program's accounts, or a member's points accounts (at registration)."""
    codes = POINTS.accounts if member_id is not None else PROGRAM_ACCOUNTS
    owner = POINTS.owner_of(member_id) if member_id is not None else "program"
    connection.execute(
        insert(accounts),
        [
            {
                "program_id": program_id,
                "member_id": member_id,
                "owner": owner,
                "code": code.value,
                "debits_posted": 0,
                "credits_posted": 0,
            }
            for code in codes
        ],
    )


_OPEN_MISSING = text(
    "INSERT INTO accounts (program_id, member_id, owner, code, debits_posted, credits_posted) "
    "VALUES (:program_id, :member_id, :owner, :code, 0, 0) "
    "ON CONFLICT (program_id, owner, code) DO NOTHING"
)


def unit_balances(
    connection: Connection, program_id: int, member_id: int, unit: Unit, *, lock: bool = False,
    open_missing: bool = False,
) -> dict[AccountCode, tuple[int, int]]:  # fmt: skip
    """The member's accounts of `unit`: (id, balance) each, row-locked on PostgreSQL with `lock`.

    With `open_missing` the accounts the member has not got yet are opened first (a unit
    opened at first use): `ON CONFLICT DO NOTHING`, so two first uses at once open them once."""
    owner = unit.owner_of(member_id)
    found = owner_balances(connection, program_id, owner, lock=lock)
    if len(found) == len(unit.accounts) or not open_missing:
        return found
    connection.execute(
        _OPEN_MISSING,
        [
            {"program_id": program_id, "member_id": member_id, "owner": owner, "code": c.value}
            for c in unit.accounts
            if c not in found
        ],
    )
    return owner_balances(connection, program_id, owner, lock=lock)


def cashback_balances(
    connection: Connection, program_id: int, member_id: int, *, lock: bool = True,
    open_missing: bool = True,
) -> dict[AccountCode, tuple[int, int]]:  # fmt: skip
    """The member's cashback accounts' (id, balance), row-locked on PostgreSQL with `lock`;
    opened at first use (members registered before cashback existed have none) — without
    `open_missing` a member who never had cashback gets an empty answer."""
    return unit_balances(connection, program_id, member_id, CASHBACK, lock=lock,
                         open_missing=open_missing)  # fmt: skip


def program_account_ids(
    connection: Connection, program_id: int, *, refresh: bool = False
) -> dict[AccountRef, int]:
    """The program's own account ids — fixed once opened, so remembered per engine: those
    of "program" and those it keeps apart by owner ("charity:<code>"), none a member's."""
    known = _program_accounts.setdefault(connection.engine, {})
    if program_id not in known or refresh:
        rows = connection.execute(
            select(accounts.c.id, accounts.c.owner, accounts.c.code).where(
                accounts.c.program_id == program_id, accounts.c.member_id.is_(None)
            )
        )
        known[program_id] = {AccountRef(r.owner, AccountCode(r.code)): r.id for r in rows}
    return known[program_id]


_program_accounts: WeakKeyDictionary[Engine, dict[int, dict[AccountRef, int]]] = WeakKeyDictionary()


def member_balances(
    connection: Connection, program_id: int, member_id: int, *, lock: bool = False
) -> dict[AccountCode, tuple[int, int]]:
    """Each points account's (id, balance); `lock` holds the rows until commit (PostgreSQL)."""
    return unit_balances(connection, program_id, member_id, POINTS, lock=lock)


def owner_balances(
    connection: Connection, program_id: int, owner: str, *, lock: bool = False
) -> dict[AccountCode, tuple[int, int]]:
    """Each account's (id, balance) of one owner ("member:<id>", "cashback:<id>")."""
    query = (
        select(accounts.c.id, accounts.c.code, accounts.c.debits_posted, accounts.c.credits_posted)
        .where(accounts.c.program_id == program_id, accounts.c.owner == owner)
        .order_by(accounts.c.id)
    )
    if lock and is_postgresql(connection.engine):
        query = query.with_for_update()
    result: dict[AccountCode, tuple[int, int]] = {}
    for row in connection.execute(query):
        code = AccountCode(row.code)
        result[code] = (row.id, balance(code, row.debits_posted, row.credits_posted))
    return result


def post(
    connection: Connection,
    program_id: int,
    postings: list[Posting],
    *,
    actor: str,
    now: datetime,
    member_accounts: dict[AccountRef, int],
    purchase_id: int | None = None,
    refund_id: int | None = None,
    note: str | None = None,
) -> None:
    """Insert the transfers (one multi-row INSERT) and move the member accounts' totals."""
    if not postings:
        return
    ids = posting_ids(connection, program_id, postings, member_accounts)
    connection.execute(
        _insert_transfers(),
        [
            {
                "program_id": program_id,
                "transfer_key": p.key,
                "debit_account_id": ids[p.debit],
                "credit_account_id": ids[p.credit],
                "amount": p.amount,
                "reason": p.reason.value,
                "actor": actor,
                "purchase_id": purchase_id,
                "refund_id": refund_id,
                "note": note,
                "created_at": now,
            }
            for p in postings
        ],
    )
    totals = account_totals(postings, ids)
    if totals:  # none when only the program's accounts moved (an exchange's confirm)
        connection.execute(_add_to_accounts(), totals)


def posting_ids(
    connection: Connection, program_id: int, postings: list[Posting],
    member_accounts: dict[AccountRef, int],
) -> dict[AccountRef, int]:  # fmt: skip
    """The ids of every account `postings` name: the program's and `member_accounts`."""
    ids = {**program_account_ids(connection, program_id), **member_accounts}
    if any(p.debit not in ids or p.credit not in ids for p in postings):
        # a program account opened since the ids were remembered (cashback's, by migration)
        ids = {**program_account_ids(connection, program_id, refresh=True), **member_accounts}
    return ids


# The statements `post` runs, built once: SQLAlchemy keys its cache of compiled forms by a
# statement's structure, and works that key out anew for every new statement object.
@cache
def _insert_transfers() -> Insert:
    return insert(transfers)


@cache
def _add_to_accounts() -> Update:
    return (
        update(accounts)
        .where(accounts.c.id == bindparam("account"))
        .values(
            debits_posted=accounts.c.debits_posted + bindparam("debits"),
            credits_posted=accounts.c.credits_posted + bindparam("credits"),
        )
    )


def account_totals(postings: list[Posting], ids: dict[AccountRef, int]) -> list[dict[str, int]]:
    """What the postings add to each member account's cached debits and credits, by id
    (sorted, so concurrent transactions touch rows in one order and can't deadlock)."""
    moved: dict[int, list[int]] = {}  # account id → [debits, credits]
    for p in postings:
        if p.debit.code.is_member_account:
            moved.setdefault(ids[p.debit], [0, 0])[0] += p.amount
        if p.credit.code.is_member_account:
            moved.setdefault(ids[p.credit], [0, 0])[1] += p.amount
    return [
        {"account": account, "debits": debits, "credits": credits}
        for account, (debits, credits) in sorted(moved.items())
    ]


def lock_members(connection: Connection, member_ids: list[int], *, skip: bool = True) -> list[int]:
    """Those of `member_ids` this transaction now holds, by their available account — the
    row a purchase, a refund, expiry and a tier review take first, so they never deadlock.
    On PostgreSQL with `skip` the members another transaction holds are left out (for the
    next batch or run: `FOR UPDATE SKIP LOCKED`); SQLite has one writer at a time."""
    query = (
        select(accounts.c.member_id)
        .where(accounts.c.member_id.in_(member_ids),
               accounts.c.code == AccountCode.AVAILABLE.value)
        .order_by(accounts.c.id)
    )  # fmt: skip
    if connection.dialect.name == "postgresql":
        query = query.with_for_update(of=accounts, skip_locked=skip)
    return [int(member_id) for member_id in connection.execute(query).scalars()]
