"""A feed message's round trips (`handlers.take_message`): what it reads and what it
writes, sent in as few round trips as the database allows.

On PostgreSQL a message takes three round trips at most, whatever it claims:

1. `read_card` — our BEGIN (`retrying(begun_by_work=True)`), the program's current
   version, the card's row locked, the message taken before with the same transaction
   id (its idempotency key), the catalog's version, the card's activations, uses and
   merchants seen, and the purchase the message is about: one pipeline. Each statement
   after the lock takes its own snapshot (READ COMMITTED), so it reads the card as the
   message taken before this one left it.
2. `read_offers`, when the message claims rewards: the claimed offers' budgets, locked
   in offer-id order by one `SELECT … ORDER BY id FOR UPDATE` (PostgreSQL locks the rows
   as the sort hands them over), and their rewards for the purchase. It can't come
   sooner: judging the message is what says which offers it claims.
3. `write` — every row the message leaves (`Rows`) as one statement of data-modifying
   CTEs, each kind of row one JSON array (`json_to_recordset`: the statement's text is
   the same whatever the message, so psycopg prepares it once), and the COMMIT in the
   same round trip. The transaction row is a plain INSERT: a copy of the message taken
   at the same moment fails on its unique key, and `retrying` runs this one again, to
   find the copy's answer.

On SQLite (one writer, nothing to save) the same queries run one after another and the
same rows are written by simple statements, in the same order: the rows, and their ids,
are the same on both.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Connection,
    Integer,
    Select,
    String,
    Table,
    and_,
    any_,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import sqlite

from kopilka.mechanics.card_offers.tables import (
    clo_activations,
    clo_card_merchants,
    clo_card_offer_uses,
    clo_cards,
    clo_catalogs,
    clo_offers,
    clo_purchases,
    clo_reviews,
    clo_reward_changes,
    clo_rewards,
    clo_transactions,
)
from kopilka.platform.statements import (
    BEGIN,
    COMMIT,
    driver_form,
    driver_rows_pipelined,
    record_columns,
)
from kopilka.platform.tables import program_versions, programs, webhook_outbox
from kopilka.programs.handlers import CURRENT_VERSION_COLUMNS

# ------------------------------------------------------------------------------- reads


@dataclass(frozen=True)
class LookedUp:
    """What a message's reads look for, as the message names it (None: not named, or
    not as text its reading takes — the reading then refuses the message)."""

    program_code: str
    transaction_id: str | None
    card: str | None
    original: str | None


@dataclass(frozen=True)
class CardRead:
    """What `read_card` found: rows with attribute access (None: no such row)."""

    program: Any  # the program's current version (CURRENT_VERSION_COLUMNS)
    card: Any  # the card's row, locked for this message
    taken: Any  # the message taken before with this transaction id: body_hash, answer
    catalog_version: int  # 0: no catalog yet
    activations: Sequence[Any]  # code, activated_at
    uses: Sequence[Any]  # offer_id, uses
    seen: Sequence[Any]  # merchant_id, first_at, last_at
    original: Any  # the purchase the message is about (clo_purchases), when it names one


_PROGRAM_ID = (
    select(programs.c.id).where(programs.c.code == bindparam("program_code")).scalar_subquery()
)
_MY_CARD = and_(clo_cards.c.program_id == _PROGRAM_ID, clo_cards.c.token == bindparam("card"))
_CARD_ID = select(clo_cards.c.id).where(_MY_CARD).scalar_subquery()

# In this order: the card's row is locked before its state is read. Built once, so
# SQLAlchemy's cache (SQLite) and `_driver_form`'s (PostgreSQL) keep their compiled form.
_CARD_READS: tuple[Select[Any], ...] = (
    select(*CURRENT_VERSION_COLUMNS)
    .join(program_versions, and_(program_versions.c.program_id == programs.c.id,
                                 program_versions.c.version == programs.c.current_version))
    .where(programs.c.code == bindparam("program_code")),
    select(clo_cards).where(_MY_CARD).with_for_update(of=clo_cards),
    select(clo_transactions.c.body_hash, clo_transactions.c.answer)
    .where(clo_transactions.c.program_id == _PROGRAM_ID,
           clo_transactions.c.transaction_id == bindparam("transaction_id")),
    select(clo_catalogs.c.version).where(clo_catalogs.c.program_id == _PROGRAM_ID),
    select(clo_offers.c.code, clo_activations.c.activated_at)
    .join(clo_offers, clo_offers.c.id == clo_activations.c.offer_id)
    .where(clo_activations.c.card_id == _CARD_ID),
    select(clo_card_offer_uses.c.offer_id, clo_card_offer_uses.c.uses)
    .where(clo_card_offer_uses.c.card_id == _CARD_ID),
    select(clo_card_merchants.c.merchant_id, clo_card_merchants.c.first_at,
           clo_card_merchants.c.last_at)
    .where(clo_card_merchants.c.card_id == _CARD_ID),
)  # fmt: skip
_ORIGINAL = select(clo_purchases).where(
    clo_purchases.c.program_id == _PROGRAM_ID, clo_purchases.c.purchase == bindparam("original")
)


def read_card(connection: Connection, looked_up: LookedUp, *, begin: bool) -> CardRead:
    """Everything a message is judged on but its offers' budgets — one round trip on
    PostgreSQL. `begin`: our BEGIN goes first (`retrying(begun_by_work=True)`)."""
    values = {"program_code": looked_up.program_code, "card": looked_up.card,
              "transaction_id": looked_up.transaction_id,
              "original": looked_up.original}  # fmt: skip
    about = (_ORIGINAL,) if looked_up.original is not None else ()
    found = _rows(connection, (*_CARD_READS, *about), values, begin=begin)
    program, card, taken, version, activations, uses, seen, *original = found
    return CardRead(_first(program), _first(card), _first(taken),
                    int(version[0].version) if version else 0, activations, uses, seen,
                    _first(original[0]) if original else None)  # fmt: skip


@dataclass(frozen=True)
class OffersRead:
    budgets: Sequence[Any]  # id, spent, budget_ended: locked, in id order
    rewards: Sequence[Any]  # clo_rewards rows, with their card's `token`


def read_offers(connection: Connection, offer_ids: Sequence[int],
                purchases: Sequence[str]) -> OffersRead:  # fmt: skip
    """The claimed offers' budgets, locked in id order, then their rewards for
    `purchases` — one round trip on PostgreSQL."""
    queries = _offer_reads(connection.dialect.name == "postgresql")
    values = {"offer_ids": list(offer_ids), "purchases": list(purchases)}
    budgets, rewards = _rows(connection, queries, values)
    return OffersRead(budgets, rewards)


@cache
def _offer_reads(postgresql: bool) -> tuple[Select[Any], Select[Any]]:
    """The budgets' and rewards' queries: the ids sent as one array on PostgreSQL (one
    statement's text whatever their number), as an IN list elsewhere."""

    def among(column: ColumnElement[Any], name: str, item: Any) -> ColumnElement[bool]:
        if postgresql:
            return column == any_(bindparam(name, type_=ARRAY(item)))
        return column.in_(bindparam(name, expanding=True))

    budgets = (
        select(clo_offers.c.id, clo_offers.c.spent, clo_offers.c.budget_ended)
        .where(among(clo_offers.c.id, "offer_ids", Integer))
        .order_by(clo_offers.c.id)  # locked in this order: no two messages lock crosswise
        .with_for_update()
    )
    rewards = (
        select(clo_rewards, clo_cards.c.token)
        .join(clo_cards, clo_cards.c.id == clo_rewards.c.card_id)
        .where(among(clo_rewards.c.offer_id, "offer_ids", Integer),
               among(clo_rewards.c.purchase, "purchases", String))
    )  # fmt: skip
    return budgets, rewards


def _rows(connection: Connection, queries: Sequence[Select[Any]], values: Mapping[str, Any],
          *, begin: bool = False) -> list[list[Any]]:  # fmt: skip
    """Each query's rows, in order: on PostgreSQL one pipeline (after our BEGIN, when
    `begin`), elsewhere one query after another."""
    if connection.dialect.name != "postgresql":
        return [list(connection.execute(query, values)) for query in queries]
    statements: list[tuple[str, Mapping[str, Any]]] = [(BEGIN, {})] if begin else []
    for query in queries:
        sql, constants = _driver_form(query)
        statements.append((sql, {**constants, **values}))
    found = driver_rows_pipelined(connection, statements)
    return found[1:] if begin else found


@cache
def _driver_form(query: Select[Any]) -> tuple[str, dict[str, Any]]:
    """A query as psycopg's text, compiled once."""
    return driver_form(query, unset=True)


def _first(rows: Sequence[Any]) -> Any:
    return rows[0] if rows else None


# ------------------------------------------------------------------------------ writes


@dataclass
class Rows:
    """Every row a message leaves, built once whatever the database: each a mapping of
    its table's columns. A reward change names its reward by `offer_id` and `purchase`
    (a new reward's id is the database's); the review names no transaction row (it is
    the message's, written with it)."""

    transaction: dict[str, Any]
    new_rewards: list[dict[str, Any]] = field(default_factory=list)
    # id, offer_id, purchase and REWARD_STATE
    changed_rewards: list[dict[str, Any]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    webhooks: list[dict[str, Any]] = field(default_factory=list)
    budgets: list[dict[str, Any]] = field(default_factory=list)  # id, spent, budget_ended
    uses: list[dict[str, Any]] = field(default_factory=list)
    seen: list[dict[str, Any]] = field(default_factory=list)
    purchases: list[dict[str, Any]] = field(default_factory=list)  # updated, or inserted
    review: dict[str, Any] | None = None


REWARD_STATE = ("status", "amount", "cashback", "fee", "granted", "refunded", "payable_at")
PURCHASE_STATE = ("location_id", "merchant", "rule", "amount", "cleared", "released", "offers")
CHANGE_COLUMNS = ("transaction_id", "status", "cashback_delta", "fee_delta", "reason", "at")


def write(connection: Connection, rows: Rows, *, commit: bool) -> None:
    """Write `rows`: one statement on PostgreSQL — `commit`: with the COMMIT in its round
    trip (nothing may be written after it) — simple statements elsewhere."""
    if connection.dialect.name == "postgresql":
        statements = [(_statement(), _parameters(rows))]
        driver_rows_pipelined(connection, [*statements, (COMMIT, {})] if commit else statements)
    else:
        _write_one_by_one(connection, rows)


def _parameters(rows: Rows) -> dict[str, Any]:
    """The statement's values: each kind of row one JSON array, in the order written
    (`n`: inserted in it, so the ids come in the same order as on SQLite)."""
    return {
        "transaction": _json([rows.transaction]),
        "new_rewards": _json(_numbered(rows.new_rewards)),
        "changed_rewards": _json(rows.changed_rewards),
        "changed_reward_ids": [row["id"] for row in rows.changed_rewards],
        "changes": _json(_numbered(rows.changes)),
        "webhooks": _json(_numbered(rows.webhooks)),
        "budgets": _json(rows.budgets),
        "budget_ids": [row["id"] for row in rows.budgets],
        "uses": _json(rows.uses),
        "seen": _json(rows.seen),
        "purchases": _json(_numbered(rows.purchases)),
        "purchase_keys": [row["purchase"] for row in rows.purchases],
        "reviews": _json([rows.review] if rows.review is not None else []),
    }


def _numbered(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"n": n, **row} for n, row in enumerate(rows)]


def _json(value: Any) -> str:
    """JSON text as SQLAlchemy's JSON type writes it (`json.dumps`: a JSON column's value
    taken from the array keeps this text), moments as ISO text."""
    return json.dumps(value, default=_moment)


def _moment(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _columns(table: Table, *, but: tuple[str, ...] = ("id",)) -> tuple[str, ...]:
    return tuple(column.name for column in table.c if column.name not in but)


@cache
def _statement() -> str:
    """The message's one statement: its transaction row; its rewards inserted and
    updated, their changes (each joined to its reward's id) and webhooks; the budgets
    spent; the card's uses and merchants seen; its purchases updated, or inserted when
    new; its review. Built once."""
    reward = _columns(clo_rewards, but=("id", "paid_at"))
    webhook = _columns(webhook_outbox, but=("id", "delivered_at", "given_up_at", "last_error"))
    purchase = _columns(clo_purchases)
    review = ("program_id", "descriptor", "mcc", "suggestions", "status")
    rewarded = "(SELECT * FROM made UNION ALL SELECT * FROM remade)"
    changes = _recordset(clo_reward_changes, CHANGE_COLUMNS, "changes", numbered=True,
                         also="offer_id int, purchase text")  # fmt: skip
    new_purchases = _insert(clo_purchases, purchase, "purchases", numbered=True,
                            unless="r.purchase IN (SELECT purchase FROM known_before)")  # fmt: skip
    return _compact(f"""
WITH message AS (
    {_insert(clo_transactions, _columns(clo_transactions), "transaction")}
    RETURNING id
), made AS (
    {_insert(clo_rewards, reward, "new_rewards", numbered=True)}
    RETURNING id, offer_id, purchase
), remade AS (
    UPDATE clo_rewards AS t SET {_set(REWARD_STATE)}
    FROM {_recordset(clo_rewards, ("id", *REWARD_STATE), "changed_rewards")}
    WHERE t.id = r.id AND t.id = ANY(%(changed_reward_ids)s)
    RETURNING t.id, t.offer_id, t.purchase
), changed AS (
    INSERT INTO clo_reward_changes (reward_id, {_names(CHANGE_COLUMNS)})
    SELECT w.id, {_names(CHANGE_COLUMNS, "r")}
    FROM {changes}
    JOIN {rewarded} AS w ON w.offer_id = r.offer_id AND w.purchase = r.purchase
    ORDER BY r.n
), notified AS (
    {_insert(webhook_outbox, webhook, "webhooks", numbered=True)}
    ON CONFLICT (program_id, event_key) DO NOTHING
), spent AS (
    UPDATE clo_offers AS t SET {_set(("spent", "budget_ended"))}
    FROM {_recordset(clo_offers, ("id", "spent", "budget_ended"), "budgets")}
    WHERE t.id = r.id AND t.id = ANY(%(budget_ids)s)
), used AS (
    {_insert(clo_card_offer_uses, ("card_id", "offer_id", "uses"), "uses")}
    ON CONFLICT (card_id, offer_id) DO UPDATE SET uses = excluded.uses
), seen AS (
    {_insert(clo_card_merchants, ("card_id", "merchant_id", "first_at", "last_at"), "seen")}
    ON CONFLICT (card_id, merchant_id)
    DO UPDATE SET first_at = excluded.first_at, last_at = excluded.last_at
), known_before AS (
    UPDATE clo_purchases AS t SET {_set(PURCHASE_STATE)}
    FROM {_recordset(clo_purchases, purchase, "purchases")}
    WHERE t.program_id = r.program_id AND t.purchase = r.purchase
      AND t.purchase = ANY(%(purchase_keys)s)
    RETURNING t.purchase
), known AS (
    {new_purchases}
), reviewed AS (
    INSERT INTO clo_reviews (transaction_row, {_names(review)})
    SELECT message.id, {_names(review, "r")}
    FROM message, {_recordset(clo_reviews, review, "reviews")}
)
SELECT id FROM message""")


def _insert(table: Table, columns: tuple[str, ...], parameter: str, *,
            numbered: bool = False, unless: str = "") -> str:  # fmt: skip
    """`INSERT INTO table` the rows of the JSON array `parameter` (`numbered`: in its
    order, so their ids are given in it; `unless`: but those this condition names)."""
    where = f" WHERE NOT ({unless})" if unless else ""
    order = " ORDER BY r.n" if numbered else ""
    into = f"INSERT INTO {table.name} ({_names(columns)})"
    rows = _recordset(table, columns, parameter, numbered=numbered)
    return f"{into} SELECT {_names(columns, 'r')} FROM {rows}{where}{order}"


def _names(columns: Sequence[str], alias: str = "") -> str:
    return ", ".join(f"{alias}.{name}" if alias else name for name in columns)


def _set(columns: Sequence[str]) -> str:
    """An UPDATE's SET from the recordset `r`."""
    return ", ".join(f"{name} = r.{name}" for name in columns)


def _recordset(table: Table, columns: tuple[str, ...], parameter: str, *,
               numbered: bool = False, also: str = "") -> str:  # fmt: skip
    """`json_to_recordset(…) AS r(…)`: the rows of the JSON array `parameter`, typed as
    `table`'s columns (`numbered`: with their place in it, `n`; `also`: more fields)."""
    typed = ["n int"] if numbered else []
    typed += [record_columns(table, columns), *([also] if also else [])]
    return f"json_to_recordset(%({parameter})s::json) AS r({', '.join(typed)})"


def _compact(sql: str) -> str:
    """One space for each run of whitespace (the text holds no literals): less to send,
    and within psycopg's length for statements it keeps parsed."""
    return " ".join(sql.split())


def _write_one_by_one(connection: Connection, rows: Rows) -> None:
    """`rows` in simple statements (SQLite), in the order the one statement writes them."""
    transaction_row = _inserted(connection, clo_transactions, rows.transaction)
    reward_ids = {}
    for reward in rows.new_rewards:
        reward_ids[reward["offer_id"], reward["purchase"]] = _inserted(connection, clo_rewards,
                                                                       reward)  # fmt: skip
    for reward in rows.changed_rewards:
        connection.execute(update(clo_rewards).where(clo_rewards.c.id == reward["id"])
                           .values({name: reward[name] for name in REWARD_STATE}))  # fmt: skip
        reward_ids[reward["offer_id"], reward["purchase"]] = reward["id"]
    if rows.changes:
        connection.execute(insert(clo_reward_changes), [
            {"reward_id": reward_ids[change["offer_id"], change["purchase"]],
             **{name: change[name] for name in CHANGE_COLUMNS}}
            for change in rows.changes])  # fmt: skip
    if rows.webhooks:
        connection.execute(sqlite.insert(webhook_outbox).on_conflict_do_nothing(
            index_elements=["program_id", "event_key"]), rows.webhooks)  # fmt: skip
    for budget in rows.budgets:
        connection.execute(update(clo_offers).where(clo_offers.c.id == budget["id"]).values(
            spent=budget["spent"], budget_ended=budget["budget_ended"]))  # fmt: skip
    _upsert_rows(connection, clo_card_offer_uses, ("card_id", "offer_id"), rows.uses)
    _upsert_rows(connection, clo_card_merchants, ("card_id", "merchant_id"), rows.seen)
    for purchase in rows.purchases:
        changed = connection.execute(update(clo_purchases).where(
            clo_purchases.c.program_id == purchase["program_id"],
            clo_purchases.c.purchase == purchase["purchase"])
            .values({name: purchase[name] for name in PURCHASE_STATE})).rowcount  # fmt: skip
        if not changed:
            connection.execute(insert(clo_purchases).values(purchase))
    if rows.review is not None:
        connection.execute(insert(clo_reviews).values(transaction_row=transaction_row,
                                                      **rows.review))  # fmt: skip


def _inserted(connection: Connection, table: Table, row: dict[str, Any]) -> int:
    return int(connection.execute(insert(table).values(row).returning(table.c.id)).scalar_one())


def _upsert_rows(connection: Connection, table: Table, key: tuple[str, ...],
                 rows: list[dict[str, Any]]) -> None:  # fmt: skip
    if not rows:
        return
    statement = sqlite.insert(table)
    counts = [name for name in rows[0] if name not in key]
    connection.execute(statement.on_conflict_do_update(
        index_elements=list(key), set_={name: statement.excluded[name] for name in counts}),
        rows)  # fmt: skip
