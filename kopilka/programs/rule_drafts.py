"""Drafts of a program's rules and discounts: the console's rules editor and its
calculator (issue 8).

A draft is the document of one stored version (`base`) with its `rules` and `discounts`
lists replaced. Only those two lists come from the editor: every other part of the
document is read again from the stored version on each request, so a draft can't change
partners, tiers or discount limits, whatever the browser sends. A draft is always
validated whole by `parse_program`; publishing applies it with `based_on=base` (another
version published meanwhile is `Conflict`) and writes an audit row.

The draft itself is kept by the browser (the page's hidden `draft` and
`draft_discounts` fields): nothing is stored until it is published, and any worker can
serve the next request.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from kopilka.checkout.calculator import Calculator
from kopilka.checkout.quoting import QuoteRequest, quote_receipt
from kopilka.checkout.wire import JSON, quote_json
from kopilka.kernel.errors import Conflict, InvalidInput, Problem
from kopilka.kernel.program_parser import RULE_KEYS, parse_program
from kopilka.mechanics.discounts.section import DISCOUNT_KEYS
from kopilka.operators.handlers import Operator, record
from kopilka.programs.handlers import (
    AppliedProgram,
    apply_program,
    canonical,
    read_program,
    read_program_version,
    to_json,
)

MAX_RULES = 1000
MAX_DISCOUNTS = 1000
MAX_DRAFT_CHARS = 400_000
_CALCULATORS = 16  # compiled drafts kept per process (most recently used)


class DamagedDraft(ValueError):
    """The draft sent back is not one this editor wrote (cut short, edited by hand)."""


@dataclass(frozen=True)
class Draft:
    program: str
    base: int  # the version the draft started from
    published: JSON  # that version's document, as the draft began
    document: JSON  # the base version's document with the draft's rules and discounts

    @property
    def rules(self) -> list[JSON]:
        rules: list[JSON] = self.document.get("rules") or []
        return rules

    @property
    def discounts(self) -> list[JSON]:
        discounts: list[JSON] = self.document.get("discounts") or []
        return discounts

    @property
    def base_rules(self) -> list[JSON]:
        rules: list[JSON] = self.published.get("rules") or []
        return rules

    @property
    def base_discounts(self) -> list[JSON]:
        discounts: list[JSON] = self.published.get("discounts") or []
        return discounts

    def with_rules(self, rules: list[JSON]) -> Draft:
        return Draft(self.program, self.base, self.published, {**self.document, "rules": rules})

    def with_discounts(self, discounts: list[JSON]) -> Draft:
        document = {**self.document, "discounts": discounts}
        if not discounts and "discounts" not in self.published:
            del document["discounts"]  # no discounts, as the version had none: no change
        return Draft(self.program, self.base, self.published, document)

    def as_published(self) -> Draft:
        """The base version as it is, to compare the draft with."""
        return Draft(self.program, self.base, self.published, self.published)

    def to_field(self) -> str:
        """The draft's rules as the page's hidden `draft` field carries them."""
        return _field(self.rules)

    def discounts_field(self) -> str:
        """The draft's discounts as the page's hidden `draft_discounts` field carries them."""
        return _field(self.discounts)

    def changes(self) -> dict[str, list[str]]:
        """Rule codes added, changed and removed since the base version."""
        return _changes(self.base_rules, self.rules)

    def discount_changes(self) -> dict[str, list[str]]:
        """Discount codes added, changed and removed since the base version."""
        return _changes(self.base_discounts, self.discounts)

    @property
    def is_changed(self) -> bool:
        return any(self.changes().values()) or any(self.discount_changes().values())


def _field(items: list[JSON]) -> str:
    return json.dumps(items, ensure_ascii=False, separators=(",", ":"))


def _changes(before_items: list[JSON], after_items: list[JSON]) -> dict[str, list[str]]:
    before = {_code(item): canonical(item) for item in before_items}
    after = {_code(item): canonical(item) for item in after_items}
    return {
        "added": [code for code in after if code not in before],
        "changed": [code for code in after if code in before and after[code] != before[code]],
        "removed": [code for code in before if code not in after],
    }


def _code(item: Mapping[str, Any]) -> str:
    code = item.get("code") if isinstance(item, Mapping) else None
    return str(code) if code is not None else "?"


def start_draft(engine: Engine, program: str) -> Draft:
    """A draft equal to the program's current version; `NotFound` for no such program."""
    return _draft(program, read_program(engine, program))


def resume_draft(
    engine: Engine, program: str, base: int, rules_field: str, discounts_field: str | None = None
) -> Draft:
    """The draft a page sent back: its rules (and discounts; None: the version's own) on
    the document of version `base`. `NotFound` when the program has no such version;
    `DamagedDraft` when a field is not a list of mappings as this editor writes them."""
    stored = _draft(program, read_program_version(engine, program, base))
    draft = stored.with_rules(rules_from_field(rules_field))
    if discounts_field is None:
        return draft
    return draft.with_discounts(discounts_from_field(discounts_field))


def _draft(program: str, version: Mapping[str, Any]) -> Draft:
    document = version["document"]
    if not isinstance(document, dict):
        document = {}
    document = {**document, "rules": document.get("rules") or []}
    return Draft(program, int(version["version"]), document, document)


def rules_from_field(text: str) -> list[JSON]:
    return _records_from_field(text, "rules", MAX_RULES)


def discounts_from_field(text: str) -> list[JSON]:
    return _records_from_field(text, "discounts", MAX_DISCOUNTS)


def _records_from_field(text: str, what: str, most: int) -> list[JSON]:
    if len(text) > MAX_DRAFT_CHARS:
        raise DamagedDraft(f"the draft's {what} have more than {MAX_DRAFT_CHARS} characters")
    try:
        records = json.loads(text, parse_float=Decimal)
    except (ValueError, RecursionError):
        raise DamagedDraft(f"the draft's {what} are not JSON") from None
    if not isinstance(records, list) or len(records) > most:
        raise DamagedDraft(f"the draft's {what} are not a list of at most {most}")
    if not all(isinstance(record, dict) for record in records):
        raise DamagedDraft(f"the draft's {what} are not all mappings")
    cleaned: list[JSON] = to_json(records)
    return cleaned


def problems_of(draft: Draft) -> list[Problem]:
    """What the program parser says of the draft; empty when it is a valid program."""
    try:
        _calculator(draft.document)
    except InvalidInput as error:
        return list(error.problems)
    return []


def edited(draft: Draft, index: int | None, rule: JSON) -> Draft:
    """The draft with rule `index` replaced by `rule` (None: `rule` added at the end)."""
    return draft.with_rules(_replaced(draft.rules, index, rule, "rule"))


def without(draft: Draft, index: int) -> Draft:
    return draft.with_rules(_removed(draft.rules, index, "rule"))


def edited_discount(draft: Draft, index: int | None, discount: JSON) -> Draft:
    """The draft with discount `index` replaced (None: `discount` added at the end)."""
    return draft.with_discounts(_replaced(draft.discounts, index, discount, "discount"))


def without_discount(draft: Draft, index: int) -> Draft:
    return draft.with_discounts(_removed(draft.discounts, index, "discount"))


def _replaced(items: list[JSON], index: int | None, item: JSON, what: str) -> list[JSON]:
    changed = list(items)
    if index is None:
        changed.append(item)
    elif 0 <= index < len(changed):
        changed[index] = item
    else:
        raise DamagedDraft(f"the draft has no {what} {index}")
    return changed


def _removed(items: list[JSON], index: int, what: str) -> list[JSON]:
    if not 0 <= index < len(items):
        raise DamagedDraft(f"the draft has no {what} {index}")
    return [item for n, item in enumerate(items) if n != index]


def rule_from(fields: Mapping[str, object]) -> JSON:
    """A rule document from the editor's parts, keys in the program file's order and the
    empty ones left out (the parser then says what is missing)."""
    return _record_from(fields, RULE_KEYS)


def discount_from(fields: Mapping[str, object]) -> JSON:
    """A discount document from the editor's parts, as `rule_from` makes a rule."""
    return _record_from(fields, DISCOUNT_KEYS)


def _record_from(fields: Mapping[str, object], keys: tuple[str, ...]) -> JSON:
    record: JSON = {}
    for key in keys:
        value = fields.get(key)
        if value is None or value == "" or value == {}:
            continue
        record[key] = value
    converted: JSON = to_json(record)
    return converted


def publish(engine: Engine, operator: Operator, draft: Draft, now: datetime) -> AppliedProgram:
    """The draft as the program's next version (`Conflict` when another version came
    after `draft.base`), audited as `program.publish` with the rules and discounts it
    changes (`discounts_added`, … beside the rules' `added`, …)."""

    def audit(connection: Connection, applied: AppliedProgram) -> None:
        details: dict[str, Any] = {"version": applied.version, "based_on": draft.base}
        details.update({what: ", ".join(codes) for what, codes in draft.changes().items()
                        if codes})  # fmt: skip
        details.update({f"discounts_{what}": ", ".join(codes)
                        for what, codes in draft.discount_changes().items() if codes})  # fmt: skip
        record(connection, operator, "program.publish", f"program:{applied.code}", details, now)

    try:  # the version and its audit row are written in one transaction
        return apply_program(engine, draft.document, actor=operator.actor, now=now,
                             based_on=draft.base, after=audit)  # fmt: skip
    except IntegrityError:  # another publish took the same next version number at once
        raise Conflict(
            f"program {draft.program} changed meanwhile: another version was "
            f"published from version {draft.base}"
        ) from None


def quote_draft(document: JSON, request: QuoteRequest, now: datetime) -> JSON:
    """The purchase answer for a receipt against a program document (no database):
    `InvalidInput` for a document or receipt with problems, `InsufficientPoints` for a
    redemption beyond what may be redeemed."""
    calculator = _calculator(document)
    result = quote_receipt(calculator, request, now=now)
    return quote_json(result.quote, calculator.program, status="quote", balance=result.balance)


_compiled: OrderedDict[str, Calculator] = OrderedDict()
_compiled_lock = threading.Lock()


def _calculator(document: JSON) -> Calculator:
    """The document compiled, kept for the few drafts most recently used."""
    digest = hashlib.sha256(canonical(document).encode()).hexdigest()
    with _compiled_lock:
        found = _compiled.get(digest)
        if found is not None:
            _compiled.move_to_end(digest)
            return found
    calculator = Calculator(parse_program(document))
    with _compiled_lock:
        _compiled[digest] = calculator
        while len(_compiled) > _CALCULATORS:
            _compiled.popitem(last=False)
    return calculator
