"""The secret that signs the console's sessions and members' personal links.

`KOPILKA_SECRET` wins when it is set. Otherwise the embedded database keeps a secret of
its own beside it — `kopilka.sqlite3.secret` for `kopilka.sqlite3`, mode 0600, made on
first use — so `kopilka serve`, `kopilka demo` and `kopilka members link` on one SQLite
file agree without any setup, and sessions and links outlive a restart. A PostgreSQL
database (or an in-memory SQLite one) has no file to keep it beside: without the
variable there is no shared secret, and the server draws a random one per start.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from sqlalchemy.engine import make_url

from kopilka.platform.db import database_url

SUFFIX = ".secret"


def shared_secret(url: str | None = None) -> str | None:
    """`KOPILKA_SECRET`, else the secret kept beside the SQLite file `url` names (made
    now if there is none yet), else None."""
    explicit = os.environ.get("KOPILKA_SECRET")
    if explicit:
        return explicit
    path = secret_path(url)
    return None if path is None else _read_or_create(path)


def secret_path(url: str | None = None) -> Path | None:
    """Where the database `url` keeps its secret; None for a database that is no file."""
    parsed = make_url(database_url(url))
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):  # a URI filename: its options are not part of the name
        return None
    return Path(database + SUFFIX)


def _read_or_create(path: Path) -> str:
    if not path.exists():
        _create(path)
    secret = path.read_text(encoding="utf-8").strip()
    if not secret:
        raise OSError(f"{path} is empty: delete it to have a new secret made")
    return secret


def _create(path: Path) -> None:
    """Write a new secret to a draft readable by its owner only, then link it into place:
    of two first starts at once, one links and the other reads the same secret."""
    draft = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(secrets.token_urlsafe(32) + "\n")
    try:
        os.link(draft, path)
    except FileExistsError:
        pass  # another process made it first: its secret is the one
    finally:
        draft.unlink()
