"""The coalition's use cases: a partner's position, prepaid blocks, period statements
worked out from ledger rows and closed for good, corrections, and a partner's exit.

A period's figures come from the ledger alone: the transfers of the period joined to the
partner each purchase was made at (`purchase_partners`, written with the purchase).
Points issued are what purchases there earned (the rules', coupons' and mechanics'
points) less what refunds took back; points redeemed are what paid for purchases there
less what refunds gave back. The cross-partner flows follow each redemption's lots (in
the order it took them) to the partner that issued them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, TextClause, bindparam, func, insert, select, text, update

from kopilka.kernel.errors import Conflict, IdempotencyConflict, InvalidInput, NotFound, Problem
from kopilka.kernel.ledger import Reason
from kopilka.kernel.lots import slice_of_uses
from kopilka.kernel.money import MINOR_LIMIT, format_minor, to_minor
from kopilka.kernel.program import Program
from kopilka.kernel.reading import Reader, row_id
from kopilka.mechanics.coalition.model import (
    Billing,
    Flows,
    Line,
    PartnerTerms,
    Statement,
    money,
    points_value,
    reserve,
    settle,
)
from kopilka.mechanics.coalition.section import CoalitionSettings, coalition_of
from kopilka.mechanics.coalition.tables import (
    PREPAID,
    liability_transfers,
    partner_blocks,
    partner_corrections,
    partner_prepaid,
    partner_statements,
    purchase_partners,
    statement_lines,
)
from kopilka.platform.db import reading
from kopilka.platform.idempotency import retrying
from kopilka.platform.statements import Bump, add_to_totals
from kopilka.platform.tables import Timestamp, lots, purchases, refunds, transfers
from kopilka.programs.handlers import LoadedProgram, load_program

EARNED = (Reason.PURCHASE_ACCRUAL.value, Reason.COUPON.value, Reason.MECHANIC.value)
TAKEN_BACK = (Reason.REFUND_ACCRUAL.value, Reason.DEBT.value)
SPENT = Reason.PURCHASE_REDEMPTION.value
GIVEN_BACK = Reason.REFUND_REDEMPTION.value
PROGRAM = "program"  # the origin of points no partner issued (triggers, adjustments)
LOTS_AT_ONCE = 1000


# — who a purchase was made at —


def partner_at(program: Program, location: str | None) -> str | None:
    """The partner a location belongs to (None: a receipt naming no location)."""
    place = program.locations.get(location) if location else None
    return place.partner if place is not None else None


def terms_of(program: Program, partner: str) -> PartnerTerms:
    """A partner's terms; `NotFound` for a partner the program lacks, `Conflict` for one
    without terms (it cannot be settled with)."""
    if partner not in {known.code for known in program.partners}:
        raise NotFound(f"partner {partner!r} does not exist")
    settings = coalition_of(program.sections)
    terms = settings.of(partner) if settings is not None else None
    if terms is None:
        raise Conflict(f"partner {partner!r} has no terms in the program's partner_terms")
    return terms


def _loaded(connection: Connection, code: str, partner: str) -> tuple[LoadedProgram, PartnerTerms]:
    loaded = load_program(connection, code)
    return loaded, terms_of(loaded.calculator.program, partner)


# — prepaid blocks —


def buy_block(
    engine: Engine, code: str, partner: str, body: object, *, actor: str, now: datetime
) -> tuple[dict[str, Any], bool]:
    """A prepaid partner buys a block `{points, price, reference}`: its purchases' earning
    draws on it once the blocks before it are drawn. The same reference with the same
    figures answers the first result; with others it is `409 idempotency_conflict`."""

    def attempt(connection: Connection) -> tuple[dict[str, Any], bool]:
        loaded, terms = _loaded(connection, code, partner)
        program = loaded.calculator.program
        points, price, reference = _block_request(body, program)
        if terms.billing is not Billing.PREPAID:
            raise Conflict(f"partner {partner!r} is billed postpaid: it buys no blocks")
        earlier = connection.execute(
            select(partner_blocks).where(
                partner_blocks.c.program_id == loaded.program_id,
                partner_blocks.c.partner == partner, partner_blocks.c.reference == reference)
        ).one_or_none()  # fmt: skip
        if earlier is not None:
            if (earlier.points, earlier.price) != (points, price):
                raise IdempotencyConflict(f"block {reference!r} was bought with other figures")
            return block_json(earlier, program), False
        add_to_totals(connection, [Bump(PREPAID, (loaded.program_id, partner), (points, 0))])
        bought = connection.execute(
            select(partner_prepaid.c.bought).where(
                partner_prepaid.c.program_id == loaded.program_id,
                partner_prepaid.c.partner == partner)
        ).scalar_one()  # fmt: skip
        block_id = connection.execute(
            insert(partner_blocks).values(
                program_id=loaded.program_id, partner=partner, points=points,
                starts_at_point=bought - points, price=price, reference=reference,
                actor=actor, bought_at=now,
            ).returning(partner_blocks.c.id)
        ).scalar_one()  # fmt: skip
        row = connection.execute(select(partner_blocks).where(partner_blocks.c.id == block_id))
        return block_json(row.one(), program), True

    return retrying(engine, attempt)


def _block_request(body: object, program: Program) -> tuple[int, int, str]:
    problems: list[Problem] = []
    reader = Reader(body, "", problems, ("points", "price", "reference"))
    points = reader.minor("points", program.points.precision, unit="points", required=True)
    price = reader.minor("price", program.money_digits, unit="money", required=True)
    reference = reader.text("reference", required=True)
    if points is not None and points <= 0:
        reader.report("points", "must be more than 0")
    if problems:
        raise InvalidInput(problems)
    assert points is not None
    assert price is not None
    assert reference is not None
    return points, price, reference


def block_json(row: Any, program: Program) -> dict[str, Any]:
    return {
        "id": str(row.id), "partner": row.partner, "reference": row.reference,
        "points": format_minor(row.points, program.points.precision),
        "price": format_minor(row.price, program.money_digits),
        "bought_at": row.bought_at.isoformat(), "actor": row.actor,
    }  # fmt: skip


def prepaid_left(read: Mapping[str, Any], partner: str) -> int | None:
    """What a prepaid partner's blocks have left, as the purchase's load read it (None:
    the partner is not prepaid or bought nothing yet: 0)."""
    state = read.get("prepaid", {}).get(partner)
    return None if state is None else int(state[0]) - int(state[1])


# — a partner's position —


def position(engine: Engine, code: str, partner: str) -> dict[str, Any]:
    """A partner's terms and where it stands: its outstanding points (issued there, not
    yet spent, burnt or moved), the reserve held against them, its prepaid blocks and
    what they have left, and its last closed statement."""
    with reading(engine) as connection:
        loaded, terms = _loaded(connection, code, partner)
        program = loaded.calculator.program
        points, money_digits = program.points.precision, program.money_digits
        outstanding = _outstanding(connection, loaded.program_id, partner)
        last = connection.execute(
            select(partner_statements.c.id, partner_statements.c.last_day,
                   partner_statements.c.closing)
            .where(partner_statements.c.program_id == loaded.program_id,
                   partner_statements.c.partner == partner)
            .order_by(partner_statements.c.first_day.desc()).limit(1)
        ).one_or_none()  # fmt: skip
        blocks = _blocks(connection, loaded.program_id, partner, program)
    return {
        "partner": partner,
        "terms": terms_json(terms),
        "outstanding_points": format_minor(outstanding, points),
        "reserve": format_minor(reserve(terms, outstanding, point_digits=points,
                                        money_digits=money_digits), money_digits),
        "prepaid": blocks,
        "last_statement": None if last is None else {
            "id": str(last.id), "until": last.last_day.isoformat(),
            "closing": format_minor(last.closing, money_digits)},
    }  # fmt: skip


def _outstanding(connection: Connection, program_id: int, partner: str) -> int:
    moved = connection.execute(
        select(liability_transfers.c.id).where(
            liability_transfers.c.program_id == program_id,
            liability_transfers.c.from_partner == partner)
    ).first()  # fmt: skip
    if moved is not None:
        return 0
    return int(connection.execute(_outstanding_lots(program_id, partner)
                                  .with_only_columns(func.coalesce(func.sum(lots.c.remaining), 0))
                                  ).scalar_one())  # fmt: skip


def _outstanding_lots(program_id: int, partner: str) -> Any:
    return (
        select(lots.c.id, lots.c.remaining)
        .join(purchase_partners, purchase_partners.c.purchase_id == lots.c.purchase_id)
        .where(lots.c.program_id == program_id, purchase_partners.c.partner == partner,
               lots.c.remaining > 0)
    )  # fmt: skip


def _blocks(
    connection: Connection, program_id: int, partner: str, program: Program
) -> dict[str, Any] | None:
    state = connection.execute(
        select(partner_prepaid.c.bought, partner_prepaid.c.drawn).where(
            partner_prepaid.c.program_id == program_id, partner_prepaid.c.partner == partner)
    ).one_or_none()  # fmt: skip
    if state is None:
        return None
    digits = program.points.precision
    rows = connection.execute(
        select(partner_blocks).where(partner_blocks.c.program_id == program_id,
                                     partner_blocks.c.partner == partner)
        .order_by(partner_blocks.c.starts_at_point)
    ).all()  # fmt: skip
    blocks = []
    for row in rows:  # the oldest is drawn first: what is left of each follows from `drawn`
        left = min(row.points, max(0, row.starts_at_point + row.points - state.drawn))
        blocks.append({**block_json(row, program), "left": format_minor(left, digits)})
    return {"bought": format_minor(state.bought, digits),
            "drawn": format_minor(state.drawn, digits),
            "left": format_minor(state.bought - state.drawn, digits), "blocks": blocks}  # fmt: skip


def terms_json(terms: PartnerTerms) -> dict[str, Any]:
    return {
        "role": terms.role.value, "billing": terms.billing.value,
        "partner_percent": str(terms.partner_percent),
        "price_per_point": str(terms.price_per_point),
        "reimbursement_per_point": str(terms.reimbursement_per_point),
        "fees": {"per_period": terms.fees.per_period,
                 "percent_of_issued": str(terms.fees.percent_of_issued),
                 "percent_of_redeemed": str(terms.fees.percent_of_redeemed)},
        "reserve_percent": str(terms.reserve_percent),
        "earning_until": terms.earning_until.isoformat() if terms.earning_until else None,
        "redeeming_until": terms.redeeming_until.isoformat() if terms.redeeming_until else None,
    }  # fmt: skip


# — a period's flows, from the ledger —


@dataclass
class _Tally:
    issued: int = 0
    redeemed: int = 0
    here_spent_elsewhere: int = 0
    elsewhere_spent_here: int = 0

    def flows(self) -> Flows:
        return Flows(self.issued, self.redeemed, self.here_spent_elsewhere,
                     self.elsewhere_spent_here)  # fmt: skip


def period_flows(
    connection: Connection, program_id: int, starts_at: datetime, ends_at: datetime
) -> dict[str, Flows]:
    """Every partner's points in [starts_at, ends_at), from the ledger's transfers."""
    tally: dict[str, _Tally] = defaultdict(_Tally)
    for partner, reason, amount in connection.execute(
        select(purchase_partners.c.partner, transfers.c.reason, func.sum(transfers.c.amount))
        .join(purchase_partners, purchase_partners.c.purchase_id == transfers.c.purchase_id)
        .where(transfers.c.program_id == program_id, transfers.c.created_at >= starts_at,
               transfers.c.created_at < ends_at,
               transfers.c.reason.in_((*EARNED, *TAKEN_BACK, SPENT, GIVEN_BACK)))
        .group_by(purchase_partners.c.partner, transfers.c.reason)
    ):  # fmt: skip
        one = tally[partner]
        if reason in EARNED:
            one.issued += int(amount)
        elif reason in TAKEN_BACK:
            one.issued -= int(amount)
        elif reason == SPENT:
            one.redeemed += int(amount)
        else:
            one.redeemed -= int(amount)
    _cross_flows(connection, program_id, starts_at, ends_at, tally)
    return {partner: one.flows() for partner, one in tally.items()}


def _cross_flows(
    connection: Connection, program_id: int, starts_at: datetime, ends_at: datetime,
    tally: dict[str, _Tally],
) -> None:  # fmt: skip
    """Points spent at one partner that another issued: each redemption's lots (as the
    purchase took them) followed to the partner of the purchase that earned them — or to
    the partner that took over a leaver's points before the redemption — in one grouped
    statement; less what the period's refunds gave back of such redemptions."""
    bounds = {"program": program_id, "starts": starts_at, "ends": ends_at}
    if connection.dialect.name == "postgresql" and connection.in_transaction():
        # the planner expects 100 pairs in each JSON array and compiles the plan (JIT) for
        # seconds longer than it runs; this transaction only
        connection.exec_driver_sql("SET LOCAL jit = off")
    spent = connection.execute(_cross_statement(connection.dialect.name), bounds)
    for spender, source, points in spent:
        _add_cross(tally, str(spender), str(source), int(points))
    for spender, source, points in _given_back(connection, program_id, starts_at, ends_at):
        _add_cross(tally, spender, source, -points)


def _add_cross(tally: dict[str, _Tally], spender: str, source: str, points: int) -> None:
    if source == spender or not points:
        return
    tally[spender].elsewhere_spent_here += points
    if source != PROGRAM:
        tally[source].here_spent_elsewhere += points


# A JSON array of [lot, points] pairs, one row per pair: `purchases.lots_used`,
# `liability_transfers.lots`. The two databases spell it differently.
_PAIRS = {
    "postgresql": ("CROSS JOIN json_array_elements({column}) {alias}",
                   "({alias}.value->>0)::bigint", "({alias}.value->>1)::bigint"),
    "sqlite": ("JOIN json_each({column}) {alias}",
               "json_extract({alias}.value, '$[0]')", "json_extract({alias}.value, '$[1]')"),
}  # fmt: skip
_CROSS = """
WITH spent AS (
  SELECT t.purchase_id, min(t.created_at) AS at FROM transfers t
  WHERE t.program_id = :program AND t.reason = 'purchase.redemption' AND t.refund_id IS NULL
    AND t.created_at >= :starts AND t.created_at < :ends
  GROUP BY t.purchase_id),
used AS (
  SELECT pp.partner AS spender, s.at AS at, {lot_u} AS lot, {points_u} AS points
  FROM spent s JOIN purchases p ON p.id = s.purchase_id
  JOIN purchase_partners pp ON pp.purchase_id = s.purchase_id
  {pairs_u}),
moved AS (
  SELECT {lot_m} AS lot, l.moved_at AS moved_at, coalesce(l.to_partner, 'program') AS taker
  FROM liability_transfers l {pairs_m}
  WHERE l.program_id = :program)
SELECT used.spender,
       CASE WHEN moved.moved_at <= used.at THEN moved.taker
            ELSE coalesce(origin.partner, 'program') END AS source,
       sum(used.points) AS points
FROM used
LEFT JOIN lots ON lots.id = used.lot
LEFT JOIN purchase_partners origin ON origin.purchase_id = lots.purchase_id
LEFT JOIN moved ON moved.lot = used.lot
GROUP BY 1, 2
"""


def _cross_statement(dialect: str) -> TextClause:
    join, lot, points = _PAIRS["postgresql" if dialect == "postgresql" else "sqlite"]
    sql = _CROSS.format(
        pairs_u=join.format(column="p.lots_used", alias="u"), lot_u=lot.format(alias="u"),
        points_u=points.format(alias="u"),
        pairs_m=join.format(column="l.lots", alias="m"), lot_m=lot.format(alias="m"),
    )  # fmt: skip
    return text(sql).bindparams(bindparam("starts", type_=Timestamp()),
                                bindparam("ends", type_=Timestamp()))  # fmt: skip


def _given_back(
    connection: Connection, program_id: int, starts_at: datetime, ends_at: datetime
) -> list[tuple[str, str, int]]:
    """What the period's refunds gave back of redemptions, lot by lot, as (spender, source,
    points): a refund returns the redeemed points cumulatively (points `before`…`before +
    redeemed_back` of the purchase's uses), so the same lots a redemption counted."""
    earlier = refunds.alias("earlier")
    before = (
        select(func.coalesce(func.sum(earlier.c.redeemed_back), 0))
        .where(earlier.c.purchase_id == refunds.c.purchase_id, earlier.c.id < refunds.c.id)
        .scalar_subquery()
    )
    rows = connection.execute(
        select(purchase_partners.c.partner, purchases.c.created_at, purchases.c.lots_used,
               refunds.c.redeemed_back, before)
        .select_from(refunds)
        .join(purchases, purchases.c.id == refunds.c.purchase_id)
        .join(purchase_partners, purchase_partners.c.purchase_id == refunds.c.purchase_id)
        .where(purchases.c.program_id == program_id, refunds.c.redeemed_back > 0,
               refunds.c.created_at >= starts_at, refunds.c.created_at < ends_at)
    ).all()  # fmt: skip
    back = [
        (str(partner), at, lot, points)
        for partner, at, uses, returned, start in rows
        for lot, points in slice_of_uses([(int(lot), int(n)) for lot, n in uses or []],
                                         int(start), int(start) + int(returned))
    ]  # fmt: skip
    origin = _origins(connection, program_id, {lot for _, _, lot, _ in back})
    moved = _moved_lots(connection, program_id)
    found = []
    for spender, at, lot, points in back:
        taker = moved.get(lot)
        source = taker[1] if taker is not None and taker[0] <= at else origin.get(lot, PROGRAM)
        found.append((spender, source, points))
    return found


def _origins(connection: Connection, program_id: int, lot_ids: set[int]) -> dict[int, str]:
    found: dict[int, str] = {}
    for chunk in _chunks(sorted(lot_ids), LOTS_AT_ONCE):
        found.update(connection.execute(
            select(lots.c.id, purchase_partners.c.partner)
            .join(purchase_partners, purchase_partners.c.purchase_id == lots.c.purchase_id)
            .where(lots.c.program_id == program_id, lots.c.id.in_(chunk))
        ).tuples().all())  # fmt: skip
    return found


def _moved_lots(connection: Connection, program_id: int) -> dict[int, tuple[datetime, str]]:
    moved: dict[int, tuple[datetime, str]] = {}
    for row in connection.execute(
        select(liability_transfers).where(liability_transfers.c.program_id == program_id)
    ):
        for lot, _remaining in row.lots:
            moved[int(lot)] = (row.moved_at, row.to_partner or PROGRAM)
    return moved


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# — statements —


def period_bounds(program: Program, first_day: date, last_day: date) -> tuple[datetime, datetime]:
    """A period of local days as instants: from the first day's midnight to the midnight
    after its last day, in the program's time zone."""
    zone = ZoneInfo(program.timezone)
    return (datetime.combine(first_day, time(), zone),
            datetime.combine(last_day + timedelta(days=1), time(), zone))  # fmt: skip


def draft_statement(
    engine: Engine, code: str, partner: str, body: object, *, now: datetime
) -> dict[str, Any]:
    """What the period's statement would say if closed now (nothing written)."""
    with reading(engine) as connection:
        loaded, terms = _loaded(connection, code, partner)
        statement, period = _statement(connection, loaded, terms, body, now, closing=False)
    return statement_json(statement, period, loaded.calculator.program, status="draft")


def close_statement(
    engine: Engine, code: str, partner: str, body: object, *, actor: str, now: datetime
) -> dict[str, Any]:
    """Close a partner's statement for a period that is over: written once, never
    changed; the corrections recorded since the last one become its lines."""

    def attempt(connection: Connection) -> dict[str, Any]:
        loaded, terms = _loaded(connection, code, partner)
        statement, period = _statement(connection, loaded, terms, body, now, closing=True)
        statement_id = _write_statement(connection, loaded, terms, statement, period, actor, now)
        return read_statement_in(connection, loaded, partner, statement_id)

    return retrying(engine, attempt)


def close_period(
    engine: Engine, code: str, body: object, *, actor: str, now: datetime
) -> dict[str, Any]:
    """Close every partner's statement for a period `{from?, until}` in one transaction:
    each continues from its own last statement (`from` is the first day of a partner's
    first one), and the period's flows are read from the ledger once for them all."""

    _period_request(body, None, first_needed=False)  # the body's mistakes, before anything

    def attempt(connection: Connection) -> dict[str, Any]:
        loaded = load_program(connection, code)
        settings = coalition_of(loaded.calculator.program.sections)
        if settings is None or not settings.terms:
            raise Conflict(f"program {code!r} has no partner_terms: no partner to settle with")
        flows_of: dict[tuple[datetime, datetime], dict[str, Flows]] = {}
        closed = []
        for terms in settings.terms if settings is not None else ():
            statement, period = _statement(connection, loaded, terms, body, now, closing=True,
                                           flows_of=flows_of, continuing=True)  # fmt: skip
            statement_id = _write_statement(connection, loaded, terms, statement, period,
                                            actor, now)  # fmt: skip
            closed.append(read_statement_in(connection, loaded, terms.partner, statement_id))
        return {"items": closed}

    return retrying(engine, attempt)


def _write_statement(
    connection: Connection, loaded: LoadedProgram, terms: PartnerTerms, statement: Statement,
    period: Period, actor: str, now: datetime,
) -> int:  # fmt: skip
    """Write a closed statement and its lines; the corrections it carried are marked."""
    first_day, last_day, starts_at, ends_at = period
    flows = statement.flows
    statement_id: int = connection.execute(
        insert(partner_statements).values(
            program_id=loaded.program_id, partner=terms.partner, first_day=first_day,
            last_day=last_day, starts_at=starts_at, ends_at=ends_at,
            issued=flows.issued, redeemed=flows.redeemed,
            earned_here_spent_elsewhere=flows.earned_here_spent_elsewhere,
            earned_elsewhere_spent_here=flows.earned_elsewhere_spent_here,
            opening=statement.opening, closing=statement.closing,
            terms=terms_json(terms), actor=actor, closed_at=now,
        ).returning(partner_statements.c.id)
    ).scalar_one()  # fmt: skip
    if statement.lines:
        connection.execute(insert(statement_lines), [
            {"statement_id": statement_id, "n": n, "what": line.what[:200],
             "amount": line.amount} for n, line in enumerate(statement.lines)])  # fmt: skip
    connection.execute(
        update(partner_corrections)
        .where(partner_corrections.c.program_id == loaded.program_id,
               partner_corrections.c.partner == terms.partner,
               partner_corrections.c.statement_id.is_(None),
               partner_corrections.c.created_at < now)
        .values(statement_id=statement_id)
    )  # fmt: skip
    return statement_id


Period = tuple[date, date, datetime, datetime]


def _statement(
    connection: Connection, loaded: LoadedProgram, terms: PartnerTerms, body: object,
    now: datetime, *, closing: bool,
    flows_of: dict[tuple[datetime, datetime], dict[str, Flows]] | None = None,
    continuing: bool = False,
) -> tuple[Statement, Period]:  # fmt: skip
    """A partner's statement for the period `body` names (`continuing`: a partner with
    statements continues from its last, whatever `from` says — a whole coalition's
    period); `flows_of` keeps the period's flows for the next partner's."""
    program = loaded.calculator.program
    previous = connection.execute(
        select(partner_statements.c.last_day, partner_statements.c.closing)
        .where(partner_statements.c.program_id == loaded.program_id,
               partner_statements.c.partner == terms.partner)
        .order_by(partner_statements.c.first_day.desc()).limit(1)
    ).one_or_none()  # fmt: skip
    if continuing and previous is not None and isinstance(body, dict):
        body = {key: value for key, value in body.items() if key != "from"}
    first_day, last_day = _period_request(body, previous.last_day if previous else None)
    starts_at, ends_at = period_bounds(program, first_day, last_day)
    if closing and ends_at > now:
        raise Conflict(f"the period ends {ends_at.isoformat()}: a statement is closed once its "
                       "period is over, so that no later transfer falls in it")  # fmt: skip
    known = flows_of if flows_of is not None else {}
    if (starts_at, ends_at) not in known:
        known[starts_at, ends_at] = period_flows(connection, loaded.program_id, starts_at, ends_at)
    flows = known[starts_at, ends_at].get(terms.partner, Flows(0, 0, 0, 0))
    extra = [*_block_lines(connection, loaded.program_id, terms.partner, starts_at, ends_at),
             *_liability_lines(connection, loaded.program_id, terms.partner, starts_at, ends_at),
             *_correction_lines(connection, loaded.program_id, terms.partner, now)]  # fmt: skip
    statement = settle(terms, flows, previous.closing if previous else 0,
                       point_digits=program.points.precision,
                       money_digits=program.money_digits, corrections=extra)  # fmt: skip
    return statement, (first_day, last_day, starts_at, ends_at)


def _period_request(
    body: object, after: date | None, *, first_needed: bool = True
) -> tuple[date, date]:
    problems: list[Problem] = []
    reader = Reader(body, "", problems, ("from", "until"))
    first = reader.day("from")
    last = reader.day("until", required=True)
    if after is not None and first is not None and first != after + timedelta(days=1):
        reader.report("from", f"the last statement ends {after}: the next begins "
                      f"{after + timedelta(days=1)}, with no gap and no overlap")  # fmt: skip
    if after is None and first is None and not problems and first_needed:
        reader.report("from", "the partner's first statement names the day it begins")
    first = first or (after + timedelta(days=1) if after else last)
    if first is not None and last is not None and last < first:
        reader.report("until", f"{last} is before the period's first day, {first}")
    if problems:
        raise InvalidInput(problems)
    assert first is not None
    assert last is not None
    return first, last


def _block_lines(
    connection: Connection, program_id: int, partner: str, starts_at: datetime, ends_at: datetime
) -> list[Line]:
    return [Line(f"prepaid block {row.reference}", row.price) for row in connection.execute(
        select(partner_blocks.c.reference, partner_blocks.c.price)
        .where(partner_blocks.c.program_id == program_id, partner_blocks.c.partner == partner,
               partner_blocks.c.bought_at >= starts_at, partner_blocks.c.bought_at < ends_at)
        .order_by(partner_blocks.c.id)
    ) if row.price]  # fmt: skip


def _liability_lines(
    connection: Connection, program_id: int, partner: str, starts_at: datetime, ends_at: datetime
) -> list[Line]:
    found = []
    for row in connection.execute(
        select(liability_transfers).where(
            liability_transfers.c.program_id == program_id,
            liability_transfers.c.moved_at >= starts_at, liability_transfers.c.moved_at < ends_at)
    ):  # fmt: skip
        taker = row.to_partner or PROGRAM
        if row.from_partner == partner:
            found.append(Line(f"outstanding points moved to {taker}", row.value))
        elif row.to_partner == partner:
            found.append(Line(f"outstanding points taken over from {row.from_partner}",
                              -row.value))  # fmt: skip
    return [line for line in found if line.amount]


def _correction_lines(
    connection: Connection, program_id: int, partner: str, now: datetime
) -> list[Line]:
    return [Line(f"correction: {row.note}", row.amount) for row in connection.execute(
        select(partner_corrections.c.note, partner_corrections.c.amount)
        .where(partner_corrections.c.program_id == program_id,
               partner_corrections.c.partner == partner,
               partner_corrections.c.statement_id.is_(None),
               partner_corrections.c.created_at < now)
        .order_by(partner_corrections.c.id)
    )]  # fmt: skip


def statement_json(
    statement: Statement, period: Period, program: Program, *, status: str,
    statement_id: int | None = None, closed_at: datetime | None = None,
    actor: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    money_digits, points = program.money_digits, program.points.precision
    flows = statement.flows
    return {
        "id": str(statement_id) if statement_id is not None else None,
        "partner": statement.partner, "status": status,
        "from": period[0].isoformat(), "until": period[1].isoformat(),
        "currency": program.currency,
        "opening": format_minor(statement.opening, money_digits),
        "lines": [{"what": line.what, "amount": format_minor(line.amount, money_digits)}
                  for line in statement.lines],
        "net": format_minor(statement.net, money_digits),
        "closing": format_minor(statement.closing, money_digits),
        "points": {
            "issued": format_minor(flows.issued, points),
            "redeemed": format_minor(flows.redeemed, points),
            "earned_here_spent_elsewhere": format_minor(flows.earned_here_spent_elsewhere, points),
            "earned_elsewhere_spent_here": format_minor(flows.earned_elsewhere_spent_here, points),
        },
        "closed_at": closed_at.isoformat() if closed_at else None,
        "closed_by": actor,
    }  # fmt: skip


def read_statement(engine: Engine, code: str, partner: str, statement_ref: str) -> dict[str, Any]:
    with reading(engine) as connection:
        loaded = load_program(connection, code)
        terms_of(loaded.calculator.program, partner)
        return read_statement_in(connection, loaded, partner, _statement_id(statement_ref))


def statement_to_export(
    engine: Engine, code: str, partner: str, statement_ref: str
) -> tuple[dict[str, Any], str]:
    """A closed statement and the program's name, for its files."""
    with reading(engine) as connection:
        loaded = load_program(connection, code)
        terms_of(loaded.calculator.program, partner)
        found = read_statement_in(connection, loaded, partner, _statement_id(statement_ref))
        return found, loaded.calculator.program.name


def _statement_id(reference: str) -> int:
    return row_id(reference) or -1


def read_statement_in(
    connection: Connection, loaded: LoadedProgram, partner: str, statement_id: int
) -> dict[str, Any]:
    row = connection.execute(
        select(partner_statements).where(partner_statements.c.id == statement_id,
                                         partner_statements.c.program_id == loaded.program_id,
                                         partner_statements.c.partner == partner)
    ).one_or_none()  # fmt: skip
    if row is None:
        raise NotFound(f"statement {statement_id} does not exist")
    lines = tuple(Line(what, amount) for what, amount in connection.execute(
        select(statement_lines.c.what, statement_lines.c.amount)
        .where(statement_lines.c.statement_id == row.id).order_by(statement_lines.c.n)
    ))  # fmt: skip
    flows = Flows(row.issued, row.redeemed, row.earned_here_spent_elsewhere,
                  row.earned_elsewhere_spent_here)  # fmt: skip
    statement = Statement(partner, row.opening, lines, flows)
    period = (row.first_day, row.last_day, row.starts_at, row.ends_at)
    program = loaded.calculator.program
    return statement_json(statement, period, program, status="closed", statement_id=row.id,
                          closed_at=row.closed_at, actor=row.actor)  # fmt: skip


def list_statements(engine: Engine, code: str, partner: str) -> list[dict[str, Any]]:
    with reading(engine) as connection:
        loaded = load_program(connection, code)
        terms_of(loaded.calculator.program, partner)
        ids = connection.execute(
            select(partner_statements.c.id)
            .where(partner_statements.c.program_id == loaded.program_id,
                   partner_statements.c.partner == partner)
            .order_by(partner_statements.c.first_day.desc())
        ).scalars().all()  # fmt: skip
        return [read_statement_in(connection, loaded, partner, one) for one in ids]


def partners_overview(engine: Engine, code: str) -> list[dict[str, Any]]:
    """Every partner of the program, with its position when it has terms."""
    with reading(engine) as connection:
        program = load_program(connection, code).calculator.program
    settings = coalition_of(program.sections)
    return [{"code": partner.code, "name": partner.name,
             "position": position(engine, code, partner.code)
             if settings is not None and settings.of(partner.code) else None}
            for partner in program.partners]  # fmt: skip


# — a partner's activity —


def partner_purchases(
    engine: Engine, code: str, partner: str, *, before: int | None = None, limit: int = 50
) -> dict[str, Any]:
    """The purchases made at a partner, newest first (what its key and operator see of
    its customers); `next` is the `before` of the next page."""
    with reading(engine) as connection:
        loaded = load_program(connection, code)
        program = loaded.calculator.program
        terms_of(program, partner)
        bought = purchases.c
        query = (
            select(bought.id, bought.receipt_id, bought.location, bought.member_id,
                   bought.status, bought.total, bought.paid, bought.accrued, bought.redeemed,
                   bought.created_at)
            .join(purchase_partners, purchase_partners.c.purchase_id == bought.id)
            .where(purchase_partners.c.program_id == loaded.program_id,
                   purchase_partners.c.partner == partner)
            .order_by(bought.id.desc()).limit(limit + 1)
        )  # fmt: skip
        if before is not None:
            query = query.where(bought.id < before)
        rows = connection.execute(query).all()
    money_digits, points = program.money_digits, program.points.precision
    items = [{
        "purchase_id": str(row.id), "receipt_id": row.receipt_id, "location": row.location,
        "member": str(row.member_id) if row.member_id is not None else None,
        "status": row.status, "at": row.created_at.isoformat(),
        "total": format_minor(row.total or 0, money_digits),
        "paid": format_minor(row.paid or 0, money_digits),
        "accrued": format_minor(row.accrued or 0, points),
        "redeemed": format_minor(row.redeemed or 0, points),
    } for row in rows[:limit]]  # fmt: skip
    more = len(rows) > limit
    return {"items": items, "next": str(rows[limit - 1].id) if more else None}


# — corrections and the exit —


def add_correction(
    engine: Engine, code: str, partner: str, body: object, *, actor: str, now: datetime
) -> dict[str, Any]:
    """An amount for the partner's next statement (a closed one is never changed)."""

    def attempt(connection: Connection) -> dict[str, Any]:
        loaded, _terms = _loaded(connection, code, partner)
        program = loaded.calculator.program
        problems: list[Problem] = []
        reader = Reader(body, "", problems, ("amount", "note"))
        number = reader.decimal("amount", required=True, what="an amount (− owed to the partner)")
        note = reader.text("note", required=True)
        amount = to_minor(number, program.money_digits) if number is not None else None
        if number is not None and (amount is None or amount == 0 or abs(amount) > MINOR_LIMIT):
            reader.report("amount", f"{number} is not an amount of money other than 0, with at "
                          f"most {program.money_digits} decimals")  # fmt: skip
        if problems:
            raise InvalidInput(problems)
        assert amount is not None
        assert note is not None
        row_id = connection.execute(
            insert(partner_corrections).values(
                program_id=loaded.program_id, partner=partner, amount=amount, note=note,
                actor=actor, created_at=now).returning(partner_corrections.c.id)
        ).scalar_one()  # fmt: skip
        return {"id": str(row_id), "partner": partner, "note": note,
                "amount": format_minor(amount, program.money_digits),
                "created_at": now.isoformat(), "statement_id": None}  # fmt: skip

    return retrying(engine, attempt)


def move_liability(
    engine: Engine, code: str, partner: str, body: object, *, actor: str, now: datetime
) -> dict[str, Any]:
    """A leaving partner's outstanding points (issued there, not yet spent or burnt) move
    to the program or to another partner, once its earning has stopped: recorded with
    their value at its reimbursement rate, which its next statement charges it and the
    taker's credits it. The points stay the members' — only who answers for them moves."""

    def attempt(connection: Connection) -> dict[str, Any]:
        loaded, terms = _loaded(connection, code, partner)
        program = loaded.calculator.program
        problems: list[Problem] = []
        reader = Reader(body, "", problems, ("to", "note"))
        taker = reader.code("to", required=True)
        note = reader.text("note")
        if problems:
            raise InvalidInput(problems)
        assert taker is not None
        _check_exit(program, terms, taker, now)
        moved = connection.execute(_outstanding_lots(loaded.program_id, partner)).all()
        points = sum(int(row.remaining) for row in moved)
        value = money(points_value(points, terms.reimbursement_per_point,
                                   program.points.precision), program.money_digits)  # fmt: skip
        exists = connection.execute(
            select(liability_transfers.c.id).where(
                liability_transfers.c.program_id == loaded.program_id,
                liability_transfers.c.from_partner == partner)
        ).first()  # fmt: skip
        if exists is not None:
            raise Conflict(f"partner {partner!r}'s outstanding points were moved already")
        connection.execute(insert(liability_transfers).values(
            program_id=loaded.program_id, from_partner=partner,
            to_partner=None if taker == PROGRAM else taker, points=points, value=value,
            lots=[[int(row.id), int(row.remaining)] for row in moved], note=note,
            actor=actor, moved_at=now))  # fmt: skip
        return {"from": partner, "to": taker, "note": note, "moved_at": now.isoformat(),
                "points": format_minor(points, program.points.precision),
                "value": format_minor(value, program.money_digits)}  # fmt: skip

    return retrying(engine, attempt)


def _check_exit(program: Program, terms: PartnerTerms, taker: str, now: datetime) -> None:
    today = now.astimezone(ZoneInfo(program.timezone)).date()
    if terms.earning_until is None or terms.earning_until >= today:
        raise Conflict(f"partner {terms.partner!r} still earns: set its earning_until and move "
                       "its points after that day")  # fmt: skip
    if taker == terms.partner:
        raise InvalidInput([Problem("to", "a partner cannot take over its own points")])
    if taker == PROGRAM:
        return
    settings = coalition_of(program.sections)
    known = {known.code for known in program.partners}
    if taker not in known:
        raise InvalidInput([Problem("to", f"{taker!r} is not a partner of the program "
                                    "(or 'program')")])  # fmt: skip
    taker_terms = settings.of(taker) if isinstance(settings, CoalitionSettings) else None
    if taker_terms is None or not taker_terms.burns_on(today):
        raise InvalidInput([Problem("to", f"{taker!r} does not redeem points: it cannot "
                                    "answer for them")])  # fmt: skip
