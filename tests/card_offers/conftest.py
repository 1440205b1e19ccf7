"""Card-linked offers' tests run on SQLite and PostgreSQL: the store's `engine` fixture
(and `zerno_engine`, the café's program on it)."""

from __future__ import annotations

from tests.store.conftest import engine, zerno_engine

__all__ = ["engine", "zerno_engine"]
