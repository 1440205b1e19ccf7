"""A generated card-linked-offers world and a bank's feed with known truth (issue 20).

Seeded and deterministic: the same arguments give the same world and the same feed.

The world: merchants (one per three offers) with 1–5 shops each, every shop with its
own merchant id per scheme, a descriptor ("KAMORI COFFEE TVERSKAYA 0012"), an MCC and
coordinates around Moscow; a share of small merchants sell through a payment
facilitator, whose ONE merchant id per scheme is shared by all its shops (theirs and
shops that are not in the catalog) and whose descriptors read "SQ *KAMORI COFFEE 0042";
descriptor rules (name and street words → the shop) for those and for part of the
others. Cards with segments and home coordinates; some already activated an offer, some
bought at a merchant before the feed (for new and lapsed customers). Offers across the
model's features: percent or fixed cashback, weekdays, hours (one across midnight),
minimum and maximum amounts, a cap, schemes, activation, a limit per card, budgets (some
small enough to run out), targeting by segment, radius, new and lapsed customers, and
control groups.

The feed, in plausible order (sorted by time, `seq` its place): for each purchase an
authorisation, then mostly a clearing 1–3 days later (sometimes of another amount — a
tip, a partial shipment), some reversals instead, some clearings with no authorisation
before them, refunds (whole and partial) of some cleared ones, and a few refunds of
transactions the feed never had. Descriptors come with noise: store numbers, case,
punctuation, the facilitator's prefix, a typo in some; some shops' transactions carry a
merchant id the catalog does not know (a new terminal) or none. Some purchases are at
merchants that are NOT in the catalog, some of them with names that start like a
catalog merchant's: they must stay unmatched.

The truth: for each purchase message (an authorisation, or a clearing with no
authorisation), the shop it was really made at (None: not a catalog shop).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from kopilka.mechanics.card_offers.batch import feed_table
from kopilka.mechanics.card_offers.feed import Judged, Message, World
from kopilka.mechanics.card_offers.model import (
    Card,
    CardState,
    Catalog,
    DescriptorRule,
    Kind,
    Location,
    Offer,
    Targeting,
)

MOSCOW = timezone(timedelta(hours=3))
FEED_STARTS = datetime(2026, 11, 2, tzinfo=MOSCOW)  # a Monday
FEED_DAYS = 7
CENTRE = (55.7558, 37.6173)
SCHEMES = ("visa", "mastercard", "mir")
SEGMENTS = ("premium", "salary", "student", "pensioner")
MCCS = ("5812", "5814", "5411", "5499", "5651", "5732", "5912", "5941", "7230", "5995")
NOUNS = ("COFFEE", "BAKERY", "PIZZA", "BOOKS", "FLOWERS", "PHARMACY", "SUSHI", "GRILL",
         "SHOES", "TOYS", "BEAUTY", "MARKET", "TEA", "WINE", "SPORT", "OPTICS")  # fmt: skip
STREETS = ("TVERSKAYA", "ARBAT", "LUBYANKA", "PRESNYA", "SOKOL", "MITINO", "KHAMOVNIKI",
           "BASMANNY", "TAGANKA", "ZAMOSKVORECHYE", "OSTANKINO", "YASENEVO")  # fmt: skip
SYLLABLES = ("ka", "mo", "ri", "ta", "ne", "lu", "vo", "zi", "pe", "sha", "dro", "bel",
             "gor", "mi", "sta", "vik", "lo", "ny", "ar", "tes")  # fmt: skip
FACILITATORS = (("SQ", "SQ *"), ("SUMUP", "SUMUP *"), ("PAYPAL", "PAYPAL *"))


@dataclass(frozen=True, slots=True)
class Shop:
    """A shop transactions are made at: in the catalog (`location` set) or not."""

    code: str | None  # the catalog location's code; None: not in the catalog
    name: str  # the merchant's name words ("KAMORI COFFEE")
    street: str
    number: int  # the store number in descriptors
    mcc: str
    mids: dict[str, str]  # scheme → the merchant id its terminals send
    facilitator: str | None = None  # the prefix ("SQ *") when behind a facilitator


@dataclass
class Generated:
    """A generated world: the `World` a feed is taken against, and the shops."""

    world: World
    shops: list[Shop]  # catalog shops first, then the others
    catalog_shops: int


def _pseudo_word(rng: random.Random, used: set[str]) -> str:
    while True:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).upper()
        if word not in used and len(word) >= 5:
            used.add(word)
            return word


def _near(rng: random.Random, spread: float) -> tuple[float, float]:
    return (round(CENTRE[0] + rng.uniform(-spread, spread), 5),
            round(CENTRE[1] + rng.uniform(-spread, spread) * 1.7, 5))  # fmt: skip


def make_world(seed: int = 20, *, offers: int = 300, cards: int = 2000) -> Generated:
    """A world of `offers` offers (one merchant per three) and `cards` cards."""
    rng = random.Random(seed)
    used: set[str] = set()
    merchants = max(1, offers // 3)
    counts = [3] * merchants if offers >= 3 else [offers]
    for extra in range(offers - sum(counts)):
        counts[extra % merchants] += 1
    facilitator_mids = {prefix: {scheme: f"{name}{scheme[:2].upper()}000001"
                                 for scheme in SCHEMES}
                        for name, prefix in FACILITATORS}  # fmt: skip
    locations: dict[str, Location] = {}
    merchant_ids: dict[tuple[str, str], list[str]] = {}
    rules: list[DescriptorRule] = []
    shops: list[Shop] = []
    offers_by_merchant: dict[str, list[Offer]] = {}
    for m in range(merchants):
        merchant = f"M{m:05d}"
        name = f"{_pseudo_word(rng, used)} {rng.choice(NOUNS)}"
        facilitator = rng.choice(FACILITATORS)[1] if rng.random() < 0.15 else None
        has_rules = facilitator is not None or rng.random() < 0.6
        mcc = rng.choice(MCCS)
        streets = rng.sample(STREETS, 1 if facilitator else rng.randint(1, 5))
        for index, street in enumerate(streets):
            code = f"{merchant}-{index}"
            number = rng.randint(1, 999)
            latitude, longitude = _near(rng, 0.25)
            if facilitator is not None:
                mids = dict(facilitator_mids[facilitator])
                descriptor = f"{facilitator}{name} {number:04d}"
                words = tuple(name.split())
            else:
                mids = {scheme: f"{code}-{scheme[:2].upper()}" for scheme in SCHEMES}
                descriptor = f"{name} {street} {number:04d}"
                words = (*name.split(), street)
            locations[code] = Location(code, merchant, descriptor, mcc, latitude, longitude)
            for scheme, mid in mids.items():
                merchant_ids.setdefault((scheme, mid), []).append(code)
            if has_rules:
                rules.append(DescriptorRule(len(rules) + 1, words, code))
            shops.append(Shop(code, name, street, number, mcc, mids, facilitator))
        offers_by_merchant[merchant] = [
            _offer(rng, f"{merchant}-O{k}", merchant) for k in range(counts[m])
        ]
    catalog_shops = len(shops)
    shops.extend(_outside_shops(rng, used, merchants, shops, facilitator_mids))
    catalog = Catalog(locations, {key: tuple(codes) for key, codes in merchant_ids.items()},
                      tuple(rules))  # fmt: skip
    card_list = [_card(rng, n) for n in range(cards)]
    world = World(catalog, offers_by_merchant, {card.token: card for card in card_list})
    _earlier_state(rng, world)
    return Generated(world, shops, catalog_shops)


def _outside_shops(rng: random.Random, used: set[str], merchants: int, inside: list[Shop],
                   facilitator_mids: dict[str, dict[str, str]]) -> list[Shop]:  # fmt: skip
    """Shops not in the catalog: a third as many as the merchants, some behind a
    facilitator (sharing its merchant id), some named like a catalog merchant."""
    shops = []
    for n in range(max(3, merchants // 3)):
        lookalike = rng.random() < 0.25 and inside
        if lookalike:  # the catalog merchant's first word, another trade
            first = rng.choice(inside).name.split()[0]
            name = f"{first} {rng.choice(NOUNS)}X"
        else:
            name = f"{_pseudo_word(rng, used)} {rng.choice(NOUNS)}"
        facilitator = rng.choice(FACILITATORS)[1] if rng.random() < 0.3 else None
        if facilitator is not None:
            mids = dict(facilitator_mids[facilitator])
        else:
            mids = {scheme: f"X{n:05d}-{scheme[:2].upper()}" for scheme in SCHEMES}
        shops.append(Shop(None, name, rng.choice(STREETS), rng.randint(1, 999),
                          rng.choice(MCCS), mids, facilitator))  # fmt: skip
    return shops


def _offer(rng: random.Random, code: str, merchant: str) -> Offer:
    starts = FEED_STARTS.date() - timedelta(days=30)
    until = FEED_STARTS.date() + timedelta(days=60)
    roll = rng.random()
    if roll < 0.08:  # starts in the middle of the feed
        starts = FEED_STARTS.date() + timedelta(days=rng.randint(1, 5))
    elif roll < 0.16:  # ends in the middle of it
        until = FEED_STARTS.date() + timedelta(days=rng.randint(0, 4))
    fixed = rng.choice((5_000, 10_000, 30_000)) if rng.random() < 0.3 else None
    percent = None if fixed else Decimal(rng.choice(("3", "5", "7.5", "10", "15")))
    return Offer(
        code=code, merchant=merchant, starts=starts, until=until, percent=percent, fixed=fixed,
        weekdays=frozenset(rng.sample(range(1, 8), 3)) if rng.random() < 0.2 else None,
        hours=_hours(rng) if rng.random() < 0.15 else None,
        min_amount=rng.choice((50_000, 100_000)) if rng.random() < 0.3 else None,
        max_amount=3_000_000 if rng.random() < 0.1 else None,
        max_cashback=rng.choice((20_000, 50_000)) if rng.random() < 0.3 else None,
        schemes=frozenset(rng.sample(SCHEMES, 2)) if rng.random() < 0.1 else None,
        activation_required=rng.random() < 0.2,
        limit_per_card=rng.randint(1, 3) if rng.random() < 0.3 else None,
        return_days=rng.choice((14, 30)),
        budget=_budget(rng),
        fee_percent=Decimal(rng.choice(("0", "1", "1.5"))),
        fee_fixed=rng.choice((0, 0, 500)),
        targeting=_targeting(rng),
        control_percent=Decimal(10) if rng.random() < 0.1 else Decimal(0),
    )  # fmt: skip


def _hours(rng: random.Random) -> tuple[time, time]:
    if rng.random() < 0.3:
        return time(20), time(2)  # a night window across midnight
    start = rng.randint(7, 16)
    return time(start), time(start + rng.randint(3, 6))


def _budget(rng: random.Random) -> int | None:
    roll = rng.random()
    if roll < 0.15:
        return rng.choice((20_000, 50_000, 100_000))  # runs out within the feed
    if roll < 0.4:
        return rng.choice((1_000_000, 10_000_000))
    return None


def _targeting(rng: random.Random) -> Targeting:
    roll = rng.random()
    if roll < 0.12:
        return Targeting(segment=rng.choice(SEGMENTS))
    if roll < 0.2:
        return Targeting(radius_km=Decimal(rng.choice((3, 5, 10))))
    if roll < 0.28:
        return Targeting(new_customers=True, new_within_days=rng.choice((90, 365)))
    if roll < 0.32:
        return Targeting(lapsed_days=rng.choice((30, 60)))
    return Targeting()


def _card(rng: random.Random, n: int) -> Card:
    segments = frozenset(segment for segment in SEGMENTS if rng.random() < 0.2)
    latitude, longitude = _near(rng, 0.3) if rng.random() < 0.9 else (None, None)
    return Card(f"C{n:08d}", rng.choice(SCHEMES), segments, latitude, longitude)


def _earlier_state(rng: random.Random, world: World) -> None:
    """What came before the feed: activations (a few dated inside it) and purchases at
    merchants (for new and lapsed customers)."""
    codes = [offer.code for offers in world.offers.values() for offer in offers]
    merchants = list(world.offers)
    for token in world.cards:
        if rng.random() >= 0.3:
            continue
        state = world.states.setdefault(token, CardState())
        for code in rng.sample(codes, min(len(codes), rng.randint(1, 20))):
            state.activated[code] = FEED_STARTS + timedelta(days=rng.uniform(-20, 3))
        for merchant in rng.sample(merchants, min(len(merchants), rng.randint(0, 5))):
            last = FEED_STARTS - timedelta(days=rng.uniform(1, 400))
            state.seen[merchant] = (last - timedelta(days=rng.uniform(0, 300)), last)


# ------------------------------------------------------------------------------- feed


def _noisy(rng: random.Random, shop: Shop) -> str:
    """The descriptor as a terminal sends it: the store number, and sometimes a typo in
    the name, other punctuation between its words, other case, a trailing terminal
    number. A facilitator's prefix ("SQ *") comes as the facilitator writes it."""
    name = shop.name
    if rng.random() < 0.03:  # a typo: one letter of the name dropped
        at = rng.randrange(len(name) - 1)
        name = name[:at] + name[at + 1 :]
    if rng.random() < 0.2:
        name = name.replace(" ", rng.choice(("-", "  ", ". ", "*", "_")), 1)
    text = (
        f"{name} {shop.number:04d}"
        if shop.facilitator
        else f"{name} {shop.street} {shop.number:04d}"
    )
    roll = rng.random()
    if roll < 0.15:
        text = text.lower()
    elif roll < 0.25:
        text = text.title()
    if rng.random() < 0.1:
        text = f"{text} #{rng.randint(1, 99)}"
    return f"{shop.facilitator}{text}" if shop.facilitator else text


def _mid(rng: random.Random, shop: Shop, scheme: str) -> str | None:
    if shop.facilitator is None and shop.code is not None:
        roll = rng.random()
        if roll < 0.04:
            return f"NEW{rng.randint(1, 10**6):07d}"  # a terminal the table lacks
        if roll < 0.07:
            return None
    return shop.mids[scheme]


def _amount(rng: random.Random) -> int:
    return int(10 ** rng.uniform(4, 6.5))  # 100 to ~31,600 roubles, in kopecks


NOT_A_PURCHASE = "-"  # the truth of a message that is not a purchase
Row = tuple[datetime, int, Message, str | None]  # (time, order made, message, truth)


def purchases(generated: Generated, count: int, seed: int, first: int = 0) -> Iterator[Row]:
    """The messages of `count` purchases (numbered from `first`), each with its sort key
    (time, order made) and its truth: for a purchase message the shop's code (None: not
    a catalog shop), for the others NOT_A_PURCHASE. `seq` is left 0: the feed's order
    is set when the rows are sorted."""
    rng = random.Random(f"{seed}/{first}")
    shops, inside = generated.shops, generated.catalog_shops
    tokens = list(generated.world.cards)
    made = first * 8
    span = FEED_DAYS * 86400
    for n in range(first, first + count):
        token = rng.choice(tokens)
        scheme = generated.world.cards[token].scheme
        outside = rng.random() >= 0.85
        shop = shops[rng.randrange(inside, len(shops)) if outside else rng.randrange(inside)]
        at = FEED_STARTS + timedelta(seconds=_moment(rng, span))
        amount = _amount(rng)
        txn = f"T{n:09d}"
        made += 1
        base = Message(0, txn, Kind.AUTHORISATION, token, amount, at, scheme,
                       _mid(rng, shop, scheme), _noisy(rng, shop), shop.mcc)  # fmt: skip
        if rng.random() < 0.03:  # cleared with no authorisation in the feed
            yield at, made, _about(base, Kind.CLEARING, "C", amount, at), shop.code
            continue
        yield at, made, base, shop.code
        if rng.random() < 0.05:  # reversed
            later = at + timedelta(minutes=rng.uniform(5, 600))
            made += 1
            yield later, made, _about(base, Kind.REVERSAL, "V", amount, later), NOT_A_PURCHASE
            continue
        cleared_at = at + timedelta(hours=rng.uniform(20, 72))
        cleared = amount if rng.random() < 0.9 else int(amount * rng.uniform(0.8, 1.2))
        made += 1
        clearing = _about(base, Kind.CLEARING, "C", cleared, cleared_at)
        yield cleared_at, made, clearing, NOT_A_PURCHASE
        if rng.random() < 0.06:
            at = cleared_at
            whole = rng.random() < 0.6
            parts = [cleared] if whole else [cleared // 3, cleared // 4][: rng.randint(1, 2)]
            for index, part in enumerate(parts, start=1):
                at = at + timedelta(days=rng.uniform(0.5, 4))
                made += 1
                refund = _about(base, Kind.REFUND, f"R{index}", part, at)
                yield at, made, refund, NOT_A_PURCHASE
        if rng.random() < 0.002:  # a refund of a transaction the feed never had
            made += 1
            stray = replace(_about(base, Kind.REFUND, "X", amount, cleared_at),
                            original=f"{txn}-unknown")  # fmt: skip
            yield cleared_at, made, stray, NOT_A_PURCHASE


def _about(purchase: Message, kind: Kind, suffix: str, amount: int, at: datetime) -> Message:
    """A message about `purchase` (a clearing, reversal, refund): its own id, the
    purchase's transaction as its original."""
    return replace(purchase, id=f"{purchase.id}-{suffix}", kind=kind, amount=amount, at=at,
                   original=purchase.id)  # fmt: skip


def _moment(rng: random.Random, span: int) -> float:
    """Seconds into the feed, busier in the day than at night."""
    day = rng.randrange(span // 86400)
    hour = rng.choices(range(24), weights=[1, 1, 1, 1, 1, 1, 2, 4, 6, 7, 7, 8, 9, 8, 7, 7,
                                           8, 9, 9, 8, 6, 4, 3, 2])[0]  # fmt: skip
    return day * 86400 + hour * 3600 + rng.uniform(0, 3600)


def make_feed(generated: Generated, purchase_count: int,
              seed: int = 20) -> tuple[list[Message], dict[str, str | None]]:  # fmt: skip
    """The feed of `purchase_count` purchases in feed order (seq from 1), and the truth
    by purchase message id."""
    rows = sorted(purchases(generated, purchase_count, seed), key=lambda row: (row[0], row[1]))
    messages, truth = [], {}
    for seq, (_, _, message, shop) in enumerate(rows, start=1):
        messages.append(replace(message, seq=seq))
        if shop != NOT_A_PURCHASE:
            truth[message.id] = shop
    return messages, truth


def write_feed(path: Path, generated: Generated, transactions: int, seed: int = 20, *,
               chunk: int = 200_000, row_group_size: int = 100_000) -> int:  # fmt: skip
    """About `transactions` messages (each purchase makes ~2.1) as a Parquet file in feed
    order; returns how many were written."""
    per_purchase = 2.1
    count = max(1, round(transactions / per_purchase))
    tables = []
    for first in range(0, count, chunk):
        rows = list(purchases(generated, min(chunk, count - first), seed, first))
        table = feed_table(message for _, _, message, _ in rows)
        keys = pa.array([at.timestamp() for at, _, _, _ in rows], pa.float64())
        made = pa.array([order for _, order, _, _ in rows], pa.int64())
        tables.append(table.append_column("_at", keys).append_column("_made", made))
    table = pa.concat_tables(tables).sort_by([("_at", "ascending"), ("_made", "ascending")])
    table = table.drop_columns(["_at", "_made"])
    seqs = pa.array(range(1, table.num_rows + 1), pa.int64())
    table = table.set_column(table.schema.get_field_index("seq"), "seq", seqs)
    pq.write_table(table, str(path), row_group_size=row_group_size)
    return int(table.num_rows)


# ------------------------------------------------------------------------------ quality


@dataclass(frozen=True)
class Quality:
    purchases: int  # purchase messages judged
    in_catalog: int  # … made at a catalog shop
    matched: int
    correct: int

    @property
    def precision(self) -> float:
        return self.correct / self.matched if self.matched else 1.0

    @property
    def recall(self) -> float:
        return self.correct / self.in_catalog if self.in_catalog else 1.0


def precision_recall(judged: Sequence[Judged], truth: dict[str, str | None]) -> Quality:
    """Matching against the truth: a match is correct when its location is the shop the
    purchase was made at; precision = correct / matched, recall = correct / purchases
    made at a catalog shop."""
    purchases_ = in_catalog = matched = correct = 0
    for item in judged:
        if item.message.id not in truth:
            continue
        shop = truth[item.message.id]
        purchases_ += 1
        in_catalog += shop is not None
        if item.match is not None:
            matched += 1
            correct += item.match.location == shop
    return Quality(purchases_, in_catalog, matched, correct)
