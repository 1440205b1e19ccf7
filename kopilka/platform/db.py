"""Engines: the embedded SQLite default and PostgreSQL, configured alike.

`KOPILKA_DB` (or `--db`) selects the database; without it Kopilka keeps its data in
`kopilka.sqlite3` in the current directory. SQLite runs in WAL mode with foreign keys
on, and every write transaction starts with BEGIN IMMEDIATE, so two writers queue
instead of failing half-way with "database is locked".
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import deque
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
    keep_long_statements_parsed()
    if asynchronous:
        return create_async_engine(parsed, **options).sync_engine
    return create_engine(parsed, **options)


# psycopg parses a statement's `%(name)s` placeholders once and keeps the parse (an LRU
# of 128 shapes) — but only for statements of up to 4,096 characters and 50 parameters;
# a longer one is parsed again at every execution. A purchase's one statement grows with
# each mechanic that writes with it: 6,063 characters with stamp cards and challenges,
# whose parse cost ~130 µs of CPU a purchase (bench/README.md, "Issue 18").
LONGEST_KEPT_STATEMENT = 32_768
MOST_KEPT_PARAMETERS = 200


def keep_long_statements_parsed() -> None:
    """Raise psycopg's bounds on the statements whose parse it keeps (module constants
    it reads at each execution; left alone where a psycopg has none)."""
    from psycopg import _queries  # a private module: its bounds have no public setting

    if hasattr(_queries, "MAX_CACHED_STATEMENT_LENGTH"):
        _queries.MAX_CACHED_STATEMENT_LENGTH = max(_queries.MAX_CACHED_STATEMENT_LENGTH,
                                                   LONGEST_KEPT_STATEMENT)  # fmt: skip
    if hasattr(_queries, "MAX_CACHED_STATEMENT_PARAMS"):
        _queries.MAX_CACHED_STATEMENT_PARAMS = max(_queries.MAX_CACHED_STATEMENT_PARAMS,
                                                   MOST_KEPT_PARAMETERS)  # fmt: skip


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
        # a reader (`reading`) takes no lock: in WAL mode it sees the last commit and
        # never waits for a writer nor makes one wait
        reader = connection.get_execution_options().get(READER, False)
        connection.exec_driver_sql("BEGIN" if reader else "BEGIN IMMEDIATE")

    _writers[engine] = WriterQueue()
    return engine


# SQLite has one writer at a time. Left to itself, every other writer sleeps in SQLite's
# busy handler and tries again (backing off up to 100 ms a try): sixteen connections
# writing at once made one purchase in a hundred wait 1.5 s. So the writes of one
# process queue for their turn in order (`writing`) and each starts the moment the one
# before it ends. Across processes (`serve --workers N` on SQLite) only SQLite's own
# lock orders them: on SQLite, one server process is the better choice.
READER = "kopilka_reader"
_writers: weakref.WeakKeyDictionary[Engine, WriterQueue] = weakref.WeakKeyDictionary()


class WriterQueue:
    """A lock granted in the order it was asked for (a plain lock wakes any waiter);
    the thread that holds it may take it again (a use case inside another's turn)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._waiting: deque[threading.Lock] = deque()
        self._owner: int | None = None
        self._depth = 0

    def acquire(self) -> None:
        me = threading.get_ident()
        with self._guard:
            if self._owner == me:
                self._depth += 1
                return
            if self._owner is None:
                self._owner, self._depth = me, 1
                return
            turn = threading.Lock()
            turn.acquire()
            self._waiting.append(turn)
        turn.acquire()  # released by the writer before us, who hands us the queue
        with self._guard:
            self._owner, self._depth = me, 1

    def release(self) -> None:
        with self._guard:
            self._depth -= 1
            if self._depth:
                return
            self._owner = None
            if self._waiting:
                self._waiting.popleft().release()  # its next holder takes it on waking
                self._owner = -1  # nobody else may slip in before it does


@contextmanager
def writing(engine: Engine) -> Iterator[None]:
    """Wait for this process's turn to write (SQLite); nothing to wait for elsewhere."""
    queue = _writers.get(engine)
    if queue is None:
        yield
        return
    queue.acquire()
    try:
        yield
    finally:
        queue.release()


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
        yield connection.execution_options(**{READER: True})
        connection.commit()
