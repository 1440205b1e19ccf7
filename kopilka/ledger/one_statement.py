"""A purchase's writes on PostgreSQL in one statement (data-modifying CTEs).

Every round trip to the database costs Python ~70–80 µs of CPU (and SQLAlchemy's
statement machinery as much again), so the hot path sends the parent row (the
purchase, `ON CONFLICT DO NOTHING … RETURNING id`) and everything that hangs off it —
the transfers, the member accounts' cached totals, the lots taken and made, the running
totals it adds to (`Bump`: a member's spend per day, say) — as one
`WITH … SELECT`. When the parent conflicts (a copy of the request got there first) its
CTE returns no row, and so every other part inserts or updates nothing: no partial
write is possible. Keys and references that need the parent's id are filled in by the
database from that CTE.

Each part's rows travel as one JSON array (`json_to_recordset`), so the statement's
text is the same for every purchase, whatever it moves: psycopg prepares it once and
PostgreSQL plans it once. The rows to update are also named by an `= ANY(ids)` array:
the planner guesses 100 rows for a recordset and would rather scan the whole table
than use its primary key.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

import msgspec
from sqlalchemy import JSON, Connection, Table

from kopilka.kernel.ledger import Posting
from kopilka.ledger.accounts import account_totals
from kopilka.platform.statements import (
    COMMIT,
    NewRow,
    RunningTotal,
    driver_rows,
    driver_rows_pipelined,
    merged,
    record_columns,
)

LOT_COLUMNS = (
    "program_id",
    "member_id",
    "status",
    "amount",
    "remaining",
    "earned_at",
    "available_at",
    "expires_at",
    "purchase_id",
    "reason",
    "expiry_day",
)


def write_under(
    connection: Connection,
    parent: NewRow,
    *,
    # "purchase" or "refund": which reference the parent's id fills; anything else (a
    # mechanic's row of the purchase `purchase_id`, say) fills none
    parent_is: str,
    program_id: int,
    postings: list[Posting],
    ids: dict[Any, int],
    actor: str,
    now: datetime,
    purchase_id: int | None,
    lot_changes: list[dict[str, int]],
    new_lots: list[dict[str, Any]],
    commit: bool = False,
) -> int | None:
    """Insert `parent` and, only if it went in, everything else; the parent's id or None.
    `commit`: the transaction ends with this write, its COMMIT sent in the same round
    trip (nothing may be written after it)."""
    children = tuple((child.table, child.parent_column, child.columns) for child in parent.children)
    bumped = merged(parent.bumps)
    totals = tuple(bumped)
    sql = _statement(parent.table, tuple(parent.values), parent.unique, parent_is, children,
                     totals)  # fmt: skip
    moved_totals = account_totals(postings, ids)
    parameters: dict[str, Any] = {
        **{f"new_{name}": _parent_value(parent, name) for name in parent.values},
        "program_id": program_id,
        "actor": actor,
        "now": now,
        "purchase_id": purchase_id,
        "placeholder": "{" + parent_is + "}",  # where the parent's id goes in transfer keys
        "planned": _json([
            {"key": p.key, "debit": ids[p.debit], "credit": ids[p.credit], "amount": p.amount,
             "reason": p.reason.value}
            for p in postings
        ]),
        "totals": _json(moved_totals),
        "total_ids": [total["account"] for total in moved_totals],
        "taken": _json(lot_changes),
        "taken_ids": [change["lot"] for change in lot_changes],
        "made": _json([{**lot, "earned_at": lot["earned_at"].isoformat(),
                        "available_at": lot["available_at"].isoformat(),
                        "expires_at": lot["expires_at"] and lot["expires_at"].isoformat()}
                       for lot in new_lots]),
        **{f"child_{i}": _json([{name: _child_value(row[name]) for name in child.columns}
                                for row in child.rows])
           for i, child in enumerate(parent.children)},
        **{f"bump_{i}": _json(rows) for i, rows in enumerate(bumped.values())},
    }  # fmt: skip
    if commit:
        rows = driver_rows_pipelined(connection, [(sql, parameters), (COMMIT, {})])[0]
    else:
        rows = driver_rows(connection, sql, parameters)
    return int(rows[0].id) if rows else None


def _parent_value(parent: NewRow, name: str) -> Any:
    """A value as its column stores it: JSON columns as their text (None as JSON null, as
    SQLAlchemy's JSON type stores it)."""
    value = parent.values[name]
    return _json(value) if isinstance(parent.table.c[name].type, JSON) else value


def _child_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _json(value: Any) -> str:
    """`value` as JSON text (msgspec: days and moments as ISO text, as
    `json_to_recordset` reads them; several times faster than the json module)."""
    return _encode(value).decode()


_encode = msgspec.json.Encoder().encode


def _children_sql(children: tuple[tuple[Table, str, tuple[str, ...]], ...]) -> str:
    """A CTE per kind of child row: inserted from its JSON array, the parent's id filled."""
    parts = []
    for i, (table, parent_column, columns) in enumerate(children):
        typed = record_columns(table, columns)
        picked = ", ".join(f"c.{name}" for name in columns)
        parts.append(f"""
), child_{i} AS (
    INSERT INTO {table.name} ({parent_column}, {", ".join(columns)})
    SELECT parent.id, {picked}
    FROM parent, json_to_recordset(%(child_{i})s::json) AS c({typed})""")
    return "".join(parts)


def _bumps_sql(totals: tuple[RunningTotal, ...]) -> str:
    """A CTE per running total: its rows added to (inserted when new) from a JSON array."""
    parts = []
    for i, total in enumerate(totals):
        name = total.table.name
        added = ", ".join(f"{count} = {name}.{count} + excluded.{count}" for count in total.counts)
        parts.append(f"""
), bump_{i} AS (
    INSERT INTO {name} ({", ".join(total.columns)})
    SELECT {", ".join(f"b.{column}" for column in total.columns)}
    FROM parent, json_to_recordset(%(bump_{i})s::json)
         AS b({record_columns(total.table, total.columns)})
    ON CONFLICT ({", ".join(total.key)}) DO UPDATE SET {added}""")
    return "".join(parts)


@cache
def _statement(
    table: Table, columns: tuple[str, ...], unique: tuple[str, ...], parent_is: str,
    children: tuple[tuple[Table, str, tuple[str, ...]], ...] = (),
    totals: tuple[RunningTotal, ...] = (),
) -> str:  # fmt: skip
    """The statement's text for a parent row of `table` with `columns` — built once."""
    types = table.c
    values = ", ".join(
        f"%(new_{name})s::json" if isinstance(types[name].type, JSON) else f"%(new_{name})s"
        for name in columns
    )
    purchase = "parent.id" if parent_is == "purchase" else "%(purchase_id)s::int"
    refund = "parent.id" if parent_is == "refund" else "NULL::int"
    lot_purchase = (
        "coalesce(m.purchase_id, parent.id)" if parent_is == "purchase" else "m.purchase_id"
    )
    return _compact(f"""
WITH parent AS (
    INSERT INTO {table.name} ({", ".join(columns)}) VALUES ({values})
    ON CONFLICT ({", ".join(unique)}) DO NOTHING RETURNING id
), moved AS (
    INSERT INTO transfers (program_id, transfer_key, debit_account_id, credit_account_id,
                           amount, reason, actor, purchase_id, refund_id, note, created_at)
    SELECT %(program_id)s, replace(p.key, %(placeholder)s, parent.id::text), p.debit,
           p.credit, p.amount, p.reason, %(actor)s, {purchase}, {refund}, NULL, %(now)s
    FROM parent, json_to_recordset(%(planned)s::json)
         AS p(key text, debit int, credit int, amount bigint, reason text)
), totalled AS (
    UPDATE accounts AS a
    SET debits_posted = a.debits_posted + t.debits,
        credits_posted = a.credits_posted + t.credits
    FROM json_to_recordset(%(totals)s::json) AS t(account int, debits bigint, credits bigint)
    WHERE a.id = t.account AND a.id = ANY(%(total_ids)s) AND EXISTS (SELECT FROM parent)
), spent AS (
    UPDATE lots AS l SET remaining = l.remaining - t.points
    FROM json_to_recordset(%(taken)s::json) AS t(lot int, points bigint)
    WHERE l.id = t.lot AND l.id = ANY(%(taken_ids)s) AND EXISTS (SELECT FROM parent)
), earned AS (
    INSERT INTO lots ({", ".join(LOT_COLUMNS)})
    SELECT m.program_id, m.member_id, m.status, m.amount, m.remaining, m.earned_at,
           m.available_at, m.expires_at, {lot_purchase}, m.reason, m.expiry_day
    FROM parent, json_to_recordset(%(made)s::json)
         AS m(program_id int, member_id int, status text, amount bigint, remaining bigint,
              earned_at timestamptz, available_at timestamptz, expires_at timestamptz,
              purchase_id int, reason text,
              expiry_day date){_children_sql(children)}{_bumps_sql(totals)}
)
SELECT id FROM parent""")


def _compact(sql: str) -> str:
    """`sql` with its runs of whitespace made one space (it holds no text literals):
    psycopg keeps its parse of a statement only up to a length (its
    MAX_CACHED_STATEMENT_LENGTH, 4,096 characters unless `kopilka.platform.db` raises it)
    and parses a longer one again on every execution — ~400 µs of CPU for the purchase's
    statement; shorter text is less to send and to parse either way."""
    return " ".join(sql.split())
