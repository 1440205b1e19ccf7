"""The card-linked offers' world as the database holds it: what a batch starts from.

Everything `feed.World` carries, read at once — the catalog and the offers (as the online
path caches them), the cards, each card's state (activations, uses, the merchants it
bought at), the purchases taken (what their clearings, reversals and refunds need), and
each offer's budget and rewards — so that a day's feed run as a batch on it gives what
the online path would give taking the same feed now.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, select

from kopilka.mechanics.card_offers.feed import Known, Reward, Status, World
from kopilka.mechanics.card_offers.handlers import card_from_row, catalog_of
from kopilka.mechanics.card_offers.model import Budget, CardState, Match
from kopilka.mechanics.card_offers.tables import (
    clo_activations,
    clo_card_merchants,
    clo_card_offer_uses,
    clo_cards,
    clo_offers,
    clo_purchases,
    clo_rewards,
)
from kopilka.platform.db import reading
from kopilka.programs.handlers import LoadedProgram, load_program


def world_of(engine: Engine, program_code: str) -> World:
    with reading(engine) as connection:
        return read_world(connection, load_program(connection, program_code))


def read_world(connection: Connection, program: LoadedProgram) -> World:
    """The program's world as `connection` sees it (read in one snapshot of the database
    when its transaction is REPEATABLE READ, or SQLite's)."""
    loaded = catalog_of(connection, program)
    program_id = program.program_id
    offer_codes = {offer_id: code for code, offer_id in loaded.offer_ids.items()}
    merchant_codes = {merchant_id: code for code, merchant_id in loaded.merchant_ids.items()}
    rows = connection.execute(select(clo_cards).where(clo_cards.c.program_id == program_id))
    tokens = {}
    world = World(loaded.catalog, {k: list(v) for k, v in loaded.offers.items()}, {})
    for row in rows:
        tokens[row.id] = row.token
        world.cards[row.token] = card_from_row(row)
    mine = clo_cards.c.program_id == program_id
    for row in connection.execute(select(clo_activations).join(clo_cards).where(mine)):
        state = world.states.setdefault(tokens[row.card_id], CardState())
        state.activated[offer_codes[row.offer_id]] = row.activated_at
    for row in connection.execute(select(clo_card_offer_uses).join(clo_cards).where(mine)):
        state = world.states.setdefault(tokens[row.card_id], CardState())
        state.uses[offer_codes[row.offer_id]] = row.uses
    for row in connection.execute(select(clo_card_merchants).join(clo_cards).where(mine)):
        state = world.states.setdefault(tokens[row.card_id], CardState())
        state.seen[merchant_codes[row.merchant_id]] = (row.first_at, row.last_at)
    for row in connection.execute(select(clo_purchases).where(
            clo_purchases.c.program_id == program_id)):  # fmt: skip
        match = (
            None
            if row.location_id is None
            else Match(loaded.locations_by_id[row.location_id], row.merchant, row.rule)
        )
        world.known.setdefault(tokens[row.card_id], {})[row.purchase] = Known(
            match, row.amount, tuple(row.offers), row.cleared, row.released
        )
    for row in connection.execute(select(clo_offers).where(
            clo_offers.c.program_id == program_id)):  # fmt: skip
        world.budgets[row.code] = Budget(row.budget, row.spent, row.budget_ended)
    for row in connection.execute(select(clo_rewards).where(
            clo_rewards.c.program_id == program_id)):  # fmt: skip
        code = offer_codes[row.offer_id]
        world.rewards.setdefault(code, {})[row.purchase] = Reward(
            code,
            row.purchase,
            tokens[row.card_id],
            row.merchant,
            Status(row.status),
            row.amount,
            row.cashback,
            row.fee,
            row.granted,
            row.refunded,
            row.payable_at,
        )
    return world
