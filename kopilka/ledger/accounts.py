"""Writing and reading the ledger with SQLAlchemy Core.

Only member accounts keep cached running totals (updated in the transaction of their
transfers); the program's own accounts (issuance, redeemed …) are touched by every
purchase, so caching their totals would make one row every purchase waits on — their
balances are sums over `transfers`, which `kopilka verify` recomputes anyway.
"""

from __future__ import annotations

from datetime import datetime
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine, bindparam, insert, select, text, update

from kopilka.kernel.ledger import (
    CASHBACK_MEMBER_ACCOUNTS,
    MEMBER_ACCOUNTS,
    PROGRAM_ACCOUNTS,
    AccountCode,
    AccountRef,
    Posting,
    balance,
)
from kopilka.platform.db import is_postgresql
from kopilka.platform.tables import accounts, transfers


def open_accounts(connection: Connection, program_id: int, member_id: int | None = None) -> None:
    """Create the program's accounts, or a member's (at registration)."""
    codes = MEMBER_ACCOUNTS if member_id is not None else PROGRAM_ACCOUNTS
    owner = f"member:{member_id}" if member_id is not None else "program"
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


_OPEN_CASHBACK = text(
    "INSERT INTO accounts (program_id, member_id, owner, code, debits_posted, credits_posted) "
    "VALUES (:program_id, :member_id, :owner, :code, 0, 0) "
    "ON CONFLICT (program_id, owner, code) DO NOTHING"
)


def cashback_balances(
    connection: Connection, program_id: int, member_id: int, *, lock: bool = True,
    open_missing: bool = True,
) -> dict[AccountCode, tuple[int, int]]:  # fmt: skip
    """The member's cashback accounts' (id, balance), row-locked on PostgreSQL with `lock`.

    They are opened the first time a member needs them (members registered before cashback
    existed have none): `ON CONFLICT DO NOTHING`, so two first uses at once open them once.
    Without `open_missing` a member who never had cashback gets an empty answer."""
    owner = f"cashback:{member_id}"
    found = owner_balances(connection, program_id, owner, lock=lock)
    if len(found) == len(CASHBACK_MEMBER_ACCOUNTS) or not open_missing:
        return found
    connection.execute(
        _OPEN_CASHBACK,
        [
            {"program_id": program_id, "member_id": member_id, "owner": owner, "code": c.value}
            for c in CASHBACK_MEMBER_ACCOUNTS
            if c not in found
        ],
    )
    return owner_balances(connection, program_id, owner, lock=lock)


def program_account_ids(
    connection: Connection, program_id: int, *, refresh: bool = False
) -> dict[AccountRef, int]:
    """The program's own account ids — fixed once opened, so remembered per engine."""
    known = _program_accounts.setdefault(connection.engine, {})
    if program_id not in known or refresh:
        rows = connection.execute(
            select(accounts.c.id, accounts.c.code).where(
                accounts.c.program_id == program_id, accounts.c.owner == "program"
            )
        )
        known[program_id] = {AccountRef.of_program(AccountCode(r.code)): r.id for r in rows}
    return known[program_id]


_program_accounts: WeakKeyDictionary[Engine, dict[int, dict[AccountRef, int]]] = WeakKeyDictionary()


def member_balances(
    connection: Connection, program_id: int, member_id: int, *, lock: bool = False
) -> dict[AccountCode, tuple[int, int]]:
    """Each member account's (id, balance); `lock` holds the rows until commit (PostgreSQL)."""
    return owner_balances(connection, program_id, f"member:{member_id}", lock=lock)


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
    ids = {**program_account_ids(connection, program_id), **member_accounts}
    if any(p.debit not in ids or p.credit not in ids for p in postings):
        # a program account opened since the ids were remembered (cashback's, by migration)
        ids = {**program_account_ids(connection, program_id, refresh=True), **member_accounts}
    connection.execute(
        insert(transfers),
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
    connection.execute(
        update(accounts)
        .where(accounts.c.id == bindparam("account"))
        .values(
            debits_posted=accounts.c.debits_posted + bindparam("debits"),
            credits_posted=accounts.c.credits_posted + bindparam("credits"),
        ),
        account_totals(postings, ids),
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
