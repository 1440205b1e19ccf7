"""Alembic, driven from code: `kopilka migrate` and the tests call `upgrade(engine)`.

The platform's migrations are one line of history (`migrations/versions`); a mechanic
registered with a `migrations` folder brings an Alembic branch of its own (its first
revision forks from the platform revision it needs and carries a branch label), so a
mechanic is added without touching the platform's history, and `upgrade` brings every
branch to its head.
"""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from kopilka.checkout.mechanic import mechanics

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    branches = [str(mechanic.migrations) for mechanic in mechanics() if mechanic.migrations]
    # Alembic splits the option on this separator; spaces would split a path with one
    config.set_main_option("path_separator", "os")
    config.set_main_option(
        "version_locations", os.pathsep.join([str(MIGRATIONS / "versions"), *branches])
    )
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """Bring the database to `revision` (a fresh database and an old one alike)."""
    command.upgrade(_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(_config(engine), revision)


def is_current(engine: Engine) -> bool:
    """True when the database is at the newest migration."""
    heads = set(ScriptDirectory.from_config(_config(engine)).get_heads())
    with engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads()) == heads
