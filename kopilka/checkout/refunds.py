"""Refunds, whole or in part: accrued points come off, redeemed points go back.

Idempotent like purchases: the same `refund_id` with the same body answers the first
result; with another body it is `idempotency_conflict`. Refunding more than was bought
(or than is left) is refused and writes nothing. When the accrued points were already
spent, the member's balance goes negative (the program default).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update

from kopilka.checkout.mechanic import LineLeft, Refunding, mechanics
from kopilka.checkout.purchases import balance_json
from kopilka.checkout.records import awards_of, lines_of
from kopilka.kernel.errors import Conflict, IdempotencyConflict, InvalidInput, NotFound, Problem
from kopilka.kernel.ledger import AccountCode, AccountRef, Reason
from kopilka.kernel.lots import slice_of_uses
from kopilka.kernel.money import format_minor, to_minor
from kopilka.kernel.program import Program
from kopilka.kernel.reading import Reader, row_id
from kopilka.kernel.receipt import QTY_DIGITS
from kopilka.kernel.refund_lines import BoughtLine, RefundLine, refund_lines
from kopilka.ledger.wallet import Wallet
from kopilka.members.standing import counted, local_day
from kopilka.platform.idempotency import idempotent
from kopilka.platform.statements import add_to_totals
from kopilka.platform.tables import lots, purchases, refunds, transfers
from kopilka.programs.handlers import canonical, load_program, to_json

REFUND_KEYS = ("refund_id", "lines")


def refund_purchase(
    engine: Engine,
    program_code: str,
    purchase_id: str,
    body: object,
    *,
    actor: str,
    now: datetime,
    idempotency_key: str | None = None,
) -> tuple[dict[str, Any], bool]:
    """The refund's answer, and whether it was made now (False: a replay)."""
    refund_id, requested = _parse(body)
    request_hash = hashlib.sha256(canonical(to_json(body)).encode()).hexdigest()

    def attempt(connection: Connection) -> tuple[dict[str, Any], bool]:
        return _refund(
            connection, program_code, purchase_id, refund_id, requested, request_hash, actor, now
        )

    request = {"purchase": purchase_id, "body": body}
    return idempotent(engine, program_code, idempotency_key, "purchase.refund", request, now,
                      attempt)  # fmt: skip


def _parse(body: object) -> tuple[str, dict[int, Decimal] | None]:
    problems: list[Problem] = []
    reader = Reader(body, "", problems, REFUND_KEYS)
    refund_id = reader.text("refund_id", required=True)
    requested: dict[int, Decimal] | None = None
    for line in reader.records("lines", ("n", "qty")):
        n = line.integer("n", required=True, minimum=0)
        qty = line.decimal("qty", required=True, minimum=Decimal(0))
        if qty is not None and (qty == 0 or to_minor(qty, 6) is None):
            line.report(line.at("qty"), "must be more than 0, with at most 6 decimals")
        if n is not None and qty is not None:
            requested = requested or {}
            if n in requested:
                line.report(line.at("n"), f"line {n} is named twice")
            requested[n] = qty
    if problems:
        raise InvalidInput(problems)
    assert refund_id is not None
    return refund_id, requested


def _refund(
    connection: Connection,
    program_code: str,
    purchase_ref: str,
    refund_id: str,
    requested: dict[int, Decimal] | None,
    request_hash: str,
    actor: str,
    now: datetime,
) -> tuple[dict[str, Any], bool]:
    program = load_program(connection, program_code)
    settings = program.calculator.program
    purchase = _purchase(connection, program.program_id, purchase_ref)
    earlier = connection.execute(
        select(refunds.c.request_hash, refunds.c.answer).where(
            refunds.c.purchase_id == purchase.id, refunds.c.refund_id == refund_id
        )
    ).one_or_none()
    if earlier is not None:
        if earlier.request_hash != request_hash:
            raise IdempotencyConflict(f"refund {refund_id!r} was made with a different body")
        return earlier.answer, False
    if purchase.status in ("held", "cancelled", "expired"):
        raise Conflict(f"purchase {purchase_ref} is {purchase.status}: only a completed "
                       "purchase is refunded (a held one is cancelled)")  # fmt: skip
    wallet = (  # lock the member before reading what is left to refund
        Wallet.open(connection, program.program_id, settings, purchase.member_id, now)
        if purchase.member_id is not None else None
    )  # fmt: skip
    earlier_refunds = _earlier_refunds(connection, purchase.id)
    bought = lines_of(connection, purchase.id)
    lines = refund_lines(_bought(bought, earlier_refunds), requested)
    accrued_back = sum(line.accrued_back for line in lines)
    redeemed_back = sum(line.redeemed_back for line in lines)
    whole = _all_returned(bought, earlier_refunds, lines)
    digits = settings.points.precision
    status = "refunded" if whole else "partially_refunded"
    answer = _answer(purchase, refund_id, lines, status, wallet, digits)
    refunding = Refunding(connection, program, wallet, purchase, 0,
                          f"{settings.code}:refund:{{refund}}", _money_back(settings, lines),
                          whole, answer, now, actor,
                          awards=awards_of(connection, purchase.id),
                          returned=_returned_now(earlier_refunds, lines))  # fmt: skip
    refunding.left = _left(bought, refunding.returned)
    accrued_back += sum(mechanic.refund_points(refunding) for mechanic in mechanics())
    burnt = (
        _plan(connection, wallet, purchase, earlier_refunds, redeemed_back, accrued_back)
        if wallet is not None else 0
    )  # fmt: skip
    answer["accrued_back"] = format_minor(accrued_back, digits)
    if wallet is not None:
        answer["balance"] = balance_json(wallet, digits)
    answer["accrued_burnt"] = format_minor(burnt, digits)
    row_id = connection.execute(
        insert(refunds)
        .values(
            purchase_id=purchase.id,
            refund_id=refund_id,
            request_hash=request_hash,
            lines=[{"n": line.n, "qty": str(line.qty)} for line in lines],
            answer=answer,
            created_at=now,
            spend=sum(line.spend_back for line in lines),
            redeemed_back=redeemed_back,
            accrued_back=accrued_back,
            accrued_burnt=burnt,
        )
        .returning(refunds.c.id)
    ).scalar_one()
    if wallet is not None:
        wallet.flush(actor=actor, purchase_id=purchase.id, refund_id=row_id,
                     keys={"refund": row_id})  # fmt: skip
    refunding.refund_row, refunding.refund_key = row_id, f"{settings.code}:refund:{row_id}"
    written = dict(answer)
    for mechanic in mechanics():
        mechanic.refunded(refunding)
    if answer != written:  # the mechanics' parts, known once the refund is written
        connection.execute(update(refunds).where(refunds.c.id == row_id).values(answer=answer))
    connection.execute(update(purchases).where(purchases.c.id == purchase.id).values(status=status))
    if purchase.member_id is not None:  # the member's standing: on the purchase's day
        day = local_day(purchase.created_at, settings.timezone)
        spend_back = sum(line.spend_back for line in lines)
        add_to_totals(connection, counted(purchase.member_id, day, -spend_back, -1 if whole else 0))
    return answer, True


def _money_back(program: Program, lines: list[RefundLine]) -> int:
    """The money a refund gives back: the lines' amounts less what points paid of them —
    cashback was given on money paid, so it is taken back by the same measure."""
    points = sum(line.redeemed_back for line in lines)
    money_per_point = Fraction(program.points.value) * 10**program.money_digits
    paid_by_points = points * money_per_point / 10**program.points.precision
    half_up: int = (2 * paid_by_points.numerator + paid_by_points.denominator) // (
        2 * paid_by_points.denominator
    )
    returned: int = sum(line.spend_back for line in lines)
    return max(0, returned - half_up)


def _plan(
    connection: Connection, wallet: Wallet, purchase: Any, earlier: list[Any],
    redeemed_back: int, accrued_back: int,
) -> int:  # fmt: skip
    """Redeemed points go back to the lots they came from; then accrued points come off,
    but for those that already burnt (how many: the answer's `accrued_burnt`)."""
    key = f"{wallet.program.code}:refund:{{refund}}"
    returned_before = sum(int(refund.redeemed_back) for refund in earlier)
    uses = [(lot, points) for lot, points in purchase.lots_used or []]
    wallet.give_back(
        f"{key}:return",
        redeemed_back,
        source=AccountRef.of_program(AccountCode.REDEEMED),
        reason=Reason.REFUND_REDEMPTION,
        uses=slice_of_uses(uses, returned_before, returned_before + redeemed_back),
    )
    burnt = _burnt_already(connection, purchase.id, accrued_back)
    accrued_back -= burnt
    if accrued_back:
        still_pending = connection.execute(
            select(lots.c.id).where(
                lots.c.purchase_id == purchase.id,
                lots.c.status == "pending",
                # the rules' points and a coupon's were credited together, pending alike
                lots.c.reason.in_(_EARNED),
            )
        ).first()
        wallet.clawback(f"{key}:clawback", accrued_back, purchase_id=purchase.id,
                        from_pending=still_pending is not None)  # fmt: skip
    return burnt


# What a purchase's points did, by the transfers that refer to it: earned (the rules' and a
# coupon's), burnt (the expiry of its lots) and taken back by its refunds.
_EARNED = (Reason.PURCHASE_ACCRUAL.value, Reason.COUPON.value, Reason.MECHANIC.value)
_TAKEN_BACK = (Reason.REFUND_ACCRUAL.value, Reason.DEBT.value)


def _burnt_already(connection: Connection, purchase_id: int, accrued_back: int) -> int:
    """The part of `accrued_back` that burnt before this refund: a purchase's points leave
    the member once, so what the worker burnt of its lots is not taken back a second time
    (from the member's other points). Points of the purchase that were spent, or that
    paid a debt, are taken back in full — what is left to take is what it earned less
    what burnt and what earlier refunds took."""
    moved = dict(
        connection.execute(
            select(transfers.c.reason, func.sum(transfers.c.amount))
            .where(transfers.c.purchase_id == purchase_id,
                   transfers.c.reason.in_((*_EARNED, *_TAKEN_BACK, Reason.EXPIRY.value)))
            .group_by(transfers.c.reason)
        ).tuples().all()
    )  # fmt: skip
    burnt = int(moved.get(Reason.EXPIRY.value, 0))
    if not burnt:
        return 0
    earned = sum(int(moved.get(reason, 0)) for reason in _EARNED)
    taken = sum(int(moved.get(reason, 0)) for reason in _TAKEN_BACK)
    left = max(0, earned - burnt - taken)
    return accrued_back - min(accrued_back, left)


def _purchase(connection: Connection, program_id: int, ref: str) -> Any:
    row = connection.execute(
        select(
            purchases.c.id,
            purchases.c.member_id,
            purchases.c.status,
            purchases.c.paid,
            purchases.c.lots_used,
            purchases.c.spend,
            purchases.c.created_at,
            purchases.c.location,
        ).where(
            purchases.c.program_id == program_id,
            purchases.c.id == (row_id(ref) or -1),
        )
    ).one_or_none()
    if row is None:
        raise NotFound(f"purchase {ref!r} does not exist")
    return row


def _earlier_refunds(connection: Connection, purchase_id: int) -> list[Any]:
    return list(
        connection.execute(
            select(refunds.c.lines, refunds.c.redeemed_back).where(
                refunds.c.purchase_id == purchase_id
            )
        )
    )


def _returned(earlier: list[Any]) -> dict[int, Decimal]:
    returned: dict[int, Decimal] = {}
    for refund in earlier:
        for line in refund.lines:
            returned[line["n"]] = returned.get(line["n"], Decimal(0)) + Decimal(line["qty"])
    return returned


def _returned_now(earlier: list[Any], lines: list[RefundLine]) -> dict[int, Decimal]:
    """The quantity of each line returned by the earlier refunds and this one."""
    returned = _returned(earlier)
    for line in lines:
        returned[line.n] = returned.get(line.n, Decimal(0)) + line.qty
    return returned


def _left(bought: list[Any], returned: dict[int, Decimal]) -> list[LineLeft]:
    """Each line as the refunds leave it: what is not returned, and its money in
    proportion (rounded down)."""
    left = []
    for line in bought:
        qty = _qty(line)
        kept = max(qty - returned.get(line.n, Decimal(0)), Decimal(0))
        amount = int(int(line.amount) * kept / qty) if qty else 0
        left.append(LineLeft(line.n, line.sku, line.category, kept, amount))
    return left


def _bought(bought: list[Any], earlier: list[Any]) -> list[BoughtLine]:
    """The purchase's lines as its records keep them, with what refunds returned so far."""
    returned = _returned(earlier)
    return [
        BoughtLine(
            n=line.n,
            qty=_qty(line),
            accrued=int(line.accrued),
            redeemed=int(line.redeemed),
            returned_qty=returned.get(line.n, Decimal(0)),
            amount=int(line.amount),
        )
        for line in bought
    ]


def _qty(line: Any) -> Decimal:
    return Decimal(int(line.qty_micro)).scaleb(-QTY_DIGITS)


def _all_returned(bought: list[Any], earlier: list[Any], lines: list[RefundLine]) -> bool:
    returned = _returned(earlier)
    for line in lines:
        returned[line.n] = returned.get(line.n, Decimal(0)) + line.qty
    return all(returned.get(line.n, 0) >= _qty(line) for line in bought)


def _answer(
    purchase: Any,
    refund_id: str,
    lines: list[RefundLine],
    status: str,
    wallet: Wallet | None,
    digits: int,
) -> dict[str, Any]:
    return {
        "refund_id": refund_id,
        "purchase_id": str(purchase.id),
        "purchase_status": status,
        "accrued_back": format_minor(sum(line.accrued_back for line in lines), digits),
        "redeemed_back": format_minor(sum(line.redeemed_back for line in lines), digits),
        "lines": [
            {
                "n": line.n,
                "qty": format(line.qty.normalize(), "f"),
                "accrued_back": format_minor(line.accrued_back, digits),
                "redeemed_back": format_minor(line.redeemed_back, digits),
            }
            for line in lines
        ],
        "balance": balance_json(wallet, digits) if wallet is not None else None,
    }
