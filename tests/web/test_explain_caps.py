"""The console's explanation of a line (a purchase's, the rules calculator's) names the
program's accrual caps that lowered it, in both languages."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kopilka.checkout.calculator import Calculator
from kopilka.checkout.wire import quote_json
from kopilka.demo import program_document
from kopilka.kernel.program_parser import parse_program
from kopilka.kernel.receipt import MemberContext, parse_receipt
from kopilka.platform.console import i18n
from kopilka.platform.console.pages import templates

# the demo café's office lunch on a Monday for a VIP: every line capped twice
OFFICE = {"member": "card:1", "location": "kiosk", "at": "2026-11-23T12:00:00+03:00",
          "lines": [{"sku": "LUNCH-1", "qty": 3}, {"sku": "SOUP-1", "qty": 3}]}  # fmt: skip
WHY = '{% from "_explain.html" import why %}{{ why(entries, "RUB") }}'


def explained(language: str) -> str:
    calculator = Calculator(parse_program(program_document()))
    receipt = parse_receipt(OFFICE, calculator.program, now=datetime.now(UTC))
    quote = calculator.quote(receipt, MemberContext(frozenset({"card:1"}), "vip", balance=0))
    entries = quote_json(quote, calculator.program, status="quote")["lines"][0]["explain"]
    i18n.use_language(language)
    try:
        return templates.from_string(WHY).render(entries=entries)
    finally:
        i18n.use_language(i18n.DEFAULT_LANGUAGE)


@pytest.mark.parametrize(
    ("language", "line_cap", "receipt_cap"),
    [
        ("en", "at most 10% of the line paid", "at most 150.00 points per receipt"),
        ("ru", "не более 10% оплаченного за позицию", "не более 150,00 баллов за чек"),
    ],
)
def test_both_caps_are_explained(language: str, line_cap: str, receipt_cap: str) -> None:
    page = explained(language)
    assert line_cap in page
    assert receipt_cap in page
    assert page.index(line_cap) < page.index(receipt_cap)  # in the order applied
