"""Points for actions: a report credited exactly once, or refused by name; what a member
was given; the catalogue's figures.

A report is one retried transaction (`idempotent`): the member's accounts are locked
(`Wallet.open`), then the report's external id is looked up — a repeat answers the first
answer, another body under the same id is `idempotency_conflict` — then the running
counts of the member for the action (ever, and in the report's period) are made if
missing and locked, the verdict weighed against them (`model.judge`), and the report
recorded. A credit raises the counts and moves the points through the ledger under the
transfer key `<program>:action:<action>:<hash of the external id>`; a refusal is
recorded too (so its repeat is refused alike, and support sees it) and only then
raised, after the commit.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from kopilka.kernel.errors import (
    Conflict,
    Forbidden,
    IdempotencyConflict,
    InvalidInput,
    NotFound,
    Problem,
)
from kopilka.kernel.ledger import AccountCode, Reason
from kopilka.kernel.money import format_minor
from kopilka.kernel.periods import period_start
from kopilka.kernel.reading import MAX_TEXT, Reader, show
from kopilka.ledger.wallet import Wallet
from kopilka.mechanics.actions.model import (
    EVER,
    Action,
    Counts,
    Refusal,
    Reporter,
    actions_of,
    judge,
    period_key,
)
from kopilka.mechanics.actions.signing import secrets_in
from kopilka.mechanics.actions.tables import action_counts, action_reports
from kopilka.members.handlers import find_member
from kopilka.platform.idempotency import fingerprint, idempotent
from kopilka.platform.pages import newest_first
from kopilka.programs.handlers import LoadedProgram, load_program

REPORT_KEYS = ("member", "external_id", "occurred_at")
PAGE = 50
FUTURE_SLACK = timedelta(minutes=5)  # a reporter's clock may run this far ahead of ours
_ISO_MOMENT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?"
    r"(Z|[+-][0-9]{2}:?[0-9]{2})?"
)  # ASCII digits only: fromisoformat alone would take other scripts' digits


class ActionRefused(Conflict):
    """A report the action gives no points for: a limit or the validity window stopped
    it. `answer` is the recorded refusal (the API adds it to the problem document)."""

    title = "The action gives no points for this report"

    def __init__(self, detail: str, *, answer: dict[str, Any]) -> None:
        super().__init__(detail)
        self.answer = answer


@dataclass(frozen=True, slots=True)
class Report:
    """A report's body, read and checked."""

    member: str
    external_id: str
    occurred_at: datetime | None

    def fingerprint(self) -> str:
        """Its identity for repeats: the same member reference, id and moment."""
        moment = self.occurred_at.astimezone(UTC).isoformat() if self.occurred_at else None
        return fingerprint({"member": self.member, "external_id": self.external_id,
                            "occurred_at": moment})  # fmt: skip


@dataclass(frozen=True, slots=True)
class Reporting:
    """Who sends a report: a key (`key:<id>`, at a pos key's location) or a callback."""

    by: Reporter
    actor: str
    location: str | None = None
    shows_balance: bool = True  # an outside service is not told the member's balance


# — reading a report —


def read_report(body: object, program: LoadedProgram, now: datetime) -> Report:
    """The report in `body`, or every problem with it, named by field."""
    problems: list[Problem] = []
    reader = Reader(body, "", problems, REPORT_KEYS)
    member = reader.text("member", required=True)
    external_id = reader.text("external_id", required=True, max_length=MAX_TEXT)
    occurred_at = _moment(reader, program.calculator.program.timezone, now)
    if problems or member is None or external_id is None:
        raise InvalidInput(problems or [Problem("", "a report needs member and external_id")])
    return Report(member, external_id, occurred_at)


def _moment(reader: Reader, timezone: str, now: datetime) -> datetime | None:
    raw = reader.raw("occurred_at")
    if raw is None:
        return None
    moment = None
    if isinstance(raw, str) and _ISO_MOMENT.fullmatch(raw):
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            moment = None
    if moment is None:
        reader.report("occurred_at", f"{show(raw)} is not an ISO 8601 time "
                                     "(2026-12-03T16:30:00+03:00)")  # fmt: skip
        return None
    if moment.tzinfo is None:  # a time without offset is the program's local time
        moment = moment.replace(tzinfo=ZoneInfo(timezone))
    if moment > now + FUTURE_SLACK:
        reader.report("occurred_at", f"{show(raw)} is in the future")
        return None
    return moment


# — reporting —


def report_action(
    engine: Engine, program_code: str, action_code: str, body: object, *,
    reporting: Reporting, now: datetime, idempotency_key: str | None = None,
) -> tuple[dict[str, Any], bool]:  # fmt: skip
    """Credit the action's points for the report in `body`, once per external id (and
    per `Idempotency-Key`, when one is sent); the answer and whether it was made now. A
    refusal is recorded, then raised (`ActionRefused`), as is its repeat."""
    work = partial(_report, program_code=program_code, action_code=action_code, body=body,
                   reporting=reporting, now=now)  # fmt: skip
    request = {"action": action_code, "body": body}
    answer, is_new = idempotent(engine, program_code, idempotency_key, "action.report", request,
                                now, work)  # fmt: skip
    answer = _shown(answer, reporting)
    if answer["status"] == "refused":
        raise ActionRefused(str(answer["reason"]), answer=answer)
    return answer, is_new


def _shown(answer: dict[str, Any], reporting: Reporting) -> dict[str, Any]:
    if reporting.shows_balance:
        return answer
    return {key: value for key, value in answer.items() if key != "balance"}


def _report(
    connection: Connection, *, program_code: str, action_code: str, body: object,
    reporting: Reporting, now: datetime,
) -> tuple[dict[str, Any], bool]:  # fmt: skip
    program = load_program(connection, program_code)
    action = reportable_action(program, action_code, reporting.by)
    report = read_report(body, program, now)
    member = find_member(connection, program.program_id, report.member)
    wallet = Wallet.open(connection, program.program_id, program.calculator.program,
                         member.id, now)  # fmt: skip  # the member's reports, one at a time
    earlier = _earlier(connection, program.program_id, action.code, report.external_id)
    if earlier is not None:
        return _repeat(earlier, report)
    if member.status != "active":
        raise Conflict(f"member {report.member!r} is {member.status}")
    zone = program.calculator.program.timezone
    counts = _locked_counts(connection, program.program_id, member.id, action, now, zone)
    verdict = judge(action, now.astimezone(ZoneInfo(zone)).date(), counts)
    digits = program.calculator.program.points.precision
    answer: dict[str, Any] = {
        "action": action.code, "member": str(member.id), "external_id": report.external_id,
        "points": format_minor(action.points if verdict.is_credited else 0, digits),
        "status": "credited" if verdict.is_credited else "refused",
        "occurred_at": report.occurred_at.isoformat() if report.occurred_at else None,
        "received_at": now.isoformat(),
    }  # fmt: skip
    balance = None
    if verdict.is_credited:
        _raise_counts(connection, member.id, action, counts)
        wallet.accrue(transfer_key(program_code, action.code, report.external_id),
                      action.points, reason=Reason.MECHANIC)  # fmt: skip
        wallet.flush(actor=reporting.actor, note=f"action {action.code}")
        balance = wallet.balances[AccountCode.AVAILABLE]
        answer["balance"] = {"available": format_minor(balance, digits)}
    else:
        assert verdict.refused_by is not None
        answer["refused_by"] = verdict.refused_by.value
        answer["reason"] = (f"action {action.code!r} gives member {member.id} no points: "
                            f"{verdict.message}")  # fmt: skip
    connection.execute(action_reports.insert().values(
        program_id=program.program_id, member_id=member.id, action=action.code,
        external_id=report.external_id, request_hash=report.fingerprint(),
        status=answer["status"], points=action.points if verdict.is_credited else 0,
        refused_by=answer.get("refused_by"), balance=balance, reported_by=reporting.actor,
        location=reporting.location, occurred_at=report.occurred_at, received_at=now,
        answer=answer,
    ))  # fmt: skip
    return answer, True


def reportable_action(program: LoadedProgram, code: str, by: Reporter) -> Action:
    """The program's action `code`, if `by` may report it."""
    action = actions_of(program.calculator.program).find(code)
    if action is None:
        raise NotFound(f"action {code!r} does not exist")
    if not action.is_reported_by(by):
        raise Forbidden(f"action {code!r} is not reported by {by.value}")
    return action


def transfer_key(program_code: str, action_code: str, external_id: str) -> str:
    """The ledger's idempotency id of a report's credit: the external id hashed, so the
    key fits its column whatever the id holds."""
    digest = hashlib.sha256(external_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{program_code}:action:{action_code}:{digest}"


def _earlier(connection: Connection, program_id: int, action: str, external_id: str) -> Any:
    return connection.execute(
        select(action_reports.c.request_hash, action_reports.c.answer, action_reports.c.status)
        .where(action_reports.c.program_id == program_id, action_reports.c.action == action,
               action_reports.c.external_id == external_id)
    ).one_or_none()  # fmt: skip


def _repeat(earlier: Any, report: Report) -> tuple[dict[str, Any], bool]:
    if earlier.request_hash != report.fingerprint():
        raise IdempotencyConflict(f"external_id {report.external_id!r} was reported with "
                                  "another body")  # fmt: skip
    return dict(earlier.answer), False


# — the running counts —


def _locked_counts(
    connection: Connection, program_id: int, member_id: int, action: Action, now: datetime,
    zone: str,
) -> Counts:  # fmt: skip
    """The member's counts for the action, ever and in `now`'s period, their rows made if
    missing and locked until commit: a concurrent report waits here for this one."""
    first_day: date | None = None
    keys = [EVER]
    if action.per_period is not None:
        start = period_start(action.per_period.period, now, zone)
        first_day = start.astimezone(ZoneInfo(zone)).date()
        keys.append(period_key(action.per_period.period, first_day))
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    connection.execute(
        dialect.insert(action_counts)
        .values([{"member_id": member_id, "action": action.code, "period": key,
                  "program_id": program_id, "count": 0, "points": 0} for key in keys])
        .on_conflict_do_nothing(index_elements=["member_id", "action", "period"])
    )  # fmt: skip
    rows = dict(connection.execute(
        select(action_counts.c.period, action_counts.c.count)
        .where(action_counts.c.member_id == member_id, action_counts.c.action == action.code,
               action_counts.c.period.in_(keys))
        .order_by(action_counts.c.period)  # locked in one order
        .with_for_update()
    ).tuples().all())  # fmt: skip
    in_period = rows[keys[1]] if len(keys) > 1 else 0
    return Counts(ever=rows[EVER], in_period=in_period, period_start=first_day)


def _raise_counts(connection: Connection, member_id: int, action: Action, counts: Counts) -> None:
    keys = [EVER]
    if action.per_period is not None and counts.period_start is not None:
        keys.append(period_key(action.per_period.period, counts.period_start))
    connection.execute(
        update(action_counts)
        .where(action_counts.c.member_id == member_id, action_counts.c.action == action.code,
               action_counts.c.period.in_(keys))
        .values(count=action_counts.c.count + 1, points=action_counts.c.points + action.points)
    )  # fmt: skip


# — the signed callback's secrets —


def callback_secrets(engine: Engine, program_code: str, action_code: str) -> list[str]:
    """The shared secrets a callback of the action may be signed with: from the server's
    environment variable the action names (`secret_env`); none when it is not set."""
    with engine.connect() as connection:
        program = load_program(connection, program_code)
    action = actions_of(program.calculator.program).find(action_code)
    if action is None:
        raise NotFound(f"action {action_code!r} does not exist")
    if not action.is_reported_by(Reporter.CALLBACK) or action.secret_env is None:
        return []
    return secrets_in(os.environ.get(action.secret_env))


def is_secret_set(action: Action) -> bool:
    return action.secret_env is not None and bool(secrets_in(os.environ.get(action.secret_env)))


# — what a member was given —


def member_reports(
    engine: Engine, program_code: str, member_ref: str, *, before: int | None = None,
    limit: int = PAGE,
) -> dict[str, Any]:  # fmt: skip
    """The member's reports, newest first, with what each gave (`{items, next}`)."""
    with engine.connect() as connection:
        program = load_program(connection, program_code)
        member = find_member(connection, program.program_id, member_ref)
        query = select(action_reports).where(action_reports.c.program_id == program.program_id,
                                             action_reports.c.member_id == member.id)  # fmt: skip
        digits = program.calculator.program.points.precision
        return newest_first(connection, query, action_reports.c.id, before=before, limit=limit,
                            item=lambda row: _report_item(row, digits))  # fmt: skip


def _report_item(row: Any, digits: int) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "action": row.action,
        "external_id": row.external_id,
        "status": row.status,
        "points": format_minor(row.points, digits),
        "refused_by": row.refused_by,
        "reported_by": "callback" if row.reported_by == "callback" else "key",
        "location": row.location,
        "occurred_at": row.occurred_at.isoformat() if row.occurred_at else None,
        "received_at": row.received_at.isoformat(),
    }


def member_summary(
    connection: Connection, program: LoadedProgram, member_id: int
) -> dict[str, Any] | None:
    """The member's part of their document: credited reports per action and the points
    actions gave them, from the running counts (one row per action); None if none."""
    rows = connection.execute(
        select(action_counts.c.action, action_counts.c.count, action_counts.c.points)
        .where(action_counts.c.member_id == member_id, action_counts.c.period == EVER,
               action_counts.c.count > 0)
        .order_by(action_counts.c.action)
    ).all()  # fmt: skip
    if not rows:
        return None
    digits = program.calculator.program.points.precision
    return {
        "reports": sum(row.count for row in rows),
        "points": format_minor(sum(row.points for row in rows), digits),
        "by_action": {row.action: row.count for row in rows},
    }


# — the catalogue and its figures —


def catalogue(engine: Engine, program_code: str, *, now: datetime) -> dict[str, Any]:
    """Every action as declared, with its figures: credited reports, members, points given,
    and refusals by what stopped them. The secret is never shown: whether it is set."""
    with engine.connect() as connection:
        program = load_program(connection, program_code)
        figures = _figures(connection, program.program_id)
    settings = program.calculator.program
    today = now.astimezone(ZoneInfo(settings.timezone)).date()
    digits = settings.points.precision
    return {"items": [_catalogue_item(action, figures.get(action.code, {}), today, digits)
                      for action in actions_of(settings).actions]}  # fmt: skip


def _figures(connection: Connection, program_id: int) -> dict[str, Mapping[str, int]]:
    credited = action_reports.c.status == "credited"
    columns = [
        func.sum(case((credited, 1), else_=0)).label("reports"),
        func.count(func.distinct(case((credited, action_reports.c.member_id)))).label("members"),
        func.coalesce(func.sum(action_reports.c.points), 0).label("points"),
        *(func.sum(case((action_reports.c.refused_by == refusal.value, 1), else_=0))
          .label(refusal.value) for refusal in Refusal),
    ]  # fmt: skip
    rows = connection.execute(
        select(action_reports.c.action, *columns)
        .where(action_reports.c.program_id == program_id)
        .group_by(action_reports.c.action)
    ).mappings().all()  # fmt: skip
    return {row["action"]: {key: int(value or 0) for key, value in row.items() if key != "action"}
            for row in rows}  # fmt: skip


def _catalogue_item(
    action: Action, figures: Mapping[str, int], today: date, digits: int
) -> dict[str, Any]:
    per_period = action.per_period
    return {
        "code": action.code,
        "name": action.name,
        "points": format_minor(action.points, digits),
        "limits": {
            "per_member": action.per_member,
            "per_period": {"period": per_period.period.value, "count": per_period.count}
            if per_period else None,
        },
        "reported_by": sorted(reporter.value for reporter in action.reported_by),
        "secret_env": action.secret_env,
        "secret_set": is_secret_set(action) if action.secret_env else None,
        "valid": {"from": action.valid_from.isoformat() if action.valid_from else None,
                  "until": action.valid_until.isoformat() if action.valid_until else None},
        "running": action.is_running_on(today),
        "reports": figures.get("reports", 0),
        "members": figures.get("members", 0),
        "points_given": format_minor(figures.get("points", 0), digits),
        "refused": {refusal.value: figures.get(refusal.value, 0) for refusal in Refusal},
    }  # fmt: skip
