"""What revisions read of the data as it was stored: a program's time zone, a moment.

Shared by the revisions that back-fill (0016, 0017) and imported by nothing else: a
revision must read the data as the revisions before it left it, so these read the
tables directly and must not change their meaning once a revision uses them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

UTC = ZoneInfo("UTC")


def program_zones(bind: Any) -> dict[int, ZoneInfo]:
    """Each program's time zone, as its version in force declares it (UTC if none)."""
    query = sa.text(
        "SELECT p.id, v.document FROM programs p JOIN program_versions v "
        "ON v.program_id = p.id AND v.version = p.current_version"
    ).columns(document=sa.JSON)
    return {
        program_id: ZoneInfo((document or {}).get("timezone") or "UTC")
        for program_id, document in bind.execute(query)
    }


def moment(value: Any) -> datetime:
    """A stored moment as an aware datetime (SQLite hands back text or naive values)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    stored: datetime = value
    return stored if stored.tzinfo is not None else stored.replace(tzinfo=UTC)
