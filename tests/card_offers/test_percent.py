"""A percent of an amount in whole minor units is worked out in integers: it must round
exactly as Decimal's ROUND_HALF_UP does (half away from zero)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from hypothesis import given
from hypothesis import strategies as st

from kopilka.mechanics.card_offers.model import _percent_of

PERCENTS = st.decimals(min_value=0, max_value=100, places=4, allow_nan=False)
AMOUNTS = st.integers(min_value=-(10**15), max_value=10**15)


@given(AMOUNTS, PERCENTS)
def test_a_percent_of_an_amount_rounds_as_decimal_half_up(amount: int, percent: Decimal) -> None:
    exact = (Decimal(amount) * percent / Decimal(100)).quantize(Decimal(1), ROUND_HALF_UP)
    assert _percent_of(amount, percent) == int(exact)


def test_halves_go_away_from_zero() -> None:
    assert [_percent_of(amount, Decimal(10)) for amount in (5, 4, 15, -5, -4)] == [1, 0, 2, -1, 0]
    assert _percent_of(1, Decimal("2.5")) == 0
    assert _percent_of(20, Decimal("2.5")) == 1  # 0.5
