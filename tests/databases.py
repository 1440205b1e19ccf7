"""The tests' databases: migrated once per run, copied for each test.

Migrating a fresh database costs ~0.14 s on SQLite and ~0.35 s on PostgreSQL (Alembic
loads and runs every revision), and the storage, API and console tests want a fresh one
each. So `Templates` migrates one database per dialect when a test first asks for it and
hands out copies: on SQLite a copy of the file (~3 ms); on PostgreSQL a schema of the
test's own, made by replaying in one round trip what `pg_dump` wrote of the migrated
template schema (~0.15 s). tests/store/test_database_templates.py proves a copy is the
migration. `migrate=True` (the `real_migration` marker, for the `engine` fixture)
migrates for real instead, and so does every PostgreSQL test where pg_dump can't run.

A database of its own per PostgreSQL test (`CREATE DATABASE … TEMPLATE`, ~60 ms with its
DROP on an idle server) was measured too and not taken: PostgreSQL 15 checkpoints at
every DROP DATABASE, and with other runs on the server a copy and its drop took 0.88 s
(median), more than migrating (0.71 s); the replayed script took 0.45 s.

A template belongs to the set of mechanics' migration folders it was made with: a test
that registers a mechanic with an Alembic branch of its own gets another template, never
a copy that lacks (or has) the branch.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from kopilka.checkout.mechanic import mechanics
from kopilka.platform.db import make_engine
from kopilka.platform.migrate import upgrade

PG_URL = os.environ.get("KOPILKA_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def migration_folders() -> tuple[str, ...]:
    """The mechanics' Alembic branches `upgrade` would migrate now (a template's key)."""
    return tuple(str(mechanic.migrations) for mechanic in mechanics() if mechanic.migrations)


class Templates:
    """Migrated databases to copy, made on first use."""

    def __init__(self, folder: Path, postgresql_url: str = PG_URL) -> None:
        self.folder = folder
        self.postgresql_url = postgresql_url
        self._sqlite: dict[tuple[str, ...], Path] = {}
        # the template schema's name and the script that makes a copy of it (None where
        # pg_dump could not write one), by the migration folders it was made with
        self._postgresql: dict[tuple[str, ...], tuple[str, str] | None] = {}
        self._admin: Engine | None = None

    def sqlite(self, path: Path, *, migrate: bool = False) -> Engine:
        """A migrated SQLite database at `path`: a copy of the template, or with `migrate`
        migrated by `upgrade` itself."""
        if migrate:
            engine = make_engine(f"sqlite:///{path}")
            upgrade(engine)
            return engine
        shutil.copyfile(self._sqlite_template(), path)
        return make_engine(f"sqlite:///{path}")

    @contextmanager
    def postgresql(self, *, migrate: bool = False, **options: Any) -> Iterator[Engine]:
        """A migrated schema of its own in the PostgreSQL test database, its engine's
        search_path (a copy of the template, or with `migrate` migrated by `upgrade`),
        dropped when the block ends; `options` go to the engine."""
        copy = None if migrate else self._postgresql_template()
        schema = f"t_{uuid.uuid4().hex[:12]}"
        if copy is None:
            self._execute(f"CREATE SCHEMA {schema}")
        else:
            template, script = copy
            self._execute(script.replace(template, schema))
        engine = make_engine(self.postgresql_url, connect_args=search_path(schema), **options)
        try:
            if copy is None:
                upgrade(engine)
            yield engine
        finally:
            engine.dispose()
            self._execute(f"DROP SCHEMA {schema} CASCADE")

    def close(self) -> None:
        if self._admin is not None:
            self._admin.dispose()

    def _sqlite_template(self) -> Path:
        key = migration_folders()
        if key not in self._sqlite:
            path = self.folder / f"template-{len(self._sqlite)}.sqlite3"
            engine = make_engine(f"sqlite:///{path}")
            upgrade(engine)
            engine.dispose()  # the last connection to close folds the WAL into the file
            if Path(f"{path}-wal").exists():
                raise RuntimeError(f"{path}: its WAL outlived its connections")
            self._sqlite[key] = path
        return self._sqlite[key]

    def _postgresql_template(self) -> tuple[str, str] | None:
        """The migrated template schema's name (dropped once dumped) and the script that
        makes it, or None where pg_dump can't write it."""
        key = migration_folders()
        if key not in self._postgresql:
            schema = f"kopilka_template_{uuid.uuid4().hex[:12]}"
            self._execute(f"CREATE SCHEMA {schema}")
            engine = make_engine(self.postgresql_url, connect_args=search_path(schema))
            try:
                upgrade(engine)
                script = self._dump(schema)
                self._postgresql[key] = None if script is None else (schema, script)
            finally:
                engine.dispose()
                self._execute(f"DROP SCHEMA {schema} CASCADE")
        return self._postgresql[key]

    def _dump(self, schema: str) -> str | None:
        """pg_dump's script of `schema` — DDL, rows and sequences — as one transaction whose
        settings end with it (it runs on a pooled connection)."""
        url = make_url(self.postgresql_url).set(drivername="postgresql")
        command = ["pg_dump", "--schema", schema, "--no-owner", "--no-privileges", "--inserts",
                   "--dbname", url.render_as_string(hide_password=False)]  # fmt: skip
        try:
            dumped = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        except (OSError, subprocess.CalledProcessError) as error:
            why = getattr(error, "stderr", None) or error
            warnings.warn(f"pg_dump failed, so every PostgreSQL test migrates: {why}", stacklevel=1)
            return None
        # psql's meta-commands (`\restrict`) are not SQL
        script = "\n".join(line for line in dumped.splitlines() if not line.startswith("\\"))
        script = script.replace("\nSET ", "\nSET LOCAL ").replace(
            "set_config('search_path', '', false)", "set_config('search_path', '', true)"
        )
        return f"BEGIN;\n{script}\nCOMMIT;"

    def _execute(self, script: str) -> None:
        """`script` (statements, no parameters) in one round trip, on a connection to the
        test database that is pre-pinged: a test may have restarted the server."""
        if self._admin is None:
            self._admin = make_engine(
                self.postgresql_url, isolation_level="AUTOCOMMIT", pool_pre_ping=True
            )
        with self._admin.connect() as connection:
            cursor = connection.connection.cursor()
            cursor.execute(script)  # no parameters: sent as is, however many statements
            cursor.close()


def search_path(schema: str) -> dict[str, str]:
    """An engine's `connect_args` that make `schema` its search_path."""
    return {"options": f"-csearch_path={schema}"}
