"""A day's card-transaction feed through the offers as a batch on Dask (issue 20).

The online path takes the feed one message at a time (`feed.run_in_order`): the card's
step, then each of its claims through its offer's step. The batch cuts the same work in
two and spreads each half over workers:

1. **By card.** The feed (a Parquet file, or messages turned into an Arrow table) is
   read in slices, each slice's rows are split by a stable hash of the card token
   (BLAKE2b, never Python's salted `hash()`, so every process and every run agrees), and
   each card partition takes its messages in feed order through `World.card_desk(...)
   .take` — the very code the online path runs. It yields the `Judged` messages and
   their `Claim`s, the claims split again by a stable hash of the offer code.
2. **By offer.** Each offer partition merges its claims back into feed order and puts
   each offer's through `OfferDesk.settle` — again the online path's code.

Why it is exact, not approximately the same:

- A card's step reads and writes only that card's state (activations, uses, merchants
  seen, the purchases taken before) and the catalog and offers, which no message
  changes. It never reads an offer's budget or rewards: a use counts a purchase that met
  the offer's terms whether or not the budget paid for it (feed.py), so a card's
  verdicts do not depend on other cards' purchases. Its messages, in feed order, give
  the same verdicts and claims wherever the partition runs.
- An offer's step reads and writes only that offer's budget and rewards, and depends on
  nothing but its own claims in feed order — which the merge restores exactly: every
  row carries its `position` in the feed (the order the online path takes it in), and
  a message has at most one claim per offer.
- Offers and cards are independent of each other across partitions, so no order between
  partitions matters; the results are put back in feed order (judged by position,
  changes by position and the claim's rank within its message) and the world's state
  (cards' states and purchases known, offers' budgets and rewards) is written back as
  the online path would leave it.

Each partition's tasks are placed, not left to the scheduler: the card partitions round
robin over the worker threads (they are of near-equal size, a hash of the card), the
offer partitions — whose sizes differ, as offers draw unequal numbers of claims — by
their claims, counted once the card step is done, the heaviest first to the least
loaded thread. Left to itself the scheduler put tasks by where their inputs lay, and at
each step's end one thread idled while the other worked through a longer queue.

The catalog and the offers are sent to every worker once (`scatter(broadcast=True)`);
the feed is read from Parquet on the workers, and the claims travel from the card
partitions to the offer partitions as Arrow tables (pickling a million small objects
costs more than judging them). The per-message logic is feed.py's and model.py's,
unchanged: the objects are rebuilt from the columns exactly (a time keeps its UTC
offset), and the workers' catalog is the online path's.

`collect=True` (the default) brings everything back: the judged messages, the changes,
and the world's new state. A day's feed at scale runs with `collect=False`: only the
changes come back, as a table, and the world is left as it was.

`run_split` is the same split run in this process without Dask: what the property tests
compare with `run_in_order`. `run_batch` runs it on a `distributed.LocalCluster` made
and closed by the call, on a cluster by its scheduler's address, or on a given client.
"""

from __future__ import annotations

import csv
import hashlib
import heapq
import io
import operator
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from os import PathLike, fspath
from typing import Any, TypeVar

import pyarrow as pa  # type: ignore[import-untyped]  # pyarrow ships no type hints
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
from distributed import Client, Future, LocalCluster

from kopilka.mechanics.card_offers.feed import (
    Action,
    CardDesk,
    Change,
    Claim,
    Judged,
    Known,
    Message,
    OfferDesk,
    Reward,
    World,
)
from kopilka.mechanics.card_offers.model import (
    Budget,
    Card,
    CardState,
    Catalog,
    Kind,
    Offer,
)

T = TypeVar("T")

# The feed's columns as handed to the workers. `at_local` is the purchase's wall-clock
# time and `utc_offset` its offset in seconds (null: a naive time), so that a message
# read back has the same local date and time that judging reads.
FEED_SCHEMA = pa.schema(
    [
        ("seq", pa.int64()),
        ("id", pa.string()),
        ("kind", pa.string()),
        ("card", pa.string()),
        ("amount", pa.int64()),
        ("at_local", pa.timestamp("us")),
        ("utc_offset", pa.int32()),
        ("scheme", pa.string()),
        ("merchant_id", pa.string()),
        ("descriptor", pa.string()),
        ("mcc", pa.string()),
        ("original", pa.string()),
    ]
)
FEED_COLUMNS = tuple(FEED_SCHEMA.names)
CHANGE_SCHEMA = pa.schema(
    [
        ("position", pa.int64()),
        ("rank", pa.int32()),
        ("seq", pa.int64()),
        ("message", pa.string()),
        ("offer", pa.string()),
        ("reward", pa.string()),
        ("status", pa.string()),
        ("cashback_delta", pa.int64()),
        ("fee_delta", pa.int64()),
        ("cashback", pa.int64()),
        ("fee", pa.int64()),
        ("reason", pa.string()),
    ]
)
# A claim on its way from its card's partition to its offer's, with its place: the
# message's position in the feed and the claim's rank among the message's claims.
CLAIM_SCHEMA = pa.schema(
    [
        ("position", pa.int64()),
        ("rank", pa.int32()),
        ("seq", pa.int64()),
        ("message", pa.string()),
        ("offer", pa.string()),
        ("reward", pa.string()),
        ("action", pa.string()),
        ("amount", pa.int64()),
        ("at_local", pa.timestamp("us")),
        ("utc_offset", pa.int32()),
        ("card", pa.string()),
        ("merchant", pa.string()),
        ("confirmed", pa.bool_()),
    ]
)
_KINDS = {kind.value: kind for kind in Kind}
_ACTIONS = {action.value: action for action in Action}

# A claim on its way to its offer: (position in the feed, rank in its message, claim).
Routed = tuple[int, int, Claim]
# A change on its way back: (position, rank, change) — the online path's order.
Placed = tuple[int, int, Change]


def bucket_of(key: str, buckets: int) -> int:
    """A stable partition of `key` (a card token, an offer code): the same in every
    process, every run and every machine, unlike the built-in `hash()`."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % buckets


# ----------------------------------------------------------------------- feed as Arrow


def feed_table(messages: Iterable[Message]) -> pa.Table:
    """Messages as an Arrow table of FEED_SCHEMA, in the order given."""
    columns: dict[str, list[Any]] = {name: [] for name in FEED_COLUMNS}
    for message in messages:
        columns["seq"].append(message.seq)
        columns["id"].append(message.id)
        columns["kind"].append(message.kind.value)
        columns["card"].append(message.card)
        columns["amount"].append(message.amount)
        columns["at_local"].append(message.at.replace(tzinfo=None))
        columns["utc_offset"].append(_offset(message.at))
        columns["scheme"].append(message.scheme)
        columns["merchant_id"].append(message.merchant_id)
        columns["descriptor"].append(message.descriptor)
        columns["mcc"].append(message.mcc)
        columns["original"].append(message.original)
    return pa.Table.from_pydict(columns, schema=FEED_SCHEMA)


def _seconds(offset: timedelta) -> int:
    if offset % timedelta(seconds=1):
        raise ValueError(f"a UTC offset of whole seconds is expected, not {offset}")
    return offset.days * 86400 + offset.seconds


def feed_messages(table: pa.Table) -> list[Message]:
    """An Arrow table of FEED_SCHEMA as messages, row by row."""
    column = {name: table.column(name).to_pylist() for name in FEED_COLUMNS}
    aware = _Aware()
    rows = zip(*(column[name] for name in FEED_COLUMNS), strict=True)
    messages = []
    for seq, id_, kind, card, amount, local, offset, scheme, mid, words, mcc, original in rows:
        at = aware(local, offset)
        messages.append(
            Message(seq, id_, _KINDS[kind], card, amount, at, scheme, mid, words, mcc, original)
        )
    return messages


class _Aware:
    """A wall-clock time and its UTC offset in seconds (None: naive) as a datetime, the
    time zone objects made once per offset."""

    def __init__(self) -> None:
        self.zones: dict[int, timezone] = {}

    def __call__(self, local: datetime, offset: int | None) -> datetime:
        if offset is None:
            return local
        zone = self.zones.get(offset)
        if zone is None:
            zone = self.zones[offset] = timezone(timedelta(seconds=offset))
        return local.replace(tzinfo=zone)


def _offset(at: datetime) -> int | None:
    zone = at.tzinfo
    if type(zone) is timezone:  # a fixed offset (what a feed's times carry): once per zone
        seconds = _ZONE_SECONDS.get(zone)
        if seconds is None:
            seconds = _ZONE_SECONDS[zone] = _seconds(zone.utcoffset(None))
        return seconds
    offset = at.utcoffset()
    return None if offset is None else _seconds(offset)


_ZONE_SECONDS: dict[timezone, int] = {}


def split_by_card(table: pa.Table, buckets: int) -> list[pa.Table]:
    """The rows of `table` by the stable bucket of their card, each in the table's order.
    The hash runs once per distinct card (the column's dictionary), not once per row."""
    if buckets == 1:
        return [table]
    cards = table.column("card").combine_chunks().dictionary_encode()
    of_card = pa.array(
        [bucket_of(token, buckets) for token in cards.dictionary.to_pylist()], pa.int32()
    )
    of_row = pc.take(of_card, cards.indices)
    return [table.filter(pc.equal(of_row, bucket)) for bucket in range(buckets)]


def read_slice(path: str, row_groups: Sequence[int], first: int, buckets: int) -> list[pa.Table]:
    """A slice of the feed's Parquet file (`row_groups`, whose first row is the feed's
    row `first`), with each row's position, split by card."""
    table = pq.ParquetFile(path).read_row_groups(list(row_groups), columns=list(FEED_COLUMNS))
    return split_by_card(_with_positions(table, first), buckets)


def _with_positions(table: pa.Table, first: int) -> pa.Table:
    positions = pa.array(range(first, first + table.num_rows), pa.int64())
    return table.append_column("position", positions)


def write_feed(
    path: str | PathLike[str], messages: Iterable[Message], *, row_group_size: int = 100_000
) -> None:
    """Messages, in feed order, as a Parquet file `run_batch` reads."""
    pq.write_table(feed_table(messages), fspath(path), row_group_size=row_group_size)


# ----------------------------------------------------------------------------- context


@dataclass(frozen=True)
class Context:
    """What every partition reads and no message changes: sent to each worker once."""

    catalog: Catalog
    offers: dict[str, list[Offer]]  # by merchant, in code order
    buckets: int  # offer partitions
    offer_bucket: dict[str, int]  # offer code → its partition

    @classmethod
    def of(cls, world: World, buckets: int) -> Context:
        codes = [offer.code for offers in world.offers.values() for offer in offers]
        return cls(
            world.catalog,
            world.offers,
            buckets,
            {code: bucket_of(code, buckets) for code in codes},
        )


# ---------------------------------------------------------------------- step 1: by card


@dataclass
class CardPart:
    """What one card partition gives back: its judged messages (by position), the cards'
    state as its messages left it, and counts. Its claims go on separately."""

    judged: list[tuple[int, Judged]]
    states: dict[str, CardState]
    known: dict[str, dict[str, Known]]
    messages: int = 0
    matched: int = 0
    claims: int = 0


def take_cards(
    context: Context,
    pieces: Sequence[pa.Table],
    cards: Mapping[str, Card],
    states: dict[str, CardState],
    known: dict[str, dict[str, Known]],
    collect: bool,
) -> tuple[CardPart, list[pa.Table]]:
    """Step 1 for one card partition: its rows (`pieces`, in feed order) one at a time
    through the card's desk — the online path's `World.card_desk(...).take`."""
    empty = _with_positions(FEED_SCHEMA.empty_table(), 0)
    table = pa.concat_tables(pieces) if pieces else empty
    positions = table.column("position").to_pylist()
    world = World(context.catalog, context.offers, dict(cards), states, known)
    desks: dict[str, CardDesk] = {}
    part = CardPart([], {}, {})
    routed = [_ClaimColumns() for _ in range(context.buckets)]
    for position, message in zip(positions, feed_messages(table), strict=True):
        desk = desks.get(message.card)
        if desk is None:
            desk = desks[message.card] = world.card_desk(message.card)
        judged = desk.take(message)
        part.messages += 1
        part.matched += judged.match is not None
        part.claims += len(judged.claims)
        if collect:
            part.judged.append((position, judged))
        for rank, claim in enumerate(judged.claims):
            routed[context.offer_bucket[claim.offer]].add(position, rank, claim)
    if collect:  # the cards this feed touched, as the online path leaves them
        part.states = {token: world.states[token] for token in desks}
        part.known = {token: world.known[token] for token in desks}
    return part, [claims.table() for claims in routed]


class _ClaimColumns:
    """Claims gathered as rows, turned into columns once: they travel to their offer's
    partition as an Arrow table, far cheaper to send than pickled objects."""

    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []

    def add(self, position: int, rank: int, claim: Claim) -> None:
        at = claim.at
        self.rows.append((
            position, rank, claim.seq, claim.message, claim.offer, claim.reward,
            claim.action.value, claim.amount, at.replace(tzinfo=None), _offset(at),
            claim.card, claim.merchant, claim.confirmed,
        ))  # fmt: skip

    def table(self) -> pa.Table:
        return _table(self.rows, CLAIM_SCHEMA)


def _table(rows: list[tuple[Any, ...]], schema: pa.Schema) -> pa.Table:
    """Rows of `schema`'s columns, in its order, as a table."""
    if not rows:
        return schema.empty_table()
    columns = [list(column) for column in zip(*rows, strict=True)]
    return pa.Table.from_arrays(
        [pa.array(column, type=kind.type) for column, kind in zip(columns, schema, strict=True)],
        schema=schema,
    )


def routed_claims(tables: Sequence[pa.Table]) -> Iterator[Routed]:
    """Claims from the card partitions' tables, merged into feed order (position, then
    rank), each with its place."""
    if not tables:
        return
    table = pa.concat_tables(tables).sort_by([("position", "ascending"), ("rank", "ascending")])
    column = {name: table.column(name).to_pylist() for name in CLAIM_SCHEMA.names}
    aware = _Aware()
    rows = zip(*(column[name] for name in CLAIM_SCHEMA.names), strict=True)
    for position, rank, seq, message, offer, reward, action, amount, local, offset, card, \
            merchant, confirmed in rows:  # fmt: skip
        at = aware(local, offset)
        claim = Claim(seq, message, offer, reward, _ACTIONS[action], amount, at, card, merchant,
                      confirmed)  # fmt: skip
        yield position, rank, claim


# --------------------------------------------------------------------- step 2: by offer


@dataclass
class OfferPart:
    """What one offer partition gives back: its changes (as objects, or as a table of
    CHANGE_SCHEMA when not collected) and its offers' budgets and rewards."""

    changes: list[Placed]
    table: pa.Table | None
    budgets: dict[str, Budget]
    rewards: dict[str, dict[str, Reward]]


def settle_offers(
    context: Context,
    claims: Sequence[pa.Table],
    budgets: dict[str, Budget],
    rewards: dict[str, dict[str, Reward]],
    collect: bool,
) -> OfferPart:
    """Step 2 for one offer partition: the claims of each card partition (each in feed
    order) merged back into feed order, each offer's through its desk's `settle`."""
    by_code = {offer.code: offer for offers in context.offers.values() for offer in offers}
    world = World(context.catalog, context.offers, {}, budgets=budgets, rewards=rewards)
    desks: dict[str, OfferDesk] = {}
    placed: list[Placed] = []
    for position, rank, claim in routed_claims(claims):
        desk = desks.get(claim.offer)
        if desk is None:
            desk = desks[claim.offer] = world.offer_desk(by_code[claim.offer])
        placed.extend((position, rank, change) for change in desk.settle([claim]))
    if collect:
        return OfferPart(placed, None, world.budgets, world.rewards)
    return OfferPart([], changes_table(placed), {}, {})


def changes_table(placed: Iterable[Placed]) -> pa.Table:
    """Changes with their place in the feed, as a table of CHANGE_SCHEMA."""
    rows = [
        (position, rank, change.seq, change.message, change.offer, change.reward,
         change.status.value, change.cashback_delta, change.fee_delta, change.cashback,
         change.fee, change.reason)
        for position, rank, change in placed
    ]  # fmt: skip
    return _table(rows, CHANGE_SCHEMA)


# ----------------------------------------------------------------------------- results


@dataclass
class BatchResult:
    """The feed's outcome. Collected: `judged` in feed order and `changes` in the online
    path's order (what `run_in_order` returns), the world updated. Not collected (a day's
    feed at scale): `table` holds the changes in that order, and the world is untouched —
    the states stay on the workers, to be written to the store from there."""

    judged: list[Judged]
    changes: list[Change]
    messages: int
    matched: int
    claims: int
    table: pa.Table | None = None

    def change_table(self) -> pa.Table:
        if self.table is not None:
            return self.table
        placed = ((0, 0, change) for change in self.changes)
        return changes_table(placed).drop_columns(["position", "rank"])

    def digest(self) -> str:
        """A SHA-256 of the changes in the online path's order (positions left out, so a
        collected and a columnar result of the same feed agree)."""
        table = self.change_table()
        if "position" in table.column_names:
            table = table.drop_columns(["position", "rank"])
        return _digest(table)


def changes_digest(changes: Iterable[Change]) -> str:
    """The digest `BatchResult.digest` gives, of changes in hand (`run_in_order`'s)."""
    return BatchResult([], list(changes), 0, 0, 0).digest()


def _digest(table: pa.Table) -> str:
    sha = hashlib.sha256()
    for batch in table.to_batches(max_chunksize=65_536):
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(
            zip(*batch.to_pydict().values(), strict=True)
        )
        sha.update(buffer.getvalue().encode())
    return sha.hexdigest()


def _collect(
    world: World, cards: Sequence[CardPart], offers: Sequence[OfferPart], collect: bool
) -> BatchResult:
    messages = sum(part.messages for part in cards)
    matched = sum(part.matched for part in cards)
    claims = sum(part.claims for part in cards)
    if not collect:
        tables = [part.table for part in offers if part.table is not None]
        table = pa.concat_tables(tables) if tables else changes_table(())
        order = [("position", "ascending"), ("rank", "ascending")]
        return BatchResult([], [], messages, matched, claims, table.sort_by(order))
    judged = [
        item
        for _, item in heapq.merge(*(part.judged for part in cards), key=operator.itemgetter(0))
    ]
    placed = sorted(
        (item for part in offers for item in part.changes), key=operator.itemgetter(0, 1)
    )
    for card_part in cards:
        world.states.update(card_part.states)
        world.known.update(card_part.known)
    for offer_part in offers:
        world.budgets.update(offer_part.budgets)
        world.rewards.update(offer_part.rewards)
    return BatchResult(judged, [change for _, _, change in placed], messages, matched, claims)


CardsPart = tuple[dict[str, Card], dict[str, CardState], dict[str, dict[str, Known]]]
OffersPart = tuple[dict[str, Budget], dict[str, dict[str, Reward]]]


def _cards_by_bucket(world: World, buckets: int) -> list[CardsPart]:
    """The world's cards, states and purchases known by card partition: what each
    partition starts from (each token hashed once)."""
    parts: list[CardsPart] = [({}, {}, {}) for _ in range(buckets)]
    bucket = {token: bucket_of(token, buckets) for token in world.cards.keys() | world.states}
    for token, card in world.cards.items():
        parts[bucket[token]][0][token] = card
    for token, state in world.states.items():
        parts[bucket[token]][1][token] = state
    for token, known in world.known.items():
        parts[bucket.get(token, bucket_of(token, buckets))][2][token] = known
    return parts


def _offers_by_bucket(world: World, context: Context) -> list[OffersPart]:
    """The offers' budgets and rewards so far, by offer partition."""
    parts: list[OffersPart] = [({}, {}) for _ in range(context.buckets)]

    def bucket(code: str) -> int:
        return context.offer_bucket.get(code, bucket_of(code, context.buckets))

    for code, budget in world.budgets.items():
        parts[bucket(code)][0][code] = budget
    for code, rewards in world.rewards.items():
        parts[bucket(code)][1][code] = rewards
    return parts


# ------------------------------------------------------------------ in process, no Dask


def run_split(
    world: World, messages: Sequence[Message], *, partitions: int = 4, collect: bool = True
) -> BatchResult:
    """The batch's split — by card, then by offer — run in this process without Dask:
    the same functions `run_batch` sends to the workers."""
    context = Context.of(world, partitions)
    pieces = split_by_card(_with_positions(feed_table(messages), 0), partitions)
    card_parts, routed = [], []
    for piece, cards in zip(pieces, _cards_by_bucket(world, partitions), strict=True):
        part, claims = take_cards(context, [piece], *cards, collect)
        card_parts.append(part)
        routed.append(claims)
    offer_parts = [
        settle_offers(context, [claims[bucket] for claims in routed], *offers, collect)
        for bucket, offers in enumerate(_offers_by_bucket(world, context))
    ]
    return _collect(world, card_parts, offer_parts, collect)


# --------------------------------------------------------------------------------- Dask


def run_batch(
    world: World,
    feed: Sequence[Message] | str | PathLike[str],
    *,
    scheduler: str | None = None,
    workers: int = 1,
    partitions: int | None = None,
    client: Client | None = None,
    collect: bool = True,
) -> BatchResult:
    """The feed (messages in feed order, or the path of a Parquet file of FEED_SCHEMA
    in feed order) through the offers on Dask, with exactly `run_in_order`'s results.

    `client` (an open Dask client) is used as it is; else `scheduler` (an address such
    as ``tcp://10.0.0.5:8786``) is connected to; else a local cluster of `workers`
    single-threaded processes is made for the call and closed after it. `partitions`
    (by card, and as many by offer): 4 per worker thread by default. `collect=False`
    leaves the world untouched and gives the changes as a table (see `BatchResult`)."""
    if client is not None:
        return _run(client, world, feed, partitions or 4 * _threads(client), collect)
    if scheduler is not None:
        with Client(scheduler) as remote:  # type: ignore[no-untyped-call]
            return _run(remote, world, feed, partitions or 4 * _threads(remote), collect)
    with local_cluster(workers) as cluster, Client(cluster) as local:  # type: ignore[no-untyped-call]
        return _run(local, world, feed, partitions or 4 * workers, collect)


def local_cluster(workers: int) -> LocalCluster:
    """A local cluster as `run_batch` makes one: `workers` single-threaded processes."""
    return LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
    )


def _threads(client: Client) -> int:
    nthreads: dict[str, int] = client.nthreads()  # type: ignore[no-untyped-call]
    return max(1, sum(nthreads.values()))


def _run(
    client: Client,
    world: World,
    feed: Sequence[Message] | str | PathLike[str],
    partitions: int,
    collect: bool,
) -> BatchResult:
    place = _Placement(client)
    pieces = _card_pieces(client, feed, partitions, place)
    context = Context.of(world, partitions)
    shared = _scatter(client, [context], broadcast=True)[0]
    card_futures = [
        client.submit(
            promptly,
            take_cards,
            shared,
            pieces[bucket],
            *_scatter(client, list(cards), place.worker(bucket)),
            collect,
            pure=False,
            **place(bucket),
        )
        for bucket, cards in enumerate(_cards_by_bucket(world, partitions))
    ]
    parts = [_pick(client, future, 0) for future in card_futures]
    routed = [_pick(client, future, 1) for future in card_futures]
    # the claims each offer partition gets are known once the card step is done: the
    # heaviest partitions go first, each to the thread with the least work so far
    claims_of = [
        [_pick(client, claims, bucket) for claims in routed] for bucket in range(partitions)
    ]
    counts: list[list[int]] = client.gather(  # type: ignore[no-untyped-call]
        [client.submit(_row_counts, claims, pure=False) for claims in routed]
    )
    loads = [sum(count[bucket] for count in counts) for bucket in range(partitions)]
    where = place.balanced(loads)
    offers_parts = _offers_by_bucket(world, context)
    offer_futures: dict[int, Future[Any]] = {}
    for bucket in sorted(range(partitions), key=lambda bucket: -loads[bucket]):
        offer_futures[bucket] = client.submit(
            promptly,
            settle_offers,
            shared,
            claims_of[bucket],
            *_scatter(client, list(offers_parts[bucket]), where[bucket]),
            collect,
            pure=False,
            **_Placement.at(where[bucket]),
        )
    card_parts: list[CardPart] = client.gather(parts)  # type: ignore[no-untyped-call]
    offer_parts: list[OfferPart] = client.gather(  # type: ignore[no-untyped-call]
        [offer_futures[bucket] for bucket in range(partitions)]
    )
    return _collect(world, card_parts, offer_parts, collect)


# Each partition's tasks go to a worker thread of their own, round robin (partition i to
# thread i mod threads), rather than wherever the scheduler puts them: the partitions are
# of near-equal size (a hash of the card or offer), so each thread gets an equal share of
# each step, and no thread idles at the step's end while another works through a longer
# queue. A placement is a preference (`allow_other_workers`): an idle worker still steals
# from a busy one, and a lost worker's tasks run elsewhere. Set False to leave it to the
# scheduler (for comparing).
PLACE_PARTITIONS = True


class _Placement:
    """Where each partition's tasks run: the workers, a slot per thread, round robin."""

    def __init__(self, client: Client) -> None:
        nthreads: dict[str, int] = client.nthreads()  # type: ignore[no-untyped-call]
        self.slots = [address for address in sorted(nthreads) for _ in range(nthreads[address])]

    def worker(self, bucket: int) -> str | None:
        if not PLACE_PARTITIONS or not self.slots:
            return None
        return self.slots[bucket % len(self.slots)]

    def __call__(self, bucket: int) -> dict[str, Any]:
        return self.at(self.worker(bucket))

    @staticmethod
    def at(worker: str | None) -> dict[str, Any]:
        """`submit`'s options for a task preferring `worker` (None: anywhere)."""
        return {} if worker is None else {"workers": [worker], "allow_other_workers": True}

    def balanced(self, loads: Sequence[int]) -> list[str | None]:
        """A worker for each partition of these loads: the heaviest first, each to the
        thread with the least load so far (longest processing time first)."""
        chosen: list[str | None] = [None] * len(loads)
        if not PLACE_PARTITIONS or not self.slots:
            return chosen
        busy = [0] * len(self.slots)
        for bucket in sorted(range(len(loads)), key=lambda bucket: -loads[bucket]):
            slot = min(range(len(busy)), key=busy.__getitem__)
            busy[slot] += loads[bucket]
            chosen[bucket] = self.slots[slot]
        return chosen


def _scatter(
    client: Client, items: list[Any], worker: str | None = None, *, broadcast: bool = False
) -> list[Future[Any]]:
    """Each of `items` onto the workers (every worker when `broadcast`; `worker` when
    given), as a future."""
    futures: list[Future[Any]] = client.scatter(  # type: ignore[no-untyped-call]
        items, broadcast=broadcast, hash=False, workers=None if worker is None else [worker]
    )
    return futures


def _card_pieces(
    client: Client,
    feed: Sequence[Message] | str | PathLike[str],
    partitions: int,
    place: _Placement,
) -> list[list[Future[Any]]]:
    """For each card partition, its rows from each slice of the feed (in feed order). A
    Parquet file is read on the workers, a slice of row groups each; messages in memory
    are split here and scattered."""
    if not isinstance(feed, str | PathLike):
        table = _with_positions(feed_table(feed), 0)
        return [[piece] for piece in _scatter(client, split_by_card(table, partitions))]
    path = fspath(feed)
    metadata = pq.ParquetFile(path).metadata
    sizes = [metadata.row_group(group).num_rows for group in range(metadata.num_row_groups)]
    slices = []
    for index, groups in enumerate(_chunks(list(range(len(sizes))), partitions)):
        first = sum(sizes[: groups[0]])
        slices.append(client.submit(read_slice, path, groups, first, partitions, pure=False,
                                    **place(index)))  # fmt: skip
    return [[_pick(client, piece, bucket) for piece in slices] for bucket in range(partitions)]


# A worker's task holds the GIL for seconds of pure Python; the worker's own thread that
# answers the other workers' requests for its data then waits up to the switch interval
# (5 ms) for each turn, and they idle meanwhile — a quarter of two workers' time on the
# benchmark's feed. Switching every 0.5 ms while a task runs answers them promptly.
SWITCH_INTERVAL = 0.0005


def promptly(function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` with the GIL switched often enough that the worker answers the
    other workers' requests for data while it runs (and as it was after)."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        return function(*args)
    finally:
        sys.setswitchinterval(before)


def _row_counts(tables: Sequence[pa.Table]) -> list[int]:
    return [table.num_rows for table in tables]


def _pick(client: Client, future: Future[Any], index: int) -> Future[Any]:
    """Item `index` of a task's result, as a future: it stays on the workers."""
    return client.submit(operator.itemgetter(index), future, pure=False)


def _chunks(items: list[int], count: int) -> Iterator[list[int]]:
    """`items` in at most `count` contiguous runs of near-equal length, in order."""
    size, extra = divmod(len(items), count)
    start = 0
    for index in range(count):
        end = start + size + (index < extra)
        if end > start:
            yield items[start:end]
        start = end
