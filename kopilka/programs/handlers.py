"""Applying a program file: every change becomes a new, kept version.

Applying the same document again changes nothing (the answer says so); every purchase
records the version that computed it. Calculators are compiled once per version and
kept for the life of the process.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from kopilka.checkout.calculator import Calculator
from kopilka.kernel.errors import Conflict, NotFound
from kopilka.kernel.program_parser import parse_program
from kopilka.ledger.accounts import open_accounts
from kopilka.platform.tables import program_versions, programs


@dataclass(frozen=True)
class AppliedProgram:
    code: str
    version: int
    created: bool  # False: the document equals the current version; nothing was written


@dataclass(frozen=True)
class LoadedProgram:
    program_id: int
    version_id: int
    version: int
    calculator: Calculator


# By document hash: a version never changes, and equal documents compile alike (the hash,
# not the row id, so two databases in one process can't mix their programs up).
_calculators: dict[str, Calculator] = {}


def apply_program(
    engine: Engine, document: object, *, actor: str, now: datetime, based_on: int | None = None,
    after: Callable[[Connection, AppliedProgram], None] | None = None,
) -> AppliedProgram:  # fmt: skip
    """Validate and store a program document as the program's next version. `based_on`:
    the version the document was made from — another version since is `Conflict`.
    `after` writes beside a new version in its transaction (the console's audit row)."""
    program = parse_program(document)
    stored = to_json(document)
    digest = hashlib.sha256(canonical(stored).encode()).hexdigest()
    with engine.begin() as connection:
        row = connection.execute(
            select(programs.c.id, programs.c.current_version).where(programs.c.code == program.code)
        ).one_or_none()
        if row is None:
            program_id = connection.execute(
                insert(programs)
                .values(code=program.code, current_version=1, created_at=now)
                .returning(programs.c.id)
            ).scalar_one()
            open_accounts(connection, program_id)
            version = 1
        else:
            program_id, current = row.id, row.current_version
            if based_on is not None and current != based_on:
                raise Conflict(f"program {program.code} changed meanwhile: version {current}, "
                               f"not {based_on}")  # fmt: skip
            current_hash = connection.execute(
                select(program_versions.c.document_hash).where(
                    program_versions.c.program_id == program_id,
                    program_versions.c.version == current,
                )
            ).scalar_one()
            if current_hash == digest:
                return AppliedProgram(program.code, current, created=False)
            version = current + 1
            connection.execute(
                update(programs).where(programs.c.id == program_id).values(current_version=version)
            )
        connection.execute(
            insert(program_versions).values(
                program_id=program_id,
                version=version,
                document=stored,
                document_hash=digest,
                actor=actor,
                created_at=now,
            )
        )
        applied = AppliedProgram(program.code, version, created=True)
        if after is not None:
            after(connection, applied)
    return applied


def load_program(connection: Connection, code: str, version: int | None = None) -> LoadedProgram:
    """The program's current version — or its `version` (a claim's purchase is priced at
    the version in force at its receipt's time) — compiled (once per version per process)."""
    wanted = programs.c.current_version if version is None else version
    row = connection.execute(
        select(*CURRENT_VERSION_COLUMNS)
        .join(program_versions, program_versions.c.program_id == programs.c.id)
        .where(programs.c.code == code, program_versions.c.version == wanted)
    ).one_or_none()
    if row is None:
        raise NotFound(f"program {code!r} does not exist" if version is None
                       else f"program {code!r} has no version {version}")  # fmt: skip
    loaded = compiled(connection, row)
    return loaded if version is None else replace(loaded, version=version)


# What `compiled` needs of a program's current version, for queries that read it alongside.
CURRENT_VERSION_COLUMNS = (
    programs.c.id.label("program_id"),
    program_versions.c.id.label("version_id"),
    programs.c.current_version,
    program_versions.c.document_hash,
)


def compiled(connection: Connection, row: Any) -> LoadedProgram:
    """The program version `row` names (CURRENT_VERSION_COLUMNS), compiled once per process."""
    calculator = _calculators.get(row.document_hash)
    if calculator is None:
        document = connection.execute(
            select(program_versions.c.document).where(program_versions.c.id == row.version_id)
        ).scalar_one()
        calculator = Calculator(parse_program(document))
        _calculators[row.document_hash] = calculator
    return LoadedProgram(row.program_id, row.version_id, row.current_version, calculator)


def to_json(value: Any) -> Any:
    """A parsed document as plain JSON: numbers as decimal strings, dates as ISO text."""
    if isinstance(value, dict):
        return {str(key): to_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(item) for item in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def read_program(engine: Engine, code: str) -> dict[str, Any]:
    """The program's current version: its number, when and by whom, and the document."""
    with engine.connect() as connection:
        row = connection.execute(
            select(programs.c.code, program_versions.c.version, program_versions.c.document,
                   program_versions.c.actor, program_versions.c.created_at)
            .join(program_versions, program_versions.c.program_id == programs.c.id)
            .where(programs.c.code == code,
                   program_versions.c.version == programs.c.current_version)
        ).one_or_none()  # fmt: skip
    if row is None:
        raise NotFound(f"program {code!r} does not exist")
    return _version_json(row)


def _version_json(row: Any) -> dict[str, Any]:
    return {
        "code": row.code,
        "version": row.version,
        "applied_by": row.actor,
        "applied_at": row.created_at.isoformat(),
        "document": row.document,
    }


def sole_program(engine: Engine) -> str | None:
    """The code of the only program the database holds; None for none or several (what
    the console's sign-in page fills in for the operator)."""
    with engine.connect() as connection:
        codes = connection.execute(select(programs.c.code).limit(2)).scalars().all()
    return codes[0] if len(codes) == 1 else None


def list_versions(engine: Engine, code: str) -> dict[str, Any]:
    """Every version of a program, newest first, without their documents (one version's
    document: `read_program_version`)."""
    with engine.connect() as connection:
        current = connection.execute(
            select(programs.c.id, programs.c.current_version).where(programs.c.code == code)
        ).one_or_none()
        if current is None:
            raise NotFound(f"program {code!r} does not exist")
        rows = connection.execute(
            select(program_versions.c.version, program_versions.c.document_hash,
                   program_versions.c.actor, program_versions.c.created_at)
            .where(program_versions.c.program_id == current.id)
            .order_by(program_versions.c.version.desc())
        ).all()  # fmt: skip
    items = [
        {"version": row.version, "applied_by": row.actor,
         "applied_at": row.created_at.isoformat(), "document_hash": row.document_hash}
        for row in rows
    ]  # fmt: skip
    return {"code": code, "current": current.current_version, "items": items}


def read_program_version(engine: Engine, code: str, version: int) -> dict[str, Any]:
    """One version of a program with its document; `NotFound` for a version never made."""
    with engine.connect() as connection:
        row = connection.execute(
            select(programs.c.code, program_versions.c.version, program_versions.c.document,
                   program_versions.c.actor, program_versions.c.created_at)
            .join(program_versions, program_versions.c.program_id == programs.c.id)
            .where(programs.c.code == code, program_versions.c.version == version)
        ).one_or_none()  # fmt: skip
    if row is None:
        raise NotFound(f"program {code!r} has no version {version}")
    return _version_json(row)
