"""A batch's outcome stored (`kopilka card-batch --store`, stored.py): the database is left
as the online path would have left it, and the online path goes on from it — on SQLite and
PostgreSQL. The reference is `feed.run_in_order` on the snapshot, which the online path is
proven to equal (test_online_equals_batch.py)."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from bench.clo_feed import make_feed, make_world
from kopilka.kernel.errors import Conflict, IdempotencyConflict
from kopilka.ledger.verify import verify
from kopilka.mechanics.card_offers import handlers
from kopilka.mechanics.card_offers.batch import run_split
from kopilka.mechanics.card_offers.feed import Change, Message, World, run_in_order
from kopilka.mechanics.card_offers.model import Kind
from kopilka.mechanics.card_offers.snapshot import world_of
from kopilka.mechanics.card_offers.stored import store_batch
from kopilka.mechanics.card_offers.tables import (
    clo_reviews,
    clo_reward_changes,
    clo_transactions,
)
from kopilka.platform.tables import webhook_outbox
from tests.card_offers.test_online_equals_batch import DIGITS, body_of, left, publish
from tests.cli.test_import import db_url, kopilka

__all__ = ["db_url"]
RUN = partial(run_split, partitions=3)


class Feed:
    """A generated world published, its feed, and the reference outcome of that feed."""

    def __init__(self, engine: Engine, *, seed: int = 11, purchases: int = 160) -> None:
        generated = make_world(seed, offers=18, cards=90)
        self.messages, _truth = make_feed(generated, purchases, seed=seed)
        publish(engine, generated.world)
        self.engine = engine
        self.cards = sorted(generated.world.cards)
        self.now = max(message.at for message in self.messages) + timedelta(days=1)

    def file(self, tmp_path: Path, messages: list[Message], *extra: str) -> Path:
        path = tmp_path / "feed.jsonl"
        lines = [json.dumps(body_of(message)) for message in messages] + list(extra)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    def store(self, path: Path, **options: Any) -> dict[str, Any]:
        return store_batch(self.engine, "zerno", path, now=self.now, run=RUN, **options)

    def online(self, message: Message) -> tuple[dict[str, Any], bool]:
        return handlers.take_message(self.engine, "zerno", body_of(message), now=self.now)


def expected(world: World, messages: list[Message]) -> tuple[dict[str, Any], list[Change]]:
    """Each message's answer (by transaction id) and the changes, taken in order."""
    judged, changes = run_in_order(world, messages)
    by_message: dict[str, list[Change]] = defaultdict(list)
    for change in changes:
        by_message[change.message].append(change)
    answers = {item.message.id: handlers.message_json(item, by_message[item.message.id], DIGITS)
               for item in judged}  # fmt: skip
    return answers, changes


def stored_answers(engine: Engine) -> dict[str, Any]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(clo_transactions.c.transaction_id, clo_transactions.c.answer)
            .order_by(clo_transactions.c.id)).all()  # fmt: skip
    return dict(rows)  # type: ignore[arg-type]


def state(world: World) -> tuple[Any, ...]:
    """All a world holds, comparable: cards' state and purchases (empty ones left out),
    rewards and budgets."""
    states = {token: (held.activated, held.uses, _instants(held.seen))
              for token, held in world.states.items()
              if held.activated or held.uses or held.seen}  # fmt: skip
    known = {token: held for token, held in world.known.items() if held}
    return states, known, *left(world)


def _instants(seen: dict[str, tuple[datetime, datetime]]) -> dict[str, tuple[float, float]]:
    return {merchant: (first.timestamp(), last.timestamp()) for merchant, (first, last)
            in seen.items()}  # fmt: skip


def count(engine: Engine, table: Any) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def test_a_stored_batch_then_the_online_path_leave_what_the_online_path_alone_leaves(
    zerno_engine: Engine, tmp_path: Path
) -> None:
    feed = Feed(zerno_engine)
    snapshot = world_of(zerno_engine, "zerno")
    half = len(feed.messages) // 2
    summary = feed.store(feed.file(tmp_path, feed.messages[:half]))
    assert summary["stored"]
    assert summary["attempts"] == 1
    assert not summary["refused"]
    assert summary["messages"] == half
    for message in feed.messages[half:]:
        feed.online(message)
    answers, changes = expected(snapshot, feed.messages)
    stored = stored_answers(zerno_engine)
    assert list(stored) == [message.id for message in feed.messages]  # ids in feed order
    assert stored == answers
    assert state(world_of(zerno_engine, "zerno")) == state(snapshot)
    assert sum(1 for change in changes if change.status.value in ("pending", "confirmed")) > 10
    assert count(zerno_engine, clo_reward_changes) == len(changes)
    assert count(zerno_engine, webhook_outbox) == len(changes)
    unmatched = sum(1 for message in feed.messages if message.kind in (
        Kind.AUTHORISATION, Kind.CLEARING) and stored[message.id]["matched"] is None
        and stored[message.id]["problem"] is None)  # fmt: skip
    assert unmatched > 0
    assert count(zerno_engine, clo_reviews) == unmatched
    assert verify(zerno_engine)[1] == []  # each reward the sum of its changes; spent its rewards


def test_a_message_of_a_stored_batch_sent_again_is_answered_from_it(
    zerno_engine: Engine, tmp_path: Path
) -> None:
    feed = Feed(zerno_engine, seed=5, purchases=40)
    path = feed.file(tmp_path, feed.messages)
    feed.store(path)
    first = feed.messages[0]
    answer, made = feed.online(first)
    assert not made
    assert answer == stored_answers(zerno_engine)[first.id]
    with pytest.raises(IdempotencyConflict):
        feed.online(replace(first, amount=first.amount + 100))
    before = state(world_of(zerno_engine, "zerno")), count(zerno_engine, clo_reward_changes)
    again = feed.store(path)  # the same file again: every message is there already
    assert again["already_there"] == len(feed.messages)
    assert again["messages"] == 0
    assert (state(world_of(zerno_engine, "zerno")), count(zerno_engine, clo_reward_changes)) \
        == before  # fmt: skip


def test_the_lines_the_online_path_refuses_are_left_out_and_said_why(
    zerno_engine: Engine, tmp_path: Path
) -> None:
    feed = Feed(zerno_engine, seed=5, purchases=30)
    first = feed.messages[0]
    other = next(token for token in feed.cards if token != first.card)
    body = body_of(first)
    bad = [
        "{not json",
        json.dumps({**body, "transaction_id": "X-CURRENCY", "currency": "EUR"}),
        json.dumps({**body, "transaction_id": "X-CARD", "card": "tok_not_enrolled"}),
        json.dumps({**body, "amount": "999.99"}),  # the first message's id, another body
        json.dumps(
            body_of(
                replace(first, id="X-BORROWED", kind=Kind.CLEARING, card=other, original=first.id)
            )
        ),
        json.dumps(body),  # the first message again, the same: already there
    ]
    summary = feed.store(feed.file(tmp_path, feed.messages, *bad))
    lines = len(feed.messages)
    assert [(item["line"], item["problem"]) for item in summary["refused"]] == [
        (lines + 1, "validation_error"),
        (lines + 2, "validation_error"),
        (lines + 3, "not_found"),
        (lines + 4, "idempotency_conflict"),
        (lines + 5, "validation_error"),
    ]
    assert "currency" in summary["refused"][1]["detail"]
    assert "another card" in summary["refused"][4]["detail"]
    assert summary["already_there"] == 1
    assert summary["messages"] == lines
    assert list(stored_answers(zerno_engine)) == [message.id for message in feed.messages]


def test_a_feed_that_moved_on_while_the_batch_ran_is_run_again(
    zerno_engine: Engine, tmp_path: Path
) -> None:
    """A message of one of the feed's cards taken online between the batch and its store:
    nothing is written, the batch runs again on a new snapshot — and the outcome is the
    online message's, then the feed's."""
    feed = Feed(zerno_engine, seed=7, purchases=60)
    snapshot = world_of(zerno_engine, "zerno")
    early = next(
        message
        for index, message in enumerate(feed.messages)
        if message.kind is Kind.AUTHORISATION
        and any(later.card == message.card for later in feed.messages[index + 1 :])
    )
    rest = [message for message in feed.messages if message is not early]
    moved: list[bool] = []

    def take_one_online() -> None:
        if not moved:
            moved.append(feed.online(early)[1])

    summary = feed.store(feed.file(tmp_path, rest), before_store=take_one_online)
    assert moved == [True]
    assert summary["attempts"] == 2
    answers, _changes = expected(snapshot, [early, *rest])
    assert stored_answers(zerno_engine) == answers
    assert state(world_of(zerno_engine, "zerno")) == state(snapshot)


def test_a_feed_that_keeps_moving_is_given_up_with_nothing_written(
    zerno_engine: Engine, tmp_path: Path
) -> None:
    feed = Feed(zerno_engine, seed=7, purchases=30)
    taken: list[Message] = []

    def activity_on_the_card() -> None:  # a card of the feed's, with a message of its own
        message = replace(feed.messages[1], id=f"LIVE-{len(taken)}", kind=Kind.AUTHORISATION,
                          original=None)  # fmt: skip
        taken.append(message)
        feed.online(message)

    with pytest.raises(Conflict, match="moved on"):
        feed.store(feed.file(tmp_path, feed.messages[1:]), attempts=2,
                   before_store=activity_on_the_card)  # fmt: skip
    assert list(stored_answers(zerno_engine)) == [message.id for message in taken]


@pytest.mark.slow
@pytest.mark.xdist_group("dask")  # a local Dask cluster: one at a time (make test)
def test_kopilka_card_batch_store_on_a_local_cluster(
    zerno_engine: Engine, db_url: str, tmp_path: Path
) -> None:
    """The command line stores a day's feed; the online path then answers from it."""
    feed = Feed(zerno_engine, seed=5, purchases=40)
    snapshot = world_of(zerno_engine, "zerno")
    path = feed.file(tmp_path, feed.messages)
    ran = kopilka("card-batch", str(path), "--program", "zerno", "--db", db_url, "--store",
                  "--workers", "1")  # fmt: skip
    assert ran.exit_code == 0, ran.output
    summary = json.loads(ran.output)
    assert summary["stored"]
    assert summary["messages"] == len(feed.messages)
    answers, _changes = expected(snapshot, feed.messages)
    assert stored_answers(zerno_engine) == answers
    parquet = tmp_path / "feed.parquet"
    parquet.write_bytes(b"")
    refused = kopilka("card-batch", str(parquet), "--program", "zerno", "--db", db_url,
                      "--store")  # fmt: skip
    assert refused.exit_code == 2
    assert "JSON Lines" in refused.output


def test_a_card_of_the_feed_changed_while_the_batch_ran_runs_it_again(
    zerno_engine: Engine, tmp_path: Path
) -> None:
    """Its segments (targeting) may change what it is offered: the batch runs again."""
    feed = Feed(zerno_engine, seed=7, purchases=30)
    card = feed.messages[0].card
    changed: list[bool] = []

    def new_segment() -> None:
        if not changed:
            body = {"scheme": "visa", "first_six": "427600", "last_four": "0000",
                    "segments": ["moved-on"]}  # fmt: skip
            changed.append(handlers.put_card(zerno_engine, "zerno", card, body, now=feed.now)[1])

    summary = feed.store(feed.file(tmp_path, feed.messages), before_store=new_segment)
    assert changed == [False]  # changed, not made
    assert summary["attempts"] == 2
