"""Card-linked offers' use cases (docs/card_offers.md): the catalog (merchants and their
locations, descriptor rules, offers), cards and activations, and the feed taken online —
one message at a time, through the same two steps as the batch (feed.py).

A message is taken in one transaction: its card's row is locked first (messages of one
card are taken one after another, so its state read is the state written over), then the
budgets of the offers it claims, in id order (no two messages lock in opposite orders).
A message's transaction id is its idempotency key: the same message again answers what
it answered; another message with the same id is `409`.
"""

from __future__ import annotations

import hashlib
import json
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Row, insert, select, update

from kopilka.kernel.errors import Conflict, IdempotencyConflict, InvalidInput, NotFound, Problem
from kopilka.kernel.money import format_minor
from kopilka.kernel.reading import Reader, text_problem
from kopilka.mechanics.card_offers import online, terms
from kopilka.mechanics.card_offers.feed import (
    Change,
    Judged,
    Known,
    Message,
    OfferDesk,
    Reward,
    Status,
    World,
)
from kopilka.mechanics.card_offers.model import (
    Budget,
    Card,
    CardState,
    Catalog,
    DescriptorRule,
    Location,
    Match,
    Offer,
    descriptor_words,
    in_control_group,
    lives_near,
)
from kopilka.mechanics.card_offers.rows import (
    change_notice,
    purchase_values,
    review_row,
    reward_values,
    transaction_row,
)
from kopilka.mechanics.card_offers.tables import (
    clo_activations,
    clo_cards,
    clo_catalogs,
    clo_locations,
    clo_merchant_ids,
    clo_merchants,
    clo_offers,
    clo_reviews,
    clo_rewards,
    clo_rules,
    clo_transactions,
)
from kopilka.members.handlers import find_member
from kopilka.platform.db import reading
from kopilka.platform.idempotency import Answer, retrying
from kopilka.programs.handlers import LoadedProgram, compiled, load_program

# A message's time may be ahead of the server's clock by this much (clocks and time zones
# drift), no more: a purchase from tomorrow is a mistake in the feed.
FUTURE_SLACK = timedelta(hours=26)

# ------------------------------------------------------------------------------ catalog


@dataclass
class Loaded:
    """A program's catalog as matching and judging read it, with the rows' ids."""

    version: int
    catalog: Catalog
    offers: dict[str, list[Offer]]  # by merchant code, in code order
    offer_ids: dict[str, int]
    merchant_ids: dict[str, int]
    location_ids: dict[str, int]
    locations_by_id: dict[int, str] = field(default_factory=dict)
    by_code: dict[str, Offer] = field(default_factory=dict)  # the offers by their code

    def __post_init__(self) -> None:
        self.by_code = {offer.code: offer for offers in self.offers.values() for offer in offers}


# A catalog per engine and program, replaced when its version moves on.
_catalogs: weakref.WeakKeyDictionary[Engine, dict[int, Loaded]] = weakref.WeakKeyDictionary()


def catalog_of(connection: Connection, program: LoadedProgram) -> Loaded:
    return _catalog_at(connection, program, _version(connection, program.program_id))


def _catalog_at(connection: Connection, program: LoadedProgram, version: int) -> Loaded:
    """The catalog at `version` (read already, with other reads): cached, or loaded."""
    cached = _catalogs.setdefault(connection.engine, {}).get(program.program_id)
    if cached is None or cached.version != version:
        cached = _load_catalog(connection, program, version)
        _catalogs[connection.engine][program.program_id] = cached
    return cached


def _version(connection: Connection, program_id: int) -> int:
    found = connection.execute(
        select(clo_catalogs.c.version).where(clo_catalogs.c.program_id == program_id)
    ).scalar()
    return int(found or 0)


def _bump_version(connection: Connection, program_id: int) -> None:
    changed = connection.execute(
        update(clo_catalogs).where(clo_catalogs.c.program_id == program_id)
        .values(version=clo_catalogs.c.version + 1)
    ).rowcount  # fmt: skip
    if not changed:
        connection.execute(insert(clo_catalogs).values(program_id=program_id, version=1))


def _load_catalog(connection: Connection, program: LoadedProgram, version: int) -> Loaded:
    program_id = program.program_id
    merchants = {row.id: row.code for row in connection.execute(
        select(clo_merchants.c.id, clo_merchants.c.code)
        .where(clo_merchants.c.program_id == program_id))}  # fmt: skip
    locations: dict[str, Location] = {}
    location_ids: dict[str, int] = {}
    for row in connection.execute(select(clo_locations).where(
            clo_locations.c.program_id == program_id)):  # fmt: skip
        locations[row.code] = Location(
            row.code, merchants[row.merchant_id], row.descriptor, row.mcc,
            None if row.latitude is None else float(row.latitude),
            None if row.longitude is None else float(row.longitude),
        )  # fmt: skip
        location_ids[row.code] = row.id
    by_id = {location_id: code for code, location_id in location_ids.items()}
    mids: dict[tuple[str, str], tuple[str, ...]] = {}
    for row in connection.execute(
        select(clo_merchant_ids)
        .where(clo_merchant_ids.c.program_id == program_id)
        .order_by(clo_merchant_ids.c.id)
    ):
        key = (row.scheme, row.mid)
        mids[key] = (*mids.get(key, ()), by_id[row.location_id])
    rules = tuple(
        DescriptorRule(row.id, tuple(row.words.split()), by_id[row.location_id], row.mcc)
        for row in connection.execute(select(clo_rules).where(
            clo_rules.c.program_id == program_id))
    )  # fmt: skip
    digits = program.calculator.program.money_digits
    offers: dict[str, list[Offer]] = {}
    offer_ids: dict[str, int] = {}
    for row in connection.execute(select(clo_offers).where(
            clo_offers.c.program_id == program_id).order_by(clo_offers.c.code)):  # fmt: skip
        offer = _offer_from_terms(row.code, row.terms, digits)
        offers.setdefault(offer.merchant, []).append(offer)
        offer_ids[row.code] = row.id
    merchant_ids = {code: merchant_id for merchant_id, code in merchants.items()}
    return Loaded(version, Catalog(locations, mids, rules), offers, offer_ids, merchant_ids,
                  location_ids, by_id)  # fmt: skip


def _offer_from_terms(code: str, stored: Any, digits: int) -> Offer:
    reader = Reader(stored, "", [], terms.OFFER_KEYS)
    read = terms.read_offer(reader, digits)
    if read is None:  # stored only after it was read without a problem
        raise RuntimeError(f"offer {code!r}: its stored terms no longer read: {reader.problems}")
    return Offer(**{**_fields(read[1]), "code": code})


def _fields(offer: Offer) -> dict[str, Any]:
    return {name: getattr(offer, name) for name in Offer.__slots__}


def _program(connection: Connection, code: str) -> LoadedProgram:
    return load_program(connection, code)


def _raise(reader: Reader) -> None:
    if reader.problems:
        raise InvalidInput(reader.problems)


def _reader(body: object, keys: tuple[str, ...]) -> Reader:
    return Reader({} if body is None else body, "", [], keys)


def put_merchant(engine: Engine, program_code: str, merchant_code: str, body: object, *,
                 now: datetime) -> Answer:  # fmt: skip
    """Create or update a merchant and the locations it lists (by code; a location not
    listed stays as it was, and a location's merchant ids are replaced by those given)."""
    reader = _reader(body, terms.MERCHANT_KEYS)
    name, locations = terms.read_merchant(reader)
    _check_code(merchant_code, "merchant")
    _raise(reader)

    def attempt(connection: Connection) -> Answer:
        program = _program(connection, program_code)
        program_id = program.program_id
        row = connection.execute(select(clo_merchants).where(
            clo_merchants.c.program_id == program_id, clo_merchants.c.code == merchant_code)
        ).first()  # fmt: skip
        made = row is None
        if row is None:
            merchant_id = int(connection.execute(insert(clo_merchants).values(
                program_id=program_id, code=merchant_code, name=name, created_at=now)
                .returning(clo_merchants.c.id)).scalar_one())  # fmt: skip
        else:
            merchant_id = row.id
            connection.execute(update(clo_merchants).where(clo_merchants.c.id == merchant_id)
                               .values(name=name))  # fmt: skip
        for location in locations:
            _put_location(connection, program_id, merchant_id, location)
        _bump_version(connection, program_id)
        return merchant_json(connection, merchant_id), made

    return retrying(engine, attempt)


def _check_code(code: str, what: str) -> None:
    reader = Reader({"code": code}, "", [], ("code",))
    reader.code("code")
    if reader.problems:
        raise InvalidInput([Problem(what, problem.message) for problem in reader.problems])


def _put_location(connection: Connection, program_id: int, merchant_id: int,
                  sent: terms.LocationSent) -> None:  # fmt: skip
    row = connection.execute(
        select(clo_locations.c.id, clo_locations.c.merchant_id).where(
            clo_locations.c.program_id == program_id, clo_locations.c.code == sent.code
        )
    ).first()
    values = {"descriptor": sent.descriptor, "mcc": sent.mcc, "latitude": sent.latitude,
              "longitude": sent.longitude, "address": sent.address}  # fmt: skip
    if row is None:
        location_id = int(connection.execute(insert(clo_locations).values(
            program_id=program_id, merchant_id=merchant_id, code=sent.code, **values)
            .returning(clo_locations.c.id)).scalar_one())  # fmt: skip
    elif row.merchant_id != merchant_id:
        raise Conflict(f"location {sent.code!r} is another merchant's")
    else:
        location_id = row.id
        connection.execute(update(clo_locations).where(clo_locations.c.id == location_id)
                           .values(**values))  # fmt: skip
    connection.execute(clo_merchant_ids.delete().where(
        clo_merchant_ids.c.location_id == location_id))  # fmt: skip
    for scheme, mid in sent.merchant_ids:
        connection.execute(insert(clo_merchant_ids).values(
            program_id=program_id, scheme=scheme, mid=mid, location_id=location_id))  # fmt: skip


def merchant_json(connection: Connection, merchant_id: int) -> dict[str, Any]:
    merchant = connection.execute(select(clo_merchants).where(
        clo_merchants.c.id == merchant_id)).one()  # fmt: skip
    locations = []
    for row in connection.execute(
        select(clo_locations)
        .where(clo_locations.c.merchant_id == merchant_id)
        .order_by(clo_locations.c.code)
    ):
        ids: dict[str, list[str]] = {}
        for mid in connection.execute(
            select(clo_merchant_ids)
            .where(clo_merchant_ids.c.location_id == row.id)
            .order_by(clo_merchant_ids.c.id)
        ):
            ids.setdefault(mid.scheme, []).append(mid.mid)
        locations.append({
            "code": row.code, "descriptor": row.descriptor, "mcc": row.mcc,
            "latitude": _coordinate(row.latitude), "longitude": _coordinate(row.longitude),
            "address": row.address, "merchant_ids": {k: v[0] for k, v in ids.items()},
        })  # fmt: skip
    return {"code": merchant.code, "name": merchant.name, "locations": locations}


def _coordinate(value: Any) -> str | None:
    return None if value is None else format(value, "f")


def add_rule(engine: Engine, program_code: str, body: object, *, actor: str,
             now: datetime) -> Answer:  # fmt: skip
    """A descriptor rule: `{descriptor, mcc?, location}` — transactions whose descriptor,
    normalised, starts with this one's words (and whose MCC is `mcc`) are at `location`."""
    reader = _reader(body, terms.RULE_KEYS)
    descriptor = reader.text("descriptor", max_length=200, required=True) or ""
    mcc = terms.read_mcc(reader, "mcc")
    location_code = reader.code("location") or ""
    words = " ".join(descriptor_words(descriptor))
    if descriptor and not words:
        reader.report("descriptor", "has no words to match on once normalised")
    _raise(reader)

    def attempt(connection: Connection) -> Answer:
        program = _program(connection, program_code)
        return _add_rule(connection, program.program_id, words, mcc, location_code,
                         source="operator", actor=actor, now=now)  # fmt: skip

    return retrying(engine, attempt)


def _add_rule(connection: Connection, program_id: int, words: str, mcc: str | None,
              location_code: str, *, source: str, actor: str, now: datetime) -> Answer:  # fmt: skip
    location = connection.execute(select(clo_locations.c.id).where(
        clo_locations.c.program_id == program_id, clo_locations.c.code == location_code)
    ).scalar()  # fmt: skip
    if location is None:
        raise NotFound(f"location {location_code!r} does not exist")
    existing = connection.execute(select(clo_rules.c.id).where(
        clo_rules.c.program_id == program_id, clo_rules.c.words == words,
        clo_rules.c.location_id == location,
        clo_rules.c.mcc.is_(None) if mcc is None else clo_rules.c.mcc == mcc)).scalar()  # fmt: skip
    if existing is not None:
        return _rule_json(connection, existing), False
    rule_id = int(connection.execute(insert(clo_rules).values(
        program_id=program_id, words=words, mcc=mcc, location_id=location, source=source,
        actor=actor, created_at=now).returning(clo_rules.c.id)).scalar_one())  # fmt: skip
    _bump_version(connection, program_id)
    return _rule_json(connection, rule_id), True


def _rule_json(connection: Connection, rule_id: int) -> dict[str, Any]:
    row = connection.execute(
        select(clo_rules, clo_locations.c.code.label("location"))
        .join(clo_locations, clo_locations.c.id == clo_rules.c.location_id)
        .where(clo_rules.c.id == rule_id)).one()  # fmt: skip
    return {
        "id": str(row.id),
        "words": row.words,
        "mcc": row.mcc,
        "location": row.location,
        "source": row.source,
        "made_by": row.actor,
        "made_at": row.created_at.isoformat(),
    }


def put_offer(engine: Engine, program_code: str, offer_code: str, body: object, *,
              actor: str, now: datetime, partner: str | None = None) -> Answer:  # fmt: skip
    """Create or change an offer. Its merchant never changes; a budget is never set below
    what it has spent. `partner`: the caller's key is bound to that merchant."""
    _check_code(offer_code, "offer")

    def attempt(connection: Connection) -> Answer:
        program = _program(connection, program_code)
        digits = program.calculator.program.money_digits
        reader = _reader(body, terms.OFFER_KEYS)
        read = terms.read_offer(reader, digits)
        _raise(reader)
        assert read is not None
        merchant_code, offer = read
        if partner is not None and merchant_code != partner:
            raise NotFound(f"merchant {merchant_code!r} does not exist")
        merchant = connection.execute(select(clo_merchants.c.id).where(
            clo_merchants.c.program_id == program.program_id,
            clo_merchants.c.code == merchant_code)).scalar()  # fmt: skip
        if merchant is None:
            raise InvalidInput([Problem("merchant", f"merchant {merchant_code!r} does not exist")])
        row = connection.execute(select(clo_offers).where(
            clo_offers.c.program_id == program.program_id, clo_offers.c.code == offer_code)
        ).first()  # fmt: skip
        values = {"terms": body, "starts": offer.starts, "until": offer.until,
                  "budget": offer.budget}  # fmt: skip
        if row is None:
            offer_id = int(connection.execute(insert(clo_offers).values(
                program_id=program.program_id, code=offer_code, merchant_id=merchant,
                spent=0, budget_ended=False, created_at=now, actor=actor, **values)
                .returning(clo_offers.c.id)).scalar_one())  # fmt: skip
        else:
            _may_change(row, merchant, offer, partner)
            offer_id = row.id
            ended = row.budget_ended and (offer.budget is not None and row.spent >= offer.budget)
            connection.execute(update(clo_offers).where(clo_offers.c.id == offer_id)
                               .values(budget_ended=ended, **values))  # fmt: skip
        _bump_version(connection, program.program_id)
        return offer_json(connection, program, offer_id), row is None

    return retrying(engine, attempt)


def _may_change(row: Row[Any], merchant: int, offer: Offer, partner: str | None) -> None:
    del partner
    if row.merchant_id != merchant:
        raise Conflict(f"offer {row.code!r} is another merchant's: its merchant never changes")
    if offer.budget is not None and offer.budget < row.spent:
        raise Conflict(f"offer {row.code!r} has spent {row.spent} minor units of its budget "
                       "already: the budget can't be set below that")  # fmt: skip


def offer_json(connection: Connection, program: LoadedProgram, offer_id: int) -> dict[str, Any]:
    row = connection.execute(
        select(clo_offers, clo_merchants.c.code.label("merchant"))
        .join(clo_merchants, clo_merchants.c.id == clo_offers.c.merchant_id)
        .where(clo_offers.c.id == offer_id)).one()  # fmt: skip
    digits = program.calculator.program.money_digits
    return {"code": row.code, "terms": row.terms, "merchant": row.merchant,
            "spent": format_minor(row.spent, digits), "budget_ended": row.budget_ended,
            "made_by": row.actor, "made_at": row.created_at.isoformat()}  # fmt: skip


def get_offer(engine: Engine, program_code: str, offer_code: str) -> dict[str, Any]:
    with reading(engine) as connection:
        program = _program(connection, program_code)
        offer_id = connection.execute(select(clo_offers.c.id).where(
            clo_offers.c.program_id == program.program_id, clo_offers.c.code == offer_code)
        ).scalar()  # fmt: skip
        if offer_id is None:
            raise NotFound(f"offer {offer_code!r} does not exist")
        return offer_json(connection, program, offer_id)


# -------------------------------------------------------------------------------- cards


def put_card(engine: Engine, program_code: str, token: str, body: object, *,
             now: datetime) -> Answer:  # fmt: skip
    """Enrol a card (or change it): `{scheme, first_six, last_four, member?, segments?,
    home?}`. The token is the bank's; a token that is a card number is refused."""
    reader = _reader(body, terms.CARD_KEYS)
    sent = terms.read_card(reader)
    _check_token(token)
    _raise(reader)

    def attempt(connection: Connection) -> Answer:
        program = _program(connection, program_code)
        member_id = (find_member(connection, program.program_id, sent.member).id
                     if sent.member is not None else None)  # fmt: skip
        values = {"scheme": sent.scheme, "first_six": sent.first_six,
                  "last_four": sent.last_four, "member_id": member_id,
                  "segments": list(sent.segments), "latitude": sent.latitude,
                  "longitude": sent.longitude}  # fmt: skip
        row = _card_row(connection, program.program_id, token)
        if row is None:
            connection.execute(insert(clo_cards).values(
                program_id=program.program_id, token=token, created_at=now, **values))  # fmt: skip
        else:
            connection.execute(update(clo_cards).where(clo_cards.c.id == row.id).values(**values))
        return card_json(_card_row(connection, program.program_id, token)), row is None

    return retrying(engine, attempt)


def _check_token(token: str) -> None:
    reader = Reader({"token": token}, "", [], ("token",))
    reader.text("token", max_length=64, required=True)
    digits = token.replace(" ", "")
    if digits.isdigit() and 12 <= len(digits) <= 19:
        reader.report("token", "looks like a card number: send the bank's token, never the "
                               "number")  # fmt: skip
    if reader.problems:
        raise InvalidInput(reader.problems)


def _card_row(connection: Connection, program_id: int, token: str) -> Row[Any] | None:
    return connection.execute(select(clo_cards).where(
        clo_cards.c.program_id == program_id, clo_cards.c.token == token)).first()  # fmt: skip


def card_json(row: Row[Any] | None) -> dict[str, Any]:
    assert row is not None
    home = (
        None
        if row.latitude is None
        else {"latitude": _coordinate(row.latitude), "longitude": _coordinate(row.longitude)}
    )
    return {"token": row.token, "scheme": row.scheme, "first_six": row.first_six,
            "last_four": row.last_four,
            "member": None if row.member_id is None else str(row.member_id),
            "segments": row.segments, "home": home}  # fmt: skip


def card_from_row(row: Row[Any]) -> Card:
    return Card(row.token, row.scheme, frozenset(row.segments),
                None if row.latitude is None else float(row.latitude),
                None if row.longitude is None else float(row.longitude))  # fmt: skip


def card_offers(engine: Engine, program_code: str, token: str, *,
                now: datetime) -> dict[str, Any]:  # fmt: skip
    """The offers shown to a card: live, targeted at it (segment, radius), not held out in
    a control group; each with whether it is activated."""
    with reading(engine) as connection:
        program = _program(connection, program_code)
        row = _card_row(connection, program.program_id, token)
        if row is None:
            raise NotFound(f"card {token!r} is not enrolled")
        loaded = catalog_of(connection, program)
        activated = _activations(connection, row.id)
        shown = [
            {"offer": offer.code, "merchant": offer.merchant, "until": offer.until.isoformat(),
             "activation_required": offer.activation_required,
             "activated": offer.code in activated}
            for offers in loaded.offers.values() for offer in offers
            if _shown(offer, card_from_row(row), loaded, now)
        ]  # fmt: skip
        return {"card": token, "offers": sorted(shown, key=lambda item: str(item["offer"]))}


def _shown(offer: Offer, card: Card, loaded: Loaded, now: datetime) -> bool:
    return offer.starts <= now.date() <= offer.until and shown_to(offer, card, loaded)


def shown_to(offer: Offer, card: Card, loaded: Loaded, *, ignore_control: bool = False) -> bool:
    """Whether the offer's targeting takes the card (segment, radius) and the card is not
    held out in its control group (`ignore_control`: whether it would be, but for it)."""
    if not ignore_control and in_control_group(offer, card.token):
        return False
    target = offer.targeting
    if target.segment is not None and target.segment not in card.segments:
        return False
    if target.radius_km is not None:
        spots = loaded.catalog.merchant_locations(offer.merchant)
        return lives_near(card, spots, target.radius_km)
    return True


def activate(engine: Engine, program_code: str, token: str, offer_code: str, *,
             now: datetime) -> Answer:  # fmt: skip
    """The cardholder activates an offer in the bank's app: from now on its purchases can
    earn it. An offer not shown to the card is `409`; activating again changes nothing."""

    def attempt(connection: Connection) -> Answer:
        program = _program(connection, program_code)
        row = _card_row(connection, program.program_id, token)
        if row is None:
            raise NotFound(f"card {token!r} is not enrolled")
        loaded = catalog_of(connection, program)
        offer = offer_of(loaded, offer_code)
        if not _shown(offer, card_from_row(row), loaded, now):
            raise Conflict(f"offer {offer_code!r} is not open to card {token!r}")
        offer_id = loaded.offer_ids[offer_code]
        before = _activations(connection, row.id).get(offer_code)
        if before is None:
            connection.execute(insert(clo_activations).values(
                card_id=row.id, offer_id=offer_id, activated_at=now))  # fmt: skip
        at = before or now
        return {"card": token, "offer": offer_code, "activated_at": at.isoformat()}, before is None

    return retrying(engine, attempt)


def offer_of(loaded: Loaded, code: str) -> Offer:
    """An offer of the catalog by its code (`NotFound` otherwise)."""
    found = loaded.by_code.get(code)
    if found is None:
        raise NotFound(f"offer {code!r} does not exist")
    return found


def _activations(connection: Connection, card_id: int) -> dict[str, datetime]:
    return {row.code: row.activated_at for row in connection.execute(
        select(clo_offers.c.code, clo_activations.c.activated_at)
        .join(clo_offers, clo_offers.c.id == clo_activations.c.offer_id)
        .where(clo_activations.c.card_id == card_id))}  # fmt: skip


# --------------------------------------------------------------------------------- feed


def take_message(engine: Engine, program_code: str, body: object, *,
                 now: datetime) -> Answer:  # fmt: skip
    """One feed message, online: matched, judged against the merchant's offers, the
    rewards it claims settled against their budgets; its answer says all of it. On
    PostgreSQL three round trips at most (online.py): the reads, with our BEGIN; the
    claimed offers' budgets and rewards; the writes, with the COMMIT."""
    digest = body_digest(body)
    looked_up = _looked_up(program_code, body)

    def attempt(connection: Connection) -> Answer:
        read = online.read_card(connection, looked_up, begin=True)
        program = _program_read(connection, program_code, read)
        reader = _reader(body, terms.MESSAGE_KEYS)
        sent = read_sent(reader, program, now)
        _raise(reader)
        assert sent is not None
        named = online.LookedUp(program_code, sent.transaction_id, sent.card, sent.original)
        if named != looked_up:  # its reading took an id `_looked_up` did not: read for it
            read = online.read_card(connection, named, begin=False)
        taken = read.taken
        if taken is not None:
            if taken.body_hash != digest:
                raise IdempotencyConflict(f"transaction {sent.transaction_id!r} was sent "
                                          "before with other details")  # fmt: skip
            return taken.answer, False
        return _take(connection, program, read, sent, digest, now), True

    return retrying(engine, attempt, begun_by_work=True)


def _looked_up(program_code: str, body: object) -> online.LookedUp:
    """What the message's reads look for, taken from the body before it is read (reading
    it needs the program, which those reads bring): a value its reading would refuse is
    looked for as None — the message is refused before anything read is used."""

    def as_sent(key: str) -> str | None:
        value = body.get(key) if isinstance(body, Mapping) else None
        fits = isinstance(value, str) and text_problem(value, max_length=64) is None
        return value if fits else None

    return online.LookedUp(program_code, as_sent("transaction_id"), as_sent("card"),
                           as_sent("original"))  # fmt: skip


def _program_read(connection: Connection, program_code: str,
                  read: online.CardRead) -> LoadedProgram:  # fmt: skip
    if read.program is None:
        return load_program(connection, program_code)  # says it does not exist
    return compiled(connection, read.program)


def body_digest(body: object) -> str:
    """What a resent message is compared by: the same transaction id with another digest
    is another message (409)."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def read_sent(reader: Reader, program: LoadedProgram, now: datetime) -> terms.MessageSent | None:
    """A feed message as the program takes it: well formed, in the program's currency,
    not from the future (None, with the problems on `reader`, otherwise)."""
    sent = terms.read_message(reader, program.calculator.program.money_digits)
    currency = program.calculator.program.currency
    if sent is not None and sent.currency != currency:
        reader.report("currency", f"{sent.currency!r} is not the program's currency "
                                  f"({currency}): offers pay in it")  # fmt: skip
    if sent is not None and sent.at > now + FUTURE_SLACK:
        reader.report("at", f"{sent.at.isoformat()} is in the future: a feed reports "
                            "purchases made")  # fmt: skip
    return None if reader.problems else sent


@dataclass
class _Card:
    row: Any  # the card's row, locked
    state: CardState
    known: dict[str, Known]


@dataclass
class _Settled:
    """An offer's claims settled: its desk (budget and rewards as the message leaves
    them), the ids of the rewards that were there before, and the changes made."""

    offer_id: int
    desk: OfferDesk
    reward_ids: dict[str, int]  # by purchase
    made: list[Change]


def _take(connection: Connection, program: LoadedProgram, read: online.CardRead,
          sent: terms.MessageSent, digest: str, now: datetime) -> dict[str, Any]:  # fmt: skip
    row = read.card
    if row is None:
        raise NotFound(f"card {sent.card!r} is not enrolled")
    loaded = _catalog_at(connection, program, read.catalog_version)
    card = _card_state(read, sent, loaded)
    uses_before, seen_before = dict(card.state.uses), dict(card.state.seen)
    world = World(loaded.catalog, loaded.offers, {row.token: card_from_row(row)},
                  {row.token: card.state}, {row.token: card.known})  # fmt: skip
    # online the feed's order is the order messages are taken in: `seq` orders a batch only
    message = sent.message(0)
    judged = world.card_desk(row.token).take(message)
    settled = _settle(connection, loaded, judged)
    changes = [change for offer in settled for change in offer.made]
    answer = message_json(judged, changes, program.calculator.program.money_digits)
    rows = online.Rows(transaction_row(program.program_id, loaded, row.id, sent, judged, digest,
                                       answer, now))  # fmt: skip
    _reward_rows(rows, program.program_id, row.id, settled, judged.message, now)
    rows.uses = _use_rows(row.id, loaded, card.state, uses_before)
    rows.seen = _seen_rows(row.id, loaded, card.state, seen_before)
    rows.purchases = _purchase_rows(program.program_id, row.id, loaded, card)
    if judged.match is None and judged.problem is None and sent.kind.value in (
            "authorisation", "clearing"):  # fmt: skip
        rows.review = review_row(program.program_id, loaded, sent)
    online.write(connection, rows, commit=True)  # nothing is written after it
    return answer


def _card_state(read: online.CardRead, sent: terms.MessageSent, loaded: Loaded) -> _Card:
    """The card's state as read, by the catalog's codes, and what its purchase the
    message is about left (`Known`)."""
    row = read.card
    state = CardState(activated={found.code: found.activated_at for found in read.activations})
    offer_codes = {offer_id: code for code, offer_id in loaded.offer_ids.items()}
    for use in read.uses:
        if use.offer_id in offer_codes:
            state.uses[offer_codes[use.offer_id]] = use.uses
    merchant_codes = {merchant_id: code for code, merchant_id in loaded.merchant_ids.items()}
    for seen in read.seen:
        state.seen[merchant_codes[seen.merchant_id]] = (seen.first_at, seen.last_at)
    known: dict[str, Known] = {}
    purchase = read.original
    if sent.original is not None and purchase is not None:
        if purchase.card_id != row.id:
            raise InvalidInput([Problem("original", f"transaction {sent.original!r} was made "
                                                    "with another card")])  # fmt: skip
        match = (None if purchase.location_id is None else
                 Match(loaded.locations_by_id[purchase.location_id], purchase.merchant,
                       purchase.rule))  # fmt: skip
        known[sent.original] = Known(match, purchase.amount, tuple(purchase.offers),
                                     purchase.cleared, purchase.released)  # fmt: skip
    return _Card(row, state, known)


def _settle(connection: Connection, loaded: Loaded, judged: Judged) -> list[_Settled]:
    """The claims against their offers' budgets (locked, in id order) and rewards."""
    claimed = sorted({claim.offer for claim in judged.claims}, key=lambda c: loaded.offer_ids[c])
    if not claimed:
        return []
    offer_ids = [loaded.offer_ids[code] for code in claimed]
    read = online.read_offers(connection, offer_ids,
                              sorted({claim.reward for claim in judged.claims}))  # fmt: skip
    budgets = {budget.id: budget for budget in read.budgets}
    settled = []
    for code, offer_id in zip(claimed, offer_ids, strict=True):
        offer = offer_of(loaded, code)
        budget = Budget(offer.budget, budgets[offer_id].spent, budgets[offer_id].budget_ended)
        claims = [claim for claim in judged.claims if claim.offer == code]
        keys = {claim.reward for claim in claims}
        found = [reward for reward in read.rewards
                 if reward.offer_id == offer_id and reward.purchase in keys]  # fmt: skip
        desk = OfferDesk(offer, budget, {found.purchase: _reward(code, found) for found in found})
        made = list(desk.settle(claims))
        settled.append(_Settled(offer_id, desk, {found.purchase: found.id for found in found},
                                made))  # fmt: skip
    return settled


def _reward(code: str, row: Any) -> Reward:
    return Reward(code, row.purchase, row.token, row.merchant, Status(row.status), row.amount,
                  row.cashback, row.fee, row.granted, row.refunded, row.payable_at)  # fmt: skip


def _reward_rows(rows: online.Rows, program_id: int, card_id: int, settled: list[_Settled],
                 message: Message, now: datetime) -> None:  # fmt: skip
    """Each offer's budget, its rewards as the message leaves them (each once, new or
    changed), and per change its row and its webhook to the bank (`notify`'s)."""
    for offer in settled:
        budget = offer.desk.budget
        rows.budgets.append({"id": offer.offer_id, "spent": budget.spent,
                             "budget_ended": budget.ended})  # fmt: skip
        written: set[str] = set()
        for change in offer.made:
            reward = offer.desk.rewards[change.reward]
            if change.reward not in written:
                written.add(change.reward)
                state = reward_values(reward)
                named = {"offer_id": offer.offer_id, "purchase": change.reward}
                if change.reward in offer.reward_ids:
                    rows.changed_rewards.append({"id": offer.reward_ids[change.reward],
                                                 **named, **state})  # fmt: skip
                else:
                    rows.new_rewards.append({"program_id": program_id, **named,
                                             "card_id": card_id, "merchant": reward.merchant,
                                             **state})  # fmt: skip
            rows.changes.append({
                "offer_id": offer.offer_id, "purchase": change.reward,
                "transaction_id": message.id, "status": change.status.value,
                "cashback_delta": change.cashback_delta, "fee_delta": change.fee_delta,
                "reason": change.reason, "at": now})  # fmt: skip
            rows.webhooks.append(change_notice(program_id, change, reward.card, now))


def _use_rows(card_id: int, loaded: Loaded, state: CardState,
              before: dict[str, int]) -> list[dict[str, Any]]:  # fmt: skip
    """The card's uses of offers the message changed."""
    return [{"card_id": card_id, "offer_id": loaded.offer_ids[code], "uses": uses}
            for code, uses in state.uses.items() if before.get(code) != uses]  # fmt: skip


def _seen_rows(card_id: int, loaded: Loaded, state: CardState,
               before: dict[str, tuple[datetime, datetime]]) -> list[dict[str, Any]]:  # fmt: skip
    """The card's first and last purchase at the merchants the message changed them of."""
    return [{"card_id": card_id, "merchant_id": loaded.merchant_ids[merchant],
             "first_at": first, "last_at": last}
            for merchant, (first, last) in state.seen.items()
            if before.get(merchant) != (first, last)]  # fmt: skip


def _purchase_rows(program_id: int, card_id: int, loaded: Loaded,
                   card: _Card) -> list[dict[str, Any]]:  # fmt: skip
    """What the message left for the messages about its purchase (`Known`)."""
    return [{"program_id": program_id, "purchase": key, "card_id": card_id,
             **purchase_values(loaded, known)}
            for key, known in card.known.items()]  # fmt: skip


def message_json(judged: Judged, changes: Sequence[Change], digits: int) -> dict[str, Any]:
    message = judged.message
    match = judged.match
    verdicts = dict(judged.verdicts)
    by_offer = {change.offer: change for change in changes}
    offers = []
    for code in sorted(set(verdicts) | set(by_offer)):
        item: dict[str, Any] = {"offer": code}
        change = by_offer.get(code)
        if change is None:
            item["reason"] = verdicts[code].value
        else:
            item.update({
                "reason": change.reason, "status": change.status.value,
                "cashback": format_minor(change.cashback, digits),
                "cashback_change": format_minor(change.cashback_delta, digits),
                "fee": format_minor(change.fee, digits),
            })  # fmt: skip
        offers.append(item)
    return {
        "transaction_id": message.id, "kind": message.kind.value, "card": message.card,
        "amount": format_minor(message.amount, digits),
        "matched": None if match is None else {"location": match.location,
                                               "merchant": match.merchant, "rule": match.rule},
        "offers": offers, "problem": judged.problem,
    }  # fmt: skip


def transaction(engine: Engine, program_code: str, transaction_id: str) -> dict[str, Any]:
    """A message as it was answered, and its rewards as they stand now."""
    with reading(engine) as connection:
        program = _program(connection, program_code)
        row = connection.execute(select(clo_transactions).where(
            clo_transactions.c.program_id == program.program_id,
            clo_transactions.c.transaction_id == transaction_id)).first()  # fmt: skip
        if row is None:
            raise NotFound(f"transaction {transaction_id!r} does not exist")
        digits = program.calculator.program.money_digits
        purchase = row.original if row.kind != "authorisation" else row.transaction_id
        rewards = [
            {"offer": reward.code, "status": reward.status,
             "cashback": format_minor(reward.cashback, digits),
             "fee": format_minor(reward.fee, digits),
             "payable_at": None if reward.payable_at is None else reward.payable_at.isoformat()}
            for reward in connection.execute(
                select(clo_rewards, clo_offers.c.code)
                .join(clo_offers, clo_offers.c.id == clo_rewards.c.offer_id)
                .where(clo_rewards.c.program_id == program.program_id,
                       clo_rewards.c.purchase.in_([purchase or "", row.transaction_id]))
                .order_by(clo_offers.c.code))
        ]  # fmt: skip
        return {**row.answer, "received_at": row.received_at.isoformat(), "rewards": rewards}


# ------------------------------------------------------------------------ review queue

REVIEW_KEYS = ("location", "dismiss", "mcc")


def reviews(engine: Engine, program_code: str, *, status: str = "open") -> dict[str, Any]:
    """The review queue: unmatched purchases with the locations they most resemble."""
    with reading(engine) as connection:
        program = _program(connection, program_code)
        rows = connection.execute(
            select(clo_reviews, clo_transactions.c.transaction_id, clo_transactions.c.local_at)
            .join(clo_transactions, clo_transactions.c.id == clo_reviews.c.transaction_row)
            .where(clo_reviews.c.program_id == program.program_id, clo_reviews.c.status == status)
            .order_by(clo_reviews.c.id).limit(500)
        ).all()  # fmt: skip
        return {"reviews": [_review_json(row) for row in rows]}


def _review_json(row: Row[Any]) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "transaction_id": row.transaction_id,
        "at": row.local_at,
        "descriptor": row.descriptor,
        "mcc": row.mcc,
        "suggestions": [{"location": code, "score": score} for code, score in row.suggestions],
        "status": row.status,
        "rule": None if row.rule_id is None else str(row.rule_id),
        "decided_by": row.decided_by,
        "decided_at": None if row.decided_at is None else row.decided_at.isoformat(),
    }


def decide_review(engine: Engine, program_code: str, review_id: str, body: object, *,
                  actor: str, now: datetime) -> Answer:  # fmt: skip
    """`{location, mcc?}`: the descriptor is that location's — a descriptor rule is made of
    its words (the next transactions like it match), and every open review it now matches
    is decided with it. `{dismiss: true}`: not a merchant of the program. A decided review
    is `409`."""
    reader = _reader(body, REVIEW_KEYS)
    location = reader.code("location", required=False)
    mcc = terms.read_mcc(reader, "mcc")
    dismiss = bool(reader.boolean("dismiss"))
    if (location is None) == (not dismiss) and not reader.problems:
        reader.report("location", "give a location, or dismiss: true")
    _raise(reader)

    def attempt(connection: Connection) -> Answer:
        program = _program(connection, program_code)
        row = _open_review(connection, program.program_id, review_id)
        if dismiss:
            _decide(connection, [row.id], "dismissed", None, actor, now)
            return _review_after(connection, row.id), True
        words = " ".join(descriptor_words(row.descriptor))
        if not words:
            raise Conflict(f"review {review_id}: its descriptor has no words to make a rule of")
        rule, _made = _add_rule(connection, program.program_id, words, mcc, location or "",
                                source="review", actor=actor, now=now)  # fmt: skip
        same = [other.id for other in connection.execute(select(clo_reviews).where(
            clo_reviews.c.program_id == program.program_id, clo_reviews.c.status == "open"))
            if descriptor_words(other.descriptor)[: len(words.split())] == tuple(words.split())
            and (mcc is None or other.mcc == mcc)]  # fmt: skip
        _decide(connection, sorted({row.id, *same}), "matched", int(rule["id"]), actor, now)
        return _review_after(connection, row.id), True

    return retrying(engine, attempt)


def _open_review(connection: Connection, program_id: int, review_id: str) -> Row[Any]:
    row = None
    if review_id.isascii() and review_id.isdigit() and len(review_id) <= 18:
        row = connection.execute(
            select(clo_reviews).where(
                clo_reviews.c.program_id == program_id, clo_reviews.c.id == int(review_id)
            )
        ).first()
    if row is None:
        raise NotFound(f"review {review_id!r} does not exist")
    if row.status != "open":
        raise Conflict(f"review {review_id} is decided already ({row.status})")
    return row


def _decide(connection: Connection, ids: list[int], status: str, rule_id: int | None,
            actor: str, now: datetime) -> None:  # fmt: skip
    connection.execute(update(clo_reviews).where(clo_reviews.c.id.in_(ids)).values(
        status=status, rule_id=rule_id, decided_by=actor, decided_at=now))  # fmt: skip


def _review_after(connection: Connection, review_id: int) -> dict[str, Any]:
    row = connection.execute(
        select(clo_reviews, clo_transactions.c.transaction_id, clo_transactions.c.local_at)
        .join(clo_transactions, clo_transactions.c.id == clo_reviews.c.transaction_row)
        .where(clo_reviews.c.id == review_id)).one()  # fmt: skip
    return _review_json(row)
