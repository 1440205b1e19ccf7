"""What the API and the console share to answer a request: the moment it is answered
at, and running a service (plain, blocking code) for it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine
from sqlalchemy.util import greenlet_spawn

T = TypeVar("T")


def now() -> datetime:
    return datetime.now(UTC)


async def run(engine: Engine, service: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a service (plain, blocking code) for a request.

    On an async engine (PostgreSQL: psycopg's async connections) the service runs in a
    greenlet on this event loop, as SQLAlchemy's asyncio layer runs its own sync API:
    its database calls are awaited, no thread is involved. On a sync engine (SQLite) it
    runs in the thread pool."""
    if engine.dialect.is_async:
        result: T = await greenlet_spawn(service, *args, **kwargs)
        return result
    return await run_in_threadpool(service, *args, **kwargs)
