"""Discounts: what pricing needs to know of a member, paid discount cards, and managing
the program's discounts over the API (each change is a new program version).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    ScalarSelect,
    Select,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
)
from sqlalchemy.exc import IntegrityError

from kopilka.checkout.mechanic import Reads
from kopilka.kernel.errors import Conflict, InvalidInput, NotFound, Problem
from kopilka.kernel.money import format_minor
from kopilka.kernel.program import Program
from kopilka.kernel.reading import CODE_PATTERN, Reader
from kopilka.mechanics.discounts.tables import member_discount_cards
from kopilka.members.handlers import find_member
from kopilka.platform.idempotency import idempotent
from kopilka.platform.tables import member_totals, purchases
from kopilka.programs.handlers import apply_program, load_program, read_program, to_json

COUNTED = ("completed", "partially_refunded")  # purchases that happened and still stand
CARD_PURCHASE_KEYS = ("card", "payment_ref", "valid_from")


# — what pricing needs to know of a member —


def shopper_reads(program: Program, member: ScalarSelect[Any]) -> Reads | None:
    """The queries of what the program's discounts ask of the member (their purchases,
    lifetime spend, latest purchase per partner, discount cards in force), each with the
    facts its rows make; None when they ask nothing. They go out with the purchase's load."""
    settings = program.discounts
    if settings is None:
        return None
    days = max((d.bought_at.days for d in settings.discounts if d.bought_at), default=0)
    asked: list[tuple[Select[Any], Callable[[Sequence[Any]], dict[str, Any]]]] = []
    if settings.needs_history:
        asked.append((_history_query(member), _history_facts))
        if days:
            asked.append(
                (
                    _last_bought_query(member),
                    lambda rows: {"last_bought": _latest_by_partner(program, rows)},
                )
            )
    if settings.needs_cards:
        asked.append((_cards_query(member), lambda rows: {"cards": frozenset(r[0] for r in rows)}))
    if not asked:
        return None

    def facts(rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
        return {key: value for (_, made), found in zip(asked, rows, strict=True)
                for key, value in made(found).items()}  # fmt: skip

    def parameters(now: datetime) -> dict[str, Any]:
        return {"discounts_now": now, "discounts_since": now - timedelta(days=days)}

    return Reads(tuple(query for query, _ in asked), facts, parameters)


def _history_query(member: ScalarSelect[Any]) -> Select[Any]:
    """The member's purchases that still stand and their lifetime spend net of refunds:
    one row of their kept standing (`kopilka.members.standing`), never a sum."""
    return select(member_totals.c.purchases, member_totals.c.spend).where(
        member_totals.c.member_id == member
    )


def _history_facts(rows: Sequence[Any]) -> dict[str, Any]:
    count, spent = rows[0] if rows else (0, 0)
    return {"purchases": int(count), "lifetime_spend": int(spent)}


def _last_bought_query(member: ScalarSelect[Any]) -> Select[Any]:
    """Location → the member's latest purchase there since `discounts_since`."""
    since = bindparam("discounts_since", type_=purchases.c.created_at.type)
    return (
        select(purchases.c.location, func.max(purchases.c.created_at))
        .where(purchases.c.member_id == member, purchases.c.status.in_(COUNTED),
               purchases.c.created_at > since)
        .group_by(purchases.c.location)
    )  # fmt: skip


def _latest_by_partner(program: Program, rows: Sequence[Any]) -> dict[str, datetime]:
    latest: dict[str, datetime] = {}
    for location, moment in rows:
        place = program.locations.get(location)
        if place is not None and moment > latest.get(place.partner, moment - timedelta(1)):
            latest[place.partner] = moment
    return latest


def _cards_query(member: ScalarSelect[Any]) -> Select[Any]:
    """The member's discount cards in force at `discounts_now`."""
    now = bindparam("discounts_now", type_=member_discount_cards.c.valid_from.type)
    cards = member_discount_cards.c
    return select(cards.card).where(
        cards.member_id == member,
        cards.valid_from <= now,
        or_(cards.valid_until.is_(None), cards.valid_until > now),
    )


# — paid discount cards —


def buy_discount_card(
    engine: Engine, program_code: str, member_ref: str, body: object, *, actor: str,
    now: datetime, idempotency_key: str | None = None,
) -> tuple[dict[str, Any], bool]:  # fmt: skip
    """A member paid a card's fee: the card is in force from now (or after the card they
    hold runs out: buying again extends it) for its `valid_days`."""

    def attempt(connection: Connection) -> tuple[dict[str, Any], bool]:
        program = load_program(connection, program_code)
        member = find_member(connection, program.program_id, member_ref)
        settings = program.calculator.program.discounts
        problems: list[Problem] = []
        reader = Reader(body, "", problems, CARD_PURCHASE_KEYS)
        code = reader.code("card")
        reader.text("payment_ref")
        cards = settings.cards if settings else {}
        if code is not None and code not in cards:
            known = ", ".join(sorted(cards)) or "none"
            problems.append(Problem("card", f"unknown discount card {code!r} (cards: {known})"))
        if problems:
            raise InvalidInput(problems)
        assert code is not None
        card = cards[code]
        start = max(now, _held_until(connection, member.id, code, now) or now)
        until = start + timedelta(days=card.valid_days) if card.valid_days else None
        values = {"program_id": program.program_id, "member_id": member.id, "card": code,
                  "fee": card.fee, "payment_ref": reader.text("payment_ref"),
                  "valid_from": start, "valid_until": until, "actor": actor,
                  "created_at": now}  # fmt: skip
        row_id = connection.execute(
            insert(member_discount_cards).values(**values).returning(member_discount_cards.c.id)
        ).scalar_one()
        return _card_json(row_id, values, program.calculator.program.money_digits), True

    request = {"member": member_ref, "body": body}
    return idempotent(engine, program_code, idempotency_key, "discount_card.buy", request, now,
                      attempt)  # fmt: skip


def _held_until(
    connection: Connection, member_id: int, code: str, now: datetime
) -> datetime | None:
    """When the member's card `code` runs out, if they hold one in force or to come."""
    held = member_discount_cards.c
    return connection.execute(
        select(func.max(held.valid_until)).where(
            and_(held.member_id == member_id, held.card == code, held.valid_until > now)
        )
    ).scalar_one_or_none()


def member_cards(engine: Engine, program_code: str, member_ref: str, *, now: datetime) -> Any:
    """The member's discount cards, newest first, each with whether it is in force now."""
    with engine.connect() as connection:
        program = load_program(connection, program_code)
        member = find_member(connection, program.program_id, member_ref)
        rows = connection.execute(
            select(member_discount_cards)
            .where(member_discount_cards.c.member_id == member.id)
            .order_by(member_discount_cards.c.id.desc())
        ).all()  # fmt: skip
    digits = program.calculator.program.money_digits
    items = []
    for row in rows:
        item = _card_json(row.id, row._asdict(), digits)
        item["in_force"] = row.valid_from <= now and (
            row.valid_until is None or row.valid_until > now
        )
        items.append(item)
    return {"items": items}


def _card_json(row_id: int, values: dict[str, Any], digits: int) -> dict[str, Any]:
    until = values["valid_until"]
    return {
        "id": str(row_id),
        "card": values["card"],
        "fee": format_minor(values["fee"], digits),
        "payment_ref": values["payment_ref"],
        "valid_from": values["valid_from"].isoformat(),
        "valid_until": until.isoformat() if until else None,
    }


# — the program's discounts over the API —


def list_discounts(engine: Engine, program_code: str) -> dict[str, Any]:
    document = read_program(engine, program_code)
    body = document["document"]
    return {
        "version": document["version"],
        "items": body.get("discounts") or [],
        "discount_limits": body.get("discount_limits"),
        "discount_cards": body.get("discount_cards") or [],
    }


def put_discount(
    engine: Engine, program_code: str, code: str, body: object, *, actor: str, now: datetime
) -> tuple[dict[str, Any], bool]:
    """Add or replace the discount `code` — a new program version, checked like a whole
    program file (a problem is named at its place: `discounts[2] (code).percent`)."""
    if not isinstance(body, dict):
        raise InvalidInput([Problem("", "must be a discount: an object with one effect")])
    _check_code(code)
    if body.get("code", code) != code:
        raise InvalidInput([Problem("code", f"must be {code!r}, the discount in the path")])
    discount = {**to_json(body), "code": code}

    def change(document: dict[str, Any]) -> bool:
        items = [d for d in document.get("discounts") or [] if d.get("code") != code]
        existed = len(items) < len(document.get("discounts") or [])
        document["discounts"] = [*items, discount]
        return not existed

    version, created = _change_discounts(engine, program_code, change, actor=actor, now=now)
    return {"version": version, "discount": discount}, created


def delete_discount(
    engine: Engine, program_code: str, code: str, *, actor: str, now: datetime
) -> dict[str, Any]:
    def change(document: dict[str, Any]) -> bool:
        items = document.get("discounts") or []
        kept = [d for d in items if d.get("code") != code]
        if len(kept) == len(items):
            raise NotFound(f"discount {code!r} does not exist")
        if kept:
            document["discounts"] = kept
        else:
            del document["discounts"]
        return True

    version, _ = _change_discounts(engine, program_code, change, actor=actor, now=now)
    return {"version": version, "deleted": code}


def _change_discounts(
    engine: Engine, program_code: str, change: Callable[[dict[str, Any]], bool], *,
    actor: str, now: datetime, attempts: int = 8,
) -> tuple[int, bool]:  # fmt: skip
    """Apply `change` to the current document as the next version; when another change
    lands in between, read again and redo it (no change is lost, none applied twice)."""
    for _ in range(attempts):
        current = read_program(engine, program_code)
        document = copy.deepcopy(current["document"])
        result = change(document)
        try:
            applied = apply_program(engine, document, actor=actor, now=now,
                                    based_on=current["version"])  # fmt: skip
        except (Conflict, IntegrityError):  # another version came first: redo on top of it
            continue
        return applied.version, result
    raise Conflict(f"program {program_code} keeps changing; try again")


def _check_code(code: str) -> None:
    if not CODE_PATTERN.fullmatch(code):
        raise InvalidInput([Problem("code", f"{code!r} is not a code (letters, digits, '-')")])
