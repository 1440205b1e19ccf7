"""Every storage test runs twice: on SQLite (a file of its own) and on PostgreSQL (a schema of
its own), each a copy of the run's migrated template (tests/databases.py).

PostgreSQL is found at $KOPILKA_TEST_PG (default postgresql://postgres@127.0.0.1:5432/test).
Where it can't be reached, the PostgreSQL runs are skipped and the summary says so — except
under CI=true, where an unreachable PostgreSQL fails them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import cache
from typing import Any, TypeVar

import pytest
from sqlalchemy import Engine, create_engine, event, text

from kopilka.platform.files import load_document
from kopilka.programs.handlers import apply_program
from tests.conftest import EXAMPLES
from tests.databases import PG_URL, Templates

NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
_skipped_pg: list[str] = []


@cache
def postgresql_problem() -> str | None:
    """Why PostgreSQL can't be used, or None when it can."""
    try:
        with create_engine(PG_URL).connect() as connection:
            connection.execute(text("select 1"))
    except Exception as error:  # any failure to connect means: not available
        return f"{type(error).__name__}: {str(error).splitlines()[0]}"
    compact_catalogs()
    return None


def require_postgresql(node_id: str | None = None) -> None:
    """Go on only with PostgreSQL: under `CI=true` its absence fails the test, elsewhere
    it skips it (counted for the summary's `PostgreSQL part NOT run` when `node_id`)."""
    problem = postgresql_problem()
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is required in CI and can't be reached: {problem}")
    if node_id is not None:
        _skipped_pg.append(node_id)
    pytest.skip(f"PostgreSQL not reachable ({problem})")


# Every PostgreSQL test makes a schema of ~40 tables and drops it: a run leaves ~1.5 million
# dead rows in the system catalogs, and where autovacuum is off (as on the CI machine) they
# pile up run after run — the catalogs of `test` had grown to 837 MB, and every CREATE
# TABLE of a migration slowed with them (console tests' set-up: 0.5 s → 2.4 s late in a run).
CATALOGS = ("pg_attribute", "pg_class", "pg_depend", "pg_type", "pg_constraint", "pg_index",
            "pg_attrdef", "pg_namespace", "pg_trigger", "pg_sequence", "pg_shdepend")  # fmt: skip


def compact_catalogs() -> None:
    """Give the test database's catalogs back their dead rows (before and after a run).
    Not in an xdist worker: its VACUUM FULL would lock the catalogs under the other
    worker's tests; the controller compacts before its workers start and after they end
    (tests/conftest.py)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    statement = "VACUUM FULL " + ", ".join(f"pg_catalog.{name}" for name in CATALOGS)
    try:
        with create_engine(PG_URL, isolation_level="AUTOCOMMIT").connect() as connection:
            connection.execute(text("SET lock_timeout = '10s'"))
            connection.execute(text(statement))
    except Exception:  # only the suite's speed depends on it; never its outcome
        return


def pytest_sessionfinish() -> None:
    if postgresql_problem.cache_info().currsize and postgresql_problem() is None:
        compact_catalogs()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path, templates: Templates) -> Iterator[Engine]:
    """A migrated database of the test's own: a copy of the run's template (a SQLite file;
    a PostgreSQL schema), or, for a test marked `real_migration`, migrated by `upgrade`."""
    migrate = request.node.get_closest_marker("real_migration") is not None
    if request.param == "sqlite":
        db = templates.sqlite(tmp_path / "kopilka.sqlite3", migrate=migrate)
        yield db
        db.dispose()
        return
    require_postgresql(request.node.nodeid)
    with templates.postgresql(migrate=migrate, pool_size=20, max_overflow=60) as db:
        yield db


@pytest.fixture
def zerno_engine(engine: Engine) -> Engine:
    """A database holding the seed-002 café chain."""
    document = load_document(EXAMPLES / "zerno" / "program.yaml")
    apply_program(engine, document, actor="test", now=NOW)
    return engine


def pytest_terminal_summary(terminalreporter) -> None:  # pragma: no cover - reporting only
    if _skipped_pg:
        terminalreporter.write_sep(
            "!", f"PostgreSQL part NOT run: {len(_skipped_pg)} storage tests ran on SQLite only"
        )


T = TypeVar("T")


def at_once(work: Callable[[], T], times: int = 2) -> list[T]:
    """`work` in `times` threads started together (as several workers would run it);
    their results — and the first exception any of them raised, raised here."""
    start = threading.Barrier(times)

    def together() -> T:
        start.wait()
        return work()

    with ThreadPoolExecutor(times) as pool:
        futures = [pool.submit(together) for _ in range(times)]
        return [future.result() for future in futures]


def statements_of(engine: Engine, work: Callable[[], Any]) -> list[str]:
    """Every statement (or pipelined batch, joined by ";\n") `work` sends on `engine`,
    in order, but a lone BEGIN (SQLite's, or the driver's): what a test counts."""
    seen: list[str] = []

    def record(*args: Any) -> None:  # (conn, cursor, statement, …)
        seen.append(args[2])

    event.listen(engine, "before_cursor_execute", record)
    try:
        work()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return [sql for sql in seen if sql.strip().upper() not in ("BEGIN", "BEGIN IMMEDIATE")]
