"""The exchange tests' fixtures: two programs of one Kopilka that exchange points — the
café `zerno` (points with 2 decimals) and `north` (whole points) — each member with
points to give, and the steps of an exchange: ask, let the worker run, look at both
sides' balances and the reconciliation (on SQLite and PostgreSQL, as every storage test)."""

from __future__ import annotations

import copy
import itertools
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine

from kopilka.ledger.verify import verify
from kopilka.mechanics.exchange.reconciliation import reconciliation
from kopilka.mechanics.exchange.saga import start_exchange
from kopilka.mechanics.exchange.seam import hooked
from kopilka.members.balances import adjust, balance
from kopilka.members.handlers import register_member
from kopilka.platform.files import load_document
from kopilka.platform.worker import run_due_work
from kopilka.programs.handlers import apply_program
from tests.conftest import EXAMPLES
from tests.store.conftest import NOW, engine

__all__ = ["engine"]

MINUTE = timedelta(minutes=1)
# zerno gives 1000 of its points for 800 of north's; 2 % + 5.00 points fee; at least 100
TO_NORTH: dict[str, Any] = {
    "code": "north", "name": "Северное сияние", "program": "north",
    "rate": {"give": "1000", "get": "800"}, "min": "100", "fee": {"percent": "2", "points": "5"},
    "daily_limit": "3000", "timeout_minutes": 15,
}  # fmt: skip
# north gives 1 of its points for 1 of zerno's, no fee
TO_ZERNO: dict[str, Any] = {"code": "zerno", "program": "zerno", "rate": {"give": "1", "get": "1"}}
_ids = itertools.count(1)


class Killed(Exception):
    """A process dying at a step of the saga (raised by the test seam)."""


def program(code: str, precision: int, pairs: list[dict[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = copy.deepcopy(load_document(EXAMPLES / "zerno" / "program.yaml"))  # type: ignore[arg-type]
    document.update(code=code, exchange={"pairs": pairs})
    document["points"] = {**document["points"], "precision": precision}
    return document


def set_up(engine: Engine, *, to_north: dict[str, Any] | None = None,
           to_zerno: dict[str, Any] | None = None) -> Engine:  # fmt: skip
    apply_program(engine, program("zerno", 2, [to_north or TO_NORTH]), actor="test", now=NOW)
    apply_program(engine, program("north", 0, [to_zerno or TO_ZERNO]), actor="test", now=NOW)
    for code, card in (("zerno", "100001"), ("zerno", "100002"), ("north", "900001")):
        register_member(engine, code, {"card": card}, now=NOW)
        adjust(engine, code, f"card:{card}", {"points": "5000", "reason": "opening"},
               actor="test", now=NOW)  # fmt: skip
    return engine


@pytest.fixture
def pair(engine: Engine) -> Engine:
    """zerno ⇄ north: Анна (100001) and Boris (100002) in zerno, Olga (900001) in north,
    5000 points each."""
    return set_up(engine)


def exchange(engine: Engine, points: str, *, member: str = "card:100001",
             to_member: str = "card:900001", to_program: str = "north",
             transaction_id: str | None = None, at: datetime = NOW,
             program_code: str = "zerno") -> tuple[dict[str, Any], bool]:  # fmt: skip
    body = {"transaction_id": transaction_id or f"tx-{next(_ids)}", "to_program": to_program,
            "to_member": to_member, "points": points}  # fmt: skip
    return start_exchange(engine, program_code, member, body, actor="test", now=at)


def killed_at(step: str, side: str | None = None) -> AbstractContextManager[None]:
    """The seam's hook that kills the work at `step` (of program `side`, when given)."""

    def hook(program_code: str, reached: str, transaction_id: str) -> None:
        if reached == step and (side is None or program_code == side):
            raise Killed(f"{program_code} killed at {step} of {transaction_id}")

    return hooked(hook)


def worker(engine: Engine, at: datetime) -> dict[str, int]:
    """What `kopilka worker --once --now AT` does, the exchange's part of it."""
    done = run_due_work(engine, now=at)
    return {name: count for name, count in done.items() if name.startswith("exchange.") and count}


def available(engine: Engine, code: str, card: str) -> Decimal:
    return Decimal(balance(engine, code, f"card:{card}")["available"])


def assert_sound(engine: Engine, *days: datetime) -> None:
    """`verify` finds nothing, and each day's reconciliation of both programs is empty."""
    _, found = verify(engine)
    assert found == []
    for moment in days or (NOW,):
        day = moment.date()
        for code in ("zerno", "north"):
            assert reconciliation(engine, code, day)["items"] == []
