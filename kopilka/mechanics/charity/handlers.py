"""The charity's use cases (docs/charity.md): a member's donation, their choice of a
charity for round-ups, what a purchase rounds up, and the report per charity and period.

A donation is a ledger transfer from the member's available points to the charity's own
account (owned by "charity:<code>", reason `charity.donation`), taken from the lots that
burn first as a redemption is; a round-up is planned on the purchase's wallet and goes
out in the purchase's own write (reason `charity.round_up`). Each gift is also a row of
`charity_donations`, which the report groups and `verify` sums against the accounts.
"""

from __future__ import annotations

import io
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine

from kopilka.kernel.errors import Conflict, InsufficientPoints, InvalidInput, NotFound, Problem
from kopilka.kernel.ledger import AccountCode, Reason
from kopilka.kernel.money import format_minor
from kopilka.kernel.periods import CalendarPeriod, period_start
from kopilka.kernel.reading import Reader, parse_date
from kopilka.ledger.wallet import Wallet
from kopilka.mechanics.charity import tables as store
from kopilka.mechanics.charity.model import Charity, CharitySettings, money_value, round_up
from kopilka.mechanics.charity.section import charity_of
from kopilka.members.handlers import find_member
from kopilka.members.standing import local_day
from kopilka.platform.csv_export import csv_writer
from kopilka.platform.db import reading
from kopilka.platform.idempotency import Answer, idempotent, retrying
from kopilka.programs.handlers import LoadedProgram, load_program

DONATION = "donation"
ROUND_UP = "round_up"
MAX_REPORT_DAYS = 3 * 366 + 1  # a report spans at most about three years


def settings_of(program: LoadedProgram) -> CharitySettings | None:
    return charity_of(program.calculator.program)


def _settings(program: LoadedProgram, program_code: str) -> CharitySettings:
    settings = settings_of(program)
    if settings is None:
        raise NotFound(f"program {program_code!r} lists no charities")
    return settings


def _digits(program: LoadedProgram) -> int:
    return program.calculator.program.points.precision


def _today(program: LoadedProgram, now: datetime) -> date:
    return local_day(now, program.calculator.program.timezone)


def open_charity(
    settings: CharitySettings, program: LoadedProgram, code: str, now: datetime, *, loc: str
) -> Charity:
    """The charity `code` names, taking gifts today; refused by name when the program does
    not list it (`422`, at `loc`) or it took its last gift already (`409`)."""
    charity = settings.charity(code)
    if charity is None:
        known = ", ".join(one.code for one in settings.charities)
        raise InvalidInput([Problem(loc, f"{code!r} is not a charity of the program ({known})")])
    if not charity.is_open_on(_today(program, now)):
        raise Conflict(f"charity {code!r} took its last donations on {charity.until}")
    return charity


# — a donation —


@dataclass(frozen=True)
class DonationAsked:
    charity: str
    points: int  # point minor units


def read_donation(body: object, digits: int) -> DonationAsked:
    problems: list[Problem] = []
    reader = Reader(body, "", problems, ("charity", "points"))
    charity = reader.text("charity", required=True, what="a charity's code")
    points = reader.minor("points", digits, unit="points", required=True)
    if points == 0:
        reader.report("points", "must be more than 0")
    if problems or charity is None or points is None:
        raise InvalidInput(problems)
    return DonationAsked(charity, points)


def donate(
    engine: Engine, program_code: str, member_ref: str, body: object, *, actor: str,
    now: datetime, idempotency_key: str | None = None,
) -> Answer:  # fmt: skip
    """The member gives `points` of their available points to `charity`: one transfer,
    taken from the lots that burn first. With an `Idempotency-Key` a repeat answers the
    first donation and gives nothing more."""

    def attempt(connection: Connection) -> Answer:
        program = load_program(connection, program_code)
        settings = _settings(program, program_code)
        asked = read_donation(body, _digits(program))
        member = find_member(connection, program.program_id, member_ref)
        if member.status != "active":
            raise Conflict(f"member {member_ref!r} is {member.status}: they give nothing")
        charity = open_charity(settings, program, asked.charity, now, loc="charity")
        account = store.open_account(connection, program.program_id, charity)
        wallet = Wallet.open(connection, program.program_id, program.calculator.program,
                             int(member.id), now)  # fmt: skip
        available = wallet.balances[AccountCode.AVAILABLE]
        if available < asked.points:
            digits = _digits(program)
            raise InsufficientPoints(
                f"the donation takes {format_minor(asked.points, digits)} points; "
                f"{format_minor(max(available, 0), digits)} are available")  # fmt: skip
        key = f"{program.calculator.program.code}:charity:{charity.code}:{secrets.token_hex(12)}"
        wallet.spend(key, asked.points, into=account, reason=Reason.CHARITY_DONATION)
        wallet.flush(actor=actor, note=f"charity {charity.code}")
        donation_id = store.record_donation(
            connection, program_id=program.program_id, member_id=int(member.id),
            charity=charity.code, kind=DONATION, points=asked.points, purchase_id=None,
            transfer_key=key, day=_today(program, now), actor=actor, created_at=now)  # fmt: skip
        digits = _digits(program)
        answer = {
            "donation_id": str(donation_id),
            "member": str(member.id),
            "charity": charity.code,
            "points": format_minor(asked.points, digits),
            "balance": {"available": format_minor(wallet.balances[AccountCode.AVAILABLE],
                                                  digits)},
            "created_at": now.isoformat(),
        }  # fmt: skip
        return answer, True

    request = {"member": member_ref, "body": body}
    return idempotent(engine, program_code, idempotency_key, "charity.donation", request, now,
                      attempt)  # fmt: skip


# — the member's choice of a charity for round-ups —


def choose(
    engine: Engine, program_code: str, member_ref: str, body: object, *, now: datetime
) -> dict[str, Any]:
    """From now on the member's purchases round up to `charity` (the program must round
    up); choosing it again changes nothing."""

    def attempt(connection: Connection) -> dict[str, Any]:
        program = load_program(connection, program_code)
        settings = _settings(program, program_code)
        problems: list[Problem] = []
        code = Reader(body, "", problems, ("charity",)).text(
            "charity", required=True, what="a charity's code")  # fmt: skip
        if problems or code is None:
            raise InvalidInput(problems)
        member = find_member(connection, program.program_id, member_ref)
        if member.status != "active":
            raise Conflict(f"member {member_ref!r} is {member.status}")
        if settings.round_up_step is None:
            raise Conflict(f"program {program_code!r} does not round purchases up")
        charity = open_charity(settings, program, code, now, loc="charity")
        store.open_account(connection, program.program_id, charity)
        store.save_choice(connection, program.program_id, int(member.id), charity.code, now)
        return member_part(connection, program, int(member.id), now)

    return retrying(engine, attempt)


def stop(engine: Engine, program_code: str, member_ref: str, *, now: datetime) -> dict[str, Any]:
    """The member's purchases round up no more (nothing when they had no charity)."""

    def attempt(connection: Connection) -> dict[str, Any]:
        program = load_program(connection, program_code)
        _settings(program, program_code)
        member = find_member(connection, program.program_id, member_ref)
        store.drop_choice(connection, int(member.id))
        return member_part(connection, program, int(member.id), now)

    return retrying(engine, attempt)


def read_member(
    engine: Engine, program_code: str, member_ref: str, *, now: datetime
) -> dict[str, Any]:
    with reading(engine) as connection:
        program = load_program(connection, program_code)
        _settings(program, program_code)
        member = find_member(connection, program.program_id, member_ref)
        return member_part(connection, program, int(member.id), now)


def member_part(
    connection: Connection, program: LoadedProgram, member_id: int, now: datetime
) -> dict[str, Any]:
    """The member's charity for round-ups (if any), the program's round-up step, what they
    gave to each charity, and the charities open today."""
    settings = settings_of(program)
    assert settings is not None
    digits = _digits(program)
    chosen = store.choice_of(connection, member_id)
    today = _today(program, now)
    given = store.member_given(connection, member_id)
    step = settings.round_up_step
    return {
        "round_up": chosen.charity if chosen is not None else None,
        "round_up_step": format_minor(step, digits) if step is not None else None,
        "given": [{"charity": code, "points": format_minor(points, digits)}
                  for code, points in sorted(given.items())],
        "charities": [charity_json(one, today) for one in settings.charities],
    }  # fmt: skip


def program_charities(engine: Engine, program_code: str, *, now: datetime) -> list[dict[str, Any]]:
    """The charities the program lists, each with whether it takes gifts today."""
    with reading(engine) as connection:
        program = load_program(connection, program_code)
    settings = settings_of(program)
    today = _today(program, now)
    return [charity_json(one, today) for one in settings.charities] if settings else []


def charity_json(charity: Charity, today: date) -> dict[str, Any]:
    return {
        "code": charity.code,
        "name": charity.name,
        "description": charity.description,
        "link": charity.link,
        "until": charity.until.isoformat() if charity.until else None,
        "open": charity.is_open_on(today),
    }


# — a purchase's round-up —


@dataclass(frozen=True)
class RoundUp:
    charity: Charity
    points: int  # point minor units


def round_up_of(
    program: LoadedProgram, chosen: str | None, accrued: int, now: datetime
) -> RoundUp | None:
    """What a purchase accruing `accrued` points gives to the member's chosen charity:
    None when the program does not round up, the member chose none, the charity is gone
    from the program or closed, or the accrual is a whole number of steps."""
    settings = settings_of(program)
    if settings is None or settings.round_up_step is None or chosen is None:
        return None
    charity = settings.charity(chosen)
    if charity is None or not charity.is_open_on(_today(program, now)):
        return None
    points = round_up(accrued, settings.round_up_step)
    return RoundUp(charity, points) if points else None


def round_up_row(program: LoadedProgram, member_id: int, given: RoundUp, *, actor: str,
                 now: datetime) -> dict[str, Any]:  # fmt: skip
    """A round-up's row (its `purchase_id` filled in when the purchase is written)."""
    return {"program_id": program.program_id, "member_id": member_id,
            "charity": given.charity.code, "kind": ROUND_UP, "points": given.points,
            "transfer_key": None, "day": _today(program, now), "actor": actor,
            "created_at": now}  # fmt: skip


def record_round_up(
    connection: Connection,
    program: LoadedProgram,
    member_id: int,
    purchase_id: int,
    given: RoundUp,
    *,
    actor: str,
    now: datetime,
) -> None:
    """A held purchase's round-up, made at its confirm."""
    row = round_up_row(program, member_id, given, actor=actor, now=now)
    store.record_donation(connection, **{**row, "purchase_id": purchase_id})


def round_up_json(given: RoundUp, digits: int, *, status: str | None = None) -> dict[str, Any]:
    answer = {"charity": given.charity.code, "points": format_minor(given.points, digits)}
    if status is not None:
        answer["status"] = status
    return answer


# — the report —


@dataclass
class _Figures:
    donations: int = 0
    round_ups: int = 0
    points: int = 0
    round_up_points: int = 0
    members: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class ReportAsked:
    period: CalendarPeriod
    first: date
    last: date


def read_report_query(
    period: str | None, first: str | None, last: str | None, today: date
) -> ReportAsked:
    """`period` (default month), `from` (default the first day of this year) and `until`
    (default today), each named when it is wrong."""
    problems: list[Problem] = []
    chosen = next((p for p in CalendarPeriod if p.value == (period or "month")), None)
    if chosen is None:
        options = "|".join(p.value for p in CalendarPeriod)
        problems.append(Problem("period", f"{period!r} is not one of {options}"))
    start = parse_date(first) if first is not None else date(today.year, 1, 1)
    end = parse_date(last) if last is not None else today
    if start is None:
        problems.append(Problem("from", f"{first!r} is not a date (YYYY-MM-DD)"))
    if end is None:
        problems.append(Problem("until", f"{last!r} is not a date (YYYY-MM-DD)"))
    if start is not None and end is not None:
        if end < start:
            problems.append(Problem("until", f"{end} is before from ({start})"))
        elif (end - start).days >= MAX_REPORT_DAYS:
            problems.append(Problem("until", f"a report spans at most {MAX_REPORT_DAYS} days"))
    if problems or chosen is None or start is None or end is None:
        raise InvalidInput(problems)
    return ReportAsked(chosen, start, end)


def report(
    engine: Engine, program_code: str, *, period: str | None = None, first: str | None = None,
    last: str | None = None, now: datetime,
) -> dict[str, Any]:  # fmt: skip
    """Each charity's gifts per calendar period (in the program's time zone): donations and
    round-ups counted, their points, the members who gave, and the points' money value at
    the program's point value (converted once per figure, half up)."""
    with reading(engine) as connection:
        program = load_program(connection, program_code)
        settings = _settings(program, program_code)
        asked = read_report_query(period, first, last, _today(program, now))
        rows = store.donations_by_day(connection, program.program_id, asked.first, asked.last)
    return _report_json(program, settings, asked, rows)


def _report_json(program: LoadedProgram, settings: CharitySettings, asked: ReportAsked,
                 rows: Sequence[Any]) -> dict[str, Any]:  # fmt: skip
    zone = program.calculator.program.timezone
    found: dict[tuple[date, str], _Figures] = {}
    totals: dict[str, _Figures] = {}
    for row in rows:
        start = _period_of(asked.period, row.day, zone)
        for figures in (found.setdefault((start, row.charity), _Figures()),
                        totals.setdefault(row.charity, _Figures())):  # fmt: skip
            _add(figures, row)
    names = {one.code: one.name for one in settings.charities}
    return {
        "period": asked.period.value,
        "from": asked.first.isoformat(),
        "until": asked.last.isoformat(),
        "items": [{"period_start": start.isoformat(), **_figures_json(program, charity, names, f)}
                  for (start, charity), f in sorted(found.items())],
        "totals": [_figures_json(program, charity, names, f)
                   for charity, f in sorted(totals.items())],
    }  # fmt: skip


def _add(figures: _Figures, row: Any) -> None:
    points, n = int(row.points), int(row.n)
    figures.points += points
    figures.members.add(int(row.member_id))
    if row.kind == ROUND_UP:
        figures.round_ups += n
        figures.round_up_points += points
    else:
        figures.donations += n


def _period_of(period: CalendarPeriod, day: date, zone: str) -> date:
    """The first day of the period `day` falls in (noon: a day's middle is in that day in
    every zone)."""
    moment = datetime.combine(day, time(12), tzinfo=ZoneInfo(zone)).astimezone(UTC)
    return local_day(period_start(period, moment, zone), zone)


def _figures_json(program: LoadedProgram, charity: str, names: dict[str, str],
                  figures: _Figures) -> dict[str, Any]:  # fmt: skip
    settings = program.calculator.program
    digits, money_digits = settings.points.precision, settings.money_digits
    money = money_value(figures.points, digits, settings.points.value, money_digits)
    return {
        "charity": charity,
        "name": names.get(charity),  # None: no longer listed by the program
        "donations": figures.donations,
        "round_ups": figures.round_ups,
        "members": len(figures.members),
        "points": format_minor(figures.points, digits),
        "round_up_points": format_minor(figures.round_up_points, digits),
        "money": format_minor(money, money_digits),
    }


REPORT_COLUMNS = ("period_start", "charity", "name", "donations", "round_ups", "members",
                  "points", "round_up_points", "money")  # fmt: skip


def report_csv(
    engine: Engine,
    program_code: str,
    *,
    period: str | None = None,
    first: str | None = None,
    last: str | None = None,
    now: datetime,
) -> str:
    """The report's items as CSV (a header, then a line per charity and period), every
    cell safe to open in a spreadsheet."""
    shown = report(engine, program_code, period=period, first=first, last=last, now=now)
    out = io.StringIO()
    writer = csv_writer(out)
    writer.writerow(REPORT_COLUMNS)
    for item in shown["items"]:
        writer.writerow(item[column] for column in REPORT_COLUMNS)
    return out.getvalue()
