"""Cashback in money: given with a purchase, pending, payable, clawed back, paid out.

The money is in the ledger, in each member's cashback accounts ("cashback:<id>": pending,
available, requested, debt) and the program's `cashback.issuance` / `cashback.paid_out`.
It moves through the member's `Purse` of the `CASHBACK` unit — the one wallet points use
too: the accounts read once, row-locked (on PostgreSQL; SQLite serialises writers), the
transfers planned, then flushed. Every use case is one transaction; the purchase and refund
ones take the caller's connection so they ride in the purchase's or refund's own.

- `accrue_cashback`: a purchase's awards, each campaign's budget granted race-safe by a
  conditional UPDATE (never more than what is left); pending for `pending_days`.
- `activate_due_cashback` (the worker): pending cashback whose day has come.
- `claw_back_cashback`: a refund takes back its share — the purchase's pending part
  first, then the available balance; what was already paid out (or asked to be) becomes
  a debt that later cashback pays first, as points' debt does.
- payouts: requested (available → requested), approved, paid (requested → paid out) or
  rejected (back to available); each step records who and when.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from sqlalchemy import Connection, Engine, case, func, insert, literal, or_, select, text, update

from kopilka.kernel.errors import Conflict, InvalidInput, NotFound, Problem
from kopilka.kernel.ledger import AccountCode, Reason, is_luhn_valid
from kopilka.kernel.money import format_minor
from kopilka.kernel.program import Program
from kopilka.kernel.reading import MAX_NOTE, Reader, row_id
from kopilka.ledger.accounts import CASHBACK, cashback_balances, program_account_ids
from kopilka.ledger.pending import member_by_member
from kopilka.ledger.wallet import Purse
from kopilka.mechanics.cashback.model import (
    CashbackAward,
    CashbackSettings,
    InsufficientCashback,
    cashback_of,
    share_of,
    show_percent,
)
from kopilka.mechanics.cashback.tables import (
    cashback_accruals,
    cashback_awards,
    cashback_budgets,
    cashback_clawbacks,
    cashback_payouts,
)
from kopilka.members.handlers import find_member
from kopilka.platform.csv_export import csv_writer
from kopilka.platform.idempotency import idempotent
from kopilka.platform.pages import newest_first
from kopilka.platform.statements import ChildRows, NewRow
from kopilka.platform.tables import members, programs, transfers
from kopilka.programs.handlers import LoadedProgram, load_program

PENDING = AccountCode.CASHBACK_PENDING
AVAILABLE = AccountCode.CASHBACK_AVAILABLE
REQUESTED = AccountCode.CASHBACK_REQUESTED
DEBT = AccountCode.CASHBACK_DEBT
ISSUANCE = AccountCode.CASHBACK_ISSUANCE
PAID_OUT = AccountCode.CASHBACK_PAID_OUT
PAGE = 50


# — a purchase's cashback —


def accrue_cashback(
    connection: Connection, program_id: int, program: Program, member_id: int, purchase_id: int,
    awards: Sequence[CashbackAward], now: datetime, actor: str, *, fresh: bool = False,
    purse: Purse | None = None,
) -> dict[str, Any] | None:  # fmt: skip
    """Give a purchase its cashback (in the caller's transaction); the answer's `cashback`
    object, or None when nothing is given. A second call for the purchase answers the
    first; `fresh`: the purchase was written in this transaction, so there is none (a
    round trip saved). `purse`: the member's cashback accounts as already read and
    locked (`Purse.sibling`), else they are read here."""
    settings = cashback_of(program)
    if settings is None or not any(award.amount > 0 for award in awards):
        return None
    earlier = None if fresh else connection.execute(
        select(cashback_accruals.c.answer).where(cashback_accruals.c.purchase_id == purchase_id)
    ).scalar_one_or_none()  # fmt: skip
    if earlier is not None:
        return dict(earlier)
    # the member's accounts first, then the budgets: one lock order
    wallet = purse or Purse.open(connection, program_id, member_id, now, unit=CASHBACK)
    granted = _grant(connection, program_id, settings, awards)
    total = sum(amount for _, amount in granted)
    if total == 0:
        return None
    key = f"{program.code}:cashback:{purchase_id}:accrue"
    pending = settings.pending_days > 0
    if pending:
        wallet.move(key, ISSUANCE, PENDING, total, Reason.CASHBACK_ACCRUAL)
    else:
        wallet.credit_available(key, ISSUANCE, total, Reason.CASHBACK_ACCRUAL)
    available_at = now + timedelta(days=settings.pending_days)
    answer = _accrual_json(program.money_digits, granted, total,
                           available_at if pending else None)  # fmt: skip
    per_campaign = ChildRows(cashback_awards, "accrual_id", AWARD_COLUMNS, [
        {"program_id": program_id, "campaign": award.campaign,
         "percent": show_percent(award.percent), "amount": amount}
        for award, amount in granted if amount > 0
    ])  # fmt: skip
    accrual = NewRow(cashback_accruals, {
        "program_id": program_id, "member_id": member_id, "purchase_id": purchase_id,
        "amount": total, "paid": max(award.base for award in awards),
        "pending": total if pending else 0, "refunded": 0, "clawed_back": 0,
        "status": "pending" if pending else "available", "available_at": available_at,
        "created_at": now, "answer": answer,
    }, unique=("purchase_id",), children=(per_campaign,))  # fmt: skip
    # the accrual, its campaigns and its transfers: one statement on PostgreSQL
    written = wallet.write_under(accrual, actor=actor, purchase_id=purchase_id)
    assert written is not None, "a purchase's cashback is given once, in its transaction"
    return answer


AWARD_COLUMNS = ("program_id", "campaign", "percent", "amount")


def preview_cashback(
    program: Program, awards: Sequence[CashbackAward], now: datetime
) -> dict[str, Any] | None:
    """The `cashback` object a quote shows: what the awards would give, before budgets
    (a purchase may get less once a budget runs out). Writes nothing."""
    settings = cashback_of(program)
    granted = [(award, award.amount) for award in awards if award.amount > 0]
    if settings is None or not granted:
        return None
    pending = settings.pending_days > 0
    available_at = now + timedelta(days=settings.pending_days) if pending else None
    total = sum(amount for _, amount in granted)
    return _accrual_json(program.money_digits, sorted(granted, key=lambda g: g[0].campaign),
                         total, available_at)  # fmt: skip


def _accrual_json(
    digits: int, granted: list[tuple[CashbackAward, int]], total: int,
    available_at: datetime | None,
) -> dict[str, Any]:  # fmt: skip
    campaigns = []
    for award, amount in granted:
        entry = {"campaign": award.campaign, "percent": show_percent(award.percent),
                 "amount": format_minor(amount, digits)}  # fmt: skip
        if amount < award.amount:
            entry["capped"] = "budget"  # why less than the percent gives: the budget ran out
        campaigns.append(entry)
    return {
        "amount": format_minor(total, digits),
        "status": "pending" if available_at is not None else "available",
        "available_at": available_at.isoformat() if available_at is not None else None,
        "campaigns": campaigns,
    }


def _grant(
    connection: Connection, program_id: int, settings: CashbackSettings,
    awards: Sequence[CashbackAward],
) -> list[tuple[CashbackAward, int]]:  # fmt: skip
    """Each award with what it may be given: all of it, or what is left of its budget.
    Budgets are taken in campaign order, so concurrent purchases never deadlock on them."""
    granted = []
    for award in sorted(awards, key=lambda a: a.campaign):
        campaign = settings.campaign(award.campaign)
        budget = campaign.budget if campaign is not None else None
        amount = award.amount
        if budget is not None and amount > 0:
            amount = _take_budget(connection, program_id, award.campaign, budget, amount)
        granted.append((award, amount))
    return granted


_NEW_BUDGET = text(
    "INSERT INTO cashback_budgets (program_id, campaign, spent, last_grant) "
    "VALUES (:program_id, :campaign, 0, 0) ON CONFLICT (program_id, campaign) DO NOTHING"
)


def _take_budget(
    connection: Connection, program_id: int, campaign: str, budget: int, want: int
) -> int:
    """Raise the campaign's spend by `want`, or by what is left of `budget`; what it got.

    One conditional UPDATE: concurrent purchases queue on the campaign's row, and each
    computes its grant from the spend as the one before it left it (the SET expressions
    read the row as it was, so `last_grant` is this statement's own grant)."""
    spent = cashback_budgets.c.spent
    left = literal(budget) - spent
    grant = case((left < want, left), else_=literal(want))
    statement = (
        update(cashback_budgets)
        .where(cashback_budgets.c.program_id == program_id,
               cashback_budgets.c.campaign == campaign, spent < budget)
        .values(spent=spent + grant, last_grant=grant)
        .returning(cashback_budgets.c.last_grant)
    )  # fmt: skip
    got = connection.execute(statement).scalar_one_or_none()
    if got is None:  # spent already, or no row yet: the campaign's first grant
        connection.execute(_NEW_BUDGET, {"program_id": program_id, "campaign": campaign})
        got = connection.execute(statement).scalar_one_or_none()
    return int(got or 0)


# — refunds —


def claw_back_cashback(
    connection: Connection, program_id: int, program: Program, purchase_id: int, *,
    refunded: int, paid: int, key: str, now: datetime, actor: str, refund_id: int | None = None,
) -> str | None:  # fmt: skip
    """Take back the share of a purchase's cashback that `refunded` of its `paid` money is
    (everything left of it once the refunds reach `paid`; never more than it gave). The
    same `key` again takes nothing more and answers the first amount. None: the purchase
    gave no cashback."""
    found = _accrual_of(connection, program_id, purchase_id)
    if found is None:
        return None
    wallet = Purse.open(connection, program_id, found.member_id, now, unit=CASHBACK)
    accrual = _accrual_of(connection, program_id, purchase_id)  # as it is once locked
    assert accrual is not None
    digits = program.money_digits
    earlier = connection.execute(
        select(cashback_clawbacks.c.amount).where(
            cashback_clawbacks.c.accrual_id == accrual.id, cashback_clawbacks.c.key == key
        )
    ).scalar_one_or_none()
    if earlier is not None:
        return format_minor(int(earlier), digits)
    so_far = min(accrual.refunded + max(refunded, 0), paid)
    take = max(share_of(accrual.amount, so_far, paid) - accrual.clawed_back, 0)
    from_pending = min(take, accrual.pending)
    from_available = min(take - from_pending, max(wallet.balances[AVAILABLE], 0))
    owed = take - from_pending - from_available
    wallet.move(f"{key}:cashback:pending", PENDING, ISSUANCE, from_pending,
                Reason.CASHBACK_CLAWBACK)  # fmt: skip
    wallet.move(f"{key}:cashback:available", AVAILABLE, ISSUANCE, from_available,
                Reason.CASHBACK_CLAWBACK)  # fmt: skip
    wallet.move(f"{key}:cashback:debt", DEBT, ISSUANCE, owed, Reason.CASHBACK_DEBT)
    connection.execute(
        update(cashback_accruals).where(cashback_accruals.c.id == accrual.id).values(
            pending=accrual.pending - from_pending, refunded=so_far,
            clawed_back=accrual.clawed_back + take)
    )  # fmt: skip
    connection.execute(
        insert(cashback_clawbacks).values(
            program_id=program_id, accrual_id=accrual.id, key=key, refund_id=refund_id,
            refunded=refunded, amount=take, debt=owed, created_at=now)
    )  # fmt: skip
    wallet.flush(actor=actor, purchase_id=purchase_id, refund_id=refund_id, note=key)
    return format_minor(take, digits)


def _accrual_of(connection: Connection, program_id: int, purchase_id: int) -> Any:
    return connection.execute(
        select(cashback_accruals).where(
            cashback_accruals.c.program_id == program_id,
            cashback_accruals.c.purchase_id == purchase_id,
        )
    ).one_or_none()


# — the worker —


def activate_due_cashback(engine: Engine, *, now: datetime, actor: str = "worker") -> int:
    """Make every pending cashback due by `now` available, member by member; how many
    purchases' cashback became available. A second run for the moment finds none."""
    due = (
        select(cashback_accruals.c.program_id, cashback_accruals.c.member_id)
        .where(cashback_accruals.c.status == "pending", cashback_accruals.c.available_at <= now)
        .distinct()
    )
    return member_by_member(engine, due, _activate, now=now, actor=actor)


def _activate(
    connection: Connection, *, program_id: int, member_id: int, now: datetime, actor: str
) -> int:
    code = connection.execute(
        select(programs.c.code).where(programs.c.id == program_id)
    ).scalar_one()
    wallet = Purse.open(connection, program_id, member_id, now, unit=CASHBACK)
    due = connection.execute(  # read after the lock: a concurrent run may have done them
        select(cashback_accruals.c.id, cashback_accruals.c.pending, cashback_accruals.c.purchase_id)
        .where(cashback_accruals.c.member_id == member_id,
               cashback_accruals.c.status == "pending",
               cashback_accruals.c.available_at <= now)
        .order_by(cashback_accruals.c.available_at, cashback_accruals.c.id)
    ).all()  # fmt: skip
    for accrual_id, pending, purchase_id in due:
        wallet.credit_available(f"{code}:cashback:activation:{accrual_id}", PENDING, pending,
                                Reason.CASHBACK_ACTIVATION)  # fmt: skip
        wallet.flush(actor=actor, purchase_id=purchase_id)
    if due:
        connection.execute(
            update(cashback_accruals)
            .where(cashback_accruals.c.id.in_([row.id for row in due]))
            .values(status="available", pending=0)
        )
    return len(due)


# — payouts —


class Destination(Enum):
    CARD = "card"
    ACCOUNT = "account"


STATUSES = ("requested", "approved", "paid", "rejected")
# what each decision needs the payout to be in, and what it makes it
_DECISIONS = {
    "approve": (("requested",), "approved"),
    "reject": (("requested", "approved"), "rejected"),
    "paid": (("approved",), "paid"),
}
_ACCOUNT = re.compile(r"^[A-Z0-9]{5,34}$")


def request_payout(
    engine: Engine, program_code: str, member_ref: str, body: object, *, actor: str,
    now: datetime, idempotency_key: str | None = None,
) -> tuple[dict[str, Any], bool]:  # fmt: skip
    """A member asks for `amount` of their available cashback to be paid to a card or an
    account: at least the program's `min_payout`, at most what is available."""

    def attempt(connection: Connection) -> tuple[dict[str, Any], bool]:
        program = load_program(connection, program_code)
        settings = program.calculator.program
        amount, kind, number = _payout_body(body, settings.money_digits)
        member = find_member(connection, program.program_id, member_ref)
        if member.status != "active":
            raise Conflict(f"member {member_ref!r} is {member.status}")
        wallet = Purse.open(connection, program.program_id, member.id, now, unit=CASHBACK)
        _check_payable(settings, amount, wallet.balances[AVAILABLE])
        payout_id = connection.execute(
            insert(cashback_payouts).values(
                program_id=program.program_id, member_id=member.id, amount=amount,
                destination_type=kind, destination_number=number, status="requested",
                requested_at=now, requested_by=actor,
            ).returning(cashback_payouts.c.id)
        ).scalar_one()  # fmt: skip
        wallet.move(f"{program_code}:cashback:payout:{payout_id}:request", AVAILABLE, REQUESTED,
                    amount, Reason.CASHBACK_PAYOUT_REQUEST)  # fmt: skip
        wallet.flush(actor=actor, note=f"payout {payout_id}")
        return _read_payout(connection, program, payout_id), True

    request = {"member": member_ref, "body": body}
    return idempotent(engine, program_code, idempotency_key, "cashback.payout", request, now,
                      attempt)  # fmt: skip


def _check_payable(settings: Program, amount: int, available: int) -> None:
    digits = settings.money_digits
    cashback = cashback_of(settings)
    minimum = cashback.min_payout if cashback is not None else 0
    if amount < minimum:
        least = format_minor(minimum, digits)
        message = f"{format_minor(amount, digits)} is below the least payout, {least}"
        raise InvalidInput([Problem("amount", message)])
    if amount > available:
        raise InsufficientCashback(
            f"a payout of {format_minor(amount, digits)} is more than the "
            f"{format_minor(available, digits)} of cashback available"
        )  # fmt: skip


def _payout_body(body: object, digits: int) -> tuple[int, str, str]:
    problems: list[Problem] = []
    reader = Reader(body, "", problems, ("amount", "destination"))
    amount = reader.minor("amount", digits, unit="money", required=True)
    if amount == 0:
        reader.report("amount", "must be more than 0")
    destination = reader.mapping("destination", ("type", "number"), required=True)
    kind = destination.choice("type", Destination, required=True) if destination else None
    number = destination.text("number", required=True, max_length=64) if destination else None
    if destination is not None and kind is not None and number is not None:
        number = _destination_number(destination, kind, number)
    if problems or amount is None or kind is None or number is None:
        raise InvalidInput(problems or [Problem("", "amount and destination are required")])
    return amount, kind.value, number


def _destination_number(destination: Reader, kind: Destination, raw: str) -> str | None:
    number = re.sub(r"[\s-]", "", raw).upper()
    if kind is Destination.CARD and not (
        number.isdigit() and 13 <= len(number) <= 19 and is_luhn_valid(number)
    ):
        destination.report("destination.number", "is not a card number (13–19 digits that "
                                                  "pass the Luhn check)")  # fmt: skip
        return None
    if kind is Destination.ACCOUNT and not _ACCOUNT.match(number):
        destination.report("destination.number", "is not an account number (5–34 letters "
                                                  "and digits)")  # fmt: skip
        return None
    return number


def decide_payout(
    engine: Engine, program_code: str, payout_ref: str, action: str, body: object, *,
    actor: str, now: datetime, idempotency_key: str | None = None,
) -> tuple[dict[str, Any], bool]:  # fmt: skip
    """`approve`, `reject` (`{reason}` required: the money goes back to available) or
    `paid` (`{reference?}`: the money leaves the books); the same decision again answers
    the payout as it stands, any other step out of order is a conflict."""
    sources, target = _DECISIONS[action]
    note = _decision_note(action, body)

    def attempt(connection: Connection) -> tuple[dict[str, Any], bool]:
        program = load_program(connection, program_code)
        payout = _payout_row(connection, program.program_id, payout_ref)
        wallet = Purse.open(connection, program.program_id, payout.member_id, now, unit=CASHBACK)
        payout = _payout_row(connection, program.program_id, payout_ref)  # once locked
        if payout.status == target:
            return _read_payout(connection, program, payout.id), False
        if payout.status not in sources:
            raise Conflict(f"payout {payout.id} is {payout.status}; it can't become {target}")
        key = f"{program_code}:cashback:payout:{payout.id}:{action}"
        if action == "reject":
            wallet.credit_available(key, REQUESTED, payout.amount, Reason.CASHBACK_PAYOUT_REJECT)
        elif action == "paid":
            wallet.move(key, REQUESTED, PAID_OUT, payout.amount, Reason.CASHBACK_PAYOUT_PAID)
        wallet.flush(actor=actor, note=f"payout {payout.id}" + (f": {note}" if note else ""))
        connection.execute(
            update(cashback_payouts).where(cashback_payouts.c.id == payout.id).values(
                status=target, **{f"{target}_at": now, f"{target}_by": actor},
                **({"note": note} if note else {}))
        )  # fmt: skip
        return _read_payout(connection, program, payout.id), True

    request = {"payout": payout_ref, "action": action, "body": body}
    return idempotent(engine, program_code, idempotency_key, f"cashback.payout.{action}",
                      request, now, attempt)  # fmt: skip


def _decision_note(action: str, body: object) -> str | None:
    key = {"approve": "note", "reject": "reason", "paid": "reference"}[action]
    problems: list[Problem] = []
    reader = Reader(body if body is not None else {}, "", problems, (key,))
    note = reader.text(key, required=action == "reject", max_length=MAX_NOTE, multiline=True)
    if problems:
        raise InvalidInput(problems)
    return note


def _payout_row(connection: Connection, program_id: int, payout_ref: str) -> Any:
    row = connection.execute(
        select(cashback_payouts).where(cashback_payouts.c.program_id == program_id,
                                       cashback_payouts.c.id == (row_id(payout_ref) or -1))
    ).one_or_none()  # fmt: skip
    if row is None:
        raise NotFound(f"payout {payout_ref!r} does not exist")
    return row


def _read_payout(connection: Connection, program: LoadedProgram, payout_id: int) -> dict[str, Any]:
    row = connection.execute(_payouts_query().where(cashback_payouts.c.id == payout_id)).one()
    return _payout_json(row, program.calculator.program)


def _payouts_query() -> Any:
    return select(cashback_payouts, members.c.card).join(
        members, members.c.id == cashback_payouts.c.member_id
    )


def _payout_json(row: Any, program: Program) -> dict[str, Any]:
    def at(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": str(row.id),
        "member": str(row.member_id),
        "card": row.card,
        "amount": format_minor(row.amount, program.money_digits),
        "currency": program.currency,
        "destination": {"type": row.destination_type, "number": mask(row.destination_number)},
        "status": row.status,
        "requested_at": at(row.requested_at),
        "requested_by": row.requested_by,
        "approved_at": at(row.approved_at),
        "approved_by": row.approved_by,
        "paid_at": at(row.paid_at),
        "paid_by": row.paid_by,
        "rejected_at": at(row.rejected_at),
        "rejected_by": row.rejected_by,
        "note": row.note,
    }


def read_payout(engine: Engine, program_code: str, payout_ref: str) -> dict[str, Any]:
    with engine.connect() as connection:
        program = load_program(connection, program_code)
        payout = _payout_row(connection, program.program_id, payout_ref)
        return _read_payout(connection, program, payout.id)


def mask(number: str) -> str:
    """All but the last 4 characters hidden: answers and exports never show a whole number."""
    return "*" * max(len(number) - 4, 0) + number[-4:]


def list_payouts(
    engine: Engine, program_code: str, *, status: str | None = None, member: str | None = None,
    before: int | None = None, limit: int = PAGE,
) -> dict[str, Any]:  # fmt: skip
    """Payouts newest first, by status and member if given; `next` is the next page's `before`."""
    _check_status(status)
    with engine.connect() as connection:
        program = load_program(connection, program_code)
        query = _payouts_query().where(cashback_payouts.c.program_id == program.program_id)
        if status is not None:
            query = query.where(cashback_payouts.c.status == status)
        if member is not None:
            query = query.where(
                cashback_payouts.c.member_id == find_member(connection, program.program_id,
                                                            member).id)  # fmt: skip
        settings = program.calculator.program
        return newest_first(connection, query, cashback_payouts.c.id, before=before, limit=limit,
                            item=lambda row: _payout_json(row, settings))  # fmt: skip


EXPORT_COLUMNS = ("id", "member", "card", "amount", "currency", "destination_type",
                  "destination", "status", "requested_at", "approved_at")  # fmt: skip


def export_payouts(engine: Engine, program_code: str, *, status: str = "approved") -> str:
    """The payouts in `status` as CSV for the payments department, oldest first; the
    destination shows its last 4 characters only."""
    _check_status(status)
    with engine.connect() as connection:
        program = load_program(connection, program_code)
        rows = connection.execute(
            _payouts_query()
            .where(cashback_payouts.c.program_id == program.program_id,
                   cashback_payouts.c.status == status)
            .order_by(cashback_payouts.c.id)
        ).all()  # fmt: skip
    out = io.StringIO()
    writer = csv_writer(out, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        item = _payout_json(row, program.calculator.program)
        writer.writerow([item["id"], item["member"], item["card"], item["amount"],
                         item["currency"], row.destination_type, item["destination"]["number"],
                         row.status, item["requested_at"], item["approved_at"] or ""])  # fmt: skip
    return out.getvalue()


def _check_status(status: str | None) -> None:
    if status is not None and status not in STATUSES:
        raise InvalidInput([Problem("status", f"{status!r} is not one of {'|'.join(STATUSES)}")])


# — reading —


def member_cashback(engine: Engine, program_code: str, member_ref: str) -> dict[str, Any]:
    """`{available, pending, requested, paid_out, lifetime, debt, upcoming}`: the balances;
    all paid out; all given less all clawed back; when pending cashback becomes available."""
    with engine.connect() as connection:
        program = load_program(connection, program_code)
        member = find_member(connection, program.program_id, member_ref)
        rows = cashback_balances(connection, program.program_id, member.id, lock=False,
                                 open_missing=False)  # fmt: skip
        ids = [account_id for account_id, _ in rows.values()]
        given, taken, paid_out = _lifetime(connection, ids)
        upcoming = connection.execute(
            select(cashback_accruals.c.available_at, cashback_accruals.c.pending)
            .where(cashback_accruals.c.member_id == member.id,
                   cashback_accruals.c.status == "pending", cashback_accruals.c.pending > 0)
            .order_by(cashback_accruals.c.available_at)
        ).all()  # fmt: skip
    digits = program.calculator.program.money_digits

    def money(code: AccountCode) -> str:
        return format_minor(rows[code][1] if code in rows else 0, digits)

    return {
        "available": money(AVAILABLE),
        "pending": money(PENDING),
        "requested": money(REQUESTED),
        "debt": money(DEBT),
        "paid_out": format_minor(paid_out, digits),
        "lifetime": format_minor(given - taken, digits),
        "currency": program.calculator.program.currency,
        "upcoming": [
            {"available_at": at.isoformat(), "amount": format_minor(amount, digits)}
            for at, amount in upcoming
        ],
    }


def cashback_history(
    engine: Engine, program_code: str, member_ref: str, *, before: int | None = None,
    limit: int = PAGE,
) -> dict[str, Any]:  # fmt: skip
    """Every movement of the member's cashback, newest first: from which account to which,
    why, who, for which purchase; `next` is the next page's `before`."""
    with engine.connect() as connection:
        program = load_program(connection, program_code)
        member = find_member(connection, program.program_id, member_ref)
        rows = cashback_balances(connection, program.program_id, member.id, lock=False,
                                 open_missing=False)  # fmt: skip
        codes = {account_id: code.value for code, (account_id, _) in rows.items()}
        codes |= {account_id: ref.code.value for ref, account_id in
                  program_account_ids(connection, program.program_id).items()}  # fmt: skip
        mine = [account_id for account_id, _ in rows.values()]
        query = select(transfers).where(or_(transfers.c.debit_account_id.in_(mine),
                                            transfers.c.credit_account_id.in_(mine)))  # fmt: skip
        digits = program.calculator.program.money_digits
        return newest_first(connection, query, transfers.c.id, before=before, limit=limit,
                            item=lambda row: _movement(row, codes, digits))  # fmt: skip


def _movement(row: Any, codes: dict[int, str], digits: int) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "at": row.created_at.isoformat(),
        "reason": row.reason,
        "amount": format_minor(row.amount, digits),
        "from": codes.get(row.debit_account_id),
        "to": codes.get(row.credit_account_id),
        "purchase_id": str(row.purchase_id) if row.purchase_id else None,
        "actor": row.actor,
        "note": row.note,
    }


def _lifetime(connection: Connection, account_ids: list[int]) -> tuple[int, int, int]:
    """All cashback given to these accounts, all clawed back, all paid out."""
    if not account_ids:
        return 0, 0, 0

    def total(*reasons: Reason) -> Any:
        return func.coalesce(func.sum(case(
            (transfers.c.reason.in_([r.value for r in reasons]), transfers.c.amount),
            else_=0)), 0)  # fmt: skip

    row = connection.execute(
        select(total(Reason.CASHBACK_ACCRUAL),
               total(Reason.CASHBACK_CLAWBACK, Reason.CASHBACK_DEBT),
               total(Reason.CASHBACK_PAYOUT_PAID))
        .where(or_(transfers.c.debit_account_id.in_(account_ids),
                   transfers.c.credit_account_id.in_(account_ids)))
    ).one()  # fmt: skip
    return int(row[0]), int(row[1]), int(row[2])


def cashback_campaigns(engine: Engine, program_code: str) -> dict[str, Any]:
    """The program's cashback settings and campaigns, each with what it has given and —
    for a campaign with a budget — what is left of it."""
    with engine.connect() as connection:
        program = load_program(connection, program_code)
        spent = dict(connection.execute(
            select(cashback_awards.c.campaign, func.sum(cashback_awards.c.amount))
            .where(cashback_awards.c.program_id == program.program_id)
            .group_by(cashback_awards.c.campaign)
        ).tuples().all())  # fmt: skip
        budgets = dict(connection.execute(
            select(cashback_budgets.c.campaign, cashback_budgets.c.spent)
            .where(cashback_budgets.c.program_id == program.program_id)
        ).tuples().all())  # fmt: skip
    settings = program.calculator.program
    cashback = cashback_of(settings)
    if cashback is None:
        return {"pending_days": None, "min_payout": None, "campaigns": []}
    digits = settings.money_digits

    def money(amount: int | None) -> str | None:
        return format_minor(amount, digits) if amount is not None else None

    campaigns = []
    for c in cashback.campaigns:
        left = max(c.budget - int(budgets.get(c.code, 0)), 0) if c.budget is not None else None
        campaigns.append({
            "code": c.code, "name": c.name,
            "bands": [{"min": money(b.min), "percent": show_percent(b.percent)} for b in c.bands],
            "payment": None if c.methods is None and c.bins is None else {
                "methods": sorted(c.methods) if c.methods is not None else None,
                "bins": [str(r) for r in c.bins] if c.bins is not None else None},
            "partners": sorted(c.partners) if c.partners is not None else None,
            "locations": sorted(c.locations) if c.locations is not None else None,
            "between": None if c.starts is None and c.ends is None else {
                "from": c.starts.isoformat() if c.starts else None,
                "to": c.ends.isoformat() if c.ends else None},
            "budget": money(c.budget), "max_per_receipt": money(c.max_per_receipt),
            "spent": money(int(spent.get(c.code, 0))), "left": money(left),
        })  # fmt: skip
    return {
        "pending_days": cashback.pending_days,
        "min_payout": money(cashback.min_payout),
        "currency": settings.currency,
        "campaigns": campaigns,
    }
