"""`kopilka verify` proves the exchange from its rows: each check finds the discrepancy it
exists for (a row changed behind the ledger's back)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, update

from kopilka.ledger.verify import verify
from kopilka.mechanics.exchange.checks import CHECKS
from kopilka.mechanics.exchange.tables import exchange_credits, exchange_days, exchanges
from tests.exchange.conftest import Killed, exchange, killed_at

SAGA, HELD, CREDITS, DAYS = (name for name, _ in CHECKS)


def failing(engine: Engine) -> set[str]:
    names, found = verify(engine)
    assert {SAGA, HELD, CREDITS, DAYS} <= set(names)
    return {discrepancy.check for discrepancy in found}


def test_sound_exchanges_pass_every_check(pair: Engine) -> None:
    exchange(pair, "1000")
    exchange(pair, "1000", to_member="card:404")
    with killed_at("hold"), pytest.raises(Killed):
        exchange(pair, "500")
    assert failing(pair) == set()


def test_a_saga_marked_confirmed_without_its_transfers_is_found(pair: Engine) -> None:
    with killed_at("hold"), pytest.raises(Killed):
        exchange(pair, "1000", transaction_id="forged")
    with pair.begin() as connection:
        connection.execute(update(exchanges).values(state="confirmed"))
    assert failing(pair) == {SAGA, HELD}


def test_a_credit_whose_amount_was_changed_is_found(pair: Engine) -> None:
    exchange(pair, "1000")
    with pair.begin() as connection:
        connection.execute(update(exchange_credits).values(points=exchange_credits.c.points + 1))
    assert failing(pair) == {CREDITS}


def test_a_daily_total_that_does_not_add_up_is_found(pair: Engine) -> None:
    exchange(pair, "1000")
    with pair.begin() as connection:
        connection.execute(update(exchange_days).values(points=1))
    assert failing(pair) == {DAYS}
