"""Alembic environment: the engine comes from `kopilka.platform.migrate`, never from an ini file."""

from __future__ import annotations

from alembic import context

from kopilka.platform.tables import metadata

engine = context.config.attributes["engine"]
with engine.connect() as connection:
    if connection.dialect.name == "sqlite":
        # SQLite changes a table by copying it; with foreign keys enforced, dropping the old
        # copy of a referenced table fails. The pragma only works outside a transaction,
        # so it goes to the driver before SQLAlchemy begins one.
        connection.connection.dbapi_connection.execute("PRAGMA foreign_keys=OFF")
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
    if connection.dialect.name == "sqlite":
        connection.connection.dbapi_connection.execute("PRAGMA foreign_keys=ON")
