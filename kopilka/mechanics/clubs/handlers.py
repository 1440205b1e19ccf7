"""Clubs' use cases (docs/clubs.md): joining by payment (money checked against the fee, or
points as a ledger transfer) or by invitation (a code's use taken once), paying the next
period, leaving, invite codes, the worker's renewals and lapses, and what the API, the
member's documents and the console read.

Every change of a membership is a row of `club_events` with its actor, in the change's
own transaction. A payment is recorded once: its reference is unique in the program, so
the same payment sent again answers the membership as it stands and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, Row

from kopilka.kernel.errors import (
    Conflict,
    Duplicate,
    IdempotencyConflict,
    InsufficientPoints,
    InvalidInput,
    NotFound,
    Problem,
)
from kopilka.kernel.ledger import AccountCode, Reason
from kopilka.kernel.money import format_minor
from kopilka.kernel.reading import MAX_NOTE, Reader, show
from kopilka.ledger.wallet import Wallet
from kopilka.mechanics.clubs import status as records
from kopilka.mechanics.clubs.model import (
    MAX_INVITE_USES,
    Club,
    ClubSettings,
    JoinBy,
    Payment,
    Status,
    new_invite_code,
    normalise_invite,
)
from kopilka.mechanics.clubs.section import clubs_of
from kopilka.mechanics.clubs.tables import MAX_REFERENCE
from kopilka.members.handlers import find_member
from kopilka.platform.db import reading
from kopilka.platform.idempotency import AfterWrite, Answer, followed, idempotent, retrying
from kopilka.programs.handlers import LoadedProgram, load_program

JOIN_KEYS = ("club", "payment", "invite", "note")
PAYMENT_KEYS = ("reference", "amount", "points")
INVITE_KEYS = ("uses", "valid_until", "code", "note")
LEAVE_KEYS = ("note",)
INVITE_CODE_LENGTH = (4, 32)


def settings_of(program: LoadedProgram) -> ClubSettings | None:
    return clubs_of(program.calculator.program)


def _settings(program: LoadedProgram, program_code: str) -> ClubSettings:
    settings = settings_of(program)
    if settings is None:
        raise NotFound(f"program {program_code!r} runs no clubs (no `clubs` section)")
    return settings


def _club(settings: ClubSettings, code: str) -> Club:
    """A club of the program; another program's club is not found, as a club of none."""
    club = settings.clubs.get(code)
    if club is None:
        raise NotFound(f"club {code!r} does not exist")
    return club


# — joining and paying —


@dataclass(frozen=True)
class PaymentSent:
    reference: str
    amount: int | None  # money minor units
    points: int | None  # point minor units


def join_club(
    engine: Engine, program_code: str, member_ref: str, body: object, *, actor: str,
    now: datetime, idempotency_key: str | None = None, after: AfterWrite | None = None,
) -> Answer:  # fmt: skip
    """Join a club, or pay a paid club's next period: `{club, payment: {reference, amount
    | points}}` or `{club, invite}`. The membership as it stands, and whether this changed
    it (a payment already recorded answers without a second effect)."""

    def attempt(connection: Connection) -> Answer:
        program = load_program(connection, program_code)
        settings = _settings(program, program_code)
        reader = _reader(body, JOIN_KEYS)
        code = reader.code("club")
        note = reader.text("note", max_length=MAX_NOTE, multiline=True)
        _raise(reader)
        assert code is not None
        club = _club(settings, code)
        member = find_member(connection, program.program_id, member_ref)
        if member.status != "active":
            raise Conflict(f"member {member_ref!r} is {member.status}: they join no club")
        context = _Joining(connection, program, club, member, actor, now, note)
        if club.join_by is JoinBy.PAYMENT:
            if reader.has("invite"):
                _refuse("invite", f"club {club.code!r} is joined by payment, not by invitation")
            return _pay(context, _payment(reader, program, club))
        if reader.has("payment"):
            _refuse("payment", f"club {club.code!r} is joined by invitation, not by payment")
        invite = reader.text("invite", required=True, max_length=INVITE_CODE_LENGTH[1])
        _raise(reader)
        assert invite is not None
        return _invited(context, invite)

    request = {"member": member_ref, "body": body}
    return idempotent(engine, program_code, idempotency_key, "club.join", request, now,
                      followed(attempt, after))  # fmt: skip


@dataclass(frozen=True)
class _Joining:
    connection: Connection
    program: LoadedProgram
    club: Club
    member: Row[Any]
    actor: str
    now: datetime
    note: str | None


def _reader(body: object, keys: tuple[str, ...]) -> Reader:
    return Reader({} if body is None else body, "", [], keys)


def _raise(reader: Reader) -> None:
    if reader.problems:
        raise InvalidInput(reader.problems)


def _refuse(loc: str, message: str) -> None:
    raise InvalidInput([Problem(loc, message)])


def _payment(reader: Reader, program: LoadedProgram, club: Club) -> PaymentSent:
    settings = program.calculator.program
    payment = reader.mapping("payment", PAYMENT_KEYS, required=True)
    _raise(reader)
    assert payment is not None
    reference = payment.text("reference", required=True, max_length=MAX_REFERENCE)
    amount = payment.minor("amount", settings.money_digits, unit="money")
    points = payment.minor("points", settings.points.precision, unit="points")
    if (amount is None) == (points is None) and not payment.problems:
        payment.report(payment.loc, "give the money paid (amount) or the points paid, one")
    _raise(payment)
    assert reference is not None
    assert club.payment is not None
    terms = club.payment
    if amount is not None and amount != terms.fee:
        fee = format_minor(terms.fee, settings.money_digits)
        _refuse("payment.amount", f"{format_minor(amount, settings.money_digits)} is not the "
                                  f"club's fee ({fee} {settings.currency})")  # fmt: skip
    if points is not None and terms.points is None:
        _refuse("payment.points", f"club {club.code!r} is not paid with points")
    if points is not None and points != terms.points:
        price = format_minor(terms.points or 0, settings.points.precision)
        _refuse("payment.points", f"{format_minor(points, settings.points.precision)} is not "
                                  f"the club's price in points ({price})")  # fmt: skip
    return PaymentSent(reference, amount, points)


def _pay(context: _Joining, payment: PaymentSent) -> Answer:
    """A paid club: the first period from now (a new or ended membership) or the next
    period from where the paid one ends (a membership in force, in its grace too)."""
    connection, program, club, member = (context.connection, context.program, context.club,
                                         context.member)  # fmt: skip
    earlier = records.event_of_payment(connection, program.program_id, payment.reference)
    if earlier is not None:
        same = (earlier.member_id, earlier.club, earlier.amount, earlier.points) == (
            member.id, club.code, payment.amount, payment.points)  # fmt: skip
        if not same:
            raise IdempotencyConflict(f"payment {payment.reference!r} was recorded for "
                                      "another membership or amount")  # fmt: skip
        return _membership_answer(connection, program, club, member.id, context.now), False
    terms = club.payment
    assert terms is not None
    wallet = _points_paid(context, payment.points) if payment.points else None
    row = _current(context)
    renewing = row is not None and row.status == Status.ACTIVE.value
    start = row.paid_until if renewing and row is not None else context.now
    paid_until = terms.term.end(start)
    values = {
        "status": Status.ACTIVE.value, "paid_until": paid_until,
        "ends_at": terms.in_force_until(paid_until), "updated_at": context.now,
    }  # fmt: skip
    if not renewing:
        values.update(_new_membership(context, JoinBy.PAYMENT, terms))
    membership_id = records.save_membership(connection, row, values)
    if renewing and row is not None:
        records.settle_renewal(connection, membership_id, row.paid_until, "paid", context.now)
    records.record_event(
        connection, **_event(context, membership_id, "renew" if renewing else "join",
                             paid_until=paid_until, amount=payment.amount, points=payment.points,
                             payment_ref=payment.reference))  # fmt: skip
    if wallet is not None and payment.points:
        key = f"{program.calculator.program.code}:club:{club.code}:{payment.reference}"
        wallet.spend(key, payment.points, into=AccountCode.REDEEMED, reason=Reason.CLUB_FEE)
        wallet.flush(actor=context.actor, note=f"club {club.code}: membership fee")
    return _membership_answer(connection, program, club, member.id, context.now), True


def _points_paid(context: _Joining, points: int) -> Wallet:
    """The member's wallet (their accounts locked), when it holds the points."""
    program = context.program
    wallet = Wallet.open(context.connection, program.program_id, program.calculator.program,
                         int(context.member.id), context.now)  # fmt: skip
    available = wallet.balances[AccountCode.AVAILABLE]
    if available < points:
        digits = program.calculator.program.points.precision
        raise InsufficientPoints(
            f"the fee takes {format_minor(points, digits)} points; "
            f"{format_minor(max(available, 0), digits)} are available"
        )
    return wallet


def _current(context: _Joining) -> Row[Any] | None:
    """The member's membership of the club, locked; one whose time ran out but that the
    worker has not lapsed yet is lapsed first, so its history says so."""
    row = records.lock_membership(context.connection, int(context.member.id), context.club.code)
    if row is not None and _has_run_out(row, context.now):
        lapse(context.connection, row, context.now, actor="clubs")
        row = records.lock_membership(context.connection, int(context.member.id), context.club.code)
    return row


def _has_run_out(row: Row[Any], now: datetime) -> bool:
    return row.status == Status.ACTIVE.value and row.ends_at is not None and row.ends_at <= now


def _new_membership(context: _Joining, by: JoinBy, terms: Payment | None) -> dict[str, Any]:
    return {
        "program_id": context.program.program_id, "member_id": int(context.member.id),
        "club": context.club.code, "joined_by": by.value, "since": context.now,
        "auto_renew": bool(terms and terms.auto_renew), "actor": context.actor, "invite_id": None,
    }  # fmt: skip


def _event(context: _Joining, membership_id: int, action: str, **more: Any) -> dict[str, Any]:
    return {
        "program_id": context.program.program_id, "membership_id": membership_id,
        "member_id": int(context.member.id), "club": context.club.code, "action": action,
        "status": Status.ACTIVE.value, "actor": context.actor, "note": context.note,
        "at": context.now, **more,
    }  # fmt: skip


def _invited(context: _Joining, code: str) -> Answer:
    """A club joined by invitation: the code's use is taken (at most its limit, however
    many members race for the last), and the membership runs until the member leaves."""
    connection, program, club = context.connection, context.program, context.club
    invite = records.invite_by_code(connection, program.program_id, normalise_invite(code))
    if invite is None or invite.club != club.code:
        _refuse("invite", f"{show(code)} is no invite code of club {club.code!r}")
    assert invite is not None
    row = _current(context)
    if row is not None and row.status == Status.ACTIVE.value:
        raise Conflict(f"the member is in club {club.code!r} already")
    if not records.take_invite_use(connection, int(invite.id), context.now):
        expired = invite.expires_at is not None and invite.expires_at <= context.now
        why = "has expired" if expired else f"has been used its {invite.max_uses} time(s)"
        raise Conflict(f"invite code {show(code)} {why}")
    values = {**_new_membership(context, JoinBy.INVITATION, None), "invite_id": int(invite.id),
              "status": Status.ACTIVE.value, "paid_until": None, "ends_at": None,
              "updated_at": context.now}  # fmt: skip
    membership_id = records.save_membership(connection, row, values)
    records.record_event(connection, **_event(context, membership_id, "join",
                                            invite_id=int(invite.id)))  # fmt: skip
    return _membership_answer(connection, program, club, context.member.id, context.now), True


# — leaving —


def leave_club(
    engine: Engine, program_code: str, member_ref: str, club_code: str, body: object, *,
    actor: str, now: datetime, idempotency_key: str | None = None,
    after: AfterWrite | None = None,
) -> Answer:  # fmt: skip
    """The member leaves the club now (`{note}` optional): the membership ends, an
    automatic renewal stops, nothing paid is given back. Leaving again changes nothing."""

    def attempt(connection: Connection) -> Answer:
        program = load_program(connection, program_code)
        club = _club(_settings(program, program_code), club_code)
        reader = _reader(body, LEAVE_KEYS)
        note = reader.text("note", max_length=MAX_NOTE, multiline=True)
        _raise(reader)
        member = find_member(connection, program.program_id, member_ref)
        context = _Joining(connection, program, club, member, actor, now, note)
        row = records.lock_membership(connection, int(member.id), club.code)
        if row is None:
            raise NotFound(f"member {member_ref!r} is not in club {club.code!r}")
        if row.status == Status.LEFT.value:
            return _membership_answer(connection, program, club, member.id, now), False
        records.save_membership(
            connection,
            row,
            {"status": Status.LEFT.value, "ends_at": now, "auto_renew": False, "updated_at": now},
        )
        records.settle_renewal(connection, int(row.id), None, "cancelled", now)
        records.record_event(connection, **_event(context, int(row.id), "leave",
                                                status=Status.LEFT.value,
                                                paid_until=row.paid_until))  # fmt: skip
        return _membership_answer(connection, program, club, member.id, now), True

    request = {"member": member_ref, "club": club_code, "body": body}
    return idempotent(engine, program_code, idempotency_key, "club.leave", request, now,
                      followed(attempt, after))  # fmt: skip


# — the worker —


def lapse(connection: Connection, row: Row[Any], now: datetime, *, actor: str) -> None:
    """A membership whose paid period and grace ended unpaid lapses (its expected renewal
    is missed)."""
    records.save_membership(connection, row, {"status": Status.LAPSED.value, "auto_renew": False,
                                            "updated_at": now})  # fmt: skip
    records.settle_renewal(connection, int(row.id), None, "missed", now)
    records.record_event(
        connection, program_id=row.program_id, membership_id=row.id, member_id=row.member_id,
        club=row.club, action="lapse", status=Status.LAPSED.value, paid_until=row.paid_until,
        actor=actor, at=now)  # fmt: skip


def due_work(engine: Engine, now: datetime, actor: str = "worker") -> dict[str, int]:
    """What fell due by `now` in every program running clubs: the expected payment of each
    automatic membership whose period ended (recorded once), and the lapse of each one
    whose period and grace ended unpaid. Run twice for one moment, the second does nothing."""
    done = {"clubs_renewals_due": 0, "clubs_lapsed": 0}
    with engine.connect() as connection:
        codes = connection.execute(records.program_codes()).scalars().all()
    for code in codes:
        with engine.connect() as connection:
            program = load_program(connection, code)
        settings = settings_of(program)
        if settings is None:
            continue
        done["clubs_renewals_due"] += _open_renewals(engine, program, settings, now, actor)
        done["clubs_lapsed"] += _lapse_due(engine, program, now, actor)
    return done


def _open_renewals(
    engine: Engine, program: LoadedProgram, settings: ClubSettings, now: datetime, actor: str
) -> int:
    def work(connection: Connection) -> int:
        opened = 0
        for row in records.renewals_due(connection, program.program_id, now):
            club = settings.clubs.get(row.club)
            if club is None or club.payment is None:
                continue  # the club left the program: its members lapse at their end
            records.open_renewal(connection, program.program_id, int(row.id), row.paid_until,
                               club.payment.fee, now)  # fmt: skip
            records.record_event(
                connection, program_id=program.program_id, membership_id=row.id,
                member_id=row.member_id, club=row.club, action="renewal_due",
                status=Status.ACTIVE.value, paid_until=row.paid_until, amount=club.payment.fee,
                actor=actor, at=now)  # fmt: skip
            opened += 1
        return opened

    return retrying(engine, work)


def _lapse_due(engine: Engine, program: LoadedProgram, now: datetime, actor: str) -> int:
    with engine.connect() as connection:
        due = records.lapses_due(connection, program.program_id, now)

    def one(membership_id: int) -> Callable[[Connection], int]:
        def work(connection: Connection) -> int:
            row = records.lock_membership_by_id(connection, membership_id)
            if row is None or not _has_run_out(row, now):
                return 0  # paid or lapsed meanwhile
            lapse(connection, row, now, actor=actor)
            return 1

        return work

    return sum(retrying(engine, one(membership_id)) for membership_id in due)


# — invites —


def create_invite(
    engine: Engine, program_code: str, club_code: str, body: object, *, actor: str,
    now: datetime, idempotency_key: str | None = None, after: AfterWrite | None = None,
) -> Answer:  # fmt: skip
    """An invite code of a club joined by invitation: `{uses, valid_until?, code?, note?}`
    — at most `uses` members join by it, until the end of `valid_until` (a date, the
    program's time zone). Without `code` one is made (10 characters, no look-alikes)."""

    def attempt(connection: Connection) -> Answer:
        program = load_program(connection, program_code)
        club = _club(_settings(program, program_code), club_code)
        if club.join_by is not JoinBy.INVITATION:
            raise Conflict(f"club {club.code!r} is joined by payment: it has no invite codes")
        reader = _reader(body, INVITE_KEYS)
        uses = reader.integer("uses", required=True, minimum=1, maximum=MAX_INVITE_USES)
        last_day = reader.day("valid_until")
        wanted = reader.text("code", max_length=INVITE_CODE_LENGTH[1])
        note = reader.text("note", max_length=MAX_NOTE, multiline=True)
        if wanted is not None and not _is_invite_code(wanted):
            reader.report("code", f"{show(wanted)} is not an invite code (4–32 letters, "
                                  "digits and dashes)")  # fmt: skip
        _raise(reader)
        assert uses is not None
        code = normalise_invite(wanted) if wanted else new_invite_code()
        if records.invite_by_code(connection, program.program_id, code) is not None:
            raise Duplicate(f"invite code {code!r} exists already")
        zone = ZoneInfo(program.calculator.program.timezone)
        expires = (datetime.combine(last_day + timedelta(days=1), time(), zone).astimezone(UTC)
                   if last_day is not None else None)  # fmt: skip
        invite_id = records.add_invite(connection, program_id=program.program_id, club=club.code,
                                     code=code, max_uses=uses, used=0, expires_at=expires,
                                     note=note, created_by=actor, created_at=now)  # fmt: skip
        return invite_json(records.invite_by_id(connection, invite_id), now), True

    request = {"club": club_code, "body": body}
    return idempotent(engine, program_code, idempotency_key, "club.invite", request, now,
                      followed(attempt, after))  # fmt: skip


def _is_invite_code(text: str) -> bool:
    shortest, longest = INVITE_CODE_LENGTH
    plain = normalise_invite(text)
    return shortest <= len(text) <= longest and plain.isascii() and plain.isalnum()


def invite_json(row: Row[Any], now: datetime) -> dict[str, Any]:
    expired = row.expires_at is not None and row.expires_at <= now
    return {
        "id": str(row.id), "club": row.club, "code": row.code, "uses": row.max_uses,
        "used": row.used, "left": max(row.max_uses - row.used, 0),
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
        "status": "expired" if expired else "used_up" if row.used >= row.max_uses else "open",
        "note": row.note, "created_by": row.created_by, "created_at": row.created_at.isoformat(),
    }  # fmt: skip


def list_invites(
    engine: Engine, program_code: str, club_code: str | None, *, now: datetime
) -> dict[str, Any]:
    with reading(engine) as connection:
        program = load_program(connection, program_code)
        settings = _settings(program, program_code)
        if club_code is not None:
            _club(settings, club_code)
        rows = records.invites_of(connection, program.program_id, club_code)
        return {"items": [invite_json(row, now) for row in rows]}


# — reading —


def membership_json(
    row: Row[Any], club: Club | None, now: datetime, money_digits: int
) -> dict[str, Any]:
    """A membership as the API shows it; `status` as it is at `now` (a membership whose
    time ran out is `lapsed` before the worker gets to it)."""

    def moment(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    status = Status.LAPSED.value if _has_run_out(row, now) else row.status
    payment = club.payment if club is not None else None
    return {
        "club": row.club, "name": club.name if club is not None else row.club,
        "status": status, "joined_by": row.joined_by, "since": moment(row.since),
        "paid_until": moment(row.paid_until), "in_force_until": moment(row.ends_at),
        "auto_renew": bool(row.auto_renew), "made_by": row.actor,
        "fee": format_minor(payment.fee, money_digits) if payment is not None else None,
    }  # fmt: skip


def _membership_answer(
    connection: Connection, program: LoadedProgram, club: Club, member_id: int, now: datetime
) -> dict[str, Any]:
    row = records.membership_of(connection, int(member_id), club.code)
    assert row is not None
    answer = membership_json(row, club, now, program.calculator.program.money_digits)
    answer["member"] = str(member_id)
    return answer


def member_part(
    connection: Connection, program: LoadedProgram, member_id: int, now: datetime
) -> dict[str, Any] | None:
    """The member's clubs (every membership, ended ones too) and the flags the clubs in
    force give them (`privileges`), as the member's documents show them."""
    settings = settings_of(program)
    if settings is None:
        return None
    digits = program.calculator.program.money_digits
    rows = records.memberships_of(connection, member_id)
    memberships = [membership_json(row, settings.clubs.get(row.club), now, digits)
                   for row in rows]  # fmt: skip
    active = [m["club"] for m in memberships if m["status"] == Status.ACTIVE.value]
    return {"memberships": memberships, "privileges": list(settings.flags_of(active))}


def member_clubs(engine: Engine, program_code: str, member_ref: str, *, now: datetime) -> Any:
    with reading(engine) as connection:
        program = load_program(connection, program_code)
        _settings(program, program_code)
        member = find_member(connection, program.program_id, member_ref)
        return member_part(connection, program, int(member.id), now)


def membership_history(
    engine: Engine, program_code: str, member_ref: str, club_code: str, *, now: datetime
) -> dict[str, Any]:
    """One membership with its events, newest first: who or what made each change."""
    with reading(engine) as connection:
        program = load_program(connection, program_code)
        club = _club(_settings(program, program_code), club_code)
        member = find_member(connection, program.program_id, member_ref)
        row = records.membership_of(connection, int(member.id), club.code)
        if row is None:
            raise NotFound(f"member {member_ref!r} is not in club {club.code!r}")
        settings = program.calculator.program
        document = membership_json(row, club, now, settings.money_digits)
        document["events"] = [_event_json(event, settings.money_digits, settings.points.precision)
                              for event in records.events_of(connection, int(row.id))]  # fmt: skip
        return document


def _event_json(row: Row[Any], money_digits: int, point_digits: int) -> dict[str, Any]:
    return {
        "action": row.action, "status": row.status,
        "paid_until": row.paid_until.isoformat() if row.paid_until else None,
        "amount": format_minor(row.amount, money_digits) if row.amount is not None else None,
        "points": format_minor(row.points, point_digits) if row.points is not None else None,
        "payment_ref": row.payment_ref, "invite": str(row.invite_id) if row.invite_id else None,
        "actor": row.actor, "note": row.note, "at": row.at.isoformat(),
    }  # fmt: skip


def clubs_overview(engine: Engine, program_code: str, *, now: datetime) -> dict[str, Any]:
    """Each club with its terms and figures: members in force, joins, renewals, lapses,
    leavings over its life, and the renewals expected now; the program's invite codes."""
    with reading(engine) as connection:
        program = load_program(connection, program_code)
        settings = _settings(program, program_code)
        members = records.member_counts(connection, program.program_id, now)
        events = records.event_counts(connection, program.program_id)
        expected = records.expected_renewals(connection, program.program_id)
        invites = records.invites_of(connection, program.program_id, None)
        digits = program.calculator.program.money_digits
        clubs = [_club_json(club, members, events, digits) for club in settings.clubs.values()]
        return {
            "clubs": clubs,
            "expected_renewals": [
                {"id": str(r.id), "club": r.club, "member": str(r.member_id), "card": r.card,
                 "due_at": r.due_at.isoformat(), "amount": format_minor(r.amount, digits),
                 "lapses_at": r.ends_at.isoformat() if r.ends_at else None}
                for r in expected
            ],
            "invites": [invite_json(row, now) for row in invites],
        }  # fmt: skip


def _club_json(
    club: Club, members: dict[str, int], events: dict[tuple[str, str], int], digits: int
) -> dict[str, Any]:
    terms = club.payment
    return {
        "code": club.code, "name": club.name, "join_by": club.join_by.value,
        "fee": format_minor(terms.fee, digits) if terms is not None else None,
        "auto_renew": bool(terms and terms.auto_renew),
        "members": members.get(club.code, 0),
        "joins": events.get((club.code, "join"), 0),
        "renewals": events.get((club.code, "renew"), 0),
        "lapses": events.get((club.code, "lapse"), 0),
        "leavings": events.get((club.code, "leave"), 0),
        "privileges": list(club.privileges.flags),
    }  # fmt: skip
