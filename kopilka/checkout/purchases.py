"""Processing a purchase exactly once: the calculator's quote plus the ledger's writes.

One transaction: read the program version, the member and their balances (row-locked on
PostgreSQL; SQLite serialises writers with BEGIN IMMEDIATE), quote, then write the
purchase and its transfers. The purchase row goes in with `ON CONFLICT DO NOTHING` on
`(location, receipt_id)`: a copy of a receipt already processed writes nothing and is
answered with the first result (the same id with another body is
`idempotency_conflict`), so the common case costs no extra lookup.

`hold: true` reserves the redeemed points (`held`) and accrues nothing yet; the purchase
is then confirmed (the points are paid, the accrual is posted), cancelled, or released
when nobody confirmed it within the program's `redemption.hold_minutes`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    select,
    update,
)

from kopilka.checkout.calculator import Quote
from kopilka.checkout.load import Loaded, load
from kopilka.checkout.mechanic import Sale, Settlement, mechanics
from kopilka.checkout.pricing import Priced, price_receipt
from kopilka.checkout.records import (
    AWARD_COLUMNS,
    awards_of,
    line_rows,
    priced_awards,
    write_late,
)
from kopilka.checkout.wire import quote_json
from kopilka.kernel.errors import (
    Conflict,
    IdempotencyConflict,
    InvalidInput,
    KopilkaError,
    NotFound,
    Problem,
)
from kopilka.kernel.ledger import AccountCode, AccountRef, Reason
from kopilka.kernel.money import format_minor
from kopilka.kernel.reading import row_id
from kopilka.kernel.receipt import MemberContext, Receipt, parse_receipt
from kopilka.ledger.one_statement import write_under
from kopilka.ledger.wallet import Wallet
from kopilka.mechanics.tiers.status import seen_tier
from kopilka.members.handlers import find_member, member_refs
from kopilka.members.standing import counted, local_day, points_moved
from kopilka.platform.db import reading
from kopilka.platform.idempotency import fingerprint, idempotent, remembered, retrying
from kopilka.platform.statements import Bump, ChildRows, NewRow, add_to_totals
from kopilka.platform.tables import (
    holds,
    programs,
    purchase_awards,
    purchase_lines,
    purchases,
)
from kopilka.programs.handlers import (
    LoadedProgram,
    load_program,
)

__all__ = [
    "PurchaseResult",
    "process_purchase",
    "quote_purchase",
    "release_due_holds",
    "retrying",
    "settle_hold",
]


@dataclass(frozen=True)
class PurchaseResult:
    answer: dict[str, Any]
    created: bool  # False: a replay answered from the first result


def process_purchase(
    engine: Engine,
    program_code: str,
    body: object,
    *,
    now: datetime,
    actor: str,
    idempotency_key: str | None = None,
    version: int | None = None,
) -> PurchaseResult:
    """`version`: price at that version of the program, not the current one (a claim's
    purchase, at the version in force at its receipt's time)."""
    request_hash = fingerprint(body)

    def attempt(connection: Connection) -> tuple[dict[str, Any], bool]:
        if idempotency_key is None:  # the purchase begins and may end the transaction
            return _process(connection, program_code, body, request_hash, now, actor,
                            commit=True, begin=explicit, version=version)  # fmt: skip
        program = load_program(connection, program_code)
        return remembered(
            connection, program.program_id, idempotency_key, "purchase", request_hash, now,
            lambda: _process(connection, program_code, body, request_hash, now, actor,
                             version=version),
        )  # fmt: skip

    explicit = idempotency_key is None and engine.dialect.name == "postgresql"
    answer, created = retrying(engine, attempt, begun_by_work=explicit)
    return PurchaseResult(answer, created)


def quote_purchase(
    engine: Engine, program_code: str, body: object, *, now: datetime
) -> dict[str, Any]:
    """The answer a purchase would get now — with the member's balance — writing nothing."""
    with reading(engine, one_snapshot=False) as connection:
        raw_member = body.get("member") if isinstance(body, dict) else None
        loaded = load(connection, program_code, raw_member, now, lock=False)
        program, member, wallet = loaded.program, loaded.member, loaded.wallet
        receipt = parse_receipt(body, program.calculator.program, now=now)
        if receipt.member is not None and member is None:
            find_member(connection, program.program_id, receipt.member)
        priced = _quote(connection, loaded, receipt, now)
        member_id = member.id if member is not None else None
        available = wallet.balances[AccountCode.AVAILABLE] if wallet is not None else None
        answer = quote_json(priced.quote, program.calculator.program, status="quote",
                            member=str(member_id) if member_id is not None else None,
                            balance=available)  # fmt: skip
        sale = Sale(connection, program, receipt, member, wallet, priced, answer, now, "quote")
        for mechanic in mechanics():
            mechanic.quoted(sale)
        answer["program_version"] = program.version
        return answer


def _process(
    connection: Connection,
    program_code: str,
    body: object,
    request_hash: str,
    now: datetime,
    actor: str,
    *,
    commit: bool = False,
    begin: bool = False,
    version: int | None = None,
) -> tuple[dict[str, Any], bool]:
    """`commit`: nothing follows in this transaction, so when no mechanic writes after
    the purchase (`Mechanic.writes_after`), its write carries the COMMIT (PostgreSQL).
    `begin`: the load begins the transaction (`retrying(begun_by_work=True)`)."""
    raw_member = body.get("member") if isinstance(body, dict) else None
    pays = isinstance(body, dict) and body.get("redeem") is not None  # spends lots: read them
    loaded = load(
        connection, program_code, raw_member, now, lots=pays, begin=begin, version=version
    )
    program, member, wallet = loaded.program, loaded.member, loaded.wallet
    receipt = parse_receipt(body, program.calculator.program, now=now)
    if not receipt.receipt_id:
        raise InvalidInput([Problem("receipt_id", "is required to process a purchase")])
    if receipt.member is not None and member is None:  # a reference no member answers to
        find_member(connection, program.program_id, receipt.member)
    location = _sold_at(receipt, program)
    try:
        priced = _quote(connection, loaded, receipt, now)
        for mechanic in mechanics():
            mechanic.admit(priced)
    except KopilkaError:
        # a copy of a receipt already processed is answered, even if it could not be redone
        # now (its redemption spent the points it would need again)
        replay = _replay(connection, program, location, receipt.receipt_id, request_hash)
        if replay is not None:
            return replay, False
        raise
    quote = priced.quote
    member_id = member.id if member is not None else None
    hold = receipt.hold
    if wallet is not None:
        _plan(wallet, quote, hold=hold)
    answer = _answer(program, quote, wallet, member_id, hold=hold)
    sale = Sale(connection, program, receipt, member, wallet, priced, answer, now, actor,
                hold=hold, awards=priced_awards(quote, program.calculator.program))  # fmt: skip
    for mechanic in mechanics():
        mechanic.planned(sale)
    for mechanic in mechanics():
        mechanic.issue(sale)
    if wallet is not None:  # as every posting planned leaves it
        answer["balance"] = balance_json(wallet, program.calculator.program.points.precision)
    uses = wallet.redeemed_uses if wallet is not None else []
    parent = _insert(program, receipt, location, member_id, request_hash,
                     "held" if hold else "completed", answer, uses, now, quote,
                     sale)  # fmt: skip
    last = commit and not any(mechanic.writes_after(sale) for mechanic in mechanics())
    purchase_id = _write(connection, program, parent, wallet, actor, now, commit=last)
    if purchase_id is None:  # a concurrent or earlier copy of this receipt got there first
        replay = _replay(connection, program, location, receipt.receipt_id, request_hash)
        assert replay is not None
        return replay, False
    sale.purchase_id = purchase_id
    stored, written = dict(answer), len(sale.awards)
    for mechanic in mechanics():
        mechanic.completed(sale)
    late = answer if answer != stored else None
    if last and (late is not None or sale.awards[written:]):
        raise AssertionError("a mechanic changed the purchase after its COMMIT: its "
                             "writes_after must say it writes")  # fmt: skip
    # a mechanic's part known only once written (a budget's cashback): one more write,
    # which ends the transaction when nothing follows
    write_late(connection, purchase_id, late, sale.awards[written:], commit=commit)
    return {"purchase_id": str(purchase_id), **answer}, True


def _quote(connection: Connection, loaded: Loaded, receipt: Receipt, now: datetime) -> Priced:
    program, member, wallet = loaded.program, loaded.member, loaded.wallet
    if member is None or wallet is None:
        if receipt.hold:
            raise InvalidInput([Problem("hold", "needs a member: only points can be held")])
        return price_receipt(connection, program, receipt, None, None, now)
    if member.status != "active":
        raise Conflict(f"member {receipt.member!r} is {member.status}")
    settings = program.calculator.program
    context = MemberContext(member_refs(member), tier=seen_tier(settings.tiers, member.tier),
                            balance=wallet.balances[AccountCode.AVAILABLE],
                            **_calculator_facts(loaded.read))  # fmt: skip
    return price_receipt(connection, program, receipt, context, member.id, now, loaded.read)


# what a mechanic's reads may tell the calculator: the fields of `MemberContext` it reads
CALCULATOR_FACTS = frozenset(f.name for f in fields(MemberContext)) - {"refs", "tier", "balance"}


def _calculator_facts(read: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The facts the mechanics read that the calculator prices with (`MemberContext`'s
    fields); the rest are each mechanic's own (`Priced.read`)."""
    return {key: value for facts in read.values() for key, value in facts.items()
            if key in CALCULATOR_FACTS}  # fmt: skip


def _plan(wallet: Wallet, quote: Quote, *, hold: bool) -> None:
    """The member's side of the purchase: points paid (or held), then points earned by
    the rules (on a hold, at confirm); the mechanics plan theirs after (`planned`)."""
    key = f"{wallet.program.code}:purchase:{{purchase}}"  # the id is filled in at flush
    if quote.redeemed:
        wallet.redeemed_uses = wallet.redeem(f"{key}:redeem", quote.redeemed, hold=hold)
    pending = wallet.program.accrual.pending_days > 0
    if quote.accrued and not hold:
        wallet.accrue(f"{key}:accrue", quote.accrued, reason=Reason.PURCHASE_ACCRUAL,
                      pending=pending)  # fmt: skip


def _answer(
    program: LoadedProgram, quote: Quote, wallet: Wallet | None, member_id: int | None,
    *, hold: bool,
) -> dict[str, Any]:  # fmt: skip
    """The answer without its `purchase_id` (the row's id, added when it is known)."""
    settings = program.calculator.program
    answer = quote_json(quote, settings, status="held" if hold else "completed",
                        member=str(member_id) if member_id is not None else None)  # fmt: skip
    del answer["purchase_id"]
    if wallet is not None:
        answer["balance"] = balance_json(wallet, settings.points.precision)
        if hold:
            answer["accrued_status"] = "on_confirm"
    answer["program_version"] = program.version
    return answer


def balance_json(wallet: Wallet, digits: int) -> dict[str, str]:
    """The member's balances as the wallet leaves them."""
    return {
        code.value: format_minor(wallet.balances[code], digits)
        for code in (AccountCode.AVAILABLE, AccountCode.PENDING, AccountCode.HELD)
    }


def _write(
    connection: Connection, program: LoadedProgram, parent: NewRow, wallet: Wallet | None,
    actor: str, now: datetime, *, commit: bool,
) -> int | None:  # fmt: skip
    """Write the purchase, its records and its postings; its id, or None for a copy.
    `commit`: the write ends the transaction (on PostgreSQL, in the same round trip)."""
    if wallet is not None:
        return wallet.write_under(parent, parent_is="purchase", actor=actor, commit=commit)
    if connection.dialect.name != "postgresql":
        return parent.insert(connection)
    return write_under(connection, parent, parent_is="purchase", program_id=program.program_id,
                       postings=[], ids={}, actor=actor, now=now, purchase_id=None,
                       lot_changes=[], new_lots=[], commit=commit)  # fmt: skip


LINE_COLUMNS = tuple(c.name for c in purchase_lines.c if c.name != "purchase_id")


def _insert(
    program: LoadedProgram, receipt: Receipt, location: str,
    member_id: int | None, request_hash: str, status: str, answer: dict[str, Any],
    lots_used: list[tuple[int, int]], now: datetime, quote: Quote, sale: Sale,
) -> NewRow:  # fmt: skip
    """The purchase's row: inserted with a new id, or not at all for a receipt seen before;
    with it, its lines, the awards known before it is written and the mechanics' rows."""
    return NewRow(
        purchases,
        {
            "program_id": program.program_id,
            "program_version_id": program.version_id,
            "location": location,
            "receipt_id": receipt.receipt_id,
            "member_id": member_id,
            "request_hash": request_hash,
            "status": status,
            "answer": answer,
            "lines": [
                {"n": line.n, "qty": str(line.qty), "sku": line.sku, "category": line.category}
                for line in receipt.lines
            ],
            "spend": _spend(quote),
            "lots_used": [list(use) for use in lots_used] or None,
            "created_at": now,
            "total": quote.total,
            "discount": quote.discount,
            "redeemed": quote.redeemed,
            "paid": quote.paid,
            "accrued": quote.accrued,
        },
        unique=("program_id", "location", "receipt_id"),
        children=(
            ChildRows(purchase_lines, "purchase_id", LINE_COLUMNS, line_rows(quote, receipt)),
            ChildRows(
                purchase_awards,
                "purchase_id",
                AWARD_COLUMNS,
                [award.row() for award in sale.awards],
            ),
            *sale.rows,
            *_hold(program, member_id, quote, now, hold=status == "held"),
        ),
        bumps=(
            *_standing(program, member_id, now, quote, sale.wallet, hold=status == "held"),
            *sale.bumps,
        ),
    )


HOLD_COLUMNS = ("program_id", "member_id", "amount", "accrued", "status", "expires_at")


def _hold(
    program: LoadedProgram, member_id: int | None, quote: Quote, now: datetime, *, hold: bool
) -> tuple[ChildRows, ...]:
    """A held purchase's hold row, written with it: the points reserved and those to
    accrue at confirm (the coupons' come from the answer, on confirm)."""
    if not hold:
        return ()
    minutes = program.calculator.program.redemption.hold_minutes
    row = {"program_id": program.program_id, "member_id": member_id, "amount": quote.redeemed,
           "accrued": quote.accrued, "status": "held",
           "expires_at": now + timedelta(minutes=minutes)}  # fmt: skip
    return (ChildRows(holds, "purchase_id", HOLD_COLUMNS, [row]),)


def _standing(
    program: LoadedProgram, member_id: int | None, now: datetime, quote: Quote,
    wallet: Wallet | None, *, hold: bool,
) -> tuple[Bump, ...]:  # fmt: skip
    """What the purchase adds to the member's standing: its spend and itself on its day
    (a held one at its confirm), the points it earned and paid for the lifetime figures."""
    if member_id is None:
        return ()
    bumps: tuple[Bump, ...] = ()
    if not hold:
        day = local_day(now, program.calculator.program.timezone)
        bumps = counted(member_id, day, _spend(quote), 1)
    if wallet is not None:
        bumps += (_points_moved(member_id, wallet),)
    return bumps


def _points_moved(member_id: int, wallet: Wallet) -> Bump:
    return points_moved(member_id, wallet.planned(Reason.PURCHASE_ACCRUAL),
                        wallet.planned(Reason.PURCHASE_REDEMPTION))  # fmt: skip


def _spend(quote: Quote) -> int:
    return sum(line.amount for line in quote.lines)  # net of every discount


def _replay(
    connection: Connection,
    program: LoadedProgram,
    location: str,
    receipt_id: str,
    request_hash: str,
) -> dict[str, Any] | None:
    row = connection.execute(
        select(purchases.c.id, purchases.c.request_hash, purchases.c.answer).where(
            purchases.c.program_id == program.program_id,
            purchases.c.location == location,
            purchases.c.receipt_id == receipt_id,
        )
    ).one_or_none()
    if row is None:
        return None
    if row.request_hash != request_hash:
        raise IdempotencyConflict(
            f"receipt {receipt_id!r} at {location or 'no location'} was already processed "
            "with a different body"
        )
    return {"purchase_id": str(row.id), **row.answer}


# — holds —


def settle_hold(
    engine: Engine, program_code: str, purchase_ref: str, action: str, *, actor: str,
    now: datetime, idempotency_key: str | None = None,
) -> tuple[dict[str, Any], bool]:  # fmt: skip
    """Confirm or cancel a held purchase; a repeat of the same action answers the first."""
    assert action in ("confirm", "cancel")

    def attempt(connection: Connection) -> tuple[dict[str, Any], bool]:
        program = load_program(connection, program_code)
        purchase_id = row_id(purchase_ref) or -1
        hold = connection.execute(
            select(holds).where(holds.c.program_id == program.program_id,
                                holds.c.purchase_id == purchase_id)
        ).one_or_none()  # fmt: skip
        if hold is None:
            raise NotFound(f"held purchase {purchase_ref!r} does not exist")
        wallet = Wallet.open(connection, program.program_id, program.calculator.program,
                             hold.member_id, now)  # fmt: skip
        hold = connection.execute(select(holds).where(holds.c.id == hold.id)).one()  # now locked
        done = {"confirm": "confirmed", "cancel": "cancelled"}[action]
        if hold.status == done:
            return hold.answer, False
        if hold.status != "held":
            raise Conflict(f"purchase {purchase_ref} is not held: its hold was {hold.status}")
        if action == "confirm" and now >= hold.expires_at:
            expired = hold.expires_at.isoformat()
            raise Conflict(f"purchase {purchase_ref}'s hold expired at {expired}")
        answer = _settle(connection, program, wallet, hold, done, actor, now)
        return answer, True

    request = {"purchase": purchase_ref, "action": action}
    return idempotent(engine, program_code, idempotency_key, f"purchase.{action}", request, now,
                      attempt)  # fmt: skip


def release_due_holds(engine: Engine, *, now: datetime, actor: str = "worker") -> int:
    """Give back the points of every hold not confirmed in time; how many were released."""
    with engine.connect() as connection:
        due = connection.execute(
            select(holds.c.id, holds.c.program_id).where(
                holds.c.status == "held", holds.c.expires_at <= now
            )
        ).all()
    return sum(
        retrying(engine, partial(_release_one, hold_id=hold_id, now=now, actor=actor))
        for hold_id, _program_id in due
    )


def _release_one(connection: Connection, *, hold_id: int, now: datetime, actor: str) -> int:
    hold = connection.execute(select(holds).where(holds.c.id == hold_id)).one()
    program = _program_of(connection, hold.program_id)
    wallet = Wallet.open(connection, hold.program_id, program.calculator.program,
                         hold.member_id, now)  # fmt: skip
    hold = connection.execute(select(holds).where(holds.c.id == hold_id)).one()
    if hold.status != "held":
        return 0  # confirmed or cancelled meanwhile
    _settle(connection, program, wallet, hold, "expired", actor, now)
    return 1


def _program_of(connection: Connection, program_id: int) -> LoadedProgram:
    code = connection.execute(
        select(programs.c.code).where(programs.c.id == program_id)
    ).scalar_one()
    return load_program(connection, code)


def _settle(
    connection: Connection, program: LoadedProgram, wallet: Wallet, hold: Any, status: str,
    actor: str, now: datetime,
) -> dict[str, Any]:  # fmt: skip
    """Post the hold's outcome and record it: paid and accrued, or given back — the
    points here, each mechanic's part by its `confirmed` or `cancelled` hook."""
    settings = program.calculator.program
    key = f"{settings.code}:hold:{hold.purchase_id}"
    purchase = connection.execute(
        select(purchases.c.answer, purchases.c.lots_used, purchases.c.paid, purchases.c.spend,
               purchases.c.created_at)
        .where(purchases.c.id == hold.purchase_id)
    ).one()  # fmt: skip
    pending = settings.accrual.pending_days > 0
    if status == "confirmed":
        wallet.settle_hold(f"{key}:confirm", hold.amount)
        wallet.accrue(f"{key}:accrue", hold.accrued, reason=Reason.PURCHASE_ACCRUAL,
                      purchase_id=hold.purchase_id, pending=pending)  # fmt: skip
    else:
        reason = Reason.HOLD_CANCEL if status == "cancelled" else Reason.HOLD_TIMEOUT
        uses = [(lot, points) for lot, points in purchase.lots_used or []]
        wallet.give_back(f"{key}:release", hold.amount, reason=reason, uses=uses,
                         source=AccountRef.of_member(hold.member_id, AccountCode.HELD))  # fmt: skip
    purchase_status = "completed" if status == "confirmed" else status
    # the purchase counts (or stops counting) before the mechanics look: a tier reads it
    connection.execute(update(purchases).where(purchases.c.id == hold.purchase_id)
                       .values(status=purchase_status))  # fmt: skip
    bumps = [_points_moved(hold.member_id, wallet)]
    if status == "confirmed":
        day = local_day(purchase.created_at, settings.timezone)
        bumps += counted(hold.member_id, day, int(purchase.spend or 0), 1)
    add_to_totals(connection, bumps)
    answer = {"purchase_id": str(hold.purchase_id), **purchase.answer, "status": purchase_status}
    settlement = Settlement(connection, program, wallet, hold.purchase_id, hold.member_id,
                            status, dict(purchase.answer), answer, now, actor,
                            paid=int(purchase.paid),
                            awards=awards_of(connection, hold.purchase_id))  # fmt: skip
    for mechanic in mechanics():
        if status == "confirmed":
            mechanic.confirmed(settlement)
        else:
            mechanic.cancelled(settlement)
    wallet.flush(actor=actor, purchase_id=hold.purchase_id)
    answer["balance"] = balance_json(wallet, settings.points.precision)
    if status == "confirmed":
        answer["accrued_status"] = "pending" if pending else "available"
    else:
        answer["accrued_status"] = None
    connection.execute(
        update(holds).where(holds.c.id == hold.id)
        .values(status=status, settled_at=now, answer=answer)
    )  # fmt: skip
    changed = settlement.stored if settlement.stored != purchase.answer else None
    write_late(connection, hold.purchase_id, changed, settlement.added)
    return answer


def read_purchase(engine: Engine, program_code: str, purchase_ref: str) -> dict[str, Any]:
    """A purchase's answer as it stands now (its status follows confirms and refunds)."""
    number = row_id(purchase_ref) or -1
    with reading(engine) as connection:
        program = load_program(connection, program_code)
        row = connection.execute(
            select(purchases.c.id, purchases.c.status, purchases.c.answer).where(
                purchases.c.program_id == program.program_id, purchases.c.id == number
            )
        ).one_or_none()
    if row is None:
        raise NotFound(f"purchase {purchase_ref!r} does not exist")
    return {"purchase_id": str(row.id), **row.answer, "status": row.status}


def _sold_at(receipt: Receipt, program: LoadedProgram) -> str:
    """Where the purchase was made: a quote may leave it out, a stored purchase may not —
    its location decides its replays, its refunds and which keys may touch it."""
    if receipt.location is None:
        places = ", ".join(sorted(program.calculator.program.locations))
        raise InvalidInput([Problem("location", f"is required to process a purchase "
                                    f"(one of: {places})")])  # fmt: skip
    return receipt.location


def location_of(engine: Engine, program_code: str, purchase_ref: str) -> str:
    """Where a purchase was made; `NotFound` for no such purchase."""
    with engine.connect() as connection:
        program = load_program(connection, program_code)
        location = connection.execute(
            select(purchases.c.location).where(
                purchases.c.program_id == program.program_id,
                purchases.c.id == (row_id(purchase_ref) or -1),
            )
        ).scalar_one_or_none()
    if location is None:
        raise NotFound(f"purchase {purchase_ref!r} does not exist")
    return str(location)
