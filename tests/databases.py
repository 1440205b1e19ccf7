"""The tests' databases: migrated once per run, copied for each test.

Migrating a fresh database costs ~0.14 s on SQLite and ~2 s on PostgreSQL (Alembic loads
and runs every revision of every mechanic), and the storage, API and console tests want
a fresh one each. So `Templates` migrates one database per dialect when a test first asks
for it and hands out copies: on SQLite a copy of the file (~3 ms); on PostgreSQL a schema
replayed in one round trip from what `pg_dump` wrote of the migrated template schema.

A PostgreSQL copy is not dropped when its test ends but emptied back to the template's
rows and kept for the next test (~30 ms, with the check that its structure is unchanged),
since replaying the ~70 tables' script and dropping them cost ~0.25 s on an idle server,
over 1 s on a busy one, and left the catalogs thousands of dead rows per test to bloat
(autovacuum is off on the CI machine). A copy whose structure a test changed is dropped.
tests/store/test_database_templates.py proves a copy, and a kept copy, is the migration.
`migrate=True` (the `real_migration` marker, for the `engine` fixture) migrates for real
instead, and so does every PostgreSQL test where pg_dump can't run.

A database of its own per PostgreSQL test (`CREATE DATABASE … TEMPLATE`, ~60 ms with its
DROP on an idle server) was measured too and not taken: PostgreSQL 15 checkpoints at
every DROP DATABASE, and with other runs on the server a copy and its drop took 0.88 s
(median), more than migrating (0.71 s); the replayed script took 0.45 s.

A template belongs to the set of mechanics' migration folders it was made with: a test
that registers a mechanic with an Alembic branch of its own gets another template, never
a copy that lacks (or has) the branch.

`make test` runs the suite in two pytest-xdist workers, each a process with a `Templates`
of its own: its SQLite templates in its own temporary folder, and its PostgreSQL template
and copies in schemas named after the worker (`PYTEST_XDIST_WORKER`, e.g.
`kopilka_template_gw0_…`, `t_gw1_…`) and a random part, so no two workers — nor two runs
on one server — share a schema, and each drops only its own when it closes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from kopilka.checkout.mechanic import mechanics
from kopilka.platform.db import make_engine
from kopilka.platform.migrate import upgrade

PG_URL = os.environ.get("KOPILKA_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def schema_name(prefix: str) -> str:
    """A new schema's name: `prefix`, the xdist worker this process is (none when pytest
    runs alone), and a random part."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return "_".join(part for part in (prefix, worker, uuid.uuid4().hex[:12]) if part)


def migration_folders() -> tuple[str, ...]:
    """The mechanics' Alembic branches `upgrade` would migrate now (a template's key)."""
    return tuple(str(mechanic.migrations) for mechanic in mechanics() if mechanic.migrations)


class Templates:
    """Migrated databases to copy, made on first use."""

    def __init__(self, folder: Path, postgresql_url: str = PG_URL) -> None:
        self.folder = folder
        self.postgresql_url = postgresql_url
        self._sqlite: dict[tuple[str, ...], Path] = {}
        # the migrated template schema (None where pg_dump could not write its script) and
        # the copies kept for the next tests, by the migration folders they were made with
        self._postgresql: dict[tuple[str, ...], Template | None] = {}
        self._kept: dict[tuple[str, ...], list[Copy]] = {}
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
        search_path (a copy of the template, or with `migrate` migrated by `upgrade`);
        `options` go to the engine. When the block ends a copy whose structure is as it was
        made is emptied back to the template's rows and kept for the next test; any other
        schema is dropped."""
        if migrate or self._postgresql_template() is None:
            with self._migrated_schema(**options) as engine:
                yield engine
            return
        key = migration_folders()
        copy = self._take_copy(key)
        engine = make_engine(self.postgresql_url, connect_args=search_path(copy.schema), **options)
        try:
            yield engine
        finally:
            engine.dispose()
            self._give_back(key, copy)

    @contextmanager
    def _migrated_schema(self, **options: Any) -> Iterator[Engine]:
        schema = schema_name("t")
        self._execute(f"CREATE SCHEMA {schema}")
        engine = make_engine(self.postgresql_url, connect_args=search_path(schema), **options)
        try:
            upgrade(engine)
            yield engine
        finally:
            engine.dispose()
            self._execute(f"DROP SCHEMA {schema} CASCADE")

    def _take_copy(self, key: tuple[str, ...]) -> Copy:
        """A kept copy when there is one, else a new one replayed from the template's script."""
        kept = self._kept.setdefault(key, [])
        if kept:
            return kept.pop()
        template = self._postgresql[key]
        assert template is not None
        schema = schema_name("t")
        self._execute(template.script.replace(template.schema, schema))
        return Copy(schema, self._scalar(structure_of(schema)))

    def _give_back(self, key: tuple[str, ...], copy: Copy) -> None:
        """Empty `copy` back to the template's rows and keep it, or drop it: when its
        structure changed (a test altered or migrated it), when emptying it failed, or when
        it has served `COPY_USES` tests (autovacuum may be off: its tables' dead rows pile up)."""
        template = self._postgresql[key]
        assert template is not None
        copy.uses += 1
        if copy.uses < COPY_USES:
            try:
                self._execute(template.emptying(copy))
            except psycopg.Error:  # changed, locked, or not ours to empty: made afresh instead
                pass
            else:
                self._kept[key].append(copy)
                return
        self._execute(f"DROP SCHEMA {copy.schema} CASCADE")

    def close(self) -> None:
        """Drop the kept copies and the templates."""
        schemas = [copy.schema for kept in self._kept.values() for copy in kept]
        schemas += [template.schema for template in self._postgresql.values() if template]
        if schemas:
            self._execute("".join(f"DROP SCHEMA {schema} CASCADE;" for schema in schemas))
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

    def _postgresql_template(self) -> Template | None:
        """The migrated template schema (kept until `close`: a kept copy's rows come back
        from it), or None where pg_dump can't write the script that copies it."""
        key = migration_folders()
        if key not in self._postgresql:
            schema = schema_name("kopilka_template")
            self._execute(f"CREATE SCHEMA {schema}")
            engine = make_engine(self.postgresql_url, connect_args=search_path(schema))
            try:
                upgrade(engine)
                self._postgresql[key] = self._describe_template(engine, schema)
            finally:
                engine.dispose()
            if self._postgresql[key] is None:
                self._execute(f"DROP SCHEMA {schema} CASCADE")
        return self._postgresql[key]

    def _describe_template(self, engine: Engine, schema: str) -> Template | None:
        script = self._dump(schema)
        if script is None:
            return None
        with engine.connect() as connection:
            tables = connection.exec_driver_sql(TABLES).scalars().all()
            filled = [table for table in tables if connection.exec_driver_sql(
                f'SELECT EXISTS (SELECT FROM "{table}")'
            ).scalar_one()]  # fmt: skip
            sequences = connection.exec_driver_sql(SEQUENCES).scalars().all()
        return Template(schema, script, tuple(tables), tuple(filled), tuple(sequences))

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
        with self._admin_engine().connect() as connection:
            cursor = connection.connection.cursor()
            cursor.execute(script)  # no parameters: sent as is, however many statements
            cursor.close()

    def _scalar(self, query: str) -> Any:
        with self._admin_engine().connect() as connection:
            return connection.exec_driver_sql(query).scalar_one()

    def _admin_engine(self) -> Engine:
        if self._admin is None:
            self._admin = make_engine(
                self.postgresql_url, isolation_level="AUTOCOMMIT", pool_pre_ping=True
            )
        return self._admin


TABLES = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1"
SEQUENCES = "SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()"

# A kept copy serves at most this many tests, then is dropped: emptying leaves dead rows,
# and where autovacuum is off (as on the CI machine) nothing takes them back.
COPY_USES = 25


@dataclass
class Copy:
    """A copy of a template handed to tests: its schema, the fingerprint of its structure
    when it was made, and how many tests it has served."""

    schema: str
    structure: str
    uses: int = 0


@dataclass(frozen=True)
class Template:
    """A migrated template schema: the script that copies it (pg_dump's), its tables, those
    that hold rows after the migration, and its sequences."""

    schema: str
    script: str
    tables: tuple[str, ...]
    filled: tuple[str, ...]
    sequences: tuple[str, ...]

    def emptying(self, copy: Copy) -> str:
        """One statement that puts `copy` back as this template made it — every table
        emptied, the template's rows and sequence values put back — after checking that its
        structure is the one it was made with; it fails (and changes nothing) otherwise.
        Emptying a table costs ~0.1 ms; TRUNCATE of all of them ~350 ms, more than a copy.
        Replica mode lets the DELETEs past the foreign keys and the ledger's append-only
        triggers (a superuser's privilege; without it the copy is dropped instead)."""
        schema = copy.schema
        deletes = "".join(f'DELETE FROM {schema}."{table}";\n' for table in self.tables)
        rows = "".join(
            f'INSERT INTO {schema}."{table}" OVERRIDING SYSTEM VALUE '
            f'SELECT * FROM {self.schema}."{table}";\n'
            for table in self.filled
        )
        sequences = "".join(
            f"PERFORM setval('{schema}.\"{sequence}\"', last_value, is_called) "
            f'FROM {self.schema}."{sequence}";\n'
            for sequence in self.sequences
        )
        return f"""DO $emptying$ BEGIN
PERFORM set_config('lock_timeout', '5s', true);
IF {structure_of(schema)} IS DISTINCT FROM '{copy.structure}' THEN
    RAISE EXCEPTION 'the structure of % changed', '{schema}';
END IF;
PERFORM set_config('session_replication_role', 'replica', true);
{deletes}{rows}{sequences}END $emptying$;"""


def structure_of(schema: str) -> str:
    """A query for the fingerprint of `schema`'s structure: each object's oid and what a
    test could alter in place (columns, defaults, constraints, triggers enabled or not,
    functions, sequences and who owns them, enum labels, privileges). Any DDL — a migration
    up or down, a dropped constraint, a replaced function — changes it. pg_class is read
    once (it has no index on the schema, and the catalogs may be bloated)."""
    namespace = f"'{schema}'::regnamespace"
    parts = [
        """SELECT concat_ws(':', 'c', c.oid, c.relname, c.relkind, c.relnatts, c.relchecks,
            c.relhastriggers, c.relpersistence, c.relrowsecurity, c.relacl, c.reloptions,
            CASE WHEN c.relkind IN ('v', 'm') THEN md5(pg_get_viewdef(c.oid)) END)
        FROM relation c""",
        """SELECT concat_ws(':', 'a', a.attrelid, a.attnum, a.attname, a.atttypid,
            a.atttypmod, a.attnotnull, a.atthasdef, a.attisdropped, a.attidentity,
            a.attgenerated, a.attacl)
        FROM relation c JOIN pg_attribute a ON a.attrelid = c.oid""",
        """SELECT concat_ws(':', 'd', d.oid, pg_get_expr(d.adbin, d.adrelid))
        FROM relation c JOIN pg_attrdef d ON d.adrelid = c.oid""",
        """SELECT concat_ws(':', 'k', k.oid, k.conname, k.convalidated, k.condeferred)
        FROM relation c JOIN pg_constraint k ON k.conrelid = c.oid""",
        """SELECT concat_ws(':', 't', t.oid, t.tgname, t.tgenabled)
        FROM relation c JOIN pg_trigger t ON t.tgrelid = c.oid""",
        f"""SELECT concat_ws(':', 'f', p.oid, p.proname, md5(p.prosrc), p.proconfig)
        FROM pg_proc p WHERE p.pronamespace = {namespace}""",
        """SELECT concat_ws(':', 's', q.seqrelid, q.seqtypid, q.seqstart, q.seqincrement,
            q.seqmax, q.seqmin, q.seqcache, q.seqcycle)
        FROM relation c JOIN pg_sequence q ON q.seqrelid = c.oid""",
        """SELECT concat_ws(':', 'o', d.objid, d.refobjid, d.refobjsubid, d.deptype)
        FROM relation c JOIN pg_depend d ON d.objid = c.oid
        WHERE d.classid = 'pg_class'::regclass AND c.relkind = 'S'""",
        f"""SELECT concat_ws(':', 'e', e.oid, e.enumlabel, e.enumsortorder)
        FROM pg_enum e JOIN pg_type y ON y.oid = e.enumtypid
        WHERE y.typnamespace = {namespace}""",
        f"""SELECT concat_ws(':', 'n', n.nspowner, n.nspacl)
        FROM pg_namespace n WHERE n.oid = {namespace}""",
    ]
    union = "\n    UNION ALL ".join(parts)
    relations = f"SELECT * FROM pg_class WHERE relnamespace = {namespace}"
    return f"""(WITH relation AS MATERIALIZED ({relations})
SELECT md5(string_agg(item, ',' ORDER BY item)) FROM (\n    {union}\n) structure(item))"""


def search_path(schema: str) -> dict[str, str]:
    """An engine's `connect_args` that make `schema` its search_path."""
    return {"options": f"-csearch_path={schema}"}
