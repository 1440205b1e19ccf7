"""Statements built once and reused, for the hot path.

SQLAlchemy caches a statement's compiled form by its cache key, but the key itself is
computed by walking the statement on every execution of a new statement object, and
constructs without a cache key (the PostgreSQL dialect's `on_conflict_do_nothing()`
is one) are compiled afresh every time — milliseconds for the purchase statement,
more than the rest of a purchase together. So the hot path's statements are built
once per shape with unvalued parameters, and each execution passes only its values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Connection, Table, TextualSelect, bindparam, text


@dataclass(frozen=True)
class NewRow:
    """A row to insert unless one with the same `unique` key exists (then: no row, no id)."""

    table: Table
    values: Mapping[str, Any]
    unique: tuple[str, ...]

    @property
    def statement(self) -> TextualSelect:
        return insert_new(self.table, tuple(self.values), self.unique)

    def insert(self, connection: Connection) -> int | None:
        """The new row's id, or None when the unique key was taken."""
        new_id: int | None = connection.execute(self.statement, self.parameters).scalar()
        return new_id

    @property
    def parameters(self) -> dict[str, Any]:
        """The values by their parameters' names (`new_<column>`: a bare column name given
        to an execution would also be read as a SET value by an UPDATE in the statement)."""
        return {f"new_{name}": value for name, value in self.values.items()}


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
