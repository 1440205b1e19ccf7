"""docs/program.md, the reference of the program file, is true and complete.

Its fenced YAML blocks are checked against the parser:

- a block whose first line is `# a complete program…` is a whole program file and
  parses without a problem;
- a block whose first line is `# invalid: <fragment>` is refused with a problem whose
  message contains the fragment (and not for a missing `code` or `currency`);
- any other block is a fragment of the café the doc's examples refer to (the complete
  program marked "the examples below refer to"): its top-level keys replace the café's,
  and the result parses.

Every key the parser accepts must be documented: the known-key constants of
program_parser.py and of the tiers' and the triggers' section.py as a heading or a table
entry, and the keys of every other section (asked of the parser itself, through its
"unknown key" message) in that section of the doc. So the reference cannot silently
fall behind the parser.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from kopilka.kernel import program_parser
from kopilka.kernel.errors import InvalidInput
from kopilka.kernel.money import Rounding
from kopilka.kernel.periods import CalendarPeriod
from kopilka.kernel.program import (
    WEEKDAYS,
    AccrueOn,
    ExpiryPeriod,
    Program,
    RuleKind,
    SpentPoints,
)
from kopilka.kernel.program_parser import parse_program
from kopilka.mechanics.tiers import section as tiers_section
from kopilka.mechanics.triggers import section as triggers_section
from kopilka.mechanics.triggers.model import TriggerOccasion
from kopilka.platform.files import parse_text

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "program.md"
TEXT = DOC.read_text(encoding="utf-8")

COMPLETE = "# a complete program"
INVALID = "# invalid:"
BASE = "the examples below refer to"

_FENCE = re.compile(r"^```([\w-]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_SPAN = re.compile(r"`([^`\n]+)`")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HEADING = re.compile(r"^(#{1,6}) (.*)$")
_UNKNOWN = "qqqqqqqq"  # a key no section knows, and close to none (no "did you mean")


def _blocks(language: str) -> list[str]:
    return [match[2] for match in _FENCE.finditer(TEXT) if match[1] == language]


def _first_line(block: str) -> str:
    return block.split("\n", 1)[0].strip()


YAML_BLOCKS = _blocks("yaml")
COMPLETE_BLOCKS = [b for b in YAML_BLOCKS if _first_line(b).startswith(COMPLETE)]
INVALID_BLOCKS = [b for b in YAML_BLOCKS if _first_line(b).startswith(INVALID)]
FRAGMENT_BLOCKS = [b for b in YAML_BLOCKS if b not in COMPLETE_BLOCKS and b not in INVALID_BLOCKS]
PROSE = _FENCE.sub("", TEXT)  # the doc without its code blocks (their '#' lines are not headings)


def _label(block: str) -> str:
    """A short test id: an invalid example's message, else the first line of data."""
    if _first_line(block).startswith(INVALID):
        return _first_line(block)[len(INVALID) :].strip()[:40]
    for line in block.splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            return text[:40]
    return "empty"


def _params(blocks: Sequence[str]) -> list[Any]:
    return [pytest.param(b, id=f"{n}: {_label(b)}") for n, b in enumerate(blocks)]


def _load(text: str) -> object:
    return parse_text(text, name="x.yaml", as_json=False)


def _parse(text: str) -> Program:
    return parse_program(_load(text))


def _problems(error: InvalidInput) -> str:
    return "\n".join(f"  {problem}" for problem in error.problems)


def _parses(document: object, what: str) -> Program:
    try:
        return parse_program(document)
    except InvalidInput as error:
        pytest.fail(f"{what} does not parse:\n{_problems(error)}")


# ---------------------------------------------------------------- the examples


def test_the_doc_has_the_examples_it_promises() -> None:
    assert len(COMPLETE_BLOCKS) >= 3, "at least three complete programs"
    assert len(INVALID_BLOCKS) >= 4, "at least four invalid examples"
    assert len([b for b in COMPLETE_BLOCKS if BASE in _first_line(b)]) == 1, (
        f"exactly one complete program is marked {BASE!r}"
    )
    for block in INVALID_BLOCKS:
        assert _first_line(block)[len(INVALID) :].strip(), "an invalid example names its message"


@pytest.mark.parametrize("block", _params(COMPLETE_BLOCKS))
def test_complete_program_parses(block: str) -> None:
    program = _parses(_load(block), "this complete program")
    assert program.code


@pytest.mark.parametrize("block", _params(INVALID_BLOCKS))
def test_invalid_example_is_refused_with_its_message(block: str) -> None:
    expected = _first_line(block)[len(INVALID) :].strip()
    with pytest.raises(InvalidInput) as caught:
        _parse(block)
    messages = [problem.message for problem in caught.value.problems]
    assert any(expected in message for message in messages), (
        f"no problem says {expected!r}; the parser said:\n{_problems(caught.value)}"
    )
    top_missing = [
        p for p in caught.value.problems if p.message == "is required" and "." not in p.loc
    ]
    assert not top_missing, "an invalid example is a whole program file but for its mistake"


def _base() -> dict[str, Any]:
    (block,) = [b for b in COMPLETE_BLOCKS if BASE in _first_line(b)]
    document = _load(block)
    assert isinstance(document, dict)
    return document


@pytest.mark.parametrize("block", _params(FRAGMENT_BLOCKS))
def test_fragment_fits_the_cafe_it_refers_to(block: str) -> None:
    fragment = _load(block)
    assert isinstance(fragment, Mapping), "a fragment is a mapping of top-level keys"
    unknown = set(fragment) - set(program_parser.program_keys())
    assert not unknown, f"not top-level keys of a program file: {sorted(map(str, unknown))}"
    _parses({**_base(), **fragment}, "the café with this fragment")


@pytest.mark.parametrize("block", _params(_blocks("json")))
def test_json_example_parses(block: str) -> None:
    _parses(parse_text(block, name="x.json", as_json=True), "this JSON program")


# ------------------------------------------------------ every key is documented


def _words(text: str) -> set[str]:
    """The identifiers inside the backtick spans of `text`."""
    return {word for span in _SPAN.findall(text) for word in _WORD.findall(span)}


def _headings_and_first_cells() -> set[str]:
    """Keys named (in backticks) by a heading or by the first cell of a table row."""
    names: set[str] = set()
    for line in PROSE.splitlines():
        if _HEADING.match(line):
            names |= _words(line)
        elif line.startswith("|"):
            names |= _words(line.split("|")[1])
    return names


def _section(heading_key: str) -> str:
    """The prose under the first heading naming `heading_key` (or titled so), down to the
    next heading of the same or a higher level (its sub-sections included)."""
    lines = PROSE.splitlines()
    for start, line in enumerate(lines):
        match = _HEADING.match(line)
        if match and (heading_key in _SPAN.findall(match[2]) or heading_key == match[2]):
            level = len(match[1])
            end = start + 1
            while end < len(lines):
                other = _HEADING.match(lines[end])
                if other and len(other[1]) <= level:
                    break
                end += 1
            return "\n".join(lines[start:end])
    pytest.fail(f"docs/program.md has no heading naming `{heading_key}`")


KNOWN_KEY_CONSTANTS = {
    "program_parser.program_keys()": program_parser.program_keys(),
    "program_parser.RULE_KEYS": program_parser.RULE_KEYS,
    "program_parser.WHEN_KEYS": program_parser.WHEN_KEYS,
    "program_parser.THEN_KEYS": program_parser.THEN_KEYS,
    "tiers_section.TIER_KEYS": tiers_section.TIER_KEYS,
    "tiers_section.LEVEL_KEYS": tiers_section.LEVEL_KEYS,
    "tiers_section.QUALIFY_KEYS": tiers_section.QUALIFY_KEYS,
    "triggers_section.TRIGGER_KEYS": triggers_section.TRIGGER_KEYS,
}


@pytest.mark.parametrize("name", KNOWN_KEY_CONSTANTS)
def test_every_key_constant_is_a_heading_or_table_entry(name: str) -> None:
    missing = [key for key in KNOWN_KEY_CONSTANTS[name] if key not in _headings_and_first_cells()]
    assert not missing, f"{name}: not a heading or table entry of docs/program.md: {missing}"


def test_every_top_level_key_has_a_table_row_of_its_own() -> None:
    """Keys without a section of their own are rows of the program's table; the rest have
    a heading of their own."""
    program_table = _section("timezone")
    headings = {
        word for line in PROSE.splitlines() if _HEADING.match(line) for word in _words(line)
    }
    for key in program_parser.program_keys():
        assert f"| `{key}` |" in program_table or key in headings, key


_X = {_UNKNOWN: 1}
_TRIGGER = {"code": "t", "on": "check_point"}

# Each section of the file that has keys of its own: a document putting an unknown key
# there, and the heading of the doc's section that must name all its keys.
SECTION_PROBES: dict[str, tuple[dict[str, Any], str]] = {
    "(top level)": (_X, "Top-level keys"),
    "points": ({"points": _X}, "points"),
    "accrual": ({"accrual": _X}, "accrual"),
    "redemption": ({"redemption": _X}, "redemption"),
    "refunds": ({"refunds": _X}, "refunds"),
    "expiry": ({"expiry": _X}, "expiry"),
    "partners": ({"partners": [_X]}, "partners"),
    "locations": ({"partners": [{"code": "p", "locations": [_X]}]}, "locations"),
    "catalog": ({"catalog": _X}, "catalog"),
    "categories": ({"catalog": {"categories": [_X]}}, "categories"),
    "products": ({"catalog": {"products": [_X]}}, "products"),
    "rules": ({"rules": [_X]}, "rules"),
    "when": ({"rules": [{"when": _X}]}, "when"),
    "time": ({"rules": [{"when": {"time": _X}}]}, "when"),
    "between": ({"rules": [{"when": {"between": _X}}]}, "when"),
    "receipt_total": ({"rules": [{"when": {"receipt_total": _X}}]}, "when"),
    "then": ({"rules": [{"then": _X}]}, "then"),
    "tiers": ({"tiers": _X}, "tiers"),
    "window": ({"tiers": {"window": _X}}, "tiers"),
    "levels": ({"tiers": {"levels": [_X]}}, "levels"),
    "qualify": ({"tiers": {"levels": [{"code": "a", "qualify": _X}]}}, "qualify"),
    "bought": ({"tiers": {"levels": [{"code": "a", "qualify": {"bought": _X}}]}}, "qualify"),
    "triggers": ({"triggers": [_X]}, "triggers"),
    "min": ({"triggers": [{**_TRIGGER, "min": _X}]}, "triggers"),
    "reward": ({"triggers": [{**_TRIGGER, "reward": _X}]}, "reward"),
}


def _known_keys(document: Mapping[str, Any]) -> list[str]:
    """The keys the parser knows where `document` has its unknown key, from its message."""
    with pytest.raises(InvalidInput) as caught:
        parse_program(document)
    for problem in caught.value.problems:
        prefix = "unknown key; known keys: "
        if problem.loc.endswith(_UNKNOWN) and problem.message.startswith(prefix):
            return problem.message[len(prefix) :].split(", ")
    pytest.fail(f"the parser did not list the known keys:\n{_problems(caught.value)}")


@pytest.mark.parametrize("section", SECTION_PROBES)
def test_every_key_of_every_section_is_documented_there(section: str) -> None:
    document, heading = SECTION_PROBES[section]
    known = _known_keys(document)
    assert known, section
    documented = _words(_section(heading))
    missing = [key for key in known if key not in documented]
    assert not missing, f"{section}: keys the parser accepts, not in the doc's section: {missing}"


def test_the_probes_cover_every_section_of_the_parser() -> None:
    """Each mapping or list of mappings the parsers read has a probe above."""
    read = set()
    for module in (program_parser, tiers_section, triggers_section):
        source = Path(module.__file__ or "").read_text(encoding="utf-8")
        read |= set(re.findall(r"\.(?:mapping|records)\(\s*\"(\w+)\"", source))
    assert read, "the parsers read no sections?"
    assert read <= set(SECTION_PROBES), (
        f"sections without a probe: {sorted(read - set(SECTION_PROBES))}"
    )


def test_the_top_level_probe_agrees_with_the_constant() -> None:
    assert _known_keys(_X) == list(program_parser.program_keys())


ALLOWED_VALUES: dict[str, Sequence[str]] = {
    "points.rounding": [member.value for member in Rounding],
    "accrual.on": [member.value for member in AccrueOn],
    "refunds.spent_points": [member.value for member in SpentPoints],
    "expiry.period": [member.value for member in ExpiryPeriod],
    "rules.kind": [member.value for member in RuleKind],
    "tiers.review": [member.value for member in CalendarPeriod],
    "triggers.on": [member.value for member in TriggerOccasion],
    "when.weekdays": WEEKDAYS,
}


@pytest.mark.parametrize("what", ALLOWED_VALUES)
def test_every_allowed_value_is_documented(what: str) -> None:
    values = ALLOWED_VALUES[what]
    assert all(isinstance(value, str) for value in values)
    missing = [value for value in values if value not in _words(PROSE)]
    assert not missing, f"{what}: values the parser accepts, not in the doc: {missing}"
