"""The batch path (kopilka/mechanics/card_offers/batch.py) gives exactly what the online
path (`run_in_order`) gives, and leaves the world as it leaves it (issue 20)."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from distributed import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.clo_feed import make_feed, make_world
from kopilka.mechanics.card_offers.batch import (
    bucket_of,
    changes_digest,
    feed_messages,
    feed_table,
    local_cluster,
    run_batch,
    run_split,
    write_feed,
)
from kopilka.mechanics.card_offers.feed import Change, Message, Status, World, run_in_order
from kopilka.mechanics.card_offers.model import (
    Card,
    Catalog,
    Kind,
    Location,
    Offer,
)

MSK = timezone(timedelta(hours=3))
AT = datetime(2026, 11, 3, 12, 0, tzinfo=MSK)


def same_world(left: World, right: World) -> None:
    assert left.states == right.states
    assert left.known == right.known
    assert left.budgets == right.budgets
    assert left.rewards == right.rewards


def test_bucket_is_stable_and_spread() -> None:
    # pinned: a salted hash() would give other values in every process
    assert [bucket_of(f"C{n:08d}", 8) for n in range(8)] == [1, 0, 1, 6, 7, 4, 0, 1]
    assert bucket_of("C00000001", 1_000_003) == 883773
    counts = [0] * 4
    for n in range(4000):
        counts[bucket_of(f"C{n:08d}", 4)] += 1
    assert min(counts) > 850


def test_feed_table_round_trip_keeps_local_time_and_offset() -> None:
    messages = [
        Message(1, "a", Kind.AUTHORISATION, "c1", 100, AT, "visa", "m1", "SHOP 1", "5411"),
        Message(2, "b", Kind.REFUND, "c1", 50, AT.astimezone(UTC), "mir", original="a"),
        Message(3, "c", Kind.CLEARING, "c2", 7, datetime(2026, 11, 3, 23, 59), "visa"),
    ]
    back = feed_messages(feed_table(messages))
    assert back == messages
    assert [m.at.utcoffset() for m in back] == [m.at.utcoffset() for m in messages]
    assert [m.at.time() for m in back] == [m.at.time() for m in messages]


@pytest.mark.parametrize("partitions", [1, 3, 8])
def test_split_equals_online_on_a_generated_feed(partitions: int) -> None:
    generated = make_world(7, offers=120, cards=300)
    messages, _ = make_feed(generated, 1500, seed=7)
    online, batch = copy.deepcopy(generated.world), copy.deepcopy(generated.world)
    judged, changes = run_in_order(online, messages)
    result = run_split(batch, messages, partitions=partitions)
    assert result.judged == judged
    assert result.changes == changes
    same_world(batch, online)
    assert any(change.status is Status.REFUSED for change in changes)  # budgets ran out
    assert {change.status for change in changes} >= {Status.CLAWED_BACK, Status.RELEASED}
    light = run_split(copy.deepcopy(generated.world), messages, partitions=partitions,
                      collect=False)  # fmt: skip
    assert light.digest() == changes_digest(changes)


@pytest.mark.slow
@pytest.mark.xdist_group("dask")  # a local Dask cluster: one at a time (make test)
def test_batch_on_a_local_cluster_of_two_equals_online(tmp_path) -> None:
    generated = make_world(11, offers=150, cards=400)
    messages, _ = make_feed(generated, 1800, seed=11)
    online = copy.deepcopy(generated.world)
    judged, changes = run_in_order(online, messages)
    path = tmp_path / "feed.parquet"
    write_feed(path, messages, row_group_size=500)
    with local_cluster(2) as cluster, Client(cluster) as client:  # type: ignore[no-untyped-call]
        in_memory = copy.deepcopy(generated.world)
        result = run_batch(in_memory, messages, client=client, partitions=5)
        from_file = copy.deepcopy(generated.world)
        read = run_batch(from_file, path, client=client, partitions=4)
        light = run_batch(copy.deepcopy(generated.world), path, client=client, collect=False)
    for batch, world in ((result, in_memory), (read, from_file)):
        assert batch.judged == judged
        assert batch.changes == changes
        same_world(world, online)
    assert light.digest() == changes_digest(changes)
    assert light.messages == len(messages)


@pytest.mark.slow
@pytest.mark.xdist_group("dask")  # a local Dask cluster: one at a time (make test)
def test_run_batch_makes_and_closes_its_own_local_cluster() -> None:
    generated = make_world(3, offers=30, cards=50)
    messages, _ = make_feed(generated, 200, seed=3)
    online = copy.deepcopy(generated.world)
    judged, changes = run_in_order(online, messages)
    world = copy.deepcopy(generated.world)
    result = run_batch(world, messages, workers=2)
    assert (result.judged, result.changes) == (judged, changes)
    same_world(world, online)


# --------------------------------------------------------------- the split, by property

MERCHANT = "m"
SHOPS = {"s1": Location("s1", MERCHANT, "SHOP ONE", "5411", 55.75, 37.61),
         "s2": Location("s2", MERCHANT, "SHOP TWO", "5411", 55.80, 37.70)}  # fmt: skip
CATALOG = Catalog(SHOPS, {("visa", "mid1"): ("s1",), ("visa", "mid2"): ("s2",)})

offer_strategy = st.builds(
    lambda index, percent, fixed, budget, limit, activation, minimum: Offer(
        code=f"o{index}",
        merchant=MERCHANT,
        starts=date(2026, 11, 1),
        until=date(2026, 11, 30),
        percent=None if fixed else Decimal(percent),
        fixed=fixed,
        budget=budget,
        limit_per_card=limit,
        activation_required=activation,
        min_amount=minimum,
        fee_percent=Decimal("1.5"),
    ),
    st.integers(0, 9),
    st.sampled_from(["5", "10", "12.5"]),
    st.none() | st.sampled_from([300, 1000]),
    st.none() | st.integers(0, 5000),
    st.none() | st.integers(1, 3),
    st.booleans(),
    st.none() | st.sampled_from([1000, 5000]),
)


@st.composite
def worlds_and_feeds(draw: st.DrawFn) -> tuple[World, list[Message]]:
    offers = sorted({offer.code: offer for offer in draw(st.lists(offer_strategy, min_size=1,
                                                                  max_size=4))}.values(),
                    key=lambda offer: offer.code)  # fmt: skip
    tokens = [f"card{n}" for n in range(draw(st.integers(1, 5)))]
    world = World(CATALOG, {MERCHANT: offers}, {t: Card(t, "visa") for t in tokens})
    for token in tokens:  # some activated
        for offer in offers:
            if draw(st.booleans()):
                world.card_desk(token).state.activated[offer.code] = AT - timedelta(days=1)
    world.states = {t: s for t, s in world.states.items() if s.activated}
    world.known = {}
    messages: list[Message] = []
    purchases: list[tuple[str, str, int]] = []  # (id, card, amount)
    for seq in range(1, draw(st.integers(1, 40)) + 1):
        at = AT + timedelta(minutes=seq)
        action = draw(st.sampled_from(["auth", "auth", "clear", "clear_alone", "reverse",
                                       "refund", "orphan"]))  # fmt: skip
        if action in ("auth", "clear_alone") or not purchases:
            token = draw(st.sampled_from(tokens))
            amount = draw(st.integers(1, 20000))
            mid = draw(st.sampled_from(["mid1", "mid2", "unknown"]))
            txn = f"t{seq}"
            kind = Kind.AUTHORISATION if action == "auth" or not purchases else Kind.CLEARING
            original = None if kind is Kind.AUTHORISATION else txn
            ident = txn if kind is Kind.AUTHORISATION else f"{txn}-c"
            messages.append(Message(seq, ident, kind, token, amount, at, "visa", mid,
                                    "SHOP ONE", "5411", original))  # fmt: skip
            purchases.append((txn, token, amount))
            continue
        txn, token, amount = draw(st.sampled_from(purchases))
        if action == "orphan":
            txn = "nowhere"
        kind = {"clear": Kind.CLEARING, "reverse": Kind.REVERSAL}.get(action, Kind.REFUND)
        value = draw(st.integers(1, amount + 5000))
        messages.append(Message(seq, f"{txn}-{seq}", kind, token, value, at, "visa",
                                original=txn))  # fmt: skip
    return world, messages


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds_and_feeds(), st.integers(1, 4))
def test_the_split_by_card_then_by_offer_equals_the_online_order(
    world_and_feed: tuple[World, list[Message]], partitions: int
) -> None:
    world, messages = world_and_feed
    online, batch = copy.deepcopy(world), copy.deepcopy(world)
    judged, changes = run_in_order(online, messages)
    result = run_split(batch, messages, partitions=partitions)
    assert result.judged == judged
    assert result.changes == changes
    same_world(batch, online)


# ------------------------------------------------------- authorisation, clearing, refund


def _world(**terms: object) -> World:
    offer = Offer(code="o1", merchant=MERCHANT, starts=date(2026, 11, 1),
                  until=date(2026, 11, 30), percent=Decimal(10), fee_percent=Decimal(1),
                  **terms)  # type: ignore[arg-type]  # fmt: skip
    cards = {t: Card(t, "visa") for t in ("a", "b", "c")}
    return World(CATALOG, {MERCHANT: [offer]}, cards)


def _message(seq: int, ident: str, kind: Kind, card: str, amount: int,
             original: str | None = None) -> Message:  # fmt: skip
    return Message(seq, ident, kind, card, amount, AT + timedelta(hours=seq), "visa", "mid1",
                   "SHOP ONE", "5411", original)  # fmt: skip


def _both(world: World, messages: list[Message]) -> list[Change]:
    online = copy.deepcopy(world)
    _, changes = run_in_order(online, messages)
    batch = copy.deepcopy(world)
    assert run_split(batch, messages, partitions=2).changes == changes
    same_world(batch, online)
    return changes


def test_authorisation_clearing_of_less_then_partial_and_whole_refund() -> None:
    changes = _both(_world(), [
        _message(1, "t1", Kind.AUTHORISATION, "a", 100_000),
        _message(2, "t1-c", Kind.CLEARING, "a", 90_000, "t1"),
        _message(3, "t1-r1", Kind.REFUND, "a", 30_000, "t1"),
        _message(4, "t1-r2", Kind.REFUND, "a", 60_000, "t1"),
    ])  # fmt: skip
    figures = [(c.status, c.cashback_delta, c.fee_delta, c.cashback, c.fee) for c in changes]
    assert figures == [
        (Status.PENDING, 10_000, 1_000, 10_000, 1_000),  # 10 % of 1,000.00; fee 1 %
        (Status.CONFIRMED, -1_000, -100, 9_000, 900),  # cleared 900.00
        (Status.CONFIRMED, -3_000, -300, 6_000, 600),  # a third refunded
        (Status.CLAWED_BACK, -6_000, -600, 0, 0),  # the rest refunded
    ]


def test_budget_runs_out_in_feed_order_and_is_not_reopened_by_a_reversal() -> None:
    changes = _both(_world(budget=15_000), [
        _message(1, "t1", Kind.AUTHORISATION, "a", 100_000),
        _message(2, "t2", Kind.AUTHORISATION, "b", 100_000),
        _message(3, "t3", Kind.AUTHORISATION, "c", 100_000),
        _message(4, "t1-v", Kind.REVERSAL, "a", 100_000, "t1"),
        _message(5, "t4", Kind.AUTHORISATION, "c", 20_000),
        _message(6, "t2-c", Kind.CLEARING, "b", 100_000, "t2"),
    ])  # fmt: skip
    figures = [(c.reward, c.status, c.cashback_delta, c.cashback) for c in changes]
    assert figures == [
        ("t1", Status.PENDING, 10_000, 10_000),
        ("t2", Status.PENDING, 5_000, 5_000),  # what was left
        ("t3", Status.REFUSED, 0, 0),
        ("t1", Status.RELEASED, -10_000, 0),
        ("t4", Status.REFUSED, 0, 0),  # the money given back does not reopen it
        ("t2", Status.CONFIRMED, 0, 5_000),  # cleared: still only what was granted
    ]


def test_limit_per_card_counts_purchases_the_budget_refused() -> None:
    changes = _both(_world(budget=5_000, limit_per_card=1), [
        _message(1, "t1", Kind.AUTHORISATION, "b", 100_000),  # spends the budget
        _message(2, "t2", Kind.AUTHORISATION, "a", 100_000),  # refused: budget spent
        _message(3, "t3", Kind.AUTHORISATION, "a", 100_000),  # not judged: limit reached
    ])  # fmt: skip
    assert [(c.reward, c.status) for c in changes] == [
        ("t1", Status.PENDING), ("t2", Status.REFUSED)
    ]  # fmt: skip


def test_a_clearing_with_no_authorisation_is_judged_and_confirmed() -> None:
    changes = _both(_world(), [
        _message(1, "t9-c", Kind.CLEARING, "a", 50_000, "t9"),
        _message(2, "t9-r", Kind.REFUND, "a", 10_000, "t9"),
    ])  # fmt: skip
    figures = [(c.reward, c.status, c.cashback_delta, c.fee_delta) for c in changes]
    assert figures == [
        ("t9", Status.CONFIRMED, 5_000, 500),
        ("t9", Status.CONFIRMED, -1_000, -100),
    ]


# ------------------------------------------- edge cases of a purchase's life (review)


def test_a_second_reversal_changes_nothing_and_the_limit_holds() -> None:
    changes = _both(_world(limit_per_card=1), [
        _message(1, "t1", Kind.AUTHORISATION, "a", 10_000),
        _message(2, "t1-v", Kind.REVERSAL, "a", 10_000, "t1"),
        _message(3, "t1-v2", Kind.REVERSAL, "a", 10_000, "t1"),  # the same reversal again
        _message(4, "t2", Kind.AUTHORISATION, "a", 10_000),
        _message(5, "t3", Kind.AUTHORISATION, "a", 10_000),
    ])  # fmt: skip
    assert [(c.message, c.status) for c in changes] == [
        ("t1", Status.PENDING), ("t1-v", Status.RELEASED), ("t2", Status.PENDING),
    ]  # t3: the limit of one is reached by t2  # fmt: skip


def test_a_cashback_that_rounds_to_nothing_is_not_a_spent_budget() -> None:
    world = _world()
    world.offers[MERCHANT][0] = replace(world.offers[MERCHANT][0], percent=Decimal(1))
    changes = _both(world, [_message(1, "t1", Kind.AUTHORISATION, "a", 40)])
    assert [(c.status, c.reason, c.cashback) for c in changes] == [
        (Status.REFUSED, "cashback_below_a_minor_unit", 0)]  # fmt: skip


def test_a_clearing_after_a_whole_refund_gives_nothing_back() -> None:
    changes = _both(_world(), [
        _message(1, "t1", Kind.AUTHORISATION, "a", 10_000),
        _message(2, "t1-r", Kind.REFUND, "a", 10_000, "t1"),
        _message(3, "t1-c", Kind.CLEARING, "a", 10_000, "t1"),
    ])  # fmt: skip
    assert [(c.status, c.cashback) for c in changes] == [
        (Status.PENDING, 1_000), (Status.CLAWED_BACK, 0), (Status.CLAWED_BACK, 0)]  # fmt: skip


def test_a_clearing_after_a_partial_refund_keeps_the_refunded_share_out() -> None:
    changes = _both(_world(), [
        _message(1, "t1", Kind.AUTHORISATION, "a", 10_000),
        _message(2, "t1-r", Kind.REFUND, "a", 2_500, "t1"),
        _message(3, "t1-c", Kind.CLEARING, "a", 10_000, "t1"),
    ])  # fmt: skip
    assert [(c.status, c.cashback) for c in changes] == [
        (Status.PENDING, 1_000), (Status.PENDING, 750), (Status.CONFIRMED, 750)]  # fmt: skip


def test_a_clearing_after_a_reversal_is_a_purchase_after_all() -> None:
    changes = _both(_world(), [
        _message(1, "t1", Kind.AUTHORISATION, "a", 10_000),
        _message(2, "t1-v", Kind.REVERSAL, "a", 10_000, "t1"),
        _message(3, "t1-c", Kind.CLEARING, "a", 8_000, "t1"),  # the money moved all the same
    ])  # fmt: skip
    assert [(c.message, c.status, c.cashback) for c in changes] == [
        ("t1", Status.PENDING, 1_000), ("t1-v", Status.RELEASED, 0),
        ("t1-c", Status.CONFIRMED, 800)]  # fmt: skip
