from __future__ import annotations

from tests.store.conftest import engine, zerno_engine

__all__ = ["engine", "zerno_engine"]
