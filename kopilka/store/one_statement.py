"""A purchase's or refund's writes on PostgreSQL in one statement (data-modifying CTEs).

Every round trip to the database costs Python ~70–80 µs of CPU, so the hot path sends
the parent row (the purchase or refund, `ON CONFLICT DO NOTHING … RETURNING id`) and
everything that hangs off it — the transfers, the member accounts' cached totals, the
lots taken, given back and made — as one `WITH … SELECT`. When the parent conflicts
(a copy of the request got there first) its CTE returns no row, and so every other
part inserts or updates nothing: no partial write is possible. Keys and references
that need the parent's id are filled in by the database from that CTE.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    CTE,
    BigInteger,
    ColumnElement,
    Connection,
    Insert,
    Integer,
    String,
    Text,
    cast,
    column,
    exists,
    func,
    insert,
    literal,
    null,
    select,
    true,
    update,
    values,
)

from kopilka.domain.ledger import Posting
from kopilka.store.ledger import account_totals
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
    parent: Insert,
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
    parent_cte = parent.cte("parent")
    parent_id = parent_cte.c.id
    went_in = exists(select(parent_id))
    parts: list[CTE] = []
    if postings:
        parts.append(_transfers(parent_cte, parent_is, program_id, postings, ids, actor, now,
                                purchase_id))  # fmt: skip
        parts.append(_totals(account_totals(postings, ids), went_in))
    if lot_changes:
        parts.append(_lot_changes(lot_changes, went_in))
    if new_lots:
        parts.append(_new_lots(parent_cte, parent_is, new_lots))
    statement = select(parent_id).add_cte(*parts)
    new_id: int | None = connection.execute(statement).scalar_one_or_none()
    return new_id


def _transfers(
    parent: CTE, parent_is: str, program_id: int, postings: list[Posting],
    ids: dict[Any, int], actor: str, now: Any, purchase_id: int | None,
) -> CTE:  # fmt: skip
    rows = values(
        column("key", String()),
        column("debit", Integer()),
        column("credit", Integer()),
        column("amount", BigInteger()),
        column("reason", String()),
        name="planned",
    ).data([(p.key, ids[p.debit], ids[p.credit], p.amount, p.reason.value) for p in postings])
    parent_id = parent.c.id
    key = func.replace(rows.c.key, "{" + parent_is + "}", cast(parent_id, String()))
    purchase = parent_id if parent_is == "purchase" else literal(purchase_id, Integer())
    refund = parent_id if parent_is == "refund" else null()
    chosen = select(
        literal(program_id, Integer()), key, rows.c.debit, rows.c.credit, rows.c.amount,
        rows.c.reason, literal(actor, String()), purchase, refund, null().cast(Text()),
        literal(now, Timestamp()),
    ).select_from(parent).join(rows, true())  # fmt: skip
    return insert(transfers).from_select(TRANSFER_COLUMNS, chosen).cte("moved")


def _totals(totals: list[dict[str, int]], went_in: Any) -> CTE:
    rows = values(
        column("account", Integer()),
        column("debits", BigInteger()),
        column("credits", BigInteger()),
        name="totals",
    ).data([(t["account"], t["debits"], t["credits"]) for t in totals])
    return (
        update(accounts)
        .where(accounts.c.id == rows.c.account, went_in)
        .values(
            debits_posted=accounts.c.debits_posted + rows.c.debits,
            credits_posted=accounts.c.credits_posted + rows.c.credits,
        )
        .cte("totalled")
    )


def _lot_changes(changes: list[dict[str, int]], went_in: Any) -> CTE:
    rows = values(column("lot", Integer()), column("points", BigInteger()), name="taken").data(
        [(c["lot"], c["points"]) for c in changes]
    )
    return (
        update(lots)
        .where(lots.c.id == rows.c.lot, went_in)
        .values(remaining=lots.c.remaining - rows.c.points)
        .cte("spent")
    )


def _new_lots(parent: CTE, parent_is: str, new_lots: list[dict[str, Any]]) -> CTE:
    rows = values(
        column("program_id", Integer()),
        column("member_id", Integer()),
        column("status", String()),
        column("amount", BigInteger()),
        column("remaining", BigInteger()),
        column("earned_at", Timestamp()),
        column("available_at", Timestamp()),
        column("expires_at", Timestamp()),
        column("purchase_id", Integer()),
        column("reason", String()),
        name="made",
    ).data([tuple(lot[name] for name in LOT_COLUMNS) for lot in new_lots])
    # a column of NULLs in VALUES is text to PostgreSQL: cast each to its type
    typed: dict[str, ColumnElement[Any]] = {
        name: cast(rows.c[name], rows.c[name].type) for name in LOT_COLUMNS
    }
    if parent_is == "purchase":
        typed["purchase_id"] = func.coalesce(typed["purchase_id"], parent.c.id)
    chosen = select(*typed.values()).select_from(parent).join(rows, true())
    return insert(lots).from_select(LOT_COLUMNS, chosen).cte("earned")
