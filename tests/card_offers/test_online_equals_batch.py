"""The same feed online and in batch gives the same results, end to end, on SQLite and
PostgreSQL: a generated world (bench/clo_feed.py: facilitators sharing one merchant id,
noisy descriptors, budgets that run out, limits, activations, new and lapsed customers,
control groups) is published through the handlers; the database's world is read
(`snapshot.world_of`); the feed is taken online, one message at a time through the API's
handler; the same feed is run by the batch's split on the snapshot — and every answer,
and every reward and budget left, is the same."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest
from sqlalchemy import Connection, Engine, insert, select

from bench.clo_feed import make_feed, make_world
from kopilka.kernel.money import format_minor
from kopilka.mechanics.card_offers import handlers
from kopilka.mechanics.card_offers.batch import run_batch, run_split
from kopilka.mechanics.card_offers.feed import Change, Message, World
from kopilka.mechanics.card_offers.model import Kind
from kopilka.mechanics.card_offers.snapshot import world_of
from kopilka.mechanics.card_offers.tables import (
    clo_activations,
    clo_card_merchants,
    clo_cards,
    clo_merchants,
    clo_offers,
)
from kopilka.mechanics.card_offers.terms import offer_terms
from tests.cli.test_import import db_url, kopilka
from tests.store.conftest import NOW

__all__ = ["db_url"]
DIGITS = 2  # the café's roubles


def publish(engine: Engine, world: World) -> None:
    """The generated world through the handlers (and its earlier state into its tables)."""
    by_merchant: dict[str, list[Any]] = defaultdict(list)
    mids: dict[str, dict[str, str]] = defaultdict(dict)
    for (scheme, mid), codes in world.catalog.merchant_ids.items():
        for code in codes:
            mids[code][scheme] = mid
    for location in world.catalog.locations.values():
        by_merchant[location.merchant].append({
            "code": location.code, "descriptor": location.descriptor, "mcc": location.mcc,
            "latitude": f"{location.latitude:.6f}", "longitude": f"{location.longitude:.6f}",
            "merchant_ids": mids[location.code]})  # fmt: skip
    for merchant in world.offers:
        sent = {"name": merchant, "locations": by_merchant[merchant]}
        handlers.put_merchant(engine, "zerno", merchant, sent, now=NOW)
    for rule in world.catalog.rules:
        mcc = {"mcc": rule.mcc} if rule.mcc else {}
        body = {"descriptor": " ".join(rule.words), "location": rule.location, **mcc}
        handlers.add_rule(engine, "zerno", body, actor="test", now=NOW)
    for offers in world.offers.values():
        for offer in offers:
            handlers.put_offer(engine, "zerno", offer.code, offer_terms(offer, DIGITS),
                               actor="test", now=NOW)  # fmt: skip
    for card in world.cards.values():
        home = ({} if card.latitude is None else {"home": {
            "latitude": f"{card.latitude:.6f}", "longitude": f"{card.longitude:.6f}"}})  # fmt: skip
        handlers.put_card(engine, "zerno", card.token, {
            "scheme": card.scheme, "first_six": "427600", "last_four": "0000",
            "segments": sorted(card.segments), **home}, now=NOW)  # fmt: skip
    _earlier_state(engine, world)


def _earlier_state(engine: Engine, world: World) -> None:
    with engine.begin() as connection:
        cards = ids(connection, clo_cards.c.token, clo_cards.c.id)
        offers = ids(connection, clo_offers.c.code, clo_offers.c.id)
        merchants = ids(connection, clo_merchants.c.code, clo_merchants.c.id)
        for token, state in world.states.items():
            for code, at in state.activated.items():
                connection.execute(insert(clo_activations).values(
                    card_id=cards[token], offer_id=offers[code], activated_at=at))  # fmt: skip
            for merchant, (first, last) in state.seen.items():
                connection.execute(insert(clo_card_merchants).values(
                    card_id=cards[token], merchant_id=merchants[merchant], first_at=first,
                    last_at=last))  # fmt: skip


def ids(connection: Connection, code: Any, row_id: Any) -> dict[str, int]:
    return {str(found): int(number) for found, number in connection.execute(select(code, row_id))}


def body_of(message: Message) -> dict[str, Any]:
    body = {"transaction_id": message.id, "kind": message.kind.value, "card": message.card,
            "amount": format_minor(message.amount, DIGITS), "currency": "RUB",
            "at": message.at.isoformat(), "scheme": message.scheme,
            "merchant_id": message.merchant_id, "descriptor": message.descriptor or None,
            "mcc": message.mcc, "original": message.original}  # fmt: skip
    return {key: value for key, value in body.items() if value is not None}


def answers_of(result: Any) -> list[dict[str, Any]]:
    by_message: dict[str, list[Change]] = defaultdict(list)
    for change in result.changes:
        by_message[change.message].append(change)
    return [handlers.message_json(judged, by_message[judged.message.id], DIGITS)
            for judged in result.judged]  # fmt: skip


def left(world: World) -> tuple[Any, Any]:
    """The rewards and budgets a world holds, comparable."""
    rewards = {(code, key): (r.status, r.amount, r.cashback, r.fee, r.granted, r.refunded,
                             r.payable_at)
               for code, held in world.rewards.items() for key, r in held.items()}  # fmt: skip
    budgets = {code: (b.spent, b.ended) for code, b in world.budgets.items() if b.spent or b.ended}
    return rewards, budgets


@pytest.fixture
def taken(zerno_engine: Engine) -> tuple[World, list[Message], list[dict[str, Any]]]:
    """The world published, its snapshot, the feed, and the online answers."""
    generated = make_world(11, offers=18, cards=90)
    messages, _truth = make_feed(generated, 160, seed=11)
    publish(zerno_engine, generated.world)
    snapshot = world_of(zerno_engine, "zerno")
    moment = max(message.at for message in messages) + timedelta(days=1)
    online = [handlers.take_message(zerno_engine, "zerno", body_of(message), now=moment)[0]
              for message in messages]  # fmt: skip
    return snapshot, messages, online


def test_online_and_the_batch_split_give_the_same_answers_and_leave_the_same(
    taken: tuple[World, list[Message], list[dict[str, Any]]], zerno_engine: Engine
) -> None:
    snapshot, messages, online = taken
    batch = run_split(snapshot, messages, partitions=3)
    assert answers_of(batch) == online
    qualified = sum(1 for answer in online for item in answer["offers"]
                    if item.get("status") in ("pending", "confirmed"))  # fmt: skip
    assert qualified > 10  # the feed exercised the offers, not only the matching
    assert left(snapshot) == left(world_of(zerno_engine, "zerno"))


@pytest.mark.slow
@pytest.mark.xdist_group("dask")  # a local Dask cluster: one at a time (make test)
def test_online_and_the_batch_on_a_dask_cluster_give_the_same_answers(
    taken: tuple[World, list[Message], list[dict[str, Any]]], zerno_engine: Engine
) -> None:
    snapshot, messages, online = taken
    batch = run_batch(snapshot, messages, workers=2)
    assert answers_of(batch) == online
    assert left(snapshot) == left(world_of(zerno_engine, "zerno"))


@pytest.mark.slow
@pytest.mark.xdist_group("dask")  # a local Dask cluster: one at a time (make test)
def test_kopilka_card_batch_runs_a_feed_file_on_a_local_cluster(
    zerno_engine: Engine, db_url: str, tmp_path: Path
) -> None:
    """The command line: a day's feed file (JSON Lines, one bad line among them) run as a
    batch against the database; its changes are the online path's on the same feed."""
    generated = make_world(5, offers=9, cards=40)
    messages, _truth = make_feed(generated, 60, seed=5)
    publish(zerno_engine, generated.world)
    feed = tmp_path / "feed.jsonl"
    lines = [json.dumps(body_of(message)) for message in messages]
    first = messages[0]
    other = next(token for token in generated.world.cards if token != first.card)
    borrowed = replace(first, id="X-1", kind=Kind.CLEARING, card=other, original=first.id)
    lines += ['{"kind": "authorisation"}', json.dumps(body_of(borrowed))]
    feed.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "changes.parquet"
    ran = kopilka("card-batch", str(feed), "--program", "zerno", "--db", db_url,
                  "--out", str(out), "--workers", "1")  # fmt: skip
    assert ran.exit_code == 0, ran.output
    summary = json.loads(ran.output)
    assert summary["messages"] == len(messages)
    assert [(item["line"], item["problem"]) for item in summary["refused"]] == [
        (len(messages) + 1, "validation_error"),  # not a message
        (len(messages) + 2, "validation_error"),  # its original made with another card
    ]
    assert "another card" in summary["refused"][1]["detail"]  # as the online path refuses
    expected = run_split(world_of(zerno_engine, "zerno"), messages)
    assert summary["digest"] == expected.digest()
    assert pq.read_table(out).num_rows == summary["changes"] == len(expected.changes)
