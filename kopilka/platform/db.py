"""Engines: the embedded SQLite default and PostgreSQL, configured alike.

`KOPILKA_DB` (or `--db`) selects the database; without it Kopilka keeps its data in
`kopilka.sqlite3` in the current directory. SQLite runs in WAL mode with foreign keys
on, and every write transaction starts with BEGIN IMMEDIATE, so two writers queue
instead of failing half-way with "database is locked".
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

DEFAULT_URL = "sqlite:///kopilka.sqlite3"


def database_url(explicit: str | None = None) -> str:
    return explicit or os.environ.get("KOPILKA_DB") or DEFAULT_URL


def make_engine(url: str | None = None, *, asynchronous: bool = False, **options: Any) -> Engine:
    """An engine for `url`; `postgresql://` is read as psycopg 3.

    `asynchronous`: on PostgreSQL, the sync face of an async engine (psycopg's async
    connections in an asyncio-aware pool). The services run on it unchanged inside
    SQLAlchemy's `greenlet_spawn` on an event loop — what the server does for a request
    (see `kopilka.platform.requests.run`); outside one it can't be used. SQLite stays
    synchronous."""
    parsed = make_url(database_url(url))
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed.render_as_string(hide_password=False), **options)
    # No pre-ping: it would cost a round trip per transaction; a dropped connection fails
    # its transaction, which the services retry on a fresh one (see `retrying`).
    if asynchronous:
        return create_async_engine(parsed, **options).sync_engine
    return create_engine(parsed, **options)


def _sqlite_engine(url: str, **options: Any) -> Engine:
    engine = create_engine(url, connect_args={"timeout": 30}, **options)

    @event.listens_for(engine, "connect")
    def _configure(connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, open transactions, so BEGIN IMMEDIATE is ours.
        connection.isolation_level = None
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def is_postgresql(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


@contextmanager
def reading(engine: Engine, *, one_snapshot: bool = True) -> Iterator[Connection]:
    """A connection for reads only.

    Its transaction is ended with COMMIT — for a transaction that wrote nothing the
    same as a rollback, but psycopg answers a ROLLBACK by deallocating every statement
    the connection prepared (then the next purchase on it prepares each again: round
    trips and server CPU). An error still rolls it back. `one_snapshot=False`: the
    reads need not see one moment (a key's lookup, a quote), so on PostgreSQL they run
    with no transaction at all — no BEGIN and no COMMIT, a round trip each saved."""
    with engine.connect() as connection:
        if not one_snapshot and engine.dialect.name == "postgresql":
            yield connection.execution_options(isolation_level="AUTOCOMMIT")
            return
        yield connection
        connection.commit()
