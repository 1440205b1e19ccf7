"""The café of tests/store with clubs: `wine` (paid, 990.00 a month or 500 points,
renewing by itself, 3 days' grace; its members alone buy the `reserve` category and buy
NEW-1 early; its rule triples their points), `friends` (by invitation; SECRET-1 is
theirs; the flag `vip-service`) and `trial` (paid, 100.00 for 10 days, renewed by hand)."""

from __future__ import annotations

import itertools
from copy import deepcopy
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from kopilka.checkout.purchases import process_purchase, quote_purchase
from kopilka.mechanics.clubs import handlers as clubs
from kopilka.members.handlers import register_member
from kopilka.platform.files import load_document
from kopilka.programs.handlers import apply_program
from tests.conftest import EXAMPLES
from tests.store.conftest import NOW, engine, zerno_engine

__all__ = ["NOW", "engine", "zerno_engine"]

DAY = timedelta(days=1)
CLUBS: list[dict[str, Any]] = [
    {"code": "wine", "name": "Винный клуб",
     "join": {"by": "payment", "fee": "990.00", "points": "500", "period": "month",
              "auto_renew": True, "grace_days": 3},
     "privileges": {"categories": ["reserve"], "flags": ["sommelier"],
                    "early_access": [{"skus": ["NEW-1"], "members_from": "2026-03-01",
                                      "everyone_from": "2026-04-01"}]}},
    {"code": "friends", "name": "Друзья", "join": {"by": "invitation"},
     "privileges": {"skus": ["SECRET-1"], "flags": ["vip-service"]}},
    {"code": "trial", "join": {"by": "payment", "fee": "100.00", "days": 10}},
]  # fmt: skip
WINE_RULE = {"code": "wine-triple", "kind": "client", "when": {"clubs": ["wine"]},
             "then": {"multiplier": 3}}  # fmt: skip
_numbers = itertools.count(1)


def club_program(code: str = "zerno") -> dict[str, Any]:
    document: dict[str, Any] = deepcopy(load_document(EXAMPLES / "zerno" / "program.yaml"))  # type: ignore[arg-type]
    document["code"] = code
    catalog = document["catalog"]
    catalog["categories"] += [
        {"code": "wine", "name": "Вино"},
        {"code": "reserve", "name": "Резерв", "parent": "wine"},
    ]
    catalog["products"] += [
        {"sku": "WINE-1", "name": "Бароло", "category": "reserve", "price": "3000.00"},
        {"sku": "NEW-1", "name": "Новинка", "category": "bakery", "price": "200.00"},
        {"sku": "SECRET-1", "name": "Секретное меню", "category": "lunch", "price": "500.00"},
    ]  # fmt: skip
    document["rules"] = [*document["rules"], deepcopy(WINE_RULE)]
    document["clubs"] = deepcopy(CLUBS)
    return document


@pytest.fixture
def cafe(zerno_engine: Engine) -> Engine:
    apply_program(zerno_engine, club_program(), actor="test", now=NOW - 30 * DAY)
    return zerno_engine


def member(engine: Engine, card: str, *, at: datetime = NOW) -> str:
    register_member(engine, "zerno", {"card": card}, now=at)
    return f"card:{card}"


def pay(
    engine: Engine, who: str, club: str = "wine", *, at: datetime = NOW, amount: str = "990.00",
    reference: str | None = None, **more: Any,
) -> tuple[dict[str, Any], bool]:  # fmt: skip
    payment = {"reference": reference or f"PAY-{next(_numbers)}", "amount": amount}
    return clubs.join_club(engine, "zerno", who, {"club": club, "payment": payment, **more},
                           actor="key:1", now=at)  # fmt: skip


def invite(engine: Engine, uses: int, *, at: datetime = NOW, **more: Any) -> str:
    answer, _ = clubs.create_invite(engine, "zerno", "friends", {"uses": uses, **more},
                                    actor="key:1", now=at)  # fmt: skip
    return str(answer["code"])


def join_by_invite(
    engine: Engine, who: str, code: str, *, at: datetime = NOW
) -> tuple[dict[str, Any], bool]:
    return clubs.join_club(engine, "zerno", who, {"club": "friends", "invite": code},
                           actor="key:2", now=at)  # fmt: skip


def receipt(who: str | None, *lines: str, at: datetime = NOW) -> dict[str, Any]:
    body: dict[str, Any] = {
        "receipt_id": f"R-{next(_numbers)}",
        "location": "kiosk",
        "at": at.isoformat(),
        "lines": [{"sku": sku} for sku in lines],
    }
    if who is not None:
        body["member"] = who
    return body


def buy(engine: Engine, who: str | None, *lines: str, at: datetime = NOW) -> dict[str, Any]:
    return process_purchase(engine, "zerno", receipt(who, *lines, at=at), now=at,
                            actor="pos").answer  # fmt: skip


def quote(engine: Engine, who: str | None, *lines: str, at: datetime = NOW) -> dict[str, Any]:
    return quote_purchase(engine, "zerno", receipt(who, *lines, at=at), now=at)


def status_of(engine: Engine, who: str, club: str, at: datetime) -> str:
    part = clubs.member_clubs(engine, "zerno", who, now=at)
    return next(str(m["status"]) for m in part["memberships"] if m["club"] == club)
