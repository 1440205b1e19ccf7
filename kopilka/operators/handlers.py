"""Console operators: accounts, sign-in, the audit log, and what the console reads.

An operator belongs to one program and has one role:

    admin     everything in the console: the audit log, access keys, code exports
    support   members, their history, adjustments, block/unblock, resending coupons;
              the audit log
    analyst   the dashboard, members and coupons, reading only
    marketer  the dashboard, the rules: edit a draft, try receipts, publish; coupon
              campaigns: generate batches of codes
    partner   a coalition partner's own page only: its terms and position, its statements
              (and their CSV and PDF), its customers' purchases — nothing of the program's

Passwords are kept as argon2id hashes (argon2-cffi); signing in costs one argon2
verification whether or not the email exists, so its timing does not say which emails do.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from functools import cache, lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, Engine, Row, and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from kopilka.kernel.errors import Duplicate, InvalidInput, NotFound, Problem
from kopilka.kernel.ledger import AccountCode, Reason
from kopilka.mechanics.coupons import handlers as coupon_service
from kopilka.members import links as member_links
from kopilka.members.balances import make_adjustment
from kopilka.members.handlers import find_member, normalise_phone, read_member, set_member_status
from kopilka.operators import keys as key_service
from kopilka.operators.tables import audit_log, operator_sessions, operators
from kopilka.platform.idempotency import AfterWrite
from kopilka.platform.tables import (
    accounts,
    member_profiles,
    members,
    purchase_awards,
    purchases,
    transfers,
)
from kopilka.programs.handlers import load_program

ROLES = ("admin", "support", "analyst", "marketer", "partner")
PROGRAM_ROLES = ROLES[:4]  # the roles that see the program as a whole (not a partner)
MIN_PASSWORD = 10
SESSION_HOURS = 12  # a working day: an operator signs in again the next morning
MAX_PASSWORD = 1024  # argon2 takes any length; a megabyte "password" would only cost CPU
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_WHOLE = re.compile(r"[0-9]{1,9}", re.ASCII)
_PROGRAM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_hasher = PasswordHasher()


@dataclass(frozen=True)
class Operator:
    id: int
    program: str
    email: str
    role: str
    partner: str | None = None  # a partner operator's partner

    @property
    def actor(self) -> str:
        """How the ledger and the audit log name this operator."""
        return f"operator:{self.id}"


# — accounts —


def create_operator(
    engine: Engine, program: str, email: str, password: str, role: str, now: datetime,
    *, partner: str | None = None,
) -> Operator:  # fmt: skip
    """A new operator of `program`; `Duplicate` when the email is taken there. A partner
    operator names its partner, which the program (applied already) must have."""
    email = email.strip().lower()
    _check_new_operator(program, email, password, role, partner)
    row = {"program": program, "email": email, "password_hash": _hasher.hash(password),
           "role": role, "partner": partner, "created_at": now}  # fmt: skip
    try:
        with engine.begin() as connection:
            if partner is not None:
                _refuse_unknown_partner(connection, program, partner)
            operator_id = connection.execute(insert(operators).values(row)).inserted_primary_key
            assert operator_id is not None
            operator = Operator(int(operator_id[0]), program, email, role, partner)
            shown = {"role": role} | ({"partner": partner} if partner else {})
            record(connection, operator, "operator.create", operator.actor, shown, now)
    except IntegrityError:
        raise Duplicate(f"operator {email!r} already exists in program {program!r}") from None
    return operator


def _refuse_unknown_partner(connection: Connection, program: str, partner: str) -> None:
    try:
        partners = load_program(connection, program).calculator.program.partners
    except NotFound:
        unknown = Problem("partner", f"program {program!r} is not applied yet: apply it "
                          "before its partners' operators")  # fmt: skip
        raise InvalidInput([unknown]) from None
    if partner not in {known.code for known in partners}:
        raise InvalidInput([Problem("partner", f"{partner!r} is not a partner of program "
                                    f"{program}")])  # fmt: skip


def _check_new_operator(
    program: str, email: str, password: str, role: str, partner: str | None
) -> None:
    problems: list[Problem] = []
    if not _PROGRAM.fullmatch(program):
        problems.append(Problem("program", "must be a program code (letters, digits, _.-)"))
    if len(email) > 320 or not _EMAIL.fullmatch(email):
        problems.append(Problem("email", "must be an email address"))
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        problems.append(
            Problem("password", f"must have {MIN_PASSWORD} to {MAX_PASSWORD} characters")
        )
    if role not in ROLES:
        problems.append(Problem("role", f"must be one of {', '.join(ROLES)}"))
    if (role == "partner") != (partner is not None):
        problems.append(Problem("partner", "a partner operator names its partner, and only "
                                "a partner operator does"))  # fmt: skip
    if problems:
        raise InvalidInput(problems)


@cache
def _decoy_hash() -> str:
    """A hash to verify against when the email is unknown: the same work either way."""
    return _hasher.hash("not a password anybody has")


def authenticate(
    engine: Engine, program: str, email: str, password: str, now: datetime
) -> Operator | None:
    """The active operator these credentials name, or None. A hash made with weaker
    parameters than today's is replaced on a successful sign-in."""
    email = email.strip().lower()
    with engine.connect() as connection:
        row = connection.execute(
            select(operators).where(operators.c.program == program, operators.c.email == email)
        ).one_or_none()
    stored = row.password_hash if row is not None else _decoy_hash()
    is_valid = _verify(stored, password[:MAX_PASSWORD])
    if row is None or not is_valid or row.disabled_at is not None:
        return None
    operator = _operator(row)
    with engine.begin() as connection:
        if _hasher.check_needs_rehash(stored):
            connection.execute(update(operators).where(operators.c.id == row.id)
                               .values(password_hash=_hasher.hash(password)))  # fmt: skip
        record(connection, operator, "operator.login", operator.actor, {}, now)
    return operator


def _verify(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def start_session(engine: Engine, operator: Operator, now: datetime) -> str:
    """A new signed-in session of `operator`: the token its cookie carries (only the
    token's hash is stored)."""
    token = secrets.token_urlsafe(32)
    with engine.begin() as connection:
        connection.execute(insert(operator_sessions).values(
            token_hash=_token_hash(token), operator_id=operator.id, started_at=now))  # fmt: skip
    return token


def session_operator(engine: Engine, token: str, now: datetime) -> Operator | None:
    """The operator of a session still going: not signed out, not older than
    `SESSION_HOURS`, its operator not disabled. Anything else signs nobody in."""
    with engine.connect() as connection:
        row = connection.execute(
            select(operators)
            .join(operator_sessions, operator_sessions.c.operator_id == operators.c.id)
            .where(operator_sessions.c.token_hash == _token_hash(token),
                   operator_sessions.c.ended_at.is_(None),
                   operator_sessions.c.started_at > now - timedelta(hours=SESSION_HOURS),
                   operators.c.disabled_at.is_(None))
        ).one_or_none()  # fmt: skip
    return _operator(row) if row is not None else None


def end_session(engine: Engine, token: str, now: datetime) -> None:
    """Sign out: the session's token signs nobody in from now on, wherever it was copied
    to. The sign-out is audited in the same transaction."""
    with engine.begin() as connection:
        row = connection.execute(
            select(operators)
            .join(operator_sessions, operator_sessions.c.operator_id == operators.c.id)
            .where(operator_sessions.c.token_hash == _token_hash(token),
                   operator_sessions.c.ended_at.is_(None))
        ).one_or_none()  # fmt: skip
        if row is None:  # signed out already, or never signed in
            return
        connection.execute(update(operator_sessions)
                           .where(operator_sessions.c.token_hash == _token_hash(token))
                           .values(ended_at=now))  # fmt: skip
        operator = _operator(row)
        record(connection, operator, "operator.logout", operator.actor, {}, now)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def disable_operator(engine: Engine, operator_id: int, *, by: Operator, now: datetime) -> None:
    with engine.begin() as connection:
        connection.execute(
            update(operators).where(operators.c.id == operator_id).values(disabled_at=now)
        )
        record(connection, by, "operator.disable", f"operator:{operator_id}", {}, now)


def _operator(row: Row[Any]) -> Operator:
    return Operator(row.id, row.program, row.email, row.role, row.partner)


# — the audit log —


def record(
    connection: Connection, operator: Operator, action: str, target: str,
    details: dict[str, Any], now: datetime,
) -> None:  # fmt: skip
    """One audit row, in the caller's transaction."""
    connection.execute(
        insert(audit_log).values(
            program=operator.program,
            operator_id=operator.id,
            action=action,
            target=target,
            details=details,
            at=now,
        )
    )


def audit_entries(
    engine: Engine, program: str, *, before: int | None = None, limit: int = 50,
    target: str | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """The program's audit log, newest first, with each operator's email; older than entry
    `before`, and only about `target` (`member:12`) when given."""
    query = (
        select(audit_log, operators.c.email)
        .outerjoin(operators, operators.c.id == audit_log.c.operator_id)
        .where(audit_log.c.program == program)
        .order_by(audit_log.c.id.desc())
        .limit(limit)
    )
    if before is not None:
        query = query.where(audit_log.c.id < before)
    if target is not None:
        query = query.where(audit_log.c.target == target)
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return [
        {
            "id": row.id,
            "at": row.at,
            "operator": row.email,
            "action": row.action,
            "target": row.target,
            "details": row.details,
        }
        for row in rows
    ]


def audited(
    operator: Operator, action: str, target: Callable[[Connection, dict[str, Any]], str],
    details: Callable[[dict[str, Any]], dict[str, Any]], now: datetime,
) -> AfterWrite:  # fmt: skip
    """The audit row of an action, for the service to write in the action's own
    transaction: the action and its record are kept or lost together."""

    def write(connection: Connection, answer: dict[str, Any]) -> None:
        record(connection, operator, action, target(connection, answer), details(answer), now)

    return write


def adjust_points(
    engine: Engine, operator: Operator, member_ref: str, points: str, reason: str,
    now: datetime,
) -> dict[str, Any]:  # fmt: skip
    """A support adjustment and its audit row (the ledger's transfer names the operator
    and the reason too)."""

    # by id: the reference as typed may be a phone or an email, not for an audit log
    after = audited(operator, "member.adjustment", _member_of(operator, member_ref),
                    lambda answer: {"points": answer["points"], "reason": answer["reason"]},
                    now)  # fmt: skip
    body = {"points": points, "reason": reason}
    answer, _ = make_adjustment(engine, operator.program, member_ref, body,
                                actor=operator.actor, now=now, after=after)  # fmt: skip
    return answer


def _member_target(_: Connection, answer: dict[str, Any]) -> str:
    return f"member:{answer['id']}"


def change_member_status(
    engine: Engine, operator: Operator, member_ref: str, status: str, now: datetime
) -> dict[str, Any]:
    """Block a member (`blocked`) or make them active again (`active`), audited."""
    action = "member.block" if status == "blocked" else "member.unblock"
    after = audited(operator, action, _member_target, lambda answer: {"card": answer["card"]},
                    now)  # fmt: skip
    return set_member_status(engine, operator.program, member_ref, status, now=now, after=after)


def resend_coupon(
    engine: Engine, operator: Operator, member_ref: str, code: str, channel: str,
    now: datetime,
) -> dict[str, Any]:  # fmt: skip
    """Issue a member's coupon to them again by `channel`, audited. Only a coupon the
    member already holds is resent: another's, or nobody's, is `NotFound` here."""
    member = read_member(engine, operator.program, member_ref, now=now)
    coupon = coupon_service.read_coupon(engine, operator.program, code, now=now)
    if coupon["owner"] != member["id"]:
        raise NotFound(f"member {member_ref!r} holds no coupon {code!r}")
    after = audited(operator, "coupon.resend", lambda _c, _a: f"member:{member['id']}",
                    lambda answer: {"code": answer["code"], "channel": channel}, now)  # fmt: skip
    answer, _ = coupon_service.issue_coupon(engine, operator.program, coupon["code"],
                                            {"member": member["id"], "channel": channel},
                                            now=now, after=after)  # fmt: skip
    return dict(answer)


def revoke_member_link(
    engine: Engine, operator: Operator, member_ref: str, link_id: str, now: datetime
) -> dict[str, Any]:
    """End one of the member's personal page links, audited (`member.link.revoke`)."""
    after = audited(operator, "member.link.revoke", _member_of(operator, member_ref),
                    lambda answer: {"link": answer["id"]}, now)  # fmt: skip
    return member_links.revoke_link(engine, operator.program, member_ref, link_id, now=now,
                                    after=after)  # fmt: skip


def revoke_member_links(
    engine: Engine, operator: Operator, member_ref: str, now: datetime
) -> dict[str, Any]:
    """End every link of the member that still works, audited (`member.links.revoke`)."""
    after = audited(operator, "member.links.revoke", lambda _c, a: f"member:{a['member']}",
                    lambda answer: {"revoked": answer["revoked"]}, now)  # fmt: skip
    return member_links.revoke_links(engine, operator.program, member_ref, now=now, after=after)


def _member_of(operator: Operator, member_ref: str) -> Callable[[Connection, dict[str, Any]], str]:
    """The audit target `member:<id>` of a member named by any reference."""

    def target(connection: Connection, _: dict[str, Any]) -> str:
        program_id = load_program(connection, operator.program).program_id
        return f"member:{find_member(connection, program_id, member_ref).id}"

    return target


def generate_batch(
    engine: Engine, operator: Operator, campaign: str, count: str, now: datetime
) -> dict[str, Any]:
    """A batch of `count` codes for a unique campaign, audited."""
    # ASCII digits only: "²".isdigit() holds and int() refuses it; "١٢" would be read as 12
    number: object = int(count) if _WHOLE.fullmatch(count.strip()) else count
    after = audited(operator, "coupon.batch", lambda _c, _a: f"campaign:{campaign}",
                    lambda answer: {"count": answer["count"], "batch": answer["id"]},
                    now)  # fmt: skip
    answer, _ = coupon_service.create_batch(engine, operator.program, campaign,
                                            {"count": number}, actor=operator.actor,
                                            now=now, after=after)  # fmt: skip
    return dict(answer)


def note_export(engine: Engine, operator: Operator, campaign: str, now: datetime) -> None:
    """An audit row for an export of a campaign's codes (each code is a bearer secret)."""
    with engine.begin() as connection:
        record(connection, operator, "coupon.export", f"campaign:{campaign}", {}, now)


def _key_target(_: Connection, answer: dict[str, Any]) -> str:
    return f"key:{answer['id']}"


def create_key(
    engine: Engine, operator: Operator, role: str, location: str | None, label: str | None,
    now: datetime,
) -> tuple[str, dict[str, Any]]:  # fmt: skip
    """A new access key of the operator's program (its text, to show once), audited."""

    def details(answer: dict[str, Any]) -> dict[str, Any]:
        shown = {"role": role, "location": location, "label": label, "prefix": answer["prefix"]}
        return {name: value for name, value in shown.items() if value is not None}

    after = audited(operator, "key.create", _key_target, details, now)
    return key_service.create_key(engine, operator.program, role, location=location,
                                  label=label, now=now, after=after)  # fmt: skip


def revoke_key(engine: Engine, operator: Operator, key_id: str, now: datetime) -> dict[str, Any]:
    after = audited(operator, "key.revoke", _key_target,
                    lambda answer: {"prefix": answer["prefix"]}, now)  # fmt: skip
    return key_service.revoke_key(engine, operator.program, key_id, now=now, after=after)


# — what the console reads —


@dataclass(frozen=True)
class DayPoints:
    day: date
    accrued: int  # minor units of points
    redeemed: int
    expired: int = 0


@dataclass(frozen=True)
class ProgramFacts:
    """What a page needs to write a program's figures: its currency, zone, precision."""

    code: str
    name: str
    currency: str
    timezone: str
    points_digits: int


@dataclass(frozen=True)
class Dashboard:
    program: ProgramFacts
    members: int
    days: list[DayPoints]
    active_members: int = 0  # bought in the window
    liability: int = 0  # points members hold (available, pending, held), minor units
    top_rules: list[tuple[str, int]] = field(default_factory=list)  # (rule, points), most first
    rules_read: int = 0  # purchases the rules' figures come from (the newest of the window)
    rules_since: datetime | None = None  # the oldest of them

    @property
    def liability_points(self) -> Decimal:
        return Decimal(self.liability).scaleb(-self.program.points_digits)

    @property
    def rules_limit(self) -> int:
        return TOP_RULES_SAMPLE

    @property
    def rule_bars(self) -> list[tuple[str, Decimal, int]]:
        """(rule, points, its bar's width in % of the largest) — exact, for the template."""
        most = self.top_rules[0][1] if self.top_rules else 0
        digits = self.program.points_digits
        return [
            (rule, Decimal(amount).scaleb(-digits), 100 * amount // most if most else 0)
            for rule, amount in self.top_rules
        ]


def program_facts(engine: Engine, program: str) -> ProgramFacts:
    with engine.connect() as connection:
        return _facts(load_program(connection, program).calculator.program)


def _facts(settings: Any) -> ProgramFacts:
    return ProgramFacts(settings.code, settings.name, settings.currency, settings.timezone,
                        settings.points.precision)  # fmt: skip


def dashboard(engine: Engine, program: str, now: datetime, days: int = 30) -> Dashboard:
    """The program at a glance: its members and the points accrued and redeemed on each of
    the last `days` days (in the program's time zone, today included)."""
    with engine.connect() as connection:
        loaded = load_program(connection, program)
        settings = loaded.calculator.program
        zone = ZoneInfo(settings.timezone)
        first_day = now.astimezone(zone).date() - timedelta(days=days - 1)
        start = datetime.combine(first_day, datetime.min.time(), zone)
        count = connection.execute(
            select(func.count()).where(members.c.program_id == loaded.program_id)
        ).scalar_one()
        moved = _points_by_day(connection, loaded.program_id, start, zone)
        active = _active_members(connection, loaded.program_id, start)
        liability = _liability(connection, loaded.program_id)
        top, read, since = _top_rules(connection, loaded.program_id, start)
    series = [
        DayPoints(day, *moved.get(day, (0, 0, 0)))
        for day in (first_day + timedelta(days=n) for n in range(days))
    ]
    return Dashboard(_facts(settings), int(count), series, active, liability, top, read, since)


STANDING = ("completed", "partially_refunded")  # purchases that happened and still stand
TOP_RULES_SAMPLE = 5000  # the newest purchases read for the rules' figures


def _active_members(connection: Connection, program_id: int, start: datetime) -> int:
    return int(connection.execute(
        select(func.count(func.distinct(purchases.c.member_id))).where(
            purchases.c.program_id == program_id, purchases.c.created_at >= start,
            purchases.c.status.in_(STANDING), purchases.c.member_id.is_not(None))
    ).scalar_one())  # fmt: skip


def _liability(connection: Connection, program_id: int) -> int:
    """The points members hold: what the program owes (available, pending and held)."""
    held = (AccountCode.AVAILABLE.value, AccountCode.PENDING.value, AccountCode.HELD.value)
    return int(connection.execute(
        select(func.coalesce(func.sum(accounts.c.credits_posted - accounts.c.debits_posted), 0))
        .where(accounts.c.program_id == program_id, accounts.c.member_id.is_not(None),
               accounts.c.code.in_(held))
    ).scalar_one())  # fmt: skip


BASE_RATE = ""  # the share of the points the program's base rate gave, beside the rules'


def _top_rules(
    connection: Connection, program_id: int, start: datetime
) -> tuple[list[tuple[str, int]], int, datetime | None]:
    """Points given by each rule (and by the base rate, `BASE_RATE`) in the newest
    purchases of the window (at most TOP_RULES_SAMPLE), from their records of the rules'
    points, the most first; how many purchases were read and the oldest's time. The
    shares of all rules add up to the points those purchases accrued, so no point is
    counted twice."""
    sample = (
        select(purchases.c.id, purchases.c.created_at)
        .where(purchases.c.program_id == program_id, purchases.c.created_at >= start,
               purchases.c.status.in_(STANDING))
        .order_by(purchases.c.id.desc()).limit(TOP_RULES_SAMPLE)
        .subquery()
    )  # fmt: skip
    accrual = and_(purchase_awards.c.purchase_id == sample.c.id,
                   purchase_awards.c.mechanic == "points",
                   purchase_awards.c.kind == "accrual")  # fmt: skip
    rows = connection.execute(
        select(sample.c.id, sample.c.created_at, purchase_awards.c.amount,
               purchase_awards.c.detail)
        .select_from(sample.outerjoin(purchase_awards, accrual))
    ).all()  # fmt: skip
    # lines decided alike (the same rules, the same coefficients) split alike: their points
    # are summed per kind of line first, and split once per kind (Fractions are slow)
    accrued: dict[Signature, int] = {}
    for _, _, amount, detail in rows:
        if amount:
            kind = signature((detail or {}).get("explain") or [])
            accrued[kind] = accrued.get(kind, 0) + int(amount)
    points: dict[str, Fraction] = {}
    for kind, amount in accrued.items():
        for rule, weight in weights(kind).items():
            points[rule] = points.get(rule, Fraction(0)) + amount * weight
    given = [(rule, round(amount)) for rule, amount in points.items()]
    top = sorted((item for item in given if item[1] > 0), key=lambda item: -item[1])[:8]
    read = {purchase_id: at for purchase_id, at, _, _ in rows}
    return top, len(read), min(read.values(), default=None)


# what decides how a line's points split: its points-per-unit rule, or its rules'
# coefficients in the model's order — ("", rule, "") or ("k", rule, coefficient) entries
Signature = tuple[tuple[str, str, str], ...]


def signature(explain: list[dict[str, Any]]) -> Signature:
    per_unit = [e["rule"] for e in explain if "points_per_unit" in e and e.get("rule")]
    if per_unit:
        return (("", per_unit[0], ""),)
    return tuple(("k", e["rule"], str(e["coefficient"])) for e in explain
                 if "coefficient" in e and e.get("rule"))  # fmt: skip


@lru_cache(maxsize=4096)  # kinds of lines are few: a program's combinations of rules
def weights(kind: Signature) -> dict[str, Fraction]:
    """The share of a line's points each rule (and the base rate, `BASE_RATE`) gave, for
    lines of this kind, in the model's order: the base rate gives B = 1 / (K1·K2·K3) of
    the points, then each rule what its coefficient added to what was there before it —
    B·(K1 − 1), B·K1·(K2 − 1), … — so the shares add up to 1 exactly (a cap on the line
    shrinks them alike). A rule that lowers the points has a negative share; a
    points-per-unit rule gives the whole line; a line excluded (K = 0) gives nobody any."""
    if kind and kind[0][0] == "":
        return {kind[0][1]: Fraction(1)}
    product = Fraction(1)
    for _, _, coefficient in kind:
        product *= Fraction(coefficient)
    if not product:
        return {}
    so_far = 1 / product  # what the base rate gave
    shares: dict[str, Fraction] = {BASE_RATE: so_far}
    for _, rule, coefficient in kind:
        shares[rule] = shares.get(rule, Fraction(0)) + so_far * (Fraction(coefficient) - 1)
        so_far *= Fraction(coefficient)
    return shares


def line_shares(accrued: Fraction, explain: list[dict[str, Any]]) -> dict[str, Fraction]:
    """A line's points split between the base rate and the rules that decided them (see
    `weights`)."""
    if not accrued:
        return {}
    return {rule: accrued * weight for rule, weight in weights(signature(explain)).items()}


def _points_by_day(
    connection: Connection, program_id: int, start: datetime, zone: ZoneInfo
) -> dict[date, tuple[int, int, int]]:
    """Accrued, redeemed and expired points per local day, summed by the database per hour (an
    hour is a day's part in every time zone with whole-hour offsets; a half-hour zone
    would need finer buckets), so the rows fetched stay few however busy the program."""
    hour = _hour_bucket(connection)
    to_member = select(accounts.c.id).where(
        accounts.c.program_id == program_id, accounts.c.member_id.is_not(None)
    )
    rows = connection.execute(
        select(hour.label("hour"), transfers.c.reason, func.sum(transfers.c.amount))
        .where(
            transfers.c.program_id == program_id,
            transfers.c.created_at >= start,
            transfers.c.reason.in_(
                [
                    Reason.PURCHASE_ACCRUAL.value,
                    Reason.PURCHASE_REDEMPTION.value,
                    Reason.EXPIRY.value,
                ]
            ),
            or_(
                transfers.c.credit_account_id.in_(to_member),
                transfers.c.debit_account_id.in_(to_member),
            ),
        )
        .group_by("hour", transfers.c.reason)
    ).all()
    series = {Reason.PURCHASE_ACCRUAL.value: 0, Reason.PURCHASE_REDEMPTION.value: 1,
              Reason.EXPIRY.value: 2}  # fmt: skip
    totals: dict[date, tuple[int, int, int]] = {}
    for bucket, reason, amount in rows:
        day = _as_utc_hour(bucket).astimezone(zone).date()
        figures = list(totals.get(day, (0, 0, 0)))
        figures[series[reason]] += int(amount)
        totals[day] = (figures[0], figures[1], figures[2])
    return totals


def _hour_bucket(connection: Connection) -> Any:
    if connection.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", transfers.c.created_at), "YYYY-MM-DD HH24:00:00")
    return func.strftime("%Y-%m-%d %H:00:00", transfers.c.created_at)  # stored in UTC


def _as_utc_hour(bucket: str) -> datetime:
    return datetime.fromisoformat(f"{bucket}+00:00")


def search_members(engine: Engine, program: str, query: str, limit: int = 50) -> list[Row[Any]]:
    """Members whose card starts with `query`, whose phone or email is it, or whose name
    contains it. SQLite lowers only ASCII letters, so a name is also matched as typed
    and capitalised (Cyrillic names on SQLite)."""
    text = query.strip()[:200]
    if not text:
        return []
    phone = normalise_phone(text)
    name = member_profiles.c.name
    matches = [
        members.c.card.startswith(text, autoescape=True),
        member_profiles.c.email == text.lower(),
        func.lower(name).contains(text.lower(), autoescape=True),
        name.contains(text, autoescape=True),
        name.contains(text.capitalize(), autoescape=True),
    ]
    if phone is not None:
        matches.append(member_profiles.c.phone == phone)
    with engine.connect() as connection:
        program_id = load_program(connection, program).program_id
        return list(
            connection.execute(
                select(
                    members.c.id,
                    members.c.card,
                    members.c.status,
                    member_profiles.c.phone,
                    member_profiles.c.email,
                    name,
                )
                .outerjoin(member_profiles, member_profiles.c.member_id == members.c.id)
                .where(members.c.program_id == program_id, or_(*matches))
                .order_by(members.c.id)
                .limit(limit)
            ).all()
        )
