"""The `exchange` section: what it reads, and every mistake named by its path."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from kopilka.kernel.errors import InvalidInput
from kopilka.kernel.program_parser import parse_program
from kopilka.mechanics.exchange.model import (
    DEFAULT_TIMEOUT_MINUTES,
    Fee,
    LocalSide,
    Rate,
    RemoteSide,
    exchange_of,
)

PARTNER = {"id": "sky", "url": "https://sky.example/v1/x/", "secret_env": "SKY_SECRET"}


def parsed(*pairs: dict[str, Any]) -> Any:
    return exchange_of(parse_program({"code": "zerno", "currency": "RUB",
                                      "exchange": {"pairs": list(pairs)}}))  # fmt: skip


def problems(*pairs: dict[str, Any]) -> list[str]:
    with pytest.raises(InvalidInput) as invalid:
        parsed(*pairs)
    return [str(problem) for problem in invalid.value.problems]


def test_a_pair_with_a_program_of_this_kopilka() -> None:
    pair = parsed({"code": "north", "program": "north", "rate": {"give": "1000", "get": "800"},
                   "min": "100", "fee": {"percent": "2.5", "points": "5"},
                   "daily_limit": "5000.50", "timeout_minutes": 30}).find("north")  # fmt: skip
    assert pair.other == LocalSide("north")
    assert pair.rate == Rate(Decimal("1000"), Decimal("800"))
    assert (pair.min_points, pair.fee, pair.daily_limit) == (
        10000,
        Fee(Decimal("2.5"), 500),
        500050,
    )
    assert (pair.timeout_minutes, pair.sends, pair.receives) == (30, True, True)


def test_a_pair_with_an_outside_program() -> None:
    pair = parsed({"code": "sky", "partner": PARTNER, "rate": {"give": "1", "get": "2"},
                   "send": False}).with_partner("sky")  # fmt: skip
    assert pair.other == RemoteSide("sky", "https://sky.example/v1/x", "SKY_SECRET", 2)
    assert (pair.sends, pair.receives) == (False, True)
    assert pair.timeout_minutes == DEFAULT_TIMEOUT_MINUTES


def test_no_section_exchanges_with_nobody() -> None:
    assert exchange_of(parse_program({"code": "zerno", "currency": "RUB"})).pairs == ()


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ({"code": "a", "rate": {"give": "1", "get": "1"}}, "name the other side"),
        ({"code": "a", "program": "b", "partner": PARTNER, "rate": {"give": "1", "get": "1"}},
         "not both"),
        ({"code": "a", "program": "b"}, "exchange.pairs[0] (a).rate: is required"),
        ({"code": "a", "program": "b", "rate": {"give": "0", "get": "1"}},
         "rate.give: must be more than 0"),
        ({"code": "a", "program": "b", "rate": {"give": "1", "get": "-1"}}, "rate.get: -1 is less"),
        ({"code": "a", "program": "b", "rate": {"give": "1"}}, "rate.get: is required"),
        ({"code": "a", "program": "b", "rate": {"give": "1", "get": "1"}, "fee": {}},
         "give a percent, fixed points, or both"),
        ({"code": "a", "program": "b", "rate": {"give": "1", "get": "1"},
          "fee": {"percent": "101"}}, "fee.percent: 101 is more than 100"),
        ({"code": "a", "program": "b", "rate": {"give": "1", "get": "1"}, "min": "0.001"},
         "min: 0.001 has more than 2 decimals"),
        ({"code": "a", "program": "b", "rate": {"give": "1", "get": "1"}, "daily_limit": "0"},
         "daily_limit: 0 would refuse every exchange"),
        ({"code": "a", "program": "b", "rate": {"give": "1", "get": "1"},
          "timeout_minutes": 0}, "timeout_minutes: 0 is less than 1"),
        ({"code": "a", "program": "b", "rate": {"give": "1", "get": "1"}, "send": "yes"},
         "send: 'yes' is not true or false"),
        ({"code": "a", "partner": {**PARTNER, "url": "ftp://sky.example"},
          "rate": {"give": "1", "get": "1"}}, "is not an http(s) address"),
        ({"code": "a", "partner": {**PARTNER, "url": "https://sky.example/?k=1"},
          "rate": {"give": "1", "get": "1"}}, "takes no query"),
        ({"code": "a", "partner": {**PARTNER, "secret_env": "the secret"},
          "rate": {"give": "1", "get": "1"}}, "is not an environment variable's name"),
        ({"code": "a", "partner": {"id": "sky", "url": "https://sky.example"},
          "rate": {"give": "1", "get": "1"}}, "partner.secret_env: is required"),
        ({"code": "a", "partner": {**PARTNER, "precision": 7},
          "rate": {"give": "1", "get": "1"}}, "precision: 7 is more than 6"),
        ({"code": "a", "program": "b", "rate": {"give": "1", "get": "1"}, "rte": 1},
         "did you mean 'rate'"),
    ],
)  # fmt: skip
def test_a_mistake_is_named_by_its_path(pair: dict[str, Any], message: str) -> None:
    assert any(message in problem for problem in problems(pair)), problems(pair)


def test_a_second_pair_with_the_same_code_or_side_is_named() -> None:
    rate = {"give": "1", "get": "1"}
    found = problems({"code": "a", "program": "b", "rate": rate},
                     {"code": "a", "program": "c", "rate": rate},
                     {"code": "d", "program": "b", "rate": rate})  # fmt: skip
    assert any("a second pair with the code 'a'" in problem for problem in found)
    assert any("a second pair with program b" in problem for problem in found)


def test_the_secret_itself_is_never_a_key() -> None:
    found = problems({"code": "a", "partner": {**PARTNER, "secret": "x" * 20},
                      "rate": {"give": "1", "get": "1"}})  # fmt: skip
    assert any("partner.secret: unknown key" in problem for problem in found)
