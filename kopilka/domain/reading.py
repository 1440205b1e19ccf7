"""Reading untrusted mappings (a parsed YAML/JSON document) into typed values.

Every problem is recorded with the place it was found, in the notation people
read: `rules[3] (happy-hours).when.time.from: '25:00' is not a time (HH:MM)`.
Readers record a problem and return None, so one pass reports every mistake.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from decimal import Decimal
from enum import Enum
from typing import TypeVar

from kopilka.domain.errors import Problem
from kopilka.domain.money import is_within_limits, parse_decimal, to_minor

E = TypeVar("E", bound=Enum)
D = TypeVar("D", int, Decimal)

CODE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_MISSING = object()

MAX_TEXT = 200  # the longest free text a request may carry (ids, names, labels)


def show(value: object) -> str:
    """A value as it appears in a message: strings quoted, the rest as written."""
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int) and value.bit_length() > 64:
        return "a very long number"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return str(value)


def join(loc: str, key: str) -> str:
    return f"{loc}.{key}" if loc else key


def item_loc(loc: str, index: int, raw: object, code_key: str = "code") -> str:
    """`rules[3] (happy-hours)`: the index, and the item's code when it has one."""
    code = raw.get(code_key) if isinstance(raw, Mapping) else None
    suffix = f" ({code})" if isinstance(code, str) and code else ""
    return f"{loc}[{index}]{suffix}"


class Reader:
    """One mapping of the input, its location, and where its problems go."""

    def __init__(
        self, raw: object, loc: str, problems: list[Problem], known: Sequence[str]
    ) -> None:
        self.loc = loc
        self.problems = problems
        if isinstance(raw, Mapping):
            self.data: Mapping[object, object] = raw
        else:
            self.report(loc, f"must be a mapping, not {show(raw)}")
            self.data = {}
        self._reject_unknown_keys(known)

    def _reject_unknown_keys(self, known: Sequence[str]) -> None:
        for key in self.data:
            if key in known:
                continue
            name = str(key)
            guess = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean '{guess[0]}'?" if guess else f"; known keys: {', '.join(known)}"
            self.report(join(self.loc, name), f"unknown key{hint}")

    def report(self, loc: str, message: str) -> None:
        self.problems.append(Problem(loc, message))

    def at(self, key: str) -> str:
        return join(self.loc, key)

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def raw(self, key: str, *, required: bool = False) -> object:
        """The key's value; None when absent or null (reported when required)."""
        value = self.data.get(key)
        if value is None and required:
            self.report(self.at(key), "is required")
        return value

    def text(
        self,
        key: str,
        *,
        required: bool = False,
        pattern: re.Pattern[str] | None = None,
        what: str = "a string",
        max_length: int = MAX_TEXT,
    ) -> str | None:
        value = self.raw(key, required=required)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.report(self.at(key), f"{show(value)} is not {what}")
            return None
        if len(value) > max_length:
            self.report(self.at(key), f"is {len(value)} characters long; at most {max_length}")
            return None
        if pattern is not None and not pattern.fullmatch(value):  # `$` alone lets "x\n" in
            self.report(self.at(key), f"{show(value)} is not {what}")
            return None
        return value

    def code(self, key: str, *, required: bool = True) -> str | None:
        return self.text(
            key,
            required=required,
            pattern=CODE_PATTERN,
            what="a code (letters, digits, '-', '_', '.', ':'; at most 64)",
        )

    def integer(
        self,
        key: str,
        *,
        required: bool = False,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int | None:
        value = self.raw(key, required=required)
        if value is None:
            return None
        number = parse_decimal(value) if not isinstance(value, str) else None
        if number is not None and not is_within_limits(number):
            self.report(self.at(key), f"{show(value)} is too large")
            return None
        if number is None or number != number.to_integral_value():
            self.report(self.at(key), f"{show(value)} is not a whole number")
            return None
        if isinstance(value, Decimal) and value.as_tuple().exponent != 0:
            # 2.0 is whole, but stored it stays "2.0" and would not read back as a count
            self.report(self.at(key), f"{show(value)}: write a whole number without a point")
            return None
        return self._bounded(key, int(number), minimum, maximum)

    def decimal(
        self,
        key: str,
        *,
        required: bool = False,
        minimum: Decimal | None = None,
        maximum: Decimal | None = None,
        what: str = "a number",
    ) -> Decimal | None:
        value = self.raw(key, required=required)
        if value is None:
            return None
        number = parse_decimal(value)
        if number is None:
            self.report(self.at(key), f"{show(value)} is not {what}")
            return None
        if not is_within_limits(number):
            self.report(
                self.at(key),
                f"{show(value)} is out of range (at most 15 digits before the point and 18 after)",
            )
            return None
        return self._bounded(key, number, minimum, maximum)

    def _bounded(self, key: str, number: D, minimum: D | None, maximum: D | None) -> D | None:
        if minimum is not None and number < minimum:
            self.report(self.at(key), f"{number} is less than {minimum}")
            return None
        if maximum is not None and number > maximum:
            self.report(self.at(key), f"{number} is more than {maximum}")
            return None
        return number

    def minor(self, key: str, digits: int, *, unit: str, required: bool = False) -> int | None:
        """A non-negative amount in minor units with at most `digits` decimals."""
        number = self.decimal(key, required=required, minimum=Decimal(0), what="an amount")
        if number is None:
            return None
        minor = to_minor(number, digits)
        if minor is None:
            self.report(self.at(key), f"{number} has more than {digits} decimals ({unit})")
        return minor

    def boolean(self, key: str) -> bool | None:
        value = self.raw(key)
        if value is None or isinstance(value, bool):
            return value
        self.report(self.at(key), f"{show(value)} is not true or false")
        return None

    def choice(self, key: str, enum: type[E], *, required: bool = False) -> E | None:
        value = self.raw(key, required=required)
        if value is None:
            return None
        for member in enum:
            if member.value == value:
                return member
        options = "|".join(str(member.value) for member in enum)
        self.report(self.at(key), f"{show(value)} is not one of {options}")
        return None

    def day(self, key: str, *, required: bool = False) -> date | None:
        value = self.raw(key, required=required)
        if value is None:
            return None
        parsed = parse_date(value)
        if parsed is None:
            self.report(self.at(key), f"{show(value)} is not a date (YYYY-MM-DD)")
        return parsed

    def codes(self, key: str) -> frozenset[str] | None:
        """A non-empty list of codes, or None when absent."""
        items = self.list(key)
        if items is None:
            return None
        found: set[str] = set()
        for loc, value in items:
            if isinstance(value, str) and value:
                found.add(value)
            else:
                self.report(loc, f"{show(value)} is not a code")
        if not items:
            self.report(self.at(key), "is empty; leave it out to match everything")
        return frozenset(found)

    def list(self, key: str, *, required: bool = False) -> list[tuple[str, object]] | None:
        """The list's items with their locations, or None when absent or not a list."""
        value = self.raw(key, required=required)
        if value is None:
            return None
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
            self.report(self.at(key), f"must be a list, not {show(value)}")
            return None
        return [(f"{self.at(key)}[{i}]", item) for i, item in enumerate(value)]

    def mapping(self, key: str, known: Sequence[str], *, required: bool = False) -> Reader | None:
        value = self.raw(key, required=required)
        if value is None:
            return None
        return Reader(value, self.at(key), self.problems, known)

    def records(
        self, key: str, known: Sequence[str], *, code_key: str = "code", required: bool = False
    ) -> Iterator[Reader]:
        """Each item of a list of mappings, located as `key[i] (code)`."""
        value = self.raw(key, required=required)
        if value is None:
            return
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
            self.report(self.at(key), f"must be a list, not {show(value)}")
            return
        for index, item in enumerate(value):
            yield Reader(item, item_loc(self.at(key), index, item, code_key), self.problems, known)


_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


def parse_date(value: object) -> date | None:
    """A calendar date from 'YYYY-MM-DD' (or a date a YAML reader already made)."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        return None
    match = _DATE.match(value.strip())
    if not match:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


_ROW_ID = re.compile(r"[0-9]{1,10}")


def row_id(text: str) -> int | None:
    """The number a path or reference names (`"42"` → 42); None for anything else — other
    digit characters (`"¹"`, `"٣"`) or a number too large to be an id (a database INTEGER)."""
    if not _ROW_ID.fullmatch(text):
        return None
    number = int(text)
    return number if number <= 2**31 - 1 else None
