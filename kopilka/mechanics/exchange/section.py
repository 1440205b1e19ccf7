"""The `exchange` section of a program file (docs/exchange.md): the pairs this program
exchanges points with. Every mistake is named by its path; a secret is never in the
file, only the name of the environment variable that holds it."""

from __future__ import annotations

import re
from decimal import Decimal
from urllib.parse import urlsplit

from kopilka.kernel.program_parser import SectionContext
from kopilka.kernel.reading import Reader, show
from kopilka.mechanics.exchange.model import (
    DEFAULT_REMOTE_PRECISION,
    DEFAULT_TIMEOUT_MINUTES,
    KEY,
    MAX_TIMEOUT_MINUTES,
    ExchangeSettings,
    Fee,
    LocalSide,
    Pair,
    Rate,
    RemoteSide,
)

__all__ = ["KEY", "parse_section"]

SECTION_KEYS = ("pairs",)
PAIR_KEYS = ("code", "name", "program", "partner", "rate", "min", "fee", "daily_limit",
             "timeout_minutes", "send", "receive")  # fmt: skip
PARTNER_KEYS = ("id", "url", "secret_env", "precision")
RATE_KEYS = ("give", "get")
FEE_KEYS = ("percent", "points")
MAX_URL = 500
MAX_RATE = Decimal(1_000_000_000)
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,127}")


def parse_section(top: Reader, context: SectionContext) -> ExchangeSettings | None:
    section = top.mapping(KEY, SECTION_KEYS)
    if section is None:
        return None
    pairs: list[Pair] = []
    codes: set[str] = set()
    sides: set[str] = set()
    for item in section.records("pairs", PAIR_KEYS, required=True):
        pair = _pair(item, context.point_digits)
        if pair is None:
            continue
        if pair.code in codes:
            item.report(item.at("code"), f"a second pair with the code {pair.code!r}")
        if _side_key(pair) in sides:
            item.report(item.loc, f"a second pair with {_side_key(pair)}")
        codes.add(pair.code)
        sides.add(_side_key(pair))
        pairs.append(pair)
    return ExchangeSettings(tuple(pairs))


def _side_key(pair: Pair) -> str:
    return f"program {pair.other.name}" if not pair.is_remote else f"partner {pair.other.name}"


def _pair(item: Reader, digits: int) -> Pair | None:
    code = item.code("code")
    other = _other(item)
    rate = _rate(item)
    minimum = item.minor("min", digits, unit="points") or 0
    fee = _fee(item, digits)
    daily = item.minor("daily_limit", digits, unit="points")
    timeout = item.integer("timeout_minutes", minimum=1, maximum=MAX_TIMEOUT_MINUTES)
    sends, receives = item.boolean("send"), item.boolean("receive")
    name = item.text("name")
    if daily == 0:
        item.report(item.at("daily_limit"), "0 would refuse every exchange; set send: false")
    if code is None or other is None or rate is None:
        return None
    return Pair(code=code, name=name or code, other=other, rate=rate, min_points=minimum,
                fee=fee, daily_limit=daily or None,
                timeout_minutes=DEFAULT_TIMEOUT_MINUTES if timeout is None else timeout,
                sends=sends is not False, receives=receives is not False)  # fmt: skip


def _other(item: Reader) -> LocalSide | RemoteSide | None:
    program = item.code("program", required=False)
    partner = item.mapping("partner", PARTNER_KEYS)
    if (program is None) == (partner is None):
        if not item.has("program") and not item.has("partner"):
            item.report(item.loc, "name the other side: program (of this Kopilka) or partner")
        elif program is not None:
            item.report(item.loc, "name one other side: program or partner, not both")
        return None
    if program is not None:
        return LocalSide(program)
    assert partner is not None
    partner_id = partner.code("id")
    url = _url(partner)
    secret_env = partner.text("secret_env", required=True, pattern=_ENV_NAME,
                              what="an environment variable's name (A-Z, 0-9, _)")  # fmt: skip
    precision = partner.integer("precision", minimum=0, maximum=6)
    if partner_id is None or url is None or secret_env is None:
        return None
    return RemoteSide(partner_id, url, secret_env,
                      DEFAULT_REMOTE_PRECISION if precision is None else precision)  # fmt: skip


def _url(partner: Reader) -> str | None:
    url = partner.text("url", required=True, max_length=MAX_URL, what="a URL")
    if url is None:
        return None
    address = urlsplit(url)
    if address.scheme not in ("https", "http") or not address.netloc or " " in url:
        partner.report(partner.at("url"), f"{show(url)} is not an http(s) address")
        return None
    if address.query or address.fragment:
        partner.report(partner.at("url"), f"{show(url)}: the base URL takes no query or fragment")
        return None
    return url.rstrip("/")


def _rate(item: Reader) -> Rate | None:
    rate = item.mapping("rate", RATE_KEYS, required=True)
    if rate is None:
        return None
    give = _positive(rate, "give")
    get = _positive(rate, "get")
    if give is None or get is None:
        return None
    return Rate(give, get)


def _positive(reader: Reader, key: str) -> Decimal | None:
    value = reader.decimal(key, required=True, minimum=Decimal(0), maximum=MAX_RATE,
                           what="a number of points")  # fmt: skip
    if value is not None and value == 0:
        reader.report(reader.at(key), "must be more than 0")
        return None
    return value


def _fee(item: Reader, digits: int) -> Fee:
    fee = item.mapping("fee", FEE_KEYS)
    if fee is None:
        return Fee()
    percent = fee.decimal("percent", minimum=Decimal(0), maximum=Decimal(100))
    points = fee.minor("points", digits, unit="points")
    if not fee.has("percent") and not fee.has("points"):
        fee.report(fee.loc, "give a percent, fixed points, or both")
    return Fee(percent or Decimal(0), points or 0)
