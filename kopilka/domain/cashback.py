"""Cashback: part of the price returned as money, in its own wallet (issue 7).

The `cashback` section of a program file; filled in by the cashback work.
"""

from __future__ import annotations

from dataclasses import dataclass

from kopilka.domain.reading import Reader

CASHBACK_KEYS: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CashbackSettings:
    """What the program's `cashback` section declares."""


def parse_cashback(top: Reader, money_digits: int) -> CashbackSettings | None:
    """The `cashback` section of a program file, or None when there is none."""
    del money_digits
    section = top.mapping("cashback", CASHBACK_KEYS)
    return None if section is None else CashbackSettings()
