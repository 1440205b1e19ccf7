"""A day's feed run as a batch and its outcome stored (`kopilka card-batch --store`).

The batch (batch.py) gives exactly what the online path gives taking the same feed in the
same order. Stored, it leaves exactly the rows the online path would have left — each
message's transaction row with its answer (a message sent again online is answered from
it, and another body under its transaction id is `409`), the purchases, the cards' uses
and merchants seen, the rewards, their changes and webhooks, the budgets spent, the
review queue — written in bulk in one transaction, so the online path goes on from them.

The messages the online path would refuse are left out first, by the same checks in the
same order: not a message (`validation_error`), a transaction id taken before (the same
body: already there; another: `idempotency_conflict`), a card not enrolled (`not_found`),
an `original` made with another card (`validation_error`). A refused message writes
nothing online, so leaving it out changes nothing for the messages after it.

Concurrency is optimistic. The batch runs on one snapshot of the database (REPEATABLE
READ on PostgreSQL, a reader's WAL snapshot on SQLite) and marks where it stood: the
messages taken per card, the reward changes per offer, the catalog's version. The store then
locks the feed's cards and the offers it changed, in id order — as the online path locks
a card, then budgets — and checks that nothing the batch read has moved: no message
taken for those cards, no change to those offers' rewards, the catalog, the cards and
their activations as they were. If anything moved, nothing is written and the batch runs
again on a new snapshot (`attempts` times in all). Once the locks are held, an online
message for one of those cards or claiming one of those offers waits, then goes on from
what the batch stored; any other message is independent of it.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, select, update

from kopilka.imports.csv_rows import CannotImport
from kopilka.kernel.errors import Conflict, KopilkaError
from kopilka.kernel.reading import Reader
from kopilka.mechanics.card_offers import terms
from kopilka.mechanics.card_offers.batch import BatchResult, run_batch
from kopilka.mechanics.card_offers.feed import Change, Judged, Known, Message, Reward, World
from kopilka.mechanics.card_offers.handlers import (
    Loaded,
    body_digest,
    card_from_row,
    catalog_of,
    message_json,
    read_sent,
)
from kopilka.mechanics.card_offers.model import Card, Kind
from kopilka.mechanics.card_offers.rows import (
    change_notice,
    purchase_values,
    review_row,
    reward_values,
    transaction_row,
)
from kopilka.mechanics.card_offers.snapshot import read_world
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
from kopilka.platform.db import READER
from kopilka.platform.http.common import MAX_BODY, read_json
from kopilka.platform.idempotency import retrying
from kopilka.platform.statements import insert_rows
from kopilka.platform.webhooks import enqueue_many
from kopilka.programs.handlers import LoadedProgram, load_program

ATTEMPTS = 3  # snapshots taken before a feed that keeps moving is given up
CHUNK = 5_000  # ids a statement names at most (PostgreSQL takes 65,535 parameters)

Runner = Callable[[World, list[Message]], BatchResult]


@dataclass(frozen=True, slots=True)
class Refused:
    """A line of the feed the online path would refuse: left out, and why."""

    line: int
    transaction_id: str
    problem: str
    detail: str

    def json(self) -> dict[str, Any]:
        return {"line": self.line, "transaction_id": self.transaction_id,
                "problem": self.problem, "detail": self.detail}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Line:
    """A message of the feed the program takes: its line, as read, and its digest."""

    number: int
    sent: terms.MessageSent
    digest: str


Document = tuple[int, object]  # a line's number and its JSON


def read_documents(path: Path) -> tuple[list[Document], list[Refused]]:
    """The feed file's lines as JSON, and the lines that are not JSON."""
    try:
        lines = path.read_bytes().splitlines()
    except OSError as error:
        raise CannotImport(f"{path}: {error.strerror or error}") from None
    documents, refused = [], []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        if len(raw) > MAX_BODY:
            refused.append(Refused(number, "", "payload_too_large", f"{len(raw)} bytes"))
            continue
        try:
            documents.append((number, read_json(raw)))
        except KopilkaError as error:
            refused.append(Refused(number, "", error.code, error.detail))
    return documents, refused


# ---------------------------------------------------------------------- what is taken


@dataclass
class Admitted:
    """The feed's messages the program takes, in the file's order, and the rest."""

    lines: list[Line] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    already: int = 0  # taken before with the same body: answered as they were

    def messages(self) -> list[Message]:
        return [line.sent.message(line.number) for line in self.lines]


def admit(documents: Sequence[Document], program: LoadedProgram, world: World,
          taken: dict[str, str], now: datetime) -> Admitted:  # fmt: skip
    """The online path's checks, in its order, on each message in the file's order.
    `taken`: the digest of every transaction id the database holds of this feed."""
    digests = dict(taken)  # then the file's own, as they are admitted
    card_of = {purchase: token for token, known in world.known.items() for purchase in known}
    admitted = Admitted()
    for number, document in documents:
        key = _transaction_id(document)
        reader = Reader(document, "", [], terms.MESSAGE_KEYS)
        sent = read_sent(reader, program, now)
        if sent is None:
            detail = "; ".join(str(problem) for problem in reader.problems)
            admitted.refused.append(Refused(number, key, "validation_error", detail))
            continue
        digest = body_digest(document)
        earlier = digests.get(sent.transaction_id)
        if earlier == digest:
            admitted.already += 1
            continue
        problem = _refusal(sent, earlier, world, card_of)
        if problem is not None:
            admitted.refused.append(Refused(number, key, *problem))
            continue
        digests[sent.transaction_id] = digest
        if sent.kind in (Kind.AUTHORISATION, Kind.CLEARING):
            card_of.setdefault(sent.original or sent.transaction_id, sent.card)
        admitted.lines.append(Line(number, sent, digest))
    return admitted


def _transaction_id(document: object) -> str:
    found = document.get("transaction_id") if isinstance(document, dict) else None
    return found[:64] if isinstance(found, str) else ""


def _refusal(sent: terms.MessageSent, earlier: str | None, world: World,
             card_of: dict[str, str]) -> tuple[str, str] | None:  # fmt: skip
    if earlier is not None:
        return "idempotency_conflict", (f"transaction {sent.transaction_id!r} was sent before "
                                        "with other details")  # fmt: skip
    if sent.card not in world.cards:
        return "not_found", f"card {sent.card!r} is not enrolled"
    owner = card_of.get(sent.original or "")
    if owner is not None and owner != sent.card:
        return "validation_error", (f"original: transaction {sent.original!r} was made with "
                                    "another card")  # fmt: skip
    return None


# ------------------------------------------------------------------------ the snapshot


@dataclass(frozen=True)
class Marks:
    """Where the database stood when the snapshot was read. Counts, not the last ids: a
    row with a lower id may be committed after one with a higher id, and rows of these
    tables are never deleted, so a count moves whenever a row is committed."""

    version: int  # the catalog's
    messages: dict[str, int]  # transactions taken, by card token
    changes: dict[str, int]  # reward changes, by offer code


@dataclass
class Before:
    """The state the batch starts from for what the feed touches, kept apart (the batch
    changes the world in place): what the store compares and writes against."""

    cards: dict[str, Card]
    activated: dict[str, dict[str, datetime]]
    uses: dict[str, dict[str, int]]
    seen: dict[str, dict[str, tuple[datetime, datetime]]]
    known: dict[str, dict[str, Known]]
    budgets: dict[str, tuple[int, bool]]
    rewards: dict[str, set[str]]  # by offer: the purchases it has a reward for

    @classmethod
    def of(cls, world: World, tokens: set[str]) -> Before:
        states = {token: world.states.get(token) for token in tokens}
        return cls(
            {token: world.cards[token] for token in tokens},
            {token: dict(state.activated) if state else {} for token, state in states.items()},
            {token: dict(state.uses) if state else {} for token, state in states.items()},
            {token: dict(state.seen) if state else {} for token, state in states.items()},
            {token: dict(world.known.get(token, {})) for token in tokens},
            {code: (budget.spent, budget.ended) for code, budget in world.budgets.items()},
            {code: set(rewards) for code, rewards in world.rewards.items()},
        )


@dataclass
class Plan:
    """A feed against one snapshot: what the batch takes and what the store checks."""

    program: LoadedProgram
    loaded: Loaded
    world: World
    marks: Marks
    admitted: Admitted
    before: Before


def plan(engine: Engine, program_code: str, documents: Sequence[Document],
         now: datetime) -> Plan:  # fmt: skip
    """The snapshot the batch runs on, read in one moment of the database."""
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        else:
            connection = connection.execution_options(**{READER: True})
        program = load_program(connection, program_code)
        loaded = catalog_of(connection, program)
        world = read_world(connection, program)
        marks = _marks(connection, program.program_id)
        ids = sorted({key for _, document in documents if (key := _transaction_id(document))})
        taken = _digests(connection, program.program_id, ids)
        connection.commit()
    admitted = admit(documents, program, world, taken, now)
    before = Before.of(world, {line.sent.card for line in admitted.lines})
    return Plan(program, loaded, world, marks, admitted, before)


def _marks(connection: Connection, program_id: int) -> Marks:
    version = connection.execute(select(clo_catalogs.c.version).where(
        clo_catalogs.c.program_id == program_id)).scalar()  # fmt: skip
    messages = connection.execute(
        select(clo_cards.c.token, func.count(clo_transactions.c.id))
        .join(clo_cards, clo_cards.c.id == clo_transactions.c.card_id)
        .where(clo_transactions.c.program_id == program_id)
        .group_by(clo_cards.c.token))  # fmt: skip
    changes = connection.execute(
        select(clo_offers.c.code, func.count(clo_reward_changes.c.id))
        .join(clo_rewards, clo_rewards.c.id == clo_reward_changes.c.reward_id)
        .join(clo_offers, clo_offers.c.id == clo_rewards.c.offer_id)
        .where(clo_rewards.c.program_id == program_id)
        .group_by(clo_offers.c.code))  # fmt: skip
    return Marks(int(version or 0), {token: int(count) for token, count in messages},
                 {code: int(count) for code, count in changes})  # fmt: skip


def _digests(connection: Connection, program_id: int, ids: Sequence[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for chunk in _chunks(ids):
        rows = connection.execute(
            select(clo_transactions.c.transaction_id, clo_transactions.c.body_hash)
            .where(clo_transactions.c.program_id == program_id,
                   clo_transactions.c.transaction_id.in_(chunk)))  # fmt: skip
        found.update({row.transaction_id: row.body_hash for row in rows})
    return found


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


# ---------------------------------------------------------------------------- storing


class MovedOn(Exception):
    """Something the batch read changed before its outcome was stored."""


def store_batch(engine: Engine, program_code: str, path: Path, *, now: datetime,
                run: Runner, attempts: int = ATTEMPTS,
                before_store: Callable[[], None] | None = None) -> dict[str, Any]:  # fmt: skip
    """The feed file at `path` (JSON Lines) taken by `run` (a batch: `run_batch` on a
    cluster, or `batch.run_split` in process) and its outcome stored; a summary.
    `before_store` is called between the batch and the store (tests make the feed move
    there)."""
    documents, unreadable = read_documents(path)
    for attempt in range(1, attempts + 1):
        started = time.perf_counter()
        planned = plan(engine, program_code, documents, now)
        planned_at = time.perf_counter()
        result = run(planned.world, planned.admitted.messages())
        plan_seconds, batch_seconds = planned_at - started, time.perf_counter() - planned_at
        if before_store is not None:
            before_store()
        started = time.perf_counter()
        try:
            retrying(engine, partial(_store, planned=planned, result=result, now=now))
        except MovedOn:
            continue
        refused = sorted(unreadable + planned.admitted.refused, key=lambda item: item.line)
        return {
            "messages": result.messages, "matched": result.matched, "claims": result.claims,
            "changes": len(result.changes), "already_there": planned.admitted.already,
            "refused": [item.json() for item in refused], "digest": result.digest(),
            "attempts": attempt, "plan_seconds": round(plan_seconds, 2),
            "batch_seconds": round(batch_seconds, 2),
            "store_seconds": round(time.perf_counter() - started, 2), "stored": True,
        }  # fmt: skip
    raise Conflict(
        f"the feed moved on while the batch ran ({attempts} times): messages of "
        "its cards or rewards of its offers were taken meanwhile; run it again"
    )


def batch_runner(*, scheduler: str | None, workers: int) -> Runner:
    """The batch on Dask, everything collected (the store needs the world it leaves)."""

    def run(world: World, messages: list[Message]) -> BatchResult:
        return run_batch(world, messages, scheduler=scheduler, workers=workers)

    return run


def _store(connection: Connection, *, planned: Plan, result: BatchResult, now: datetime) -> None:
    claimed = {claim.offer for judged in result.judged for claim in judged.claims}
    offer_ids = {code: planned.loaded.offer_ids[code] for code in claimed}
    card_ids = _lock(connection, planned, offer_ids)
    _check_unmoved(connection, planned, card_ids, offer_ids)
    rows = _Writer(connection, planned, result, card_ids, now)
    rows.transactions()
    rows.purchases()
    rows.uses()
    rows.seen()
    rows.rewards()
    rows.budgets(offer_ids)


def _lock(connection: Connection, planned: Plan, offer_ids: dict[str, int]) -> dict[str, int]:
    """The feed's cards, then the offers it claimed, locked in id order (as the online
    path locks a card, then budgets); the cards' ids by token."""
    program_id = planned.program.program_id
    tokens = sorted(planned.before.cards)
    card_ids: dict[str, int] = {}
    for chunk in _chunks(tokens):
        rows = connection.execute(select(clo_cards).where(
            clo_cards.c.program_id == program_id, clo_cards.c.token.in_(chunk))
            .order_by(clo_cards.c.id).with_for_update())  # fmt: skip
        for row in rows:
            card_ids[row.token] = row.id
            if card_from_row(row) != planned.before.cards[row.token]:
                raise MovedOn(f"card {row.token!r} changed")
    if len(card_ids) != len(tokens):
        raise MovedOn("a card of the feed is no longer there")
    for chunk in _chunks(sorted(offer_ids.values())):
        connection.execute(select(clo_offers.c.id).where(clo_offers.c.id.in_(chunk))
                           .order_by(clo_offers.c.id).with_for_update()).all()  # fmt: skip
    return card_ids


def _check_unmoved(connection: Connection, planned: Plan, card_ids: dict[str, int],
                   offer_ids: dict[str, int]) -> None:  # fmt: skip
    """`MovedOn` if anything the batch read has changed since its snapshot."""
    marks = planned.marks
    version = connection.execute(select(clo_catalogs.c.version).where(
        clo_catalogs.c.program_id == planned.program.program_id)).scalar()  # fmt: skip
    if int(version or 0) != marks.version:
        raise MovedOn("the catalog changed")
    tokens = {card_id: token for token, card_id in card_ids.items()}
    messages = _counts(connection, clo_transactions.c.card_id, clo_transactions.c.id, tokens)
    if any(count != marks.messages.get(tokens[card], 0) for card, count in messages.items()):
        raise MovedOn("a message of the feed's cards was taken meanwhile")
    codes = {offer_id: code for code, offer_id in offer_ids.items()}
    their_changes = (clo_reward_changes, clo_reward_changes.c.reward_id == clo_rewards.c.id)
    changes = _counts(connection, clo_rewards.c.offer_id, clo_reward_changes.c.id, codes,
                      join=their_changes)  # fmt: skip
    if any(count != marks.changes.get(codes[offer], 0) for offer, count in changes.items()):
        raise MovedOn("a reward of the feed's offers changed meanwhile")
    if _activations(connection, planned, tokens) != planned.before.activated:
        raise MovedOn("an offer was activated on a card of the feed meanwhile")


def _counts(connection: Connection, key: Any, counted: Any, keys: dict[int, str],
            join: tuple[Any, Any] | None = None) -> dict[int, int]:  # fmt: skip
    """How many `counted` rows each of `keys` has (those with none left out)."""
    found: dict[int, int] = {}
    for chunk in _chunks(sorted(keys)):
        statement = select(key, func.count(counted))
        if join is not None:
            statement = statement.join(*join)
        rows = connection.execute(statement.where(key.in_(chunk)).group_by(key))
        found.update({int(row[0]): int(row[1]) for row in rows})
    return found


def _activations(connection: Connection, planned: Plan,
                 tokens: dict[int, str]) -> dict[str, dict[str, datetime]]:  # fmt: skip
    activated: dict[str, dict[str, datetime]] = {token: {} for token in tokens.values()}
    codes = {offer_id: code for code, offer_id in planned.loaded.offer_ids.items()}
    for chunk in _chunks(sorted(tokens)):
        for row in connection.execute(select(clo_activations).where(
                clo_activations.c.card_id.in_(chunk))):  # fmt: skip
            activated[tokens[row.card_id]][codes[row.offer_id]] = row.activated_at
    return activated


class _Writer:
    """The rows the online path writes, for the whole feed at once (each table's in a
    statement or a few: inserts and updates sent as one executemany each)."""

    def __init__(self, connection: Connection, planned: Plan, result: BatchResult,
                 card_ids: dict[str, int], now: datetime) -> None:  # fmt: skip
        self.connection = connection
        self.planned = planned
        self.result = result
        self.card_ids = card_ids
        self.now = now
        self.program_id = planned.program.program_id
        self.loaded = planned.loaded
        self.before = planned.before
        self.world = planned.world

    def transactions(self) -> None:
        """Each message's row and its answer (in feed order: ids ascend as online), and
        the review queue's rows for the purchases nothing matched."""
        digits = self.planned.program.calculator.program.money_digits
        changes: dict[str, list[Change]] = defaultdict(list)
        for change in self.result.changes:
            changes[change.message].append(change)
        rows = []
        lines = self.planned.admitted.lines
        for line, judged in zip(lines, self.result.judged, strict=True):
            answer = message_json(judged, changes[judged.message.id], digits)
            rows.append(self._transaction(line, judged, answer))
        self._insert(clo_transactions, rows)
        unmatched = [line for line, judged in zip(lines, self.result.judged, strict=True)
                     if judged.match is None and judged.problem is None
                     and line.sent.kind in (Kind.AUTHORISATION, Kind.CLEARING)]  # fmt: skip
        ids = self._transaction_rows([line.sent.transaction_id for line in unmatched])
        reviews = [self._review(ids[line.sent.transaction_id], line.sent) for line in unmatched]
        self._insert(clo_reviews, reviews)

    def _transaction_rows(self, keys: list[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for chunk in _chunks(keys):
            rows = self.connection.execute(
                select(clo_transactions.c.id, clo_transactions.c.transaction_id)
                .where(clo_transactions.c.program_id == self.program_id,
                       clo_transactions.c.transaction_id.in_(chunk)))  # fmt: skip
            found.update({row.transaction_id: row.id for row in rows})
        return found

    def _transaction(self, line: Line, judged: Judged, answer: dict[str, Any]) -> dict[str, Any]:
        card_id = self.card_ids[line.sent.card]
        return transaction_row(self.program_id, self.loaded, card_id, line.sent, judged,
                               line.digest, answer, self.now)  # fmt: skip

    def _review(self, transaction_row: int, sent: terms.MessageSent) -> dict[str, Any]:
        return {**review_row(self.program_id, self.loaded, sent),
                "transaction_row": transaction_row}  # fmt: skip

    def purchases(self) -> None:
        """What each purchase left for the messages about it (`Known`), where it moved."""
        new, changed = [], []
        for token, before in self.before.known.items():
            for key, known in self.world.known.get(token, {}).items():
                if before.get(key) == known:
                    continue
                values = purchase_values(self.loaded, known)
                if key in before:
                    changed.append({**values, "b_purchase": key})
                else:
                    new.append({**values, "program_id": self.program_id, "purchase": key,
                                "card_id": self.card_ids[token]})  # fmt: skip
        self._update(clo_purchases, changed, clo_purchases.c.program_id == self.program_id,
                     clo_purchases.c.purchase == bindparam("b_purchase"))  # fmt: skip
        self._insert(clo_purchases, new)

    def uses(self) -> None:
        new, changed = [], []
        for token, before in self.before.uses.items():
            state = self.world.states.get(token)
            for code, uses in (state.uses if state else {}).items():
                if before.get(code) == uses:
                    continue
                keys = {"card_id": self.card_ids[token], "offer_id": self.loaded.offer_ids[code]}
                if code in before:
                    changed.append({"b_card": keys["card_id"], "b_offer": keys["offer_id"],
                                    "uses": uses})  # fmt: skip
                else:
                    new.append({**keys, "uses": uses})
        self._update(clo_card_offer_uses, changed,
                     clo_card_offer_uses.c.card_id == bindparam("b_card"),
                     clo_card_offer_uses.c.offer_id == bindparam("b_offer"))  # fmt: skip
        self._insert(clo_card_offer_uses, new)

    def seen(self) -> None:
        new, changed = [], []
        for token, before in self.before.seen.items():
            state = self.world.states.get(token)
            for merchant, (first, last) in (state.seen if state else {}).items():
                if before.get(merchant) == (first, last):
                    continue
                card_id, merchant_id = self.card_ids[token], self.loaded.merchant_ids[merchant]
                if merchant in before:
                    changed.append({"b_card": card_id, "b_merchant": merchant_id,
                                    "first_at": first, "last_at": last})  # fmt: skip
                else:
                    new.append({"card_id": card_id, "merchant_id": merchant_id,
                                "first_at": first, "last_at": last})  # fmt: skip
        self._update(clo_card_merchants, changed,
                     clo_card_merchants.c.card_id == bindparam("b_card"),
                     clo_card_merchants.c.merchant_id == bindparam("b_merchant"))  # fmt: skip
        self._insert(clo_card_merchants, new)

    def rewards(self) -> None:
        """The rewards the feed changed, each change's row, and its webhook."""
        changed: dict[tuple[str, str], Reward] = {}
        for change in self.result.changes:
            changed[change.offer, change.reward] = self.world.rewards[change.offer][change.reward]
        new, updated = [], []
        for (code, key), reward in changed.items():
            values = reward_values(reward)
            if key in self.before.rewards.get(code, ()):
                updated.append({**values, "b_offer": self.loaded.offer_ids[code],
                                "b_purchase": key})  # fmt: skip
            else:
                new.append({**values, "program_id": self.program_id,
                            "offer_id": self.loaded.offer_ids[code], "purchase": key,
                            "card_id": self.card_ids[reward.card],
                            "merchant": reward.merchant})  # fmt: skip
        self._update(clo_rewards, updated, clo_rewards.c.offer_id == bindparam("b_offer"),
                     clo_rewards.c.purchase == bindparam("b_purchase"))  # fmt: skip
        self._insert(clo_rewards, new)
        ids = self._reward_ids(list(changed))
        self._insert(clo_reward_changes, [
            {"reward_id": ids[change.offer, change.reward], "transaction_id": change.message,
             "status": change.status.value, "cashback_delta": change.cashback_delta,
             "fee_delta": change.fee_delta, "reason": change.reason, "at": self.now}
            for change in self.result.changes])  # fmt: skip
        notices = [change_notice(self.program_id, change,
                                 changed[change.offer, change.reward].card, self.now)
                   for change in self.result.changes]  # fmt: skip
        enqueue_many(self.connection, notices)

    def _reward_ids(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
        codes = {offer_id: code for code, offer_id in self.loaded.offer_ids.items()}
        wanted, found = set(keys), {}
        for chunk in _chunks(sorted({key for _, key in keys})):
            for row in self.connection.execute(
                select(clo_rewards.c.id, clo_rewards.c.offer_id, clo_rewards.c.purchase)
                .where(clo_rewards.c.program_id == self.program_id,
                       clo_rewards.c.purchase.in_(chunk))):  # fmt: skip
                pair = (codes[row.offer_id], row.purchase)
                if pair in wanted:
                    found[pair] = row.id
        return found

    def budgets(self, offer_ids: dict[str, int]) -> None:
        rows = []
        for code, offer_id in offer_ids.items():
            budget = self.world.budgets[code]
            if self.before.budgets.get(code, (0, False)) != (budget.spent, budget.ended):
                rows.append({"b_offer": offer_id, "spent": budget.spent,
                             "budget_ended": budget.ended})  # fmt: skip
        self._update(clo_offers, rows, clo_offers.c.id == bindparam("b_offer"))

    def _insert(self, table: Any, rows: list[dict[str, Any]]) -> None:
        # COPY on PostgreSQL: a RETURNING insert is sent as long statements of many rows
        # each, which psycopg parses again each time; an executemany costs ~25 µs of
        # client CPU a row
        insert_rows(self.connection, table, rows)

    def _update(self, table: Any, rows: list[dict[str, Any]], *where: Any) -> None:
        """`rows` by `where` (whose parameters are the rows' `b_…` keys): each row's other
        keys are the columns it sets."""
        if rows:
            self.connection.execute(update(table).where(*where), rows)
