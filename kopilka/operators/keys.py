"""Access keys: created (shown once), listed, revoked, and checked on every request.

A key reads `kpk_` + 32 random URL-safe characters (192 bits): the prefix makes a leaked
key easy to spot in logs and by secret scanners. Only its SHA-256 is stored; listing
shows the first characters so an operator can tell keys apart.

Roles and what they may do (docs/api.md has the full table):

    admin    everything in the program, keys included
    pos      quote, purchases (at its own location), confirm/cancel, refunds, members
    partner  quote, purchases, refunds, members (read and register); a key bound to a
             coalition partner (`partner`) acts at that partner's locations only and
             sees only that partner's purchases, claims and statements
    support  members, balance, history, adjustments
    analyst  reading only
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from kopilka.kernel.errors import InvalidInput, NotFound, Problem
from kopilka.kernel.reading import MAX_TEXT, row_id, text_problem
from kopilka.platform.db import reading
from kopilka.platform.idempotency import AfterWrite
from kopilka.platform.tables import api_keys
from kopilka.programs.handlers import load_program

PREFIX = "kpk_"
ROLES = ("admin", "pos", "partner", "support", "analyst")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's program, role, (for a terminal) location and (for a
    coalition partner's key) partner."""

    key_id: int
    program: str
    role: str
    location: str | None
    partner: str | None = None


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(
    engine: Engine, program: str, role: str, *, location: str | None = None,
    partner: str | None = None, label: str | None = None, now: datetime,
    after: AfterWrite | None = None,
) -> tuple[str, dict[str, Any]]:  # fmt: skip
    """A new key — its text, to be shown once — and its public record; `after` writes
    beside it in its transaction."""
    problems = []
    if role not in ROLES:
        problems.append(Problem("role", f"{role!r} is not one of {', '.join(ROLES)}"))
    if role == "pos" and not location:
        problems.append(Problem("location", "a pos key is bound to a location: give one"))
    if partner is not None and role != "partner":
        problems.append(Problem("partner", f"only a partner key is bound to a partner, not {role}"))
    for name, value, longest in (
        ("location", location, 64),
        ("partner", partner, 64),
        ("label", label, MAX_TEXT),
    ):
        problem = text_problem(value, max_length=longest) if value is not None else None
        if problem is not None:  # the API's rule for text, for the CLI and the console too
            problems.append(Problem(name, problem))
    if problems:
        raise InvalidInput(problems)
    key = PREFIX + secrets.token_urlsafe(24)
    with engine.begin() as connection:
        if location is not None:  # a key bound to a place the program lacks could sell nothing
            _refuse_unknown_location(connection, program, location)
        if partner is not None:
            _refuse_unknown_partner(connection, program, partner, location)
        key_id = connection.execute(
            insert(api_keys)
            .values(program=program, key_hash=digest(key), prefix=key[:10], role=role,
                    location=location, partner=partner, label=label, created_at=now)
            .returning(api_keys.c.id)
        ).scalar_one()  # fmt: skip
        answer = key_json(connection.execute(select(api_keys).where(api_keys.c.id == key_id)).one())
        if after is not None:
            after(connection, answer)
    return key, answer


def _refuse_unknown_location(connection: Connection, program: str, location: str) -> None:
    known = load_program(connection, program).calculator.program.locations
    if location not in known:
        places = ", ".join(sorted(known)) or "none"
        raise InvalidInput([Problem("location", f"{location!r} is not a location of program "
                                    f"{program} (its locations: {places})")])  # fmt: skip


def _refuse_unknown_partner(
    connection: Connection, program: str, partner: str, location: str | None
) -> None:
    partners = load_program(connection, program).calculator.program.partners
    found = next((known for known in partners if known.code == partner), None)
    if found is None:
        codes = ", ".join(sorted(known.code for known in partners)) or "none"
        raise InvalidInput([Problem("partner", f"{partner!r} is not a partner of program "
                                    f"{program} (its partners: {codes})")])  # fmt: skip
    if location is not None and location not in found.locations:
        raise InvalidInput([Problem("location", f"{location!r} is not a location of "
                                    f"partner {partner!r}")])  # fmt: skip


def partner_locations(engine: Engine, program: str, partner: str) -> frozenset[str]:
    """The locations of `partner` in the program as it stands (none when it left it)."""
    with reading(engine, one_snapshot=False) as connection:
        partners = load_program(connection, program).calculator.program.partners
    return frozenset(next((known.locations for known in partners if known.code == partner), ()))


def key_json(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "program": row.program,
        "role": row.role,
        "location": row.location,
        "partner": row.partner,
        "label": row.label,
        "prefix": row.prefix,
        "created_at": row.created_at.isoformat(),
        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
    }


def list_keys(engine: Engine, program: str) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(api_keys).where(api_keys.c.program == program).order_by(api_keys.c.id)
        ).all()
    return [key_json(row) for row in rows]


def revoke_key(
    engine: Engine, program: str, key_id: str, *, now: datetime, after: AfterWrite | None = None
) -> dict[str, Any]:
    """Revoke a key of `program`; revoking it again answers the same. `after` writes beside
    the revocation in its transaction (and is not called when it was revoked before)."""
    number = row_id(key_id) or -1
    with engine.begin() as connection:
        row = connection.execute(
            select(api_keys).where(api_keys.c.id == number, api_keys.c.program == program)
        ).one_or_none()
        if row is None:
            raise NotFound(f"key {key_id!r} does not exist")
        if row.revoked_at is None:
            connection.execute(
                update(api_keys).where(api_keys.c.id == number).values(revoked_at=now)
            )
            row = connection.execute(select(api_keys).where(api_keys.c.id == number)).one()
            if after is not None:
                after(connection, key_json(row))
    return key_json(row)


def authenticate(engine: Engine, key: str) -> Principal | None:
    """The caller a key names, or None for an unknown or revoked key."""
    if not key.startswith(PREFIX):
        return None
    with reading(engine, one_snapshot=False) as connection:
        row = connection.execute(
            select(api_keys.c.id, api_keys.c.program, api_keys.c.role, api_keys.c.location,
                   api_keys.c.partner)
            .where(api_keys.c.key_hash == digest(key), api_keys.c.revoked_at.is_(None))
        ).one_or_none()  # fmt: skip
    if row is None:
        return None
    return Principal(row.id, row.program, row.role, row.location, row.partner)
