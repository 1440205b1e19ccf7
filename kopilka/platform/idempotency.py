"""Exactly once: retried transactions, request fingerprints and `Idempotency-Key` answers.

`retrying` runs a use case in one transaction and runs it again when the database says
a concurrent transaction got in the way (a unique key taken by a copy of this request,
a serialization failure, a deadlock, a dropped connection) — the caller never sees it.
`remembered` answers a POST carrying an `Idempotency-Key` the way it answered the first
time: the same key with the same body gives the first answer and has no second effect,
the same key with another body (or on another operation) is `idempotency_conflict`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, insert, select
from sqlalchemy.exc import DBAPIError, IntegrityError

from kopilka.kernel.errors import IdempotencyConflict, InvalidInput, Problem
from kopilka.kernel.reading import MAX_TEXT
from kopilka.platform.db import writing
from kopilka.platform.tables import idempotency_keys
from kopilka.programs.handlers import canonical, load_program, to_json

T = TypeVar("T")
ATTEMPTS = 8
Answer = tuple[dict[str, Any], bool]  # the answer, and whether it was made now
# what a caller writes beside a use case's own rows, in its transaction: the console's
# audit row, so an action and its record are kept or lost together
AfterWrite = Callable[[Connection, dict[str, Any]], None]


def fingerprint(body: object) -> str:
    """The request's identity for replays: its canonical JSON, hashed."""
    return hashlib.sha256(canonical(to_json(body)).encode()).hexdigest()


def retrying(engine: Engine, work: Callable[[Connection], T], *, begun_by_work: bool = False) -> T:
    """Run `work` in one transaction; a race the database reports retries it. On SQLite
    it first waits for its turn among this process's writers (`writing`).

    `begun_by_work` (PostgreSQL): the driver starts no transaction by itself — `work`
    sends `BEGIN` with its first statements (in their round trip: psycopg would wait for
    its own BEGIN in a round trip of its own) and may send `COMMIT` with its last. Its
    first statement must be that BEGIN; the transaction is committed (or rolled back) at
    the end as any other. Ignored elsewhere."""
    explicit = begun_by_work and engine.dialect.name == "postgresql"
    for attempt in range(ATTEMPTS):
        try:
            if not explicit:
                with writing(engine), engine.begin() as connection:
                    return work(connection)
            with engine.connect() as plain:
                # the driver in autocommit sends no BEGIN of its own; the pool restores
                # the connection's isolation level when it is returned
                connection = plain.execution_options(isolation_level="AUTOCOMMIT")
                with connection.begin():
                    return work(connection)
        except DBAPIError as error:
            if attempt == ATTEMPTS - 1 or not _is_retryable(error):
                raise
    raise AssertionError("unreachable")


def _is_retryable(error: DBAPIError) -> bool:
    if isinstance(error, IntegrityError):
        return True  # a concurrent copy of this request took the unique key first
    if error.connection_invalidated:
        return True  # the connection died; the pool gives a fresh one
    code = getattr(error.orig, "sqlstate", None)
    return code in ("40001", "40P01")  # serialization failure, deadlock


def followed(
    attempt: Callable[[Connection], Answer], after: AfterWrite | None
) -> Callable[[Connection], Answer]:
    """`attempt`, then `after(connection, answer)` in the same transaction. A replay of an
    `Idempotency-Key` runs neither: it did nothing to record."""
    if after is None:
        return attempt

    def both(connection: Connection) -> Answer:
        answer, made = attempt(connection)
        after(connection, answer)
        return answer, made

    return both


def remembered(
    connection: Connection,
    program_id: int,
    key: str | None,
    operation: str,
    request_hash: str,
    now: datetime,
    work: Callable[[], Answer],
) -> Answer:
    """`work`'s answer, or — for a key seen before — the answer it gave then."""
    if key is None:
        return work()
    if not key.strip() or len(key) > MAX_TEXT:
        raise InvalidInput([Problem("Idempotency-Key", f"must be 1 to {MAX_TEXT} characters")])
    earlier = connection.execute(
        select(
            idempotency_keys.c.operation,
            idempotency_keys.c.request_hash,
            idempotency_keys.c.answer,
        ).where(idempotency_keys.c.program_id == program_id, idempotency_keys.c.key == key)
    ).one_or_none()
    if earlier is not None:
        if (earlier.operation, earlier.request_hash) != (operation, request_hash):
            raise IdempotencyConflict(f"Idempotency-Key {key!r} was used with a different request")
        answer: dict[str, Any] = earlier.answer
        return answer, False
    answer, created = work()
    connection.execute(
        insert(idempotency_keys).values(
            program_id=program_id,
            key=key,
            operation=operation,
            request_hash=request_hash,
            answer=answer,
            created_at=now,
        )
    )
    return answer, created


def idempotent(
    engine: Engine,
    program_code: str,
    key: str | None,
    operation: str,
    request: object,
    now: datetime,
    attempt: Callable[[Connection], Answer],
) -> Answer:
    """`attempt` in one retried transaction; with an `Idempotency-Key`, the answer the key
    got the first time (in the same transaction as the work, so both or neither stay).
    `request` is what identifies the call: the body, and the path's ids."""
    if key is None:
        return retrying(engine, attempt)
    request_hash = fingerprint(request)

    def keyed(connection: Connection) -> Answer:
        program = load_program(connection, program_code)
        return remembered(connection, program.program_id, key, operation, request_hash, now,
                          lambda: attempt(connection))  # fmt: skip

    return retrying(engine, keyed)
