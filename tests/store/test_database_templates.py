"""A test's database is a copy of the run's migrated template (tests/databases.py): the copy
must be what `upgrade` makes — every table, column, default, sequence, constraint, index,
trigger and function, and the rows (alembic_version's) — or the suite tests another schema.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from kopilka.checkout.purchases import process_purchase
from kopilka.members.handlers import register_member
from kopilka.platform.db import make_engine
from kopilka.platform.files import load_document
from kopilka.programs.handlers import apply_program
from tests.conftest import EXAMPLES
from tests.databases import PG_URL, Templates
from tests.store.conftest import NOW, require_postgresql

# the platform's own revision among alembic_version's rows (digits sort before the branches')
MAINLINE = "(SELECT min(version_num) FROM alembic_version)"
# Each statement changes one more thing a copy could get wrong; the description must see it.
SQLITE_CHANGES = [
    "DROP INDEX ix_lots_available_expires_at",  # a partial index
    "DROP TABLE member_links",
    f"UPDATE alembic_version SET version_num = '0013' WHERE version_num = {MAINLINE}",
    "PRAGMA user_version = 7",
]
POSTGRESQL_CHANGES = [
    "DROP TRIGGER transfers_append_only ON transfers",
    "DROP FUNCTION kopilka_refuse_ledger_change()",
    "DROP INDEX ix_lots_available_expires_at",  # a partial index
    "ALTER TABLE lots DROP CONSTRAINT ck_lots_ck_lots_remaining",
    "ALTER TABLE transfers DROP CONSTRAINT fk_transfers_refund_id_refunds",
    "ALTER TABLE members ALTER COLUMN card DROP NOT NULL",
    "ALTER TABLE members ALTER COLUMN id SET DEFAULT 0",
    "SELECT setval('accounts_id_seq', 5)",
    "ALTER SEQUENCE accounts_id_seq OWNED BY NONE",
    f"UPDATE alembic_version SET version_num = '0013' WHERE version_num = {MAINLINE}",
]
# The changes of rows, not of structure: emptying a copy undoes them.
ROW_CHANGES = {change for change in POSTGRESQL_CHANGES if change.startswith(("SELECT", "UPDATE"))}
PURCHASE = {"receipt_id": "R-1", "location": "kiosk", "at": "2026-03-10T11:00:00+03:00",
            "member": "card:100009", "lines": [{"sku": "TEA-400", "qty": 1}]}  # fmt: skip


def test_a_sqlite_copy_is_the_migration_itself(templates: Templates, tmp_path: Path) -> None:
    real = templates.sqlite(tmp_path / "real.sqlite3", migrate=True)
    copy = templates.sqlite(tmp_path / "copy.sqlite3")
    assert_alike_and_each_change_seen(real, copy, SQLITE_CHANGES, describe_sqlite)
    real.dispose()
    copy.dispose()


def test_a_postgresql_copy_is_the_migration_itself(templates: Templates) -> None:
    require_postgresql()
    with templates.postgresql(migrate=True) as real, templates.postgresql() as copy:
        assert_alike_and_each_change_seen(real, copy, POSTGRESQL_CHANGES, describe_postgresql)


def test_a_kept_copy_comes_back_as_the_migration(tmp_path: Path) -> None:
    """A copy a test wrote to — a program, a member, a purchase in the append-only ledger,
    sequences advanced, alembic_version changed — is emptied back when it is given back, and
    the next test gets it as the migration made it."""
    require_postgresql()
    templates = Templates(tmp_path)
    try:
        with templates.postgresql() as used:
            schema = current_schema(used)
            apply_program(used, load_document(EXAMPLES / "zerno" / "program.yaml"),
                          actor="test", now=NOW)  # fmt: skip
            register_member(used, "zerno", {"card": "100009"}, now=NOW)
            process_purchase(used, "zerno", PURCHASE, now=NOW, actor="pos:test")
            with used.begin() as connection:
                connection.exec_driver_sql(
                    f"UPDATE alembic_version SET version_num = 'zz' WHERE version_num = {MAINLINE}"
                )
                assert connection.exec_driver_sql("SELECT count(*) FROM transfers").scalar()
        with templates.postgresql() as again, templates.postgresql(migrate=True) as real:
            assert current_schema(again) == schema
            assert describe_postgresql(again) == describe_postgresql(real)
    finally:
        templates.close()
    assert not schema_exists(schema)


def test_a_copy_whose_structure_changed_is_dropped(tmp_path: Path) -> None:
    """Each change to a copy's structure is seen when it is given back: it is dropped, and
    the next test gets a new copy."""
    require_postgresql()
    templates = Templates(tmp_path)
    try:
        for change in POSTGRESQL_CHANGES:
            with templates.postgresql() as copy:
                schema = current_schema(copy)
                with copy.begin() as connection:  # each change on its own: the trigger stays
                    connection.exec_driver_sql(change.replace("change()", "change() CASCADE"))
            structural = change not in ROW_CHANGES
            assert schema_exists(schema) is not structural, change
            with templates.postgresql() as following:
                assert (current_schema(following) == schema) is not structural, change
    finally:
        templates.close()


def current_schema(engine: Engine) -> str:
    with engine.connect() as connection:
        return str(connection.exec_driver_sql("SELECT current_schema()").scalar_one())


def schema_exists(schema: str) -> bool:
    with make_engine(PG_URL).connect() as connection:
        query = "SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = %(schema)s)"
        return bool(connection.exec_driver_sql(query, {"schema": schema}).scalar_one())


def assert_alike_and_each_change_seen(
    real: Engine, copy: Engine, changes: list[str], describe: Callable[[Engine], Any]
) -> None:
    """The copy describes as the migrated database does, and the description sees each of
    `changes` made to the copy (so it could tell the two apart)."""
    described = describe(real)
    assert describe(copy) == described
    for change in changes:
        with copy.begin() as connection:
            connection.exec_driver_sql(change)
        assert describe(copy) != described, change
        described = describe(copy)


def describe_sqlite(engine: Engine) -> dict[str, Any]:
    with engine.connect() as connection:
        master = connection.exec_driver_sql(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
        ).all()
        tables = [name for kind, name, _, _ in master if kind == "table"]
        pragmas = {
            pragma: connection.exec_driver_sql(f"PRAGMA {pragma}").scalar()
            for pragma in ("journal_mode", "user_version", "application_id", "encoding")
        }
        rows = _rows(connection, tables)
    schema = [(kind, name, table, _statement(sql)) for kind, name, table, sql in master]
    return {"schema": schema, "pragmas": pragmas, "rows": rows}


CONSTRAINTS = ("CONSTRAINT ", "PRIMARY KEY", "FOREIGN KEY", "UNIQUE", "CHECK")


def _statement(sql: str | None) -> tuple[str, ...]:
    """A CREATE TABLE's columns in order and its constraints as a set: Alembic's batch mode
    (a table rebuilt on SQLite) writes the constraints in an order that differs run to run,
    so two real migrations of the same revisions differ there, and only there."""
    if sql is None or not sql.startswith("CREATE TABLE"):
        return (sql or "",)
    head, _, body = sql.partition("(\n\t")
    items = body.removesuffix("\n)").split(", \n\t")
    columns = [item for item in items if not item.startswith(CONSTRAINTS)]
    return (head, *columns, *sorted(item for item in items if item.startswith(CONSTRAINTS)))


# One query per kind of object in the engine's schema (its search_path), each row in words
# PostgreSQL itself writes (pg_get_*def), ordered: what `pg_dump -s` would show; and the
# data. The schema's own name is taken out: a copy's is another.
CATALOG = {
    "schema": """SELECT nspowner::regrole::text, coalesce(nspacl::text, '')
        FROM pg_namespace WHERE nspname = current_schema()""",
    "relations": """SELECT c.relname, c.relkind, c.relpersistence,
            coalesce(array_to_string(c.reloptions, ','), '')
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = current_schema() ORDER BY 1""",
    "columns": """SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
            a.attnotnull, coalesce(pg_get_expr(d.adbin, d.adrelid), ''), a.attidentity,
            a.attgenerated, a.attcollation::regcollation::text
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE n.nspname = current_schema() AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY c.relname, a.attnum""",
    "constraints": """SELECT c.relname, k.conname, k.contype, pg_get_constraintdef(k.oid),
            k.condeferrable, k.condeferred, k.convalidated
        FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
        JOIN pg_namespace n ON n.oid = k.connamespace
        WHERE n.nspname = current_schema() ORDER BY 1, 2""",
    "indexes": """SELECT tablename, indexname, indexdef FROM pg_indexes
        WHERE schemaname = current_schema() ORDER BY 1, 2""",
    "triggers": """SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid), t.tgenabled
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = current_schema() AND NOT t.tgisinternal ORDER BY 1, 2""",
    "functions": """SELECT p.proname, pg_get_functiondef(p.oid)
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = current_schema() AND p.prokind IN ('f', 'p') ORDER BY 1, 2""",
    "types": """SELECT t.typname, t.typtype, coalesce(string_agg(e.enumlabel, ','
            ORDER BY e.enumsortorder), '')
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        LEFT JOIN pg_enum e ON e.enumtypid = t.oid
        WHERE n.nspname = current_schema() AND t.typtype IN ('e', 'd', 'r', 'm')
        GROUP BY 1, 2 ORDER BY 1""",
    "sequences": """SELECT sequencename, data_type::text, start_value, min_value, max_value,
            increment_by, cycle, cache_size, last_value
        FROM pg_sequences WHERE schemaname = current_schema() ORDER BY 1""",
    "owned_sequences": """SELECT s.relname, d.refobjid::regclass::text, d.refobjsubid, d.deptype
        FROM pg_depend d JOIN pg_class s ON s.oid = d.objid
        JOIN pg_namespace n ON n.oid = s.relnamespace
        WHERE s.relkind = 'S' AND n.nspname = current_schema()
            AND d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
        ORDER BY 1, 2""",
    "views": """SELECT viewname, definition FROM pg_views
        WHERE schemaname = current_schema() ORDER BY 1""",
}


def describe_postgresql(engine: Engine) -> dict[str, Any]:
    with engine.connect() as connection:
        schema = connection.exec_driver_sql("SELECT current_schema()").scalar_one()
        described: dict[str, Any] = {
            kind: [
                tuple(str(value).replace(schema, "<schema>") for value in row)
                for row in connection.exec_driver_sql(query)
            ]
            for kind, query in CATALOG.items()
        }
        tables = [name for name, kind, _, _ in described["relations"] if kind in ("r", "p")]
        described["rows"] = _rows(connection, tables)
    return described


def _rows(connection: Any, tables: list[str]) -> dict[str, list[str]]:
    """Every table's rows, as text, in order (a fresh migration holds alembic_version's)."""
    return {
        table: sorted(repr(tuple(row)) for row in connection.exec_driver_sql(
            f'SELECT * FROM "{table}"'
        ))
        for table in tables
    }  # fmt: skip
