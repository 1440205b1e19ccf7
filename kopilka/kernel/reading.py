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
from typing import Any, TypeVar

from kopilka.kernel.errors import Problem
from kopilka.kernel.money import (
    MINOR_LIMIT,
    format_minor,
    is_within_limits,
    parse_decimal,
    to_minor,
)

E = TypeVar("E", bound=Enum)
D = TypeVar("D", int, Decimal)

CODE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_MISSING = object()

MAX_TEXT = 200  # the longest free text a request may carry (ids, names, labels)
MAX_NOTE = 1000  # the longest multi-line text (a note on a payout)
MAX_DEPTH = 32  # the deepest nesting of lists and mappings a document may have
MAX_VALUES = 1_000_000  # more than a 1 MiB JSON body can hold; only aliases repeat more

# Characters no text of Kopilka may hold: the C0 and C1 control characters (NUL among
# them: PostgreSQL can't store it, and it cuts strings short in C tools) and the halves
# of UTF-16 surrogate pairs, which are not characters at all (a lone "\ud800" in JSON
# can't be written back out as UTF-8). Multi-line text may hold tab and line breaks.
_REFUSED_IN_LINE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_REFUSED_IN_NOTE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


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


def text_problem(value: str, *, max_length: int = MAX_TEXT, multiline: bool = False) -> str | None:
    """Why `value` can't be taken as text, or None: too long, or a character it may not
    hold (any control character — in multi-line text all but tab, CR and LF — or half
    of a surrogate pair)."""
    if len(value) > max_length:
        return f"is {len(value)} characters long; at most {max_length}"
    refused = (_REFUSED_IN_NOTE if multiline else _REFUSED_IN_LINE).search(value)
    if refused is None:
        return None
    return f"{_character_name(refused[0])} at position {refused.start() + 1} is not allowed in text"


def _character_name(char: str) -> str:
    code = f"U+{ord(char):04X}"
    if "\ud800" <= char <= "\udfff":
        return f"{code} (half of a UTF-16 surrogate pair, no character by itself)"
    return f"the control character {code}"


def document_problems(document: object, *, max_depth: int = MAX_DEPTH) -> list[Problem]:
    """What no part of an input document may have, wherever it is: nesting deeper than
    `max_depth`, or a key or string value with a character no text may hold (multi-line
    text's rule: single-line fields refuse line breaks when they are read). Walked with a
    stack, not recursion, so a deep document can't exhaust Python's; a YAML alias that
    refers to its own ancestor ends at the depth limit, and aliases repeating one part
    into more than MAX_VALUES values end at that limit."""
    problems: list[Problem] = []
    stack: list[tuple[str, object, int]] = [("", document, 1)]
    for _ in range(MAX_VALUES + 1):
        if not stack:
            return problems
        loc, value, depth = stack.pop()
        if isinstance(value, str):
            _check_string(value, loc, problems)
            continue
        if isinstance(value, (Mapping, list)) and depth > max_depth:
            return [Problem(loc, f"is nested more than {max_depth} levels deep")]
        children = _children(value, loc, problems)
        stack.extend((child_loc, child, depth + 1) for child_loc, child in reversed(children))
    return [Problem("", f"has more than {MAX_VALUES:,} values")]


# What in a JSON text can spell a character no text may hold: an escape (`\u0000`,
# `\ud800`), DEL, a C1 control or half of a surrogate pair as is (raw C0 controls are
# not JSON). A text with none of them needs no walk of its strings.
_SUSPECT_IN_JSON = re.compile("\\\\u|[\x7f-\x9f\ud800-\udfff]")


def json_problems(text: str, document: object, *, max_depth: int = MAX_DEPTH) -> list[Problem]:
    """`document_problems` of `document`, parsed from the JSON `text`: the same answer,
    but when the text can't hold a refused character (most bodies) only the nesting is
    walked, without naming every value's place — a tenth of the time for a receipt."""
    if _SUSPECT_IN_JSON.search(text) is None and not _deeper_than(document, max_depth):
        return []
    return document_problems(document, max_depth=max_depth)


def _deeper_than(document: object, max_depth: int) -> bool:
    stack: list[tuple[dict[Any, Any] | list[Any], int]] = (
        [(document, 1)] if isinstance(document, (dict, list)) else []
    )
    while stack:
        value, depth = stack.pop()
        if depth > max_depth:
            return True
        children = value.values() if isinstance(value, dict) else value
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def _children(value: object, loc: str, problems: list[Problem]) -> list[tuple[str, object]]:
    if isinstance(value, Mapping):
        for key in value:
            if isinstance(key, str):
                _check_string(key, loc, problems, is_key=True)
        return [(join(loc, str(key)), item) for key, item in value.items()]
    if isinstance(value, list):
        return [(f"{loc}[{index}]", item) for index, item in enumerate(value)]
    return []


def _check_string(value: str, loc: str, problems: list[Problem], *, is_key: bool = False) -> None:
    problem = text_problem(value, max_length=len(value), multiline=True)
    if problem is not None:
        problems.append(Problem(loc, f"the key {value!r}: {problem}" if is_key else problem))


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
        multiline: bool = False,
    ) -> str | None:
        """Text of at most `max_length` characters, not blank, without control characters
        (`multiline`: but tab and line breaks), matching `pattern` when one is given."""
        value = self.raw(key, required=required)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.report(self.at(key), f"{show(value)} is not {what}")
            return None
        problem = text_problem(value, max_length=max_length, multiline=multiline)
        fits = len(value) <= max_length
        if fits and pattern is not None and not pattern.fullmatch(value):  # `$` lets "x\n" in
            problem = f"{show(value)} is not {what}"  # the pattern's words say more
        if problem is not None:
            self.report(self.at(key), problem)
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
        elif minor > MINOR_LIMIT:
            self.report(self.at(key), f"{number} is more than any amount Kopilka keeps "
                                      f"({format_minor(MINOR_LIMIT, digits)} {unit})")  # fmt: skip
            return None
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

    def days(self, key: str) -> tuple[date | None, date | None]:
        """`key: {from, until}` — the first and the last day of a window, both included
        and either open; a window that ends before it starts is named."""
        window = self.mapping(key, ("from", "until"))
        if window is None:
            return None, None
        first, last = window.day("from"), window.day("until")
        if first is not None and last is not None and last < first:
            self.report(self.at(key), f"ends ({last}) before it starts ({first})")
        return first, last

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


_DATE = re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})$")  # ASCII digits only, as numbers


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
