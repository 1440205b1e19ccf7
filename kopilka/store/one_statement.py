"""A purchase's or refund's writes on PostgreSQL in one statement (data-modifying CTEs).

Every round trip to the database costs Python ~70–80 µs of CPU, so the hot path sends
the parent row (the purchase or refund, `ON CONFLICT DO NOTHING … RETURNING id`) and
everything that hangs off it — the transfers, the member accounts' cached totals, the
lots taken, given back and made — as one `WITH … SELECT`. When the parent conflicts
(a copy of the request got there first) its CTE returns no row, and so every other
part inserts or updates nothing: no partial write is possible. Keys and references
that need the parent's id are filled in by the database from that CTE.

The rows of each part travel as arrays, one per column, unnested by the database: the
statement's text then depends only on which parts are present, never on how many rows
each has, so SQLAlchemy compiles it once and reuses it (a `VALUES` list would make a
new statement — and a compilation costing milliseconds — for every purchase).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import (
    ARRAY,
    CTE,
    BigInteger,
    ColumnElement,
    Connection,
    Integer,
    Select,
    String,
    Text,
    TextualSelect,
    TypeDecorator,
    bindparam,
    cast,
    column,
    exists,
    func,
    insert,
    null,
    select,
    true,
    update,
)
from sqlalchemy.sql.functions import Function
from sqlalchemy.types import TypeEngine

from kopilka.domain.ledger import Posting
from kopilka.store.ledger import account_totals
from kopilka.store.statements import NewRow
from kopilka.store.tables import Timestamp, accounts, lots, transfers

TRANSFER_COLUMNS = (
    "program_id",
    "transfer_key",
    "debit_account_id",
    "credit_account_id",
    "amount",
    "reason",
    "actor",
    "purchase_id",
    "refund_id",
    "note",
    "created_at",
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
)


def write_under(
    connection: Connection,
    parent: NewRow,
    *,
    parent_is: str,  # "purchase" or "refund": which reference the parent's id fills
    program_id: int,
    postings: list[Posting],
    ids: dict[Any, int],
    actor: str,
    now: Any,
    purchase_id: int | None,
    lot_changes: list[dict[str, int]],
    new_lots: list[dict[str, Any]],
) -> int | None:
    """Insert `parent` and, only if it went in, everything else; the parent's id or None."""
    statement = _statement(
        parent.statement, parent_is, bool(postings), bool(lot_changes), bool(new_lots)
    )
    values: dict[str, Any] = {
        **parent.parameters,
        **_columns("planned", TRANSFER_ROWS,
                   [(p.key, ids[p.debit], ids[p.credit], p.amount, p.reason.value)
                    for p in postings]),
        **_columns("totals", TOTAL_ROWS,
                   [(t["account"], t["debits"], t["credits"])
                    for t in account_totals(postings, ids)]),
        **_columns("taken", TAKEN_ROWS, [(c["lot"], c["points"]) for c in lot_changes]),
        **_columns("made", LOT_ROWS,
                   [tuple(lot[name] for name in LOT_COLUMNS) for lot in new_lots]),
        "transfer_program_id": program_id,
        "transfer_actor": actor,
        "transfer_at": now,
        "transfer_purchase_id": purchase_id,
        "transfer_placeholder": "{" + parent_is + "}",  # in keys, where the parent's id goes
    }  # fmt: skip
    new_id: int | None = connection.execute(statement, values).scalar_one_or_none()
    return new_id


def _columns(name: str, columns: dict[str, Any], rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    """The values of `_rows(name, columns)`'s parameters: one list per column."""
    return {f"{name}_{col}": [row[n] for row in rows] for n, col in enumerate(columns)}


@cache
def _statement(
    parent: TextualSelect, parent_is: str, moves: bool, takes: bool, makes: bool
) -> Select[Any]:
    """The statement for one shape of purchase or refund, built once: its values are
    all parameters, so SQLAlchemy's compiled cache serves every later execution."""
    parent_cte = parent.cte("parent")
    went_in = exists(select(parent_cte.c.id))
    parts: list[CTE] = []
    if moves:
        parts.append(_transfers(parent_cte, parent_is))
        parts.append(_totals(went_in))
    if takes:
        parts.append(_lot_changes(went_in))
    if makes:
        parts.append(_new_lots(parent_cte, parent_is))
    return select(parent_cte.c.id).add_cte(*parts)


def _rows(name: str, columns: dict[str, TypeEngine[Any]]) -> Any:
    """`unnest(:name_a, :name_b, …) AS name(a, b, …)`: rows sent as one array per column."""
    arrays = [
        bindparam(f"{name}_{col}", type_=ARRAY(_plain(kind))) for col, kind in columns.items()
    ]
    unnest: Function[Any] = func.unnest(*arrays)
    named = (column(col, kind) for col, kind in columns.items())
    return unnest.table_valued(*named).render_derived(name=name)


def _plain(kind: TypeEngine[Any]) -> TypeEngine[Any]:
    """The database type behind a decorated one (arrays of a TypeDecorator don't bind)."""
    return kind.impl_instance if isinstance(kind, TypeDecorator) else kind


TRANSFER_ROWS: dict[str, TypeEngine[Any]] = {
    "key": String(), "debit": Integer(), "credit": Integer(), "amount": BigInteger(),
    "reason": String(),
}  # fmt: skip
TOTAL_ROWS: dict[str, TypeEngine[Any]] = {
    "account": Integer(), "debits": BigInteger(), "credits": BigInteger()
}  # fmt: skip
TAKEN_ROWS: dict[str, TypeEngine[Any]] = {"lot": Integer(), "points": BigInteger()}
LOT_ROWS: dict[str, TypeEngine[Any]] = {name: lots.c[name].type for name in LOT_COLUMNS}


def _transfers(parent: CTE, parent_is: str) -> CTE:
    rows = _rows("planned", TRANSFER_ROWS)
    parent_id = parent.c.id
    placeholder = bindparam("transfer_placeholder", type_=String())
    key = func.replace(rows.c.key, placeholder, cast(parent_id, String()))
    purchase = (
        parent_id if parent_is == "purchase"
        else bindparam("transfer_purchase_id", type_=Integer())
    )  # fmt: skip
    refund = parent_id if parent_is == "refund" else null()
    chosen = select(
        bindparam("transfer_program_id", type_=Integer()), key, rows.c.debit, rows.c.credit,
        rows.c.amount, rows.c.reason, bindparam("transfer_actor", type_=String()), purchase,
        refund, null().cast(Text()), bindparam("transfer_at", type_=Timestamp()),
    ).select_from(parent).join(rows, true())  # fmt: skip
    return insert(transfers).from_select(TRANSFER_COLUMNS, chosen).cte("moved")


def _totals(went_in: Any) -> CTE:
    rows = _rows("totals", TOTAL_ROWS)
    return (
        update(accounts)
        .where(accounts.c.id == rows.c.account, went_in)
        .values(
            debits_posted=accounts.c.debits_posted + rows.c.debits,
            credits_posted=accounts.c.credits_posted + rows.c.credits,
        )
        .cte("totalled")
    )


def _lot_changes(went_in: Any) -> CTE:
    rows = _rows("taken", TAKEN_ROWS)
    return (
        update(lots)
        .where(lots.c.id == rows.c.lot, went_in)
        .values(remaining=lots.c.remaining - rows.c.points)
        .cte("spent")
    )


def _new_lots(parent: CTE, parent_is: str) -> CTE:
    rows = _rows("made", LOT_ROWS)
    chosen_columns: dict[str, ColumnElement[Any]] = {name: rows.c[name] for name in LOT_COLUMNS}
    if parent_is == "purchase":
        chosen_columns["purchase_id"] = func.coalesce(rows.c.purchase_id, parent.c.id)
    chosen = select(*chosen_columns.values()).select_from(parent).join(rows, true())
    return insert(lots).from_select(LOT_COLUMNS, chosen).cte("earned")
