"""Pages of rows newest first, by id cursor: what every history-like answer returns."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Column, Connection, Select


def newest_first(
    connection: Connection, query: Select[Any], id_column: Column[Any], *,
    before: int | None, limit: int, item: Callable[[Any], dict[str, Any]],
) -> dict[str, Any]:  # fmt: skip
    """`{items, next}`: up to `limit` rows of `query` with ids below `before`, newest
    first, each made an item; `next` is the `before` of the following page (or None)."""
    query = query.order_by(id_column.desc()).limit(limit + 1)
    if before is not None:
        query = query.where(id_column < before)
    rows = connection.execute(query).all()
    items = [item(row) for row in rows[:limit]]
    return {"items": items, "next": items[-1]["id"] if len(rows) > limit else None}
