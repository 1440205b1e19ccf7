"""The café of tests/store as a small coalition — its own partner `zerno` (rest-a, rest-b,
kiosk) and a bakery partner `lavka` (shop) — taking claims with an SLA of 24 hours; and
the steps of a claim's life: file, confirm, reject."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from kopilka.mechanics.claims.handlers import decide, file_claim
from kopilka.members.handlers import register_member
from kopilka.platform.files import load_document
from kopilka.programs.handlers import apply_program
from tests.conftest import EXAMPLES
from tests.store.conftest import NOW, engine, zerno_engine

__all__ = ["engine", "zerno_engine"]

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
CARD = "200001"  # a member no rule of the café names: the base 1 %
# a Thursday noon in Moscow: no happy hours, no Monday, no 8 March
RECEIPT_AT = "2026-03-05T12:00:00+03:00"
LAVKA = {"code": "lavka", "name": "Лавка", "locations": [{"code": "shop", "name": "Пекарня"}]}
_numbers = itertools.count(1)


def cafe_document(**more: Any) -> dict[str, Any]:
    document: dict[str, Any] = load_document(EXAMPLES / "zerno" / "program.yaml")  # type: ignore[assignment]
    document["partners"] = [*document["partners"], LAVKA]
    document["claims"] = {"sla_hours": 24}
    return {**document, **more}


def apply(engine: Engine, document: dict[str, Any], at: datetime) -> None:
    apply_program(engine, document, actor="test", now=at)


@pytest.fixture
def cafe(engine: Engine) -> Engine:
    """The coalition café since 30 days before NOW, with the member `CARD`."""
    apply(engine, cafe_document(), NOW - 30 * DAY)
    register_member(engine, "zerno", {"card": CARD}, now=NOW - 30 * DAY)
    return engine


def receipt(**more: Any) -> dict[str, Any]:
    """A claim's body: a tea (150.00) at the kiosk by `CARD` at `RECEIPT_AT`."""
    return {"receipt_id": f"R-{next(_numbers)}", "location": "kiosk", "member": f"card:{CARD}",
            "at": RECEIPT_AT, "lines": [{"sku": "TEA-400", "qty": 1}],
            "note": "the till was offline", **more}  # fmt: skip


def file(engine: Engine, body: dict[str, Any] | None = None, *, at: datetime = NOW,
         actor: str = "key:1") -> dict[str, Any]:  # fmt: skip
    answer, _made = file_claim(engine, "zerno", body or receipt(), actor=actor, now=at)
    return answer


def confirm(engine: Engine, claim: dict[str, Any], *, at: datetime = NOW + HOUR,
            partner: str | None = None, actor: str = "key:2") -> dict[str, Any]:  # fmt: skip
    answer, _made = decide(engine, "zerno", claim["id"], "confirm", None, actor=actor, now=at,
                           partner=partner)  # fmt: skip
    return answer


def reject(engine: Engine, claim: dict[str, Any], reason: str = "no such receipt in our till",
           *, at: datetime = NOW + HOUR, partner: str | None = None) -> dict[str, Any]:  # fmt: skip
    answer, _made = decide(engine, "zerno", claim["id"], "reject", {"reason": reason},
                           actor="key:2", now=at, partner=partner)  # fmt: skip
    return answer
