"""A purchase's one load: the program's current version, the member with their balances
(locked), their tier, and every mechanic's reads — one round trip on PostgreSQL.

A mechanic says what it reads as queries (`Mechanic.reads` → `Reads`), never by running
them, so the pipeline sends them in the pipeline that locks the member: adding a
mechanic that reads adds no round trip to a purchase. The queries depend on the
program's version (which the load itself finds), so they are planned for the version
this process last loaded for the program's code; after a program change the first
purchase finds that the guess was stale and reads again for the version in force (one
more round trip, once per process and version).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache, lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Select,
    and_,
    bindparam,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql.psycopg import dialect as psycopg_dialect

from kopilka.checkout.mechanic import JSON, Mechanic, Reads, mechanics
from kopilka.ledger.wallet import LOTS_COLUMNS, Wallet
from kopilka.members.handlers import MEMBER_COLUMNS, find_member, member_id_by, member_key
from kopilka.platform.statements import BEGIN, driver_form, driver_rows_pipelined
from kopilka.platform.tables import (
    accounts,
    lots,
    member_profiles,
    member_tiers,
    members,
    program_versions,
    programs,
)
from kopilka.programs.handlers import CURRENT_VERSION_COLUMNS, LoadedProgram, compiled, load_program

__all__ = ["Loaded", "load"]


@dataclass(frozen=True)
class Loaded:
    program: LoadedProgram
    member: Row[Any] | None  # the member's row (with `tier`), None for a receipt without one
    wallet: Wallet | None  # the member's balances, locked for the purchase
    read: dict[str, JSON]  # what each mechanic read of the member, by its name


@dataclass(frozen=True)
class _PlannedRead:
    """One mechanic's reads for a program version: its queries compiled once."""

    name: str  # the mechanic's
    reads: Reads
    sql: tuple[str, ...]  # psycopg's text of each query
    constants: tuple[dict[str, Any], ...]  # each query's own bound values (its literals)


# the program version last loaded for each program code: what the next load's reads are
# planned for before the load itself says which version is in force
_last_seen: dict[str, LoadedProgram] = {}


def load(
    connection: Connection, program_code: str, member_ref: object, now: datetime, *,
    lock: bool = True, lots: bool = False, begin: bool = False, version: int | None = None,
) -> Loaded:  # fmt: skip
    """The program's current version and the member with their balances (locked, for a
    purchase) and everything the mechanics read of them — one round trip on PostgreSQL.
    `lots`: the member's available lots too (a receipt that pays with points spends
    them), read once the lock is held. `begin`: the transaction is begun here, by a BEGIN
    sent with the first statements (`retrying(begun_by_work=True)`; PostgreSQL).
    `version`: the program's version to price at instead of the current one (a claim)."""
    key = member_key(member_ref) if isinstance(member_ref, str) else None
    if key is None:  # no member (or a malformed one, which the receipt's parse names)
        if begin:
            connection.exec_driver_sql(BEGIN)
        return Loaded(load_program(connection, program_code, version), None, None, {})
    column, value = key
    shared = {"program_code": program_code, "member_key": value}
    planned: tuple[_PlannedRead, ...] = ()
    read_rows: Sequence[Sequence[Any]] = []
    rows: Sequence[Any]
    lot_rows: Sequence[Any] | None = None
    if connection.dialect.name == "postgresql":
        guess = _last_seen.get(program_code)
        planned = _planned(guess, column, mechanics()) if guess is not None else ()
        rows, read_rows = _pipelined(connection, column, shared, planned, now,
                                     lock=lock, lots=lots and lock, begin=begin)  # fmt: skip
        if lots and lock:
            lot_rows, *read_rows = read_rows
    else:  # SQLite (one writer, no round trips): one query after another
        rows = connection.execute(_member_query(column, lock=False), shared).all()
    if not rows:  # say which is missing: the program or the member
        program = load_program(connection, program_code)
        find_member(connection, program.program_id, member_ref)  # type: ignore[arg-type]
        raise AssertionError("unreachable: the member exists but has no accounts")
    program = compiled(connection, rows[0])
    _last_seen[program_code] = program
    if version is not None:  # an earlier version's rules (its reads are read again below)
        program = load_program(connection, program_code, version)
    wanted = _planned(program, column, mechanics())
    if wanted is not planned:  # planned for another version (or not yet): read them now
        planned = wanted
        read_rows = [
            connection.execute(query, {**shared, **plan.reads.parameters(now)}).all()
            for plan in planned
            for query in plan.reads.queries
        ]
    wallet = Wallet.from_rows(connection, program.program_id, program.calculator.program,
                              rows[0].id, now, rows, lots=lot_rows)  # fmt: skip
    return Loaded(program, rows[0], wallet, _read(planned, read_rows))


def _pipelined(
    connection: Connection, column: ColumnElement[Any], shared: dict[str, Any],
    planned: Sequence[_PlannedRead], now: datetime, *, lock: bool, lots: bool, begin: bool,
) -> tuple[Sequence[Any], Sequence[Sequence[Any]]]:  # fmt: skip
    """The member query (locking, for a purchase), the tier as it is once the lock is
    held, the member's available lots (`lots`: first of the reads' rows) and the
    mechanics' reads — one pipeline, with a BEGIN (ours, when `begin`; else psycopg's,
    which costs a round trip of its own)."""
    statements: list[tuple[str, dict[str, Any]]] = [(BEGIN, {})] if begin else []
    statements.append((_member_sql(column, lock), shared))
    if lock:
        statements.append((_tier_sql(column), shared))
    if lots:
        statements.append((_lots_sql(column), shared))
    for plan in planned:
        values = {**shared, **plan.reads.parameters(now)}
        pairs = zip(plan.sql, plan.constants, strict=True)
        statements += [(sql, {**constants, **values}) for sql, constants in pairs]
    if begin:
        _, rows, *read_rows = driver_rows_pipelined(connection, statements)
    else:
        rows, *read_rows = driver_rows_pipelined(connection, statements)
    if not lock:
        return rows, read_rows
    tier, *read_rows = read_rows
    if rows and tier and rows[0].tier != tier[0].code:
        # changed while this purchase waited for the member's lock: the purchase is
        # priced at the tier in force when it got the member, as if it came after
        rows = [row._replace(tier=tier[0].code) for row in rows]
    return rows, read_rows


def _read(planned: Sequence[_PlannedRead], read_rows: Sequence[Sequence[Any]]) -> dict[str, JSON]:
    """Each mechanic's facts, by its name, from its queries' rows (in the order sent)."""
    read: dict[str, JSON] = {}
    at = 0
    for plan in planned:
        count = len(plan.sql)
        read[plan.name] = plan.reads.facts(read_rows[at : at + count])
        at += count
    return read


@lru_cache(maxsize=256)
def _planned(
    program: LoadedProgram, column: ColumnElement[Any], registered: tuple[Mechanic, ...]
) -> tuple[_PlannedRead, ...]:
    """What the registered mechanics read for `program`, with the member found by
    `column` — compiled once per version, column and set of mechanics."""
    member = member_id_by(column)
    planned = []
    for mechanic in registered:
        reads = mechanic.reads(program, member)
        if reads is None or not reads.queries:
            continue
        # each query's text, and its literals' values (the load fills in the rest)
        forms = [driver_form(query, unset=True) for query in reads.queries]
        texts, constants = (tuple(form) for form in zip(*forms, strict=True))
        planned.append(_PlannedRead(mechanic.name, reads, texts, constants))
    return tuple(planned)


@cache
def _member_sql(column: ColumnElement[Any], lock: bool) -> str:
    """The member query (locking, or not for a quote) as psycopg's text."""
    dialect = psycopg_dialect()  # type: ignore[no-untyped-call]
    return str(_member_query(column, lock=lock).compile(dialect=dialect))


@cache
def _tier_sql(column: ColumnElement[Any]) -> str:
    """The member's stored tier as psycopg's text; sent after the locking query, it reads
    the tier as it is once the lock is held."""
    query = select(member_tiers.c.code).where(member_tiers.c.member_id == member_id_by(column))
    return str(query.compile(dialect=psycopg_dialect()))  # type: ignore[no-untyped-call]


@cache
def _lots_sql(column: ColumnElement[Any]) -> str:
    """The member's available lots with points left, as the wallet reads them
    (`LOTS_COLUMNS`), as psycopg's text; sent after the locking query."""
    query = select(*(lots.c[name] for name in LOTS_COLUMNS)).where(
        lots.c.member_id == member_id_by(column),
        lots.c.status == literal_column("'available'"),
        lots.c.remaining > literal_column("0"),
    )
    return str(query.compile(dialect=psycopg_dialect()))  # type: ignore[no-untyped-call]


@cache
def _member_query(column: ColumnElement[Any], *, lock: bool) -> Select[Any]:
    """The program's current version and a member found by `column`, with their accounts
    (locked on PostgreSQL); built once per column, so SQLAlchemy's cache serves it."""
    query = (
        select(*CURRENT_VERSION_COLUMNS, *MEMBER_COLUMNS, accounts.c.id.label("account_id"),
               accounts.c.code, accounts.c.debits_posted, accounts.c.credits_posted,
               member_tiers.c.code.label("tier"))
        .join(program_versions, and_(program_versions.c.program_id == programs.c.id,
                                     program_versions.c.version == programs.c.current_version))
        .join(members, members.c.program_id == programs.c.id)
        .outerjoin(member_profiles, member_profiles.c.member_id == members.c.id)
        .outerjoin(member_tiers, member_tiers.c.member_id == members.c.id)
        .join(accounts, accounts.c.member_id == members.c.id)
        .where(programs.c.code == bindparam("program_code"),
               column == bindparam("member_key", type_=column.type))
        .order_by(accounts.c.id)
    )  # fmt: skip
    return query.with_for_update(of=accounts) if lock else query
