"""What the exchange's console page shows: the pairs as declared, the program's latest
exchanges and a day's reconciliation."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select

from kopilka.kernel.money import format_minor
from kopilka.mechanics.exchange.model import LocalSide, Pair, exchange_of
from kopilka.mechanics.exchange.reconciliation import reconciliation
from kopilka.mechanics.exchange.saga import saga_item
from kopilka.mechanics.exchange.tables import exchanges
from kopilka.programs.handlers import load_program

SHOWN = 100


def exchange_overview(
    engine: Engine, program_code: str, *, day: date | None, now: datetime
) -> dict[str, Any]:
    """The pairs, the latest `SHOWN` exchanges, and the reconciliation of `day` (the
    program's today when None)."""
    with engine.connect() as connection:
        program = load_program(connection, program_code)
        rows = connection.execute(
            select(exchanges).where(exchanges.c.program_id == program.program_id)
            .order_by(exchanges.c.id.desc()).limit(SHOWN)
        ).all()  # fmt: skip
    settings = program.calculator.program
    digits = settings.points.precision
    day = day or now.astimezone(ZoneInfo(settings.timezone)).date()
    return {
        "pairs": [_pair_item(pair, digits) for pair in exchange_of(settings).pairs],
        "exchanges": [saga_item(row, digits) for row in rows],
        "reconciliation": reconciliation(engine, program_code, day),
    }


def _pair_item(pair: Pair, digits: int) -> dict[str, Any]:
    return {
        "code": pair.code,
        "name": pair.name,
        "other": pair.other.name,
        "kind": "program" if isinstance(pair.other, LocalSide) else "partner",
        "rate": f"{pair.rate.give} : {pair.rate.get}",
        "min": format_minor(pair.min_points, digits),
        "fee_percent": str(pair.fee.percent),
        "fee_points": format_minor(pair.fee.points, digits),
        "daily_limit": format_minor(pair.daily_limit, digits) if pair.daily_limit else None,
        "timeout_minutes": pair.timeout_minutes,
        "sends": pair.sends,
        "receives": pair.receives,
    }
