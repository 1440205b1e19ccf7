"""The webhook outbox's tests run on SQLite and PostgreSQL: the store's `engine` fixture."""

from __future__ import annotations

from tests.store.conftest import engine

__all__ = ["engine"]
