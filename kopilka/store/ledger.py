"""Writing and reading the ledger with SQLAlchemy Core.

Only member accounts keep cached running totals (updated in the transaction of their
transfers); the program's own accounts (issuance, redeemed …) are touched by every
purchase, so caching their totals would make one row every purchase waits on — their
balances are sums over `transfers`, which `kopilka verify` recomputes anyway.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, and_, bindparam, insert, select, update

from kopilka.domain.ledger import (
    MEMBER_ACCOUNTS,
    PROGRAM_ACCOUNTS,
    AccountCode,
    AccountRef,
    Posting,
    balance,
)
from kopilka.store.db import is_postgresql
from kopilka.store.tables import accounts, transfers


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


def account_ids(
    connection: Connection, program_id: int, refs: Iterable[AccountRef]
) -> dict[AccountRef, int]:
    wanted = set(refs)
    owners = {ref.owner for ref in wanted}
    rows = connection.execute(
        select(accounts.c.id, accounts.c.owner, accounts.c.code).where(
            accounts.c.program_id == program_id, accounts.c.owner.in_(owners)
        )
    )
    found = {AccountRef(row.owner, AccountCode(row.code)): row.id for row in rows}
    return {ref: found[ref] for ref in wanted}


def member_balances(
    connection: Connection, program_id: int, member_id: int, *, lock: bool = False
) -> dict[AccountCode, tuple[int, int]]:
    """Each member account's (id, balance); `lock` holds the rows until commit (PostgreSQL)."""
    query = (
        select(accounts.c.id, accounts.c.code, accounts.c.debits_posted, accounts.c.credits_posted)
        .where(accounts.c.program_id == program_id, accounts.c.owner == f"member:{member_id}")
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
    purchase_id: int | None = None,
    refund_id: int | None = None,
    note: str | None = None,
) -> None:
    """Insert the transfers and move the cached totals of the member accounts they touch."""
    if not postings:
        return
    ids = account_ids(
        connection, program_id, [p.debit for p in postings] + [p.credit for p in postings]
    )
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
    debits = [
        {"account": ids[p.debit], "amount": p.amount}
        for p in postings
        if p.debit.code.is_member_account
    ]
    credits = [
        {"account": ids[p.credit], "amount": p.amount}
        for p in postings
        if p.credit.code.is_member_account
    ]
    by_id = accounts.c.id == bindparam("account")
    if debits:
        connection.execute(
            update(accounts)
            .where(by_id)
            .values(debits_posted=accounts.c.debits_posted + bindparam("amount")),
            debits,
        )
    if credits:
        connection.execute(
            update(accounts)
            .where(and_(by_id))
            .values(credits_posted=accounts.c.credits_posted + bindparam("amount")),
            credits,
        )
