"""The source's side of an exchange: the saga hold → credit → confirm, or reverse.

1. **hold** (one transaction): the member's accounts are locked, the transaction id
   looked up (a repeat answers the saga as it stands; another body is
   `idempotency_conflict`), the pair's minimum and the member's running total for the
   day weighed, and the points moved `available → exchange.held` (`exchange.hold`, from
   the lots that burn first) with the saga's row, state `held`.
2. **credit** (the target's own transaction: `credits.receive_credit` for a program of
   this Kopilka, a signed HTTP call for an outside one).
3. **confirm** (one transaction): `exchange.held → exchange.clearing` for the points
   less the fee (`exchange.confirm`) and `exchange.held → exchange.fees` for the fee
   (`exchange.fee`); the saga `confirmed`, irrevocably. Or **reverse**: the credit was
   refused or never sent — `exchange.held → available` back to the lots it came from
   (`exchange.reverse`), the day's total given back, the saga `reversed` with its reason.

A repeat of a saga still `held` at a program of this Kopilka asks the target again (the
credit is idempotent there by the transaction id) and settles by its answer; one at an
outside program is left to the worker. A saga left `held` (the answer was lost,
the process died) is the worker's once its
time-out passed (`settle_due`): it asks the target for the transaction's state, confirms
what was credited, and otherwise tells the target to give it up — a credit asked later
is refused there — and then reverses. A target it can't reach leaves the saga held for
the next run: no point is created or lost. Confirm and reverse lock the saga's row and
act only on a `held` one, so a worker and a late answer never settle it twice.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.dialects import postgresql, sqlite

from kopilka.kernel.errors import (
    Conflict,
    IdempotencyConflict,
    InsufficientPoints,
    InvalidInput,
    NotFound,
    Problem,
)
from kopilka.kernel.ledger import AccountCode, AccountRef, Posting, Reason
from kopilka.kernel.money import format_minor, parse_decimal, to_minor
from kopilka.kernel.reading import MAX_TEXT, Reader
from kopilka.ledger.accounts import post
from kopilka.ledger.wallet import Wallet
from kopilka.mechanics.exchange import credits, remote
from kopilka.mechanics.exchange.model import (
    LocalSide,
    Pair,
    Refusal,
    RemoteSide,
    State,
    amounts_of,
    exchange_of,
)
from kopilka.mechanics.exchange.outcome import Heard, Outcome
from kopilka.mechanics.exchange.seam import reached
from kopilka.mechanics.exchange.tables import exchange_days, exchanges
from kopilka.members.handlers import find_member
from kopilka.platform.idempotency import fingerprint, retrying
from kopilka.platform.pages import newest_first
from kopilka.platform.tables import programs
from kopilka.programs.handlers import LoadedProgram, load_program

EXCHANGE_KEYS = ("transaction_id", "to_program", "to_member", "points")
TRANSACTION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")
PAGE = 50


class ExchangeRefused(Conflict):
    """An exchange the pair's terms refuse before anything is held (`refused_by`)."""

    title = "The exchange is refused"

    def __init__(self, detail: str, *, refused_by: str) -> None:
        super().__init__(detail)
        self.refused_by = refused_by


@dataclass(frozen=True, slots=True)
class ExchangeRequest:
    transaction_id: str
    to_program: str
    to_member: str
    points: int
    body_hash: str


# — reading —


def read_exchange(body: object, digits: int) -> ExchangeRequest:
    problems: list[Problem] = []
    reader = Reader(body, "", problems, EXCHANGE_KEYS)
    transaction_id = reader.text("transaction_id", required=True, pattern=TRANSACTION_ID,
                                 what="a transaction id (1 to 100 letters, digits, '.', "
                                      "'_', ':', '-')")  # fmt: skip
    to_program = reader.code("to_program")
    to_member = reader.text("to_member", required=True, max_length=MAX_TEXT)
    points = reader.minor("points", digits, unit="points", required=True)
    if points == 0:
        reader.report("points", "must be more than 0")
    if (problems or transaction_id is None or to_program is None or to_member is None
            or points is None):  # fmt: skip
        raise InvalidInput(
            problems
            or [Problem("", "an exchange needs transaction_id, to_program, to_member and points")]
        )
    return ExchangeRequest(transaction_id, to_program, to_member, points, fingerprint(body))


def ledger_key(program_code: str, transaction_id: str) -> str:
    digest = hashlib.sha256(transaction_id.encode()).hexdigest()[:40]
    return f"{program_code}:exchange:{digest}"


# — the saga —


def start_exchange(
    engine: Engine, program_code: str, member_ref: str, body: object, *, actor: str,
    now: datetime,
) -> tuple[dict[str, Any], bool]:  # fmt: skip
    """Exchange the member's points as `body` asks: hold, credit, confirm or reverse. The
    saga's answer as it stands, and whether it was made now (a repeat answers it)."""
    saga, is_new = retrying(engine, lambda connection: _hold(
        connection, program_code, member_ref, body, actor, now))  # fmt: skip
    if is_new:
        reached(program_code, "hold", saga.transaction_id)
    # new, or a repeat of one whose answer was lost — at an outside program a repeat could
    # race the first call, whose "never reached it" would then prove nothing: the worker's
    if saga.state == State.HELD.value and (is_new or not saga.is_remote):
        outcome = _ask_credit(engine, program_code, saga, now)
        if outcome.is_final:
            settle(engine, program_code, saga.id, outcome, now=now)
    return exchange_answer(engine, program_code, saga.id), is_new


def _hold(
    connection: Connection, program_code: str, member_ref: str, body: object, actor: str,
    now: datetime,
) -> tuple[Any, bool]:  # fmt: skip
    program = load_program(connection, program_code)
    settings = program.calculator.program
    request = read_exchange(body, settings.points.precision)
    member = find_member(connection, program.program_id, member_ref)
    wallet = Wallet.open(connection, program.program_id, settings, member.id, now)
    earlier = _saga(connection, program.program_id, request.transaction_id)
    if earlier is not None:
        if earlier.request_hash != request.body_hash or earlier.member_id != member.id:
            raise IdempotencyConflict(f"transaction_id {request.transaction_id!r} was sent "
                                      "with another body")  # fmt: skip
        return earlier, False
    if member.status != "active":
        raise Conflict(f"member {member_ref!r} is {member.status}")
    pair = _sending_pair(program, request.to_program)
    target_digits = _target_digits(connection, pair)
    amounts = amounts_of(pair, request.points, settings.points.precision, target_digits)
    _check_terms(pair, amounts.points, amounts.credit, settings.points.precision)
    if wallet.balances[AccountCode.AVAILABLE] < amounts.points:
        available = format_minor(max(wallet.balances[AccountCode.AVAILABLE], 0),
                                 settings.points.precision)  # fmt: skip
        raise InsufficientPoints(f"the member has {available} points available")
    day = now.astimezone(ZoneInfo(settings.timezone)).date()
    _count_day(connection, program.program_id, member.id, pair, day, amounts.points,
               settings.points.precision)  # fmt: skip
    key = ledger_key(program_code, request.transaction_id)
    lots = wallet.spend(f"{key}:hold", amounts.points, into=AccountCode.EXCHANGE_HELD,
                        reason=Reason.EXCHANGE_HOLD)  # fmt: skip
    wallet.flush(actor=actor, note=f"exchange {request.transaction_id} to {pair.other.name}")
    connection.execute(exchanges.insert().values(
        program_id=program.program_id, transaction_id=request.transaction_id,
        request_hash=request.body_hash, pair=pair.code, member_id=member.id,
        is_remote=pair.is_remote, to_program=pair.other.name, to_member=request.to_member,
        points=amounts.points, fee=amounts.fee, credit=amounts.credit, credited=None,
        target_digits=target_digits, lots=[list(use) for use in lots], ledger_key=key,
        state=State.HELD.value, reason=None, day=day, actor=actor, created_at=now,
        deadline=now + timedelta(minutes=pair.timeout_minutes), settled_at=None,
    ))  # fmt: skip
    return _saga(connection, program.program_id, request.transaction_id), True


def _sending_pair(program: LoadedProgram, to_program: str) -> Pair:
    settings = exchange_of(program.calculator.program)
    pair = settings.with_program(to_program) or settings.with_partner(to_program)
    if pair is None:
        raise InvalidInput([Problem("to_program", f"this program exchanges no points with "
                                                  f"{to_program!r}")])  # fmt: skip
    if not pair.sends:
        raise ExchangeRefused(f"the pair {pair.code!r} is closed to sending",
                              refused_by=Refusal.PAIR_CLOSED.value)  # fmt: skip
    return pair


def _target_digits(connection: Connection, pair: Pair) -> int:
    if isinstance(pair.other, RemoteSide):
        return pair.other.precision
    try:
        return load_program(connection, pair.other.program).calculator.program.points.precision
    except NotFound:
        raise ExchangeRefused(f"the pair {pair.code!r} names the program "
                              f"{pair.other.program!r}, which does not exist",
                              refused_by=Refusal.PAIR_CLOSED.value) from None  # fmt: skip


def _check_terms(pair: Pair, points: int, credit: int, digits: int) -> None:
    if points < pair.min_points:
        minimum = format_minor(pair.min_points, digits)
        raise InvalidInput([Problem("points", f"at least {minimum} points are exchanged "
                                              f"with {pair.other.name!r}")])  # fmt: skip
    if credit <= 0:
        raise InvalidInput([Problem("points", "after the fee, at the pair's rate, this is "
                                              "worth nothing at the target")])  # fmt: skip


def _count_day(
    connection: Connection, program_id: int, member_id: int, pair: Pair, day: date,
    points: int, digits: int,
) -> None:  # fmt: skip
    """Add the points to the member's total for the pair and day — its row made if
    missing and locked until commit, so two exchanges at once can't both pass the limit."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    connection.execute(
        dialect.insert(exchange_days)
        .values(member_id=member_id, pair=pair.code, day=day, program_id=program_id, points=0)
        .on_conflict_do_nothing(index_elements=["member_id", "pair", "day"])
    )  # fmt: skip
    where = (exchange_days.c.member_id == member_id, exchange_days.c.pair == pair.code,
             exchange_days.c.day == day)  # fmt: skip
    used = connection.execute(select(exchange_days.c.points).where(*where)
                              .with_for_update()).scalar_one()  # fmt: skip
    if pair.daily_limit is not None and used + points > pair.daily_limit:
        left = format_minor(max(pair.daily_limit - used, 0), digits)
        raise ExchangeRefused(f"the daily limit of {format_minor(pair.daily_limit, digits)} "
                              f"points with {pair.other.name!r} leaves {left} for today",
                              refused_by="daily_limit")  # fmt: skip
    connection.execute(update(exchange_days).where(*where)
                       .values(points=exchange_days.c.points + points))  # fmt: skip


def _saga(connection: Connection, program_id: int, transaction_id: str) -> Any:
    return connection.execute(
        select(exchanges).where(exchanges.c.program_id == program_id,
                                exchanges.c.transaction_id == transaction_id)
    ).one_or_none()  # fmt: skip


# — asking the target —


def _credit_body(program_code: str, saga: Any) -> dict[str, Any]:
    return {"transaction_id": saga.transaction_id, "member": saga.to_member,
            "points": format_minor(saga.credit, saga.target_digits),
            "from_member": f"{program_code}:{saga.member_id}"}  # fmt: skip


def _ask_credit(engine: Engine, program_code: str, saga: Any, now: datetime) -> Outcome:
    side = _side(engine, program_code, saga)
    if isinstance(side, RemoteSide):
        return remote.post_credit(side, _credit_body(program_code, saga))
    try:
        answer, _ = credits.receive_credit(engine, side.program, credits.local_source(
            program_code), _credit_body(program_code, saga), now=now)  # fmt: skip
    except NotFound as error:  # the target program is gone
        return Outcome(Heard.REFUSED, reason=f"{Refusal.PAIR_CLOSED.value}: {error.detail}")
    return _outcome_of(answer, saga.target_digits)


def _outcome_of(answer: dict[str, Any], digits: int) -> Outcome:
    if answer["state"] == "credited":
        return Outcome(Heard.CREDITED, points=_minor(answer["points"], digits))
    if answer["state"] == credits.UNKNOWN:
        return Outcome(Heard.NOT_FOUND)
    return Outcome(Heard.REFUSED, reason=answer.get("reason") or answer["state"])


def _minor(text: str, digits: int) -> int | None:
    number = parse_decimal(text)
    return None if number is None else to_minor(number, digits)


def _side(engine: Engine, program_code: str, saga: Any) -> LocalSide | RemoteSide:
    """The pair's other side as the program now names it (the saga's, if the pair is gone)."""
    with engine.connect() as connection:
        program = load_program(connection, program_code)
    pair = exchange_of(program.calculator.program).find(saga.pair)
    if pair is not None and pair.other.name == saga.to_program:
        return pair.other
    if saga.is_remote:  # the pair left the program: its URL and secret with it
        raise Conflict(f"the pair {saga.pair!r} is no longer in the program")
    return LocalSide(saga.to_program)


# — settling —


def settle(engine: Engine, program_code: str, saga_id: int, outcome: Outcome, *,
           now: datetime) -> str | None:  # fmt: skip
    """Confirm a credited saga or reverse a refused one (nothing for an unknown outcome);
    what was done, or None when the saga was no longer held."""
    if outcome.heard is Heard.CREDITED:
        if outcome.points is None:
            return None
        credited = outcome.points
        done = retrying(engine, lambda c: _confirm(c, saga_id, credited, now))
    elif outcome.heard in (Heard.REFUSED, Heard.UNSENT):
        reason = outcome.reason or Refusal.TIMED_OUT.value
        done = retrying(engine, lambda c: _reverse(c, program_code, saga_id, reason, now))
    else:
        return None
    if done is not None:
        reached(program_code, "settled", done)
        return "confirmed" if outcome.heard is Heard.CREDITED else "reversed"
    return None


def _locked_saga(connection: Connection, saga_id: int) -> Any:
    query = select(exchanges).where(exchanges.c.id == saga_id)
    if connection.dialect.name == "postgresql":
        query = query.with_for_update()
    return connection.execute(query).one()


def _confirm(connection: Connection, saga_id: int, credited: int, now: datetime) -> str | None:
    saga = _locked_saga(connection, saga_id)
    if saga.state != State.HELD.value:
        return None
    held = AccountRef.of_program(AccountCode.EXCHANGE_HELD)
    postings = [
        Posting(f"{saga.ledger_key}:confirm", held,
                AccountRef.of_program(AccountCode.EXCHANGE_CLEARING), saga.points - saga.fee,
                Reason.EXCHANGE_CONFIRM),
        Posting(f"{saga.ledger_key}:fee", held, AccountRef.of_program(AccountCode.EXCHANGE_FEES),
                saga.fee, Reason.EXCHANGE_FEE),
    ]  # fmt: skip
    post(connection, saga.program_id, [p for p in postings if p.amount > 0], actor="exchange",
         now=now, member_accounts={}, note=f"exchange {saga.transaction_id}")  # fmt: skip
    _mark(connection, saga_id, State.CONFIRMED, now, credited=credited)
    return str(saga.transaction_id)


def _reverse(
    connection: Connection, program_code: str, saga_id: int, reason: str, now: datetime
) -> str | None:
    program = load_program(connection, program_code)
    member_id = connection.execute(select(exchanges.c.member_id)
                                   .where(exchanges.c.id == saga_id)).scalar_one()  # fmt: skip
    wallet = Wallet.open(connection, program.program_id, program.calculator.program, member_id,
                         now)  # fmt: skip  # the member first, as every other writer of theirs
    saga = _locked_saga(connection, saga_id)
    if saga.state != State.HELD.value:
        return None
    wallet.give_back(f"{saga.ledger_key}:reverse", saga.points,
                     source=AccountRef.of_program(AccountCode.EXCHANGE_HELD),
                     reason=Reason.EXCHANGE_REVERSE,
                     uses=[(int(lot), int(points)) for lot, points in saga.lots])  # fmt: skip
    wallet.flush(actor="exchange", note=f"exchange {saga.transaction_id} reversed")
    connection.execute(
        update(exchange_days)
        .where(exchange_days.c.member_id == saga.member_id, exchange_days.c.pair == saga.pair,
               exchange_days.c.day == saga.day)
        .values(points=exchange_days.c.points - saga.points)
    )  # fmt: skip
    _mark(connection, saga_id, State.REVERSED, now, reason=reason[:MAX_TEXT])
    return str(saga.transaction_id)


def _mark(
    connection: Connection, saga_id: int, state: State, now: datetime, *,
    credited: int | None = None, reason: str | None = None,
) -> None:  # fmt: skip
    connection.execute(update(exchanges).where(exchanges.c.id == saga_id).values(
        state=state.value, credited=credited, reason=reason, settled_at=now))  # fmt: skip


# — the worker —


def settle_due(engine: Engine, *, now: datetime) -> dict[str, int]:
    """Resolve every saga still held past its time-out: confirm what the target credited,
    reverse what it did not (after telling it to give the transaction up). A target that
    can't be reached leaves its saga held for the next run."""
    with engine.connect() as connection:
        due = connection.execute(
            select(exchanges.c.id, exchanges.c.program_id)
            .where(exchanges.c.state == State.HELD.value, exchanges.c.deadline <= now)
            .order_by(exchanges.c.id)
        ).all()  # fmt: skip
        codes = _program_codes(connection, {row.program_id for row in due})
    counts = {"exchange.confirmed": 0, "exchange.reversed": 0, "exchange.unresolved": 0}
    for row in due:
        try:
            done = resolve(engine, codes[row.program_id], row.id, now=now)
        except Conflict:  # its pair left the program: support settles it by hand
            done = None
        counts[f"exchange.{done or 'unresolved'}"] += 1
    return {name: count for name, count in counts.items() if count}


def resolve(engine: Engine, program_code: str, saga_id: int, *, now: datetime) -> str | None:
    """Ask the target what became of a held saga and settle it by the answer."""
    with engine.connect() as connection:
        saga = connection.execute(select(exchanges).where(exchanges.c.id == saga_id)).one()
    if saga.state != State.HELD.value:
        return None
    side = _side(engine, program_code, saga)
    outcome = _status(engine, program_code, side, saga.transaction_id, saga.target_digits)
    if outcome.heard is Heard.NOT_FOUND:
        outcome = _give_up(engine, program_code, side, saga.transaction_id, saga.target_digits,
                           now)  # fmt: skip
    if outcome.heard is Heard.REFUSED and not outcome.reason:
        outcome = Outcome(Heard.REFUSED, reason=Refusal.TIMED_OUT.value)
    return settle(engine, program_code, saga_id, outcome, now=now)


def _status(engine: Engine, program_code: str, side: LocalSide | RemoteSide,
            transaction_id: str, digits: int) -> Outcome:  # fmt: skip
    if isinstance(side, RemoteSide):
        return remote.ask_status(side, transaction_id)
    answer = credits.credit_status(engine, side.program, credits.local_source(program_code),
                                   transaction_id)  # fmt: skip
    return _outcome_of(answer, digits)


def _give_up(engine: Engine, program_code: str, side: LocalSide | RemoteSide,
             transaction_id: str, digits: int, now: datetime) -> Outcome:  # fmt: skip
    if isinstance(side, RemoteSide):
        outcome = remote.give_up(side, transaction_id)
    else:
        answer = credits.give_up_credit(engine, side.program, credits.local_source(program_code),
                                        transaction_id, now=now)  # fmt: skip
        outcome = _outcome_of(answer, digits)
    if outcome.heard is Heard.REFUSED:
        return Outcome(Heard.REFUSED, reason=f"{Refusal.TIMED_OUT.value}: {outcome.reason}")
    return outcome


def _program_codes(connection: Connection, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = connection.execute(select(programs.c.id, programs.c.code)
                              .where(programs.c.id.in_(sorted(ids)))).all()  # fmt: skip
    return {row.id: row.code for row in rows}


# — reading —


def exchange_answer(engine: Engine, program_code: str, saga_id: int) -> dict[str, Any]:
    with engine.connect() as connection:
        program = load_program(connection, program_code)
        saga = connection.execute(select(exchanges).where(exchanges.c.id == saga_id)).one()
    return saga_item(saga, program.calculator.program.points.precision)


def saga_item(saga: Any, digits: int) -> dict[str, Any]:
    credited = saga.credited
    return {
        "transaction_id": saga.transaction_id,
        "state": saga.state,
        "pair": saga.pair,
        "member": str(saga.member_id),
        "to_program": saga.to_program,
        "to_member": saga.to_member,
        "points": format_minor(saga.points, digits),
        "fee": format_minor(saga.fee, digits),
        "net": format_minor(saga.points - saga.fee, digits),
        "credit": format_minor(saga.credit, saga.target_digits),
        "credited": format_minor(credited, saga.target_digits) if credited is not None else None,
        "reason": saga.reason,
        "created_at": saga.created_at.isoformat(),
        "deadline": saga.deadline.isoformat(),
        "settled_at": saga.settled_at.isoformat() if saga.settled_at else None,
    }


def member_exchange(
    engine: Engine, program_code: str, member_ref: str, transaction_id: str
) -> dict[str, Any]:
    """One exchange of the member's, by its transaction id."""
    with engine.connect() as connection:
        program = load_program(connection, program_code)
        member = find_member(connection, program.program_id, member_ref)
        saga = _saga(connection, program.program_id, transaction_id)
    if saga is None or saga.member_id != member.id:
        raise NotFound(f"exchange {transaction_id!r} does not exist")
    return saga_item(saga, program.calculator.program.points.precision)


def member_exchanges(
    engine: Engine, program_code: str, member_ref: str, *, before: int | None = None,
    limit: int = PAGE,
) -> dict[str, Any]:  # fmt: skip
    """The member's exchanges, newest first (`{items, next}`)."""
    with engine.connect() as connection:
        program = load_program(connection, program_code)
        member = find_member(connection, program.program_id, member_ref)
        query = select(exchanges).where(exchanges.c.program_id == program.program_id,
                                        exchanges.c.member_id == member.id)  # fmt: skip
        digits = program.calculator.program.points.precision
        return newest_first(connection, query, exchanges.c.id, before=before, limit=limit,
                            item=lambda row: saga_item(row, digits))  # fmt: skip
