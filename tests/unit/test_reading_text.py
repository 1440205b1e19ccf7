"""The edge's rules in the domain (issue 15): numbers in ASCII digits only, text without
control characters or surrogate halves, documents at most 32 levels deep."""

from __future__ import annotations

import json
from decimal import Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kopilka.kernel.errors import InvalidInput, Problem
from kopilka.kernel.money import format_minor, parse_decimal
from kopilka.kernel.program_parser import parse_program
from kopilka.kernel.reading import (
    MAX_DEPTH,
    Reader,
    document_problems,
    json_problems,
    parse_date,
    text_problem,
)
from kopilka.platform.files import load_document, parse_text
from tests.conftest import EXAMPLES


@pytest.mark.parametrize("text", ["12", "-12", "+12", "0.50", "007", "123456789012345.5"])
def test_plain_decimal_text_in_ascii_digits_is_a_number(text: str) -> None:
    assert parse_decimal(text) == Decimal(text)


NOT_NUMBERS = ["١٢٣", "１２", "²", "৩", " 12", "12 ", "1e5", "1E5", "NaN", "Infinity", "-inf",
               "1_000", "1.", ".5", "+-1", "1,5", ""]  # fmt: skip


@pytest.mark.parametrize("text", NOT_NUMBERS)
def test_anything_else_written_as_text_is_no_number(text: str) -> None:
    assert parse_decimal(text) is None


def test_numbers_a_parser_made_are_still_numbers() -> None:
    assert parse_decimal(Decimal("1E+5")) == 100000
    assert parse_decimal(7) == 7
    assert parse_decimal(0.1) == Decimal("0.1")
    assert parse_decimal(True) is None


REFUSED = [("a\x00b", "U+0000"), ("\ud800", "U+D800"), ("a\nb", "U+000A"), ("\x85", "U+0085"),
           ("tab\there", "U+0009"), ("\x7f", "U+007F")]  # fmt: skip


@pytest.mark.parametrize(("text", "what"), REFUSED)
def test_one_line_text_holds_no_control_character_nor_half_a_surrogate(
    text: str, what: str
) -> None:
    problem = text_problem(text)
    assert problem is not None
    assert what in problem


def test_multi_line_text_keeps_its_tabs_and_line_breaks_only() -> None:
    assert text_problem("one\r\ntwo\tthree", multiline=True) is None
    assert text_problem("a\x00", multiline=True) is not None
    assert text_problem("Кофе «Зерно» 🙂 \u00a0", multiline=False) is None


def test_a_reader_reports_the_character_and_the_length_at_the_field() -> None:
    problems: list[Problem] = []
    reader = Reader({"name": "a\x00", "reason": "x" * 201}, "", problems, ("name", "reason"))
    assert reader.text("name") is None
    assert reader.text("reason") is None
    assert [p.loc for p in problems] == ["name", "reason"]
    assert "at most 200" in problems[1].message


def nested(levels: int) -> object:
    document: object = "leaf"
    for _ in range(levels):
        document = [document]
    return document


def test_a_document_of_32_levels_is_read_and_one_of_33_is_refused_naming_the_place() -> None:
    assert document_problems(nested(MAX_DEPTH)) == []
    (problem,) = document_problems({"a": nested(MAX_DEPTH)})
    assert problem.loc == "a" + "[0]" * (MAX_DEPTH - 1)
    assert "nested more than 32 levels deep" in problem.message


def test_a_document_walks_without_recursion_however_deep() -> None:
    (problem,) = document_problems(nested(100_000))
    assert "32 levels" in problem.message


def test_keys_and_values_anywhere_are_held_to_the_text_rule() -> None:
    problems = document_problems({"a": [{"ok": "fine"}, {"b\x00": "x", "c": "\udfff"}]})
    assert [p.loc for p in problems] == ["a[1]", "a[1].c"]


def test_a_program_file_too_deep_or_referring_to_itself_is_refused_by_name() -> None:
    with pytest.raises(InvalidInput, match="nested more than 32 levels deep"):
        parse_text("[" * 3000 + "]" * 3000, name="p.yaml", as_json=False)
    with pytest.raises(InvalidInput, match="nested more than 32 levels deep"):
        parse_text("[" * 3000 + "]" * 3000, name="p.json", as_json=True)
    with pytest.raises(InvalidInput, match="32 levels"):
        parse_text("a: &x [1, *x]\n", name="p.yaml", as_json=False)
    with pytest.raises(InvalidInput, match="U\\+0000"):
        parse_text('name: "a\\0b"\n', name="p.yaml", as_json=False)


def test_dates_and_times_are_ascii_digits() -> None:
    assert parse_date("٢٠٢٦-٠٣-٠١") is None
    assert parse_date("2026-03-01") is not None
    document = load_document(EXAMPLES / "zerno" / "program.yaml")
    assert isinstance(document, dict)
    rule = {"code": "late", "kind": "behaviour", "when": {"time": {"from": "١٦:٠٠", "to": "18:00"}},
            "then": {"multiplier": 2}}  # fmt: skip
    with pytest.raises(InvalidInput, match="time"):
        parse_program({**document, "rules": [rule]})


_TEXT = st.text(st.sampled_from('ab\t\n\x00\x1f\x7f\x85\x9f\xa0é\ud800\udfff\\"/u'), max_size=6)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(_JSON, st.integers(min_value=1, max_value=4), st.booleans())
def test_a_json_text_finds_the_problems_its_document_has(
    document: object, max_depth: int, escaped: bool
) -> None:
    """`json_problems` (the body reader's shortcut) says what `document_problems` says,
    for a text with every character escaped and for one with them as they are."""
    text = json.dumps(document, ensure_ascii=escaped)
    parsed = json.loads(text)
    assert json_problems(text, parsed, max_depth=max_depth) == document_problems(
        parsed, max_depth=max_depth
    )


def test_a_json_text_with_nothing_to_refuse_is_not_walked_for_its_places() -> None:
    assert json_problems('{"a": ["x", {"b": "y"}]}', {"a": ["x", {"b": "y"}]}) == []
    assert json_problems('"\\u0000"', "\x00") == document_problems("\x00")
    assert json_problems("[[[1]]]", [[[1]]], max_depth=2) == [
        Problem("[0][0]", "is nested more than 2 levels deep")]  # fmt: skip


@given(st.integers(min_value=-(10**33), max_value=10**33), st.integers(min_value=0, max_value=6))
def test_minor_units_are_written_as_their_decimal_with_every_digit(minor: int, digits: int) -> None:
    with localcontext() as exact:
        exact.prec = 60
        written = format(Decimal(minor).scaleb(-digits), f".{digits}f")
    assert format_minor(minor, digits) == written
