"""An exchange between two programs of one Kopilka: hold → credit → confirm, or reverse."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Engine

from tests.exchange.conftest import assert_sound, available, exchange


def test_an_exchange_moves_points_at_the_rate_less_the_fee(pair: Engine) -> None:
    answer, is_new = exchange(pair, "1000")
    # fee: 5.00 + 2 % of 1000 = 25.00; 975.00 at 1000 : 800 = 780 north points
    assert is_new
    assert answer["state"] == "confirmed"
    assert (answer["points"], answer["fee"], answer["net"]) == ("1000.00", "25.00", "975.00")
    assert (answer["credit"], answer["credited"]) == ("780", "780")
    assert available(pair, "zerno", "100001") == Decimal("4000.00")
    assert available(pair, "north", "900001") == Decimal("5780")
    assert_sound(pair)
