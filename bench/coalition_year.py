"""A coalition's year through the real pipeline, and every statement checked against the
ledger independently of the settlement code (issue 19).

Run:  .venv/bin/python bench/coalition_year.py                    (100,000 receipts; ~8 min here)
      .venv/bin/python bench/coalition_year.py --receipts 5000    (a smaller year)

In a PostgreSQL database of its own (`--database`, created and dropped by the run; the
server at $KOPILKA_BENCH_PG_SERVER, default the local one): a program of 10 partners on
mixed terms — earning, burning or both; postpaid or prepaid; funded by the partner, the
program or a split; fees per period and per point; one partner leaving mid-year
(`earning_until` 30 June, `redeeming_until` 31 July) whose outstanding points move to
another partner in August. Then a seeded, deterministic year of receipts, one after the
other in time, each through `process_purchase` at its own moment: members earn at one
partner and spend at another, some purchases held and confirmed or cancelled, some
refunded (whole or in part) later. The prepaid partner's first block runs out mid-year:
its purchases are refused with `PrepaidExhausted` and write nothing (row counts
compared), the other partners earn on, a second block lets earning resume. Every
partner's statement is closed as each month ends.

Checked afterwards with plain sums of our own (`check_year`): each statement's points
issued and redeemed against the transfers joined to `purchase_partners`, its
cross-partner flows against each redemption's lots, each line's money against the terms
(Decimal, half up, one rounding per line), closing = opening + lines, each opening the
closing before it, the prepaid blocks' draw against what the partner's purchases earned,
and `verify`. `tests/coalition/test_year.py` runs the same year, smaller, on both databases.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, bindparam, text

from kopilka.checkout.purchases import process_purchase, settle_hold
from kopilka.checkout.refunds import refund_purchase
from kopilka.ledger.verify import verify
from kopilka.mechanics.coalition import handlers
from kopilka.mechanics.coalition.model import PrepaidExhausted
from kopilka.members.handlers import register_member
from kopilka.platform.db import make_engine
from kopilka.platform.migrate import upgrade
from kopilka.platform.tables import Timestamp
from kopilka.programs.handlers import apply_program

CODE = "alliance"
ZONE = ZoneInfo("Europe/Moscow")
YEAR = 2026
STARTS = datetime(YEAR, 1, 1, tzinfo=ZONE)
ENDS = datetime(YEAR + 1, 1, 1, tzinfo=ZONE)
CENT = Decimal("0.01")
HUNDRED = Decimal(100)
PREPAID = "books"
LEAVER, TAKER = "shoes", "grocer"
MOVED_AT = datetime(YEAR, 8, 3, 12, 0, tzinfo=ZONE)
CORRECTION = (
    "cafe",
    Decimal("-250.00"),
    "disputed receipts",
    datetime(YEAR, 3, 15, 12, tzinfo=ZONE),
)
CLOSED_AFTER = timedelta(minutes=30)  # a month's statements are closed this long after it ends

# the partners' terms as the program file gives them (a `None` value is left out)
TERMS: dict[str, dict[str, Any]] = {
    "grocer": {"role": "both", "funded_by": "partner", "price_per_point": "1.00",
               "reimbursement_per_point": "0.90", "reserve_percent": "20",
               "fees": {"per_period": "1500.00", "percent_of_redeemed": "2"}},
    "books": {"role": "both", "billing": "prepaid", "price_per_point": "0.95",
              "reimbursement_per_point": "0.90"},
    "fuel": {"role": "burns", "reimbursement_per_point": "0.85",
             "fees": {"percent_of_redeemed": "1.5"}},
    "shoes": {"role": "both", "funded_by": {"partner_percent": "60"},
              "price_per_point": "1.00", "reimbursement_per_point": "0.90",
              "earning_until": "2026-06-30", "redeeming_until": "2026-07-31"},
    "cinema": {"role": "earns", "funded_by": "program", "price_per_point": "0.80"},
    "pharmacy": {"role": "both", "funded_by": {"partner_percent": "33.3"},
                 "price_per_point": "1.105", "reimbursement_per_point": "0.955",
                 "fees": {"percent_of_issued": "1.5"}},
    "airline": {"role": "both", "funded_by": {"partner_percent": "50"},
                "price_per_point": "0.75", "reimbursement_per_point": "0.70",
                "fees": {"per_period": "5000.00", "percent_of_issued": "0.75",
                         "percent_of_redeemed": "0.25"}},
    "cafe": {"role": "both", "price_per_point": "1.00", "reimbursement_per_point": "0.9",
             "fees": {"percent_of_issued": "3.3", "percent_of_redeemed": "1.25"}},
    "taxi": {"role": "burns", "reimbursement_per_point": "0.8",
             "fees": {"percent_of_redeemed": "0.5"}},
    "hotel": {"role": "earns", "price_per_point": "1.2", "reserve_percent": "10",
              "fees": {"per_period": "2500.00"}},
}  # fmt: skip
PARTNERS = tuple(TERMS)


def program_document() -> dict[str, Any]:
    """The coalition's program: 10 partners, two locations each, 5 % on what is paid."""
    return {
        "code": CODE, "name": "Альянс", "currency": "RUB", "timezone": "Europe/Moscow",
        "points": {"precision": 2, "rounding": "down", "value": "1.00"},
        "accrual": {"base_percent": 5, "on": "paid", "pending_days": 0},
        "redemption": {"base_percent": 100, "min_payable": "0.00"},
        "expiry": None,
        "partners": [{"code": code, "name": code.title(), "locations": [
            {"code": f"{code}-{n}", "name": f"{code} {n}", "timezone": "Europe/Moscow"}
            for n in (1, 2)]} for code in PARTNERS],
        "catalog": {"categories": [{"code": "goods", "name": "Товары"}],
                    "products": [{"sku": "ITEM", "name": "Товар", "category": "goods",
                                  "price": "100.00"}]},
        "partner_terms": [{"partner": code, **terms} for code, terms in TERMS.items()],
    }  # fmt: skip


def earns(partner: str, day: date) -> bool:
    terms = TERMS[partner]
    until = terms.get("earning_until")
    return terms["role"] != "burns" and (until is None or day <= date.fromisoformat(until))


def burns(partner: str, day: date) -> bool:
    terms = TERMS[partner]
    until = terms.get("redeeming_until")
    return terms["role"] != "earns" and (until is None or day <= date.fromisoformat(until))


def months() -> list[tuple[date, date, datetime, datetime]]:
    """The year's months: first and last day, and as instants [start, end) in the zone."""
    found = []
    for month in range(1, 13):
        first = date(YEAR, month, 1)
        following = date(YEAR + (month == 12), month % 12 + 1, 1)
        found.append((first, following - timedelta(days=1),
                      datetime(first.year, first.month, 1, tzinfo=ZONE),
                      datetime(following.year, following.month, 1, tzinfo=ZONE)))  # fmt: skip
    return found


# — the year —


@dataclass
class Prepaid:
    """What happened to the prepaid partner's blocks in the stream."""

    blocks: list[tuple[str, int, int, datetime]] = field(default_factory=list)  # ref, pts, price
    refused: int = 0  # purchases refused with PrepaidExhausted
    refused_unchanged: int = 0  # … of which the row counts were compared: nothing written
    refused_changed: list[str] = field(default_factory=list)
    first_refused_at: int | None = None  # the receipt's place in the stream
    others_earned_meanwhile: int = 0  # purchases at other partners that earned while refused
    earned_after_new_block: int = 0  # purchases there that earned after the second block
    retried_as_new: bool = False  # the first refused receipt, sent again, made a purchase


@dataclass
class Log:
    """What the stream did, for the checks and the report."""

    receipts: int = 0
    purchases: int = 0
    redemptions: int = 0
    holds: dict[str, int] = field(default_factory=lambda: {"confirm": 0, "cancel": 0})
    refunds: dict[str, int] = field(default_factory=lambda: {"whole": 0, "part": 0})
    prepaid: Prepaid = field(default_factory=Prepaid)
    moved: dict[str, Any] = field(default_factory=dict)
    statements: int = 0
    seconds: float = 0.0


class Year:
    """A seeded year of receipts, processed in time order through the pipeline."""

    def __init__(self, engine: Engine, *, receipts: int, members: int, seed: int) -> None:
        self.engine = engine
        self.receipts = receipts
        self.rng = random.Random(seed)
        self.log = Log()
        self.members: list[str] = []
        self.available: dict[str, Decimal] = {}
        self.home: dict[str, tuple[str, str]] = {}  # where a member mostly earns, spends
        self.refundable: list[tuple[str, str, bool]] = []  # purchase, member, has 2 lines
        self.first_block = receipts * 650  # point minor units: runs out mid-year
        self.member_count = members
        self.exhausted_since: int | None = None
        self.first_refused: tuple[dict[str, Any], datetime] | None = None

    def run(self) -> Log:
        started = time.perf_counter()
        apply_program(self.engine, program_document(), actor="year",
                      now=STARTS - timedelta(days=1))  # fmt: skip
        self._register()
        self._block(self.first_block, STARTS + timedelta(minutes=1))
        events = self._events()
        step = (ENDS - STARTS) / (self.receipts + 1)
        for n in range(self.receipts):
            now = STARTS + step * (n + 1) + timedelta(seconds=self.rng.randrange(60))
            while events and events[0][0] <= now:
                moment, action = events.pop(0)
                action(moment)
            self._receipt(n, now.astimezone(UTC))
        for moment, action in events:
            action(moment)
        self.log.seconds = time.perf_counter() - started
        return self.log

    def _register(self) -> None:
        earning = [p for p in PARTNERS if TERMS[p]["role"] != "burns" and p != LEAVER]
        burning = [p for p in PARTNERS if TERMS[p]["role"] != "earns"]
        for n in range(self.member_count):
            member = register_member(self.engine, CODE, {"card": f"{300000 + n}"},
                                     now=STARTS - timedelta(hours=12))["id"]  # fmt: skip
            self.members.append(member)
            self.available[member] = Decimal(0)
            self.home[member] = (self.rng.choice(earning), self.rng.choice(burning))

    def _events(self) -> list[tuple[datetime, Any]]:
        events: list[tuple[datetime, Any]] = [
            (end + CLOSED_AFTER, lambda at, m=(first, last): self._close(m, at))
            for first, last, _start, end in months()
        ]
        events.append((CORRECTION[3], self._correct))
        events.append((MOVED_AT, self._move))
        return sorted(events, key=lambda event: event[0])

    # — one receipt —

    def _receipt(self, n: int, now: datetime) -> None:
        rng = self.rng
        self.log.receipts += 1
        if self.refundable and rng.random() < 0.04:
            self._refund(now)
            return
        member = rng.choice(self.members)
        day = now.astimezone(ZONE).date()
        home_earn, home_spend = self.home[member]
        prices = [self._price() for _ in range(1 if rng.random() < 0.5 else 2)]
        lines = [{"sku": "ITEM", "qty": qty, "price": str(price)}
                 for qty, price in enumerate(prices, start=1)]  # fmt: skip
        total = sum((price * qty for qty, price in enumerate(prices, start=1)), Decimal(0))
        redeem: str | None = None
        if self.available[member] >= 1 and rng.random() < 0.35:
            partner = home_spend if rng.random() < 0.7 else rng.choice(PARTNERS)
            if burns(partner, day):
                redeem = self._redeem_amount(member, total)
        else:
            partner = home_earn if rng.random() < 0.6 else rng.choice(PARTNERS)
        body: dict[str, Any] = {
            "receipt_id": f"Y-{n}", "location": f"{partner}-{rng.randint(1, 2)}",
            "member": member, "at": now.isoformat(), "lines": lines,
        }  # fmt: skip
        if redeem is not None:
            body["redeem"] = redeem
        hold = rng.random() < 0.03
        if hold:
            body["hold"] = True
        self._purchase(body, partner, now, n)

    def _price(self) -> Decimal:
        return Decimal(self.rng.randint(5_000, 300_000)) / 100

    def _redeem_amount(self, member: str, total: Decimal) -> str:
        """Points to pay with: all the receipt allows, or a part of what the member has."""
        if self.rng.random() < 0.2:
            return "max"
        part = min(total, self.available[member] * Decimal(self.rng.uniform(0.2, 1.0)))
        return str(max(CENT, part.quantize(CENT, rounding=ROUND_DOWN)))

    def _purchase(
        self, body: dict[str, Any], partner: str, now: datetime, n: int
    ) -> dict[str, Any] | None:
        """The purchase's answer; None when the prepaid partner's blocks refused it."""
        prepaid = self.log.prepaid
        before = self._counts() if partner == PREPAID and prepaid.refused < 50 else None
        try:
            answer = process_purchase(self.engine, CODE, body, now=now, actor="year").answer
        except PrepaidExhausted:
            self._refused(body, now, n, before)
            return None
        self.log.purchases += 1
        self.log.redemptions += answer["redeemed"] != "0.00"
        self.available[body["member"]] = Decimal(answer["balance"]["available"])
        earned = answer["accrued"] != "0.00"
        if self.exhausted_since is not None and earned and partner != PREPAID:
            prepaid.others_earned_meanwhile += 1
        if prepaid.blocks[1:] and partner == PREPAID and earned:
            prepaid.earned_after_new_block += 1
        if body.get("hold"):
            self._settle(body["member"], answer["purchase_id"], now)
        else:
            two_lines = len(body["lines"]) > 1
            self.refundable.append((answer["purchase_id"], body["member"], two_lines))
        return answer

    def _refused(
        self, body: dict[str, Any], now: datetime, n: int, before: dict[str, int] | None
    ) -> None:
        prepaid = self.log.prepaid
        prepaid.refused += 1
        if before is not None:
            after = self._counts()
            if after == before:
                prepaid.refused_unchanged += 1
            else:
                prepaid.refused_changed.append(f"{body['receipt_id']}: {before} → {after}")
        if self.exhausted_since is None and len(prepaid.blocks) == 1:
            self.exhausted_since = n
            prepaid.first_refused_at = n
            self.first_refused = (body, now)
        # refusals go on for a twentieth of the year's receipts; then a new block
        if self.exhausted_since is not None and n - self.exhausted_since >= self.receipts // 20:
            self._block(self.receipts * 2000, now)
            self.exhausted_since = None
            assert self.first_refused is not None
            retry, _at = self.first_refused  # sent again: a new purchase, not a replay
            newest = self._counts()["purchases"]
            again = self._purchase({**retry, "at": now.isoformat()}, PREPAID, now, n)
            prepaid.retried_as_new = (again is not None and again["accrued"] != "0.00"
                                      and int(again["purchase_id"]) > newest)  # fmt: skip

    def _settle(self, member: str, purchase_id: str, now: datetime) -> None:
        action = "confirm" if self.rng.random() < 0.67 else "cancel"
        answer, _made = settle_hold(self.engine, CODE, purchase_id, action, actor="year",
                                    now=now + timedelta(seconds=30))  # fmt: skip
        self.log.holds[action] += 1
        if "balance" in answer:
            self.available[member] = Decimal(answer["balance"]["available"])
        if action == "confirm":
            self.refundable.append((purchase_id, member, False))

    def _refund(self, now: datetime) -> None:
        chosen = self.refundable.pop(self.rng.randrange(len(self.refundable)))
        purchase_id, member, two_lines = chosen
        body: dict[str, Any] = {"refund_id": f"R-{purchase_id}"}
        part = two_lines and self.rng.random() < 0.5
        if part:
            body["lines"] = [{"n": 1, "qty": "1"}]
        answer, _made = refund_purchase(self.engine, CODE, purchase_id, body, actor="year",
                                        now=now)  # fmt: skip
        self.log.refunds["part" if part else "whole"] += 1
        if answer["balance"] is not None:
            self.available[member] = Decimal(answer["balance"]["available"])

    # — the operator's side —

    def _block(self, points: int, now: datetime) -> None:
        reference = f"PAY-{len(self.log.prepaid.blocks) + 1}"
        price = int((Decimal(points) * Decimal("0.95")).to_integral_value(ROUND_HALF_UP))
        body = {"points": str(Decimal(points) / 100), "price": str(Decimal(price) / 100),
                "reference": reference}  # fmt: skip
        handlers.buy_block(self.engine, CODE, PREPAID, body, actor="year", now=now)
        self.log.prepaid.blocks.append((reference, points, price, now))

    def _close(self, month: tuple[date, date], now: datetime) -> None:
        first, last = month
        for partner in PARTNERS:
            body = {"from": first.isoformat(), "until": last.isoformat()}
            handlers.close_statement(self.engine, CODE, partner, body, actor="year", now=now)
            self.log.statements += 1

    def _correct(self, now: datetime) -> None:
        partner, amount, note, _at = CORRECTION
        handlers.add_correction(self.engine, CODE, partner, {"amount": str(amount), "note": note},
                                actor="year", now=now)  # fmt: skip

    def _move(self, now: datetime) -> None:
        with self.engine.connect() as connection:
            outstanding = int(connection.execute(text(
                "SELECT coalesce(sum(l.remaining), 0) FROM lots l JOIN purchase_partners p "
                "ON p.purchase_id = l.purchase_id WHERE p.partner = :partner"),
                {"partner": LEAVER}).scalar_one())  # fmt: skip
        answer = handlers.move_liability(self.engine, CODE, LEAVER,
                                         {"to": TAKER, "note": "left the coalition"},
                                         actor="year", now=now)  # fmt: skip
        self.log.moved = {"points": outstanding, "at": now, "answer": answer}

    def _counts(self) -> dict[str, int]:
        """Where the tables a purchase writes stand (`COUNTS`)."""
        with self.engine.connect() as connection:
            row = connection.execute(text(COUNTS)).one()
        return dict(row._mapping)


# What a purchase writes, read cheaply (rows are only ever added: the largest ids), and
# the running totals it moves; a refused purchase leaves every figure as it was.
COUNTS = """
SELECT (SELECT coalesce(max(id), 0) FROM purchases) purchases,
       (SELECT coalesce(max(id), 0) FROM transfers) transfers,
       (SELECT coalesce(max(id), 0) FROM lots) lots,
       (SELECT coalesce(max(id), 0) FROM purchase_awards) awards,
       (SELECT coalesce(max(id), 0) FROM holds) holds,
       (SELECT coalesce(max(purchase_id), 0) FROM purchase_partners) partners,
       (SELECT coalesce(max(purchase_id), 0) FROM purchase_lines) lines,
       (SELECT coalesce(sum(purchases), 0) FROM member_totals) standing,
       (SELECT coalesce(sum(debits_posted + credits_posted), 0) FROM accounts) posted,
       (SELECT coalesce(sum(drawn), 0) FROM partner_prepaid) drawn
"""


# — the checks, independent of the settlement code —

EARNED = ("purchase.accrual", "coupon", "mechanic.award")
TAKEN_BACK = ("refund.accrual", "refund.debt")


# instants bound as the tables store them (SQLite compares them as text)
AT = (bindparam("start", type_=Timestamp()), bindparam("end", type_=Timestamp()))


def half_up(value: Decimal) -> int:
    """Money in major units as minor units, rounded half up once."""
    return int(value.quantize(CENT, rounding=ROUND_HALF_UP) * 100)


def expected_lines(partner: str, issued: int, redeemed: int) -> list[tuple[str, int]]:
    """A period's lines for its points, from the terms as the program file gives them."""
    terms = TERMS[partner]
    fees = terms.get("fees", {})
    funded_by = terms.get("funded_by", "partner")
    share = {"partner": HUNDRED, "program": Decimal(0)}.get(funded_by) if isinstance(
        funded_by, str) else Decimal(funded_by["partner_percent"])  # fmt: skip
    assert share is not None
    price = Decimal(terms.get("price_per_point", "0"))
    back = Decimal(terms.get("reimbursement_per_point", "0"))
    funded = Decimal(0)
    if terms.get("billing") != "prepaid":
        funded = Decimal(issued) / 100 * price * share / HUNDRED
    reimbursed = Decimal(redeemed) / 100 * back
    lines = [
        ("points issued, funded by the partner", half_up(funded)),
        ("points redeemed, reimbursed", -half_up(reimbursed)),
        ("fee on points issued", half_up(funded * Decimal(fees.get("percent_of_issued", 0))
                                         / HUNDRED)),
        ("fee on points redeemed", half_up(reimbursed * Decimal(fees.get("percent_of_redeemed", 0))
                                           / HUNDRED)),
        ("fee for the period", half_up(Decimal(fees.get("per_period", 0)))),
    ]  # fmt: skip
    return [line for line in lines if line[1]]


@dataclass
class Checked:
    statements: int = 0
    problems: list[str] = field(default_factory=list)
    issued: int = 0  # points, all partners, all year
    redeemed: int = 0
    cross: int = 0  # points earned at one partner and spent at another


def check_year(engine: Engine, log: Log) -> Checked:
    """Every statement against the ledger and the terms; the prepaid blocks; `verify`."""
    checked = Checked()
    problems = checked.problems
    with engine.connect() as connection:
        statements, lines = _statements(connection)
        cross = _cross_flows(connection)
        for first, _last, start, end in months():
            points = _points(connection, start, end)
            for partner in PARTNERS:
                found = statements.get((partner, first))
                if found is None:
                    problems.append(f"{partner} {first}: no statement")
                    continue
                checked.statements += 1
                issued, redeemed = points.get(partner, (0, 0))
                checked.issued += issued
                checked.redeemed += redeemed
                flows = cross.get((partner, first.month), (0, 0))
                _check_statement(checked, log, found, lines[found.id], (issued, redeemed), flows,
                                 (start, end))  # fmt: skip
        _check_openings(problems, statements)
        _check_ledger_totals(connection, checked)
        _check_prepaid(connection, log, problems)
        _check_moved(connection, log, problems)
    checked.cross = sum(here for (_p, _m), (here, _there) in cross.items())
    _checks, found = verify(engine)
    problems.extend(f"verify: {found_one}" for found_one in found)
    return checked


def _statements(
    connection: Any,
) -> tuple[dict[tuple[str, date], Any], dict[int, list[tuple[str, int]]]]:
    """The closed statements by partner and first day, and their lines (what, amount)."""
    statements = {
        (row.partner, _as_date(row.first_day)): row
        for row in connection.execute(text("SELECT * FROM partner_statements"))
    }
    lines: dict[int, list[tuple[str, int]]] = defaultdict(list)
    query = "SELECT statement_id, what, amount FROM statement_lines ORDER BY statement_id, n"
    for row in connection.execute(text(query)):
        lines[row.statement_id].append((row.what, int(row.amount)))
    return statements, lines


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _at(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _points(connection: Any, start: datetime, end: datetime) -> dict[str, tuple[int, int]]:
    """Per partner: points issued and redeemed in [start, end), summed from the ledger."""
    found: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for partner, reason, amount in connection.execute(text(
        "SELECT p.partner, t.reason, t.amount FROM transfers t "
        "JOIN purchase_partners p ON p.purchase_id = t.purchase_id "
        "WHERE t.created_at >= :start AND t.created_at < :end").bindparams(*AT),
        {"start": start, "end": end},
    ):  # fmt: skip
        figures = found[partner]
        if reason in EARNED:
            figures[0] += amount
        elif reason in TAKEN_BACK:
            figures[0] -= amount
        elif reason == "purchase.redemption":
            figures[1] += amount
        elif reason == "refund.redemption":
            figures[1] -= amount
    return {partner: (issued, redeemed) for partner, (issued, redeemed) in found.items()}


def _cross_flows(connection: Any) -> dict[tuple[str, int], tuple[int, int]]:
    """Per (partner, month): points earned there spent elsewhere, and earned elsewhere
    spent there — each redemption's lots followed to the partner whose purchase made them
    (or that took them over before the redemption)."""
    origin = dict(connection.execute(text(
        "SELECT l.id, p.partner FROM lots l JOIN purchase_partners p "
        "ON p.purchase_id = l.purchase_id")).tuples().all())  # fmt: skip
    moved: dict[int, tuple[datetime, str]] = {}
    for row in connection.execute(
        text("SELECT to_partner, moved_at, lots FROM liability_transfers")
    ):
        taken = row.lots if isinstance(row.lots, list) else json.loads(row.lots)
        for lot, _left in taken:
            moved[int(lot)] = (_at(row.moved_at), row.to_partner or "program")
    flows: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0])
    for row in connection.execute(text(
        "SELECT p.partner, t.created_at, u.lots_used FROM transfers t "
        "JOIN purchases u ON u.id = t.purchase_id "
        "JOIN purchase_partners p ON p.purchase_id = t.purchase_id "
        "WHERE t.reason = 'purchase.redemption' AND t.refund_id IS NULL")):  # fmt: skip
        at = _at(row.created_at)
        month = at.astimezone(ZONE).month
        used = row.lots_used if isinstance(row.lots_used, list) else json.loads(row.lots_used)
        for lot, amount in used:
            taker = moved.get(int(lot))
            source = taker[1] if taker and taker[0] <= at else origin.get(int(lot), "program")
            if source == row.partner:
                continue
            flows[(row.partner, month)][1] += amount
            if source != "program":
                flows[(source, month)][0] += amount
    # what refunds gave back of redemptions, in the refund's month: the points
    # before…before + redeemed_back of the purchase's uses, refund by refund
    returned: dict[int, int] = defaultdict(int)
    for row in connection.execute(text(
        "SELECT p.partner, u.id, u.created_at AS bought_at, u.lots_used, r.redeemed_back, "
        "r.created_at FROM refunds r JOIN purchases u ON u.id = r.purchase_id "
        "JOIN purchase_partners p ON p.purchase_id = r.purchase_id "
        "WHERE r.redeemed_back > 0 ORDER BY r.id")):  # fmt: skip
        bought_at, month = _at(row.bought_at), _at(row.created_at).astimezone(ZONE).month
        used = row.lots_used if isinstance(row.lots_used, list) else json.loads(row.lots_used)
        start = returned[row.id]
        returned[row.id] += row.redeemed_back
        position = 0
        for lot, amount in used:
            back = min(start + row.redeemed_back, position + amount) - max(start, position)
            position += amount
            if back <= 0:
                continue
            taker = moved.get(int(lot))
            source = (taker[1] if taker and taker[0] <= bought_at
                      else origin.get(int(lot), "program"))  # fmt: skip
            if source == row.partner:
                continue
            flows[(row.partner, month)][1] -= back
            if source != "program":
                flows[(source, month)][0] -= back
    return {key: (here, there) for key, (here, there) in flows.items()}


def _check_statement(
    checked: Checked, log: Log, row: Any, lines: list[tuple[str, int]], points: tuple[int, int],
    cross: tuple[int, int], bounds: tuple[datetime, datetime],
) -> None:  # fmt: skip
    name = f"{row.partner} {row.first_day}"
    problems = checked.problems
    if (_at(row.starts_at), _at(row.ends_at)) != bounds:
        problems.append(f"{name}: bounds {row.starts_at}–{row.ends_at}, the month is {bounds}")
    if (row.issued, row.redeemed) != points:
        problems.append(f"{name}: issued/redeemed {row.issued}/{row.redeemed}, ledger {points}")
    flows = (row.earned_here_spent_elsewhere, row.earned_elsewhere_spent_here)
    if flows != cross:
        problems.append(f"{name}: cross-partner flows {flows}, the lots say {cross}")
    wanted = expected_lines(row.partner, *points) + _other_lines(log, row.partner, bounds)
    if lines != wanted:
        problems.append(f"{name}: lines {lines}, the terms give {wanted}")
    if row.closing != row.opening + sum(amount for _what, amount in lines):
        problems.append(f"{name}: closing {row.closing} ≠ opening {row.opening} + lines")


def _other_lines(
    log: Log, partner: str, bounds: tuple[datetime, datetime]
) -> list[tuple[str, int]]:
    """The blocks bought, the liability moved and the corrections within the period."""
    start, end = bounds
    found = [(f"prepaid block {reference}", price)
             for reference, _points, price, at in log.prepaid.blocks
             if partner == PREPAID and start <= at < end]  # fmt: skip
    moved = log.moved.get("answer")
    if moved is not None and start <= log.moved["at"] < end:
        value = half_up(Decimal(moved["value"]))
        if partner == LEAVER:
            found.append((f"outstanding points moved to {TAKER}", value))
        elif partner == TAKER:
            found.append((f"outstanding points taken over from {LEAVER}", -value))
    who, amount, note, at = CORRECTION
    if partner == who and start <= at < end:
        found.append((f"correction: {note}", half_up(amount)))
    return found


def _check_openings(problems: list[str], statements: dict[tuple[str, date], Any]) -> None:
    for partner in PARTNERS:
        closing = 0
        for first, *_rest in months():
            row = statements.get((partner, first))
            if row is None:
                continue
            if row.opening != closing:
                problems.append(f"{partner} {first}: opening {row.opening}, before {closing}")
            closing = row.closing


def _check_ledger_totals(connection: Any, checked: Checked) -> None:
    """No purchase's points escape the statements: the year's sums are the ledger's."""
    earned = ", ".join(f"'{reason}'" for reason in EARNED)
    back = ", ".join(f"'{reason}'" for reason in TAKEN_BACK)
    issued, redeemed, unpartnered = connection.execute(text(f"""
        SELECT coalesce(sum(CASE WHEN reason IN ({earned}) THEN amount
                                 WHEN reason IN ({back}) THEN -amount ELSE 0 END), 0),
               coalesce(sum(CASE WHEN reason = 'purchase.redemption' THEN amount
                                 WHEN reason = 'refund.redemption' THEN -amount ELSE 0 END), 0),
               (SELECT count(*) FROM purchases u LEFT JOIN purchase_partners p
                  ON p.purchase_id = u.id WHERE p.purchase_id IS NULL)
        FROM transfers WHERE purchase_id IS NOT NULL""")).one()  # fmt: skip
    if (checked.issued, checked.redeemed) != (issued, redeemed):
        checked.problems.append(
            f"the statements' year: issued/redeemed {checked.issued}/{checked.redeemed}, "
            f"the ledger's {issued}/{redeemed}"
        )
    if unpartnered:
        checked.problems.append(f"{unpartnered} purchases without their partner")


def _check_prepaid(connection: Any, log: Log, problems: list[str]) -> None:
    """The blocks' draw is what the prepaid partner's purchases earned, net of refunds;
    the stream saw its first block run out, refusals that wrote nothing, the others
    earning meanwhile, and earning resume after a new block."""
    bought, drawn = connection.execute(
        text("SELECT bought, drawn FROM partner_prepaid WHERE partner = :p"), {"p": PREPAID}
    ).one()
    earned = ", ".join(f"'{reason}'" for reason in EARNED)
    back = ", ".join(f"'{reason}'" for reason in TAKEN_BACK)
    ledger = connection.execute(text(f"""
        SELECT coalesce(sum(CASE WHEN t.reason IN ({earned}) THEN t.amount
                                 WHEN t.reason IN ({back}) THEN -t.amount ELSE 0 END), 0)
        FROM transfers t JOIN purchase_partners p ON p.purchase_id = t.purchase_id
        WHERE p.partner = :p"""), {"p": PREPAID}).scalar_one()  # fmt: skip
    prepaid = log.prepaid
    if drawn != ledger:
        problems.append(f"{PREPAID}: blocks drawn {drawn}, its purchases earned {ledger}")
    if bought != sum(points for _ref, points, _price, _at in prepaid.blocks):
        problems.append(f"{PREPAID}: bought {bought}, blocks {prepaid.blocks}")
    if len(prepaid.blocks) < 2 or prepaid.first_refused_at is None:
        problems.append(f"{PREPAID}: the first block never ran out")
    elif not log.receipts * 0.1 < prepaid.first_refused_at < log.receipts * 0.9:
        problems.append(f"{PREPAID}: ran out at receipt {prepaid.first_refused_at}, not mid-stream")
    if not prepaid.refused_unchanged or prepaid.refused_changed:
        problems.append(f"{PREPAID}: refusals that wrote something: {prepaid.refused_changed}")
    if not prepaid.others_earned_meanwhile:
        problems.append("no other partner earned while the prepaid partner was refused")
    if not prepaid.earned_after_new_block or not prepaid.retried_as_new:
        problems.append(f"{PREPAID}: earning did not resume after the new block")


def _check_moved(connection: Any, log: Log, problems: list[str]) -> None:
    """The leaver's outstanding points, summed from its lots just before, moved at its
    reimbursement rate; its lots' points count as the taker's afterwards."""
    moved = log.moved
    if not moved:
        problems.append(f"{LEAVER}'s points were never moved")
        return
    value = half_up(
        Decimal(moved["points"]) / 100 * Decimal(TERMS[LEAVER]["reimbursement_per_point"])
    )
    answer = moved["answer"]
    if (half_up(Decimal(answer["points"])), half_up(Decimal(answer["value"]))) != (
        moved["points"], value):  # fmt: skip
        problems.append(f"{LEAVER}: moved {answer}, its lots had {moved['points']} ({value})")
    if not moved["points"]:
        problems.append(f"{LEAVER}: nothing outstanding to move (the year is too small)")
    query = text(
        "SELECT count(*) FROM transfers t JOIN purchase_partners p "
        "ON p.purchase_id = t.purchase_id WHERE p.partner = :p "
        "AND t.reason = 'purchase.accrual' AND t.created_at >= :start"
    ).bindparams(AT[0])
    july = datetime(YEAR, 7, 1, tzinfo=ZONE)
    earned_after = connection.execute(query, {"p": LEAVER, "start": july}).scalar_one()
    if earned_after:
        problems.append(f"{LEAVER}: {earned_after} purchases earned after its earning_until")


# — the benchmark's own database —

SERVER = os.environ.get("KOPILKA_BENCH_PG_SERVER", "postgresql+psycopg://postgres@127.0.0.1:5432")


@contextmanager
def fresh_database(name: str, *, keep: bool = False) -> Iterator[Engine]:
    """A PostgreSQL database of the run's own, migrated; dropped afterwards (unless `keep`)."""
    host = ["-h", "127.0.0.1", "-U", "postgres"]
    subprocess.run(["dropdb", *host, "--if-exists", name], check=True)
    subprocess.run(["createdb", *host, name], check=True)
    engine = make_engine(f"{SERVER}/{name}")
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        if not keep:
            subprocess.run(["dropdb", *host, "--if-exists", name], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--receipts", type=int, default=100_000)
    parser.add_argument("--members", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--database", default="kopilka_bench_year")
    options = parser.parse_args()
    with fresh_database(options.database) as engine:
        log = Year(engine, receipts=options.receipts, members=options.members,
                   seed=options.seed).run()  # fmt: skip
        started = time.perf_counter()
        checked = check_year(engine, log)
        check_seconds = time.perf_counter() - started
    print(json.dumps({
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
                   f"{platform.python_version()}",
        "receipts": log.receipts, "purchases": log.purchases, "redemptions": log.redemptions,
        "holds": log.holds, "refunds": log.refunds, "statements_closed": log.statements,
        "prepaid": {"blocks": len(log.prepaid.blocks), "refused": log.prepaid.refused,
                    "refusals_compared": log.prepaid.refused_unchanged,
                    "ran_out_at_receipt": log.prepaid.first_refused_at,
                    "others_earned_meanwhile": log.prepaid.others_earned_meanwhile,
                    "earned_after_new_block": log.prepaid.earned_after_new_block},
        "moved": {"points": log.moved.get("points"),
                  "value": (log.moved.get("answer") or {}).get("value")},
        "statements_checked": checked.statements,
        "points_issued": checked.issued, "points_redeemed": checked.redeemed,
        "points_cross_partner": checked.cross,
        "year_s": round(log.seconds, 1), "receipts_per_s": round(log.receipts / log.seconds),
        "check_s": round(check_seconds, 1), "problems": checked.problems[:20],
    }, indent=2, ensure_ascii=False))  # fmt: skip
    if checked.problems:
        raise SystemExit(f"{len(checked.problems)} problems")


if __name__ == "__main__":
    main()
