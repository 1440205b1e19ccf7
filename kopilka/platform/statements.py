"""Statements built once and reused, for the hot path.

SQLAlchemy caches a statement's compiled form by its cache key, but the key itself is
computed by walking the statement on every execution of a new statement object, and
constructs without a cache key (the PostgreSQL dialect's `on_conflict_do_nothing()`
is one) are compiled afresh every time — milliseconds for the purchase statement,
more than the rest of a purchase together. So the hot path's statements are built
once per shape with unvalued parameters, and each execution passes only its values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import (
    JSON,
    Connection,
    Insert,
    Select,
    Table,
    TextClause,
    TextualSelect,
    Update,
    bindparam,
    insert,
    text,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.visitors import cloned_traverse
from sqlalchemy.util import await_only


@dataclass(frozen=True)
class ChildRows:
    """Rows that hang off a `NewRow` (a purchase's lines): inserted only with their
    parent, `parent_column` filled with its id. `columns` is fixed per table, so the
    statement that writes them is the same text whatever the rows."""

    table: Table
    parent_column: str
    columns: tuple[str, ...]
    rows: Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class RunningTotal:
    """Totals kept per `key` (a member and a day, say) and added to by the writes that
    change them, so a read takes one row instead of summing a history. `key` is the
    table's primary key; `counts` the columns added to."""

    table: Table
    key: tuple[str, ...]
    counts: tuple[str, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return self.key + self.counts


@dataclass(frozen=True)
class Bump:
    """Amounts added to one row of a running total (inserted at them if it is new)."""

    total: RunningTotal
    key: tuple[Any, ...]
    amounts: tuple[int, ...]


def merged(bumps: Sequence[Bump]) -> dict[RunningTotal, list[dict[str, Any]]]:
    """Each total's rows, one per key with the amounts added up: a statement may change a
    row once only (PostgreSQL refuses an upsert that meets its own row again); rows
    whose amounts are all 0 are left out."""
    sums: dict[RunningTotal, dict[tuple[Any, ...], list[int]]] = {}
    for bump in bumps:
        rows = sums.setdefault(bump.total, {})
        amounts = rows.setdefault(bump.key, [0] * len(bump.total.counts))
        for i, amount in enumerate(bump.amounts):
            amounts[i] += amount
    return {
        total: [dict(zip(total.columns, (*key, *amounts), strict=True))
                for key, amounts in rows.items() if any(amounts)]
        for total, rows in sums.items()
    }  # fmt: skip


def add_to_totals(connection: Connection, bumps: Sequence[Bump]) -> None:
    """Add `bumps` to their running totals: one executemany per total (any database)."""
    for total, rows in merged(bumps).items():
        if rows:
            connection.execute(_upsert(total), rows)


@cache
def _upsert(total: RunningTotal) -> TextClause:
    """`INSERT … ON CONFLICT (key) DO UPDATE SET n = n + excluded.n`: the same text on
    PostgreSQL and SQLite (3.24+)."""
    table = total.table
    columns = total.columns
    added = ", ".join(f"{name} = {table.name}.{name} + excluded.{name}" for name in total.counts)
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "
        f"VALUES ({', '.join(':' + name for name in columns)}) "
        f"ON CONFLICT ({', '.join(total.key)}) DO UPDATE SET {added}"
    )
    return text(sql).bindparams(*(bindparam(name, type_=table.c[name].type) for name in columns))


@dataclass(frozen=True)
class NewRow:
    """A row to insert unless one with the same `unique` key exists (then: no row, no id),
    its `children`, inserted only when it is, and the running totals it adds to (`bumps`),
    likewise only when it is."""

    table: Table
    values: Mapping[str, Any]
    unique: tuple[str, ...]
    children: tuple[ChildRows, ...] = ()
    bumps: tuple[Bump, ...] = ()

    @property
    def statement(self) -> TextualSelect:
        return insert_new(self.table, tuple(self.values), self.unique)

    def insert(self, connection: Connection) -> int | None:
        """The new row's id, or None when the unique key was taken."""
        new_id: int | None = connection.execute(self.statement, self.parameters).scalar()
        if new_id is not None:
            for child in self.children:
                if child.rows:
                    rows = [{**row, child.parent_column: new_id} for row in child.rows]
                    connection.execute(_insert_into(child.table), rows)
            add_to_totals(connection, self.bumps)
        return new_id

    @property
    def parameters(self) -> dict[str, Any]:
        """The values by their parameters' names (`new_<column>`: a bare column name given
        to an execution would also be read as a SET value by an UPDATE in the statement)."""
        return {f"new_{name}": value for name, value in self.values.items()}


# json_to_recordset's column types, by SQLAlchemy's type
_RECORD_TYPES = {"integer": "int", "big_integer": "bigint", "string": "text", "text": "text",
                 "boolean": "boolean", "datetime": "timestamptz", "date": "date"}  # fmt: skip


def record_columns(table: Table, columns: tuple[str, ...]) -> str:
    """`name type, …` of `columns` for `json_to_recordset(…) AS c(…)` (PostgreSQL): rows
    sent as one JSON array keep a statement's text the same whatever rows it writes."""
    return ", ".join(f"{name} {_record_type(table, name)}" for name in columns)


def _record_type(table: Table, name: str) -> str:
    column_type = table.c[name].type
    column_type = getattr(column_type, "impl", column_type)  # a TypeDecorator's own type
    if isinstance(column_type, JSON):
        return "json"
    return _RECORD_TYPES[column_type.__visit_name__]


@cache
def _insert_into(table: Table) -> Insert:
    """`INSERT INTO table`, built once per table (see the module's docstring)."""
    return insert(table)


@cache
def insert_new(table: Table, columns: tuple[str, ...], unique: tuple[str, ...]) -> TextualSelect:
    """`INSERT … ON CONFLICT (unique) DO NOTHING RETURNING id` with a typed parameter
    `new_<column>` per column; the same text on PostgreSQL and SQLite (3.35+)."""
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "
        f"VALUES ({', '.join(':new_' + name for name in columns)}) "
        f"ON CONFLICT ({', '.join(unique)}) DO NOTHING RETURNING id"
    )
    parameters = [bindparam(f"new_{name}", type_=table.c[name].type) for name in columns]
    return text(sql).bindparams(*parameters).columns(table.c.id)


def driver_rows(
    connection: Connection,
    sql: str,
    parameters: Mapping[str, Any],
    *,
    pipeline: bool = False,
    prepare: bool = True,
) -> list[Any]:
    """Run `sql` (psycopg's `%(name)s` style) straight on the DBAPI connection, inside
    the transaction SQLAlchemy began; rows with attribute access.

    For the PostgreSQL hot path only: SQLAlchemy's per-execution machinery costs ~110 µs
    of CPU a statement, as much as psycopg's own round trip. `pipeline` sends psycopg's
    BEGIN together with the statement (one round trip instead of two). Errors come out
    wrapped as SQLAlchemy's, and its `before/after_cursor_execute` events fire, so
    retries, callers and listeners see what they always see.
    """
    import psycopg  # the PostgreSQL driver; imported here so SQLite needs no psycopg
    from psycopg.rows import namedtuple_row

    driver = connection.connection.driver_connection
    dispatch = connection.dispatch  # SQLAlchemy's cursor events still fire (tracing, tests)
    try:
        if isinstance(driver, psycopg.AsyncConnection):  # in SQLAlchemy's greenlet
            return await_only(_async_rows(connection, driver, sql, parameters, pipeline, prepare))
        assert isinstance(driver, psycopg.Connection)
        with driver.cursor(row_factory=namedtuple_row) as cursor:
            if dispatch.before_cursor_execute:
                dispatch.before_cursor_execute(connection, cursor, sql, parameters, None, False)
            if pipeline:
                with driver.pipeline():
                    cursor.execute(sql, parameters, prepare=prepare)
            else:
                cursor.execute(sql, parameters, prepare=prepare)
            if dispatch.after_cursor_execute:
                dispatch.after_cursor_execute(connection, cursor, sql, parameters, None, False)
            return cursor.fetchall() if cursor.description else []
    except psycopg.Error as error:
        gone = connection.dialect.is_disconnect(error, driver, None)  # type: ignore[arg-type]
        if gone:  # as SQLAlchemy does: the pool drops this connection, a retry gets a new one
            connection.invalidate(error)
        raise DBAPIError.instance(
            sql, parameters, error, psycopg.Error, connection_invalidated=gone
        ) from error


async def _async_rows(
    connection: Connection, driver: Any, sql: str, parameters: Mapping[str, Any],
    pipeline: bool, prepare: bool,
) -> list[Any]:  # fmt: skip
    """`driver_rows` on psycopg's async connection (an async engine)."""
    from psycopg.rows import namedtuple_row

    dispatch = connection.dispatch
    async with driver.cursor(row_factory=namedtuple_row) as cursor:
        if dispatch.before_cursor_execute:
            dispatch.before_cursor_execute(connection, cursor, sql, parameters, None, False)
        if pipeline:
            async with driver.pipeline():
                await cursor.execute(sql, parameters, prepare=prepare)
        else:
            await cursor.execute(sql, parameters, prepare=prepare)
        if dispatch.after_cursor_execute:
            dispatch.after_cursor_execute(connection, cursor, sql, parameters, None, False)
        rows: list[Any] = await cursor.fetchall() if cursor.description else []
        return rows


# The last statement of a pipeline that ends the transaction with its last write: one
# round trip for both. psycopg's own `commit()` then finds no transaction open and sends
# nothing, so SQLAlchemy ends its transaction as always. Never prepared (PostgreSQL
# prepares no transaction control).
COMMIT = "COMMIT"
BEGIN = "BEGIN"  # the first, when the caller begins the transaction (`retrying`)


def driver_rows_pipelined(
    connection: Connection, statements: Sequence[tuple[str, Mapping[str, Any]]]
) -> list[list[Any]]:
    """`statements` (each psycopg's text and its values) in order in one pipeline: one
    round trip, with psycopg's BEGIN; the rows of each. Each statement takes its own
    snapshot: on PostgreSQL's READ COMMITTED, those after the first see what was
    committed while the first waited for its row locks. Listeners see the batch as one
    execution of the statements joined by `;` (one round trip)."""
    import psycopg

    driver = connection.connection.driver_connection
    batch = ";\n".join(sql for sql, _ in statements)
    parameters = statements[0][1]
    try:
        if isinstance(driver, psycopg.AsyncConnection):
            return await_only(_async_pipelined(connection, driver, statements, batch))
        assert isinstance(driver, psycopg.Connection)
        from psycopg.rows import namedtuple_row

        cursors = [driver.cursor(row_factory=namedtuple_row) for _ in statements]
        try:
            _fire(connection, cursors[0], batch, parameters, before=True)
            with driver.pipeline():
                for cursor, (sql, values) in zip(cursors, statements, strict=True):
                    cursor.execute(sql, values, prepare=sql not in (BEGIN, COMMIT))
            _fire(connection, cursors[0], batch, parameters, before=False)
            return [cursor.fetchall() if cursor.description else [] for cursor in cursors]
        finally:
            for cursor in cursors:
                cursor.close()
    except psycopg.Error as error:
        gone = connection.dialect.is_disconnect(error, driver, None)  # type: ignore[arg-type]
        if gone:
            connection.invalidate(error)
        raise DBAPIError.instance(
            batch, parameters, error, psycopg.Error, connection_invalidated=gone
        ) from error


def rows_together(
    connection: Connection, statements: Sequence[Select[Any] | Insert | Update]
) -> list[list[Any]]:
    """The rows of each statement (none for one that returns none), run in order: on
    PostgreSQL in one pipeline — one round trip, each statement seeing what those before
    it did, as one after another would — elsewhere one after another. For statements a
    use case sends together now and then (a coupon's), not the hot path's: each is
    compiled on every call."""
    if connection.dialect.name != "postgresql":
        results = [connection.execute(statement) for statement in statements]
        return [list(result) if result.returns_rows else [] for result in results]
    return driver_rows_pipelined(connection, [driver_form(s) for s in statements])


def driver_form(
    statement: Select[Any] | Insert | Update, *, unset: bool = False
) -> tuple[str, dict[str, Any]]:
    """`statement` as psycopg's text and the values of its bound parameters (`IN` lists
    rendered as one parameter each), for `driver_rows…`. `unset`: the statement's unset
    parameters (values each execution fills in, after these) may stay unset — compiled
    once, executed many times."""
    from sqlalchemy.dialects.postgresql.psycopg import dialect as psycopg_dialect

    if unset:
        statement = cloned_traverse(statement, {}, {"bindparam": _optional})
    compiled = statement.compile(dialect=psycopg_dialect(),  # type: ignore[no-untyped-call]
                                 compile_kwargs={"render_postcompile": True})  # fmt: skip
    return str(compiled), dict(compiled.params)


def _optional(bind: BindParameter[Any]) -> None:
    if bind.required:
        bind.required = False
        bind.value = None


async def _async_pipelined(
    connection: Connection, driver: Any, statements: Sequence[tuple[str, Mapping[str, Any]]],
    batch: str,
) -> list[list[Any]]:  # fmt: skip
    from psycopg.rows import namedtuple_row

    parameters = statements[0][1]
    cursors = [driver.cursor(row_factory=namedtuple_row) for _ in statements]
    try:
        _fire(connection, cursors[0], batch, parameters, before=True)
        async with driver.pipeline():
            for cursor, (sql, values) in zip(cursors, statements, strict=True):
                await cursor.execute(sql, values, prepare=sql not in (BEGIN, COMMIT))
        _fire(connection, cursors[0], batch, parameters, before=False)
        return [await cursor.fetchall() if cursor.description else [] for cursor in cursors]
    finally:
        for cursor in cursors:
            await cursor.close()


def _fire(
    connection: Connection, cursor: Any, sql: str, parameters: Mapping[str, Any], *, before: bool
) -> None:
    """SQLAlchemy's cursor events, for listeners (tracing, the tests' statement counts)."""
    dispatch = connection.dispatch
    event = dispatch.before_cursor_execute if before else dispatch.after_cursor_execute
    if event:
        event(connection, cursor, sql, parameters, None, False)


def insert_rows(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Many new rows at once (a batch's): PostgreSQL's COPY, or an executemany on SQLite.
    Each value goes through its column type's bind processing first (an aware time to
    UTC, JSON to text), so the rows are what an INSERT of them would have written. Every
    row names the same columns, the first row's."""
    if not rows:
        return
    if connection.dialect.name != "postgresql":
        connection.execute(insert(table), list(rows))
        return
    names = list(rows[0])
    processors = [table.c[name].type.bind_processor(connection.dialect) for name in names]
    columns = ", ".join(f'"{name}"' for name in names)
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor, cursor.copy(f'COPY "{table.name}" ({columns}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row([
                value if process is None else process(value)
                for process, value in zip(processors, (row[name] for name in names), strict=True)
            ])  # fmt: skip
