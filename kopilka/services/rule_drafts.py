"""Drafts of a program's rules: the console's rules editor and its calculator (issue 8).

A draft is the document of one stored version (`base`) with its `rules` list replaced.
Only the rules come from the editor: every other part of the document is read again
from the stored version on each request, so a draft can't change partners, tiers or
discounts, whatever the browser sends. A draft is always validated whole by
`parse_program`; publishing applies it with `based_on=base` (another version published
meanwhile is `Conflict`) and writes an audit row.

The draft itself is kept by the browser (the page's hidden `draft` field): nothing is
stored until it is published, and any worker can serve the next request.
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

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from kopilka.domain.calculator import Calculator
from kopilka.domain.errors import Conflict, InvalidInput, Problem
from kopilka.domain.program_parser import RULE_KEYS, parse_program
from kopilka.services.operators import Operator, record
from kopilka.services.programs import (
    AppliedProgram,
    apply_program,
    canonical,
    read_program,
    read_program_version,
    to_json,
)
from kopilka.services.quoting import QuoteRequest, quote_receipt
from kopilka.wire import JSON, quote_json

MAX_RULES = 1000
MAX_DRAFT_CHARS = 400_000
_CALCULATORS = 16  # compiled drafts kept per process (most recently used)


class DamagedDraft(ValueError):
    """The draft sent back is not one this editor wrote (cut short, edited by hand)."""


@dataclass(frozen=True)
class Draft:
    program: str
    base: int  # the version the draft started from
    base_rules: tuple[JSON, ...]  # that version's rules, to say what the draft changes
    document: JSON  # the base version's document with the draft's rules

    @property
    def rules(self) -> list[JSON]:
        rules: list[JSON] = self.document.get("rules") or []
        return rules

    def with_rules(self, rules: list[JSON]) -> Draft:
        return Draft(self.program, self.base, self.base_rules, {**self.document, "rules": rules})

    def to_field(self) -> str:
        """The draft's rules as the page's hidden field carries them."""
        return json.dumps(self.rules, ensure_ascii=False, separators=(",", ":"))

    def changes(self) -> dict[str, list[str]]:
        """Rule codes added, changed and removed since the base version."""
        before = {_code(rule): canonical(rule) for rule in self.base_rules}
        after = {_code(rule): canonical(rule) for rule in self.rules}
        return {
            "added": [code for code in after if code not in before],
            "changed": [code for code in after if code in before and after[code] != before[code]],
            "removed": [code for code in before if code not in after],
        }

    @property
    def is_changed(self) -> bool:
        return any(self.changes().values())


def _code(rule: Mapping[str, Any]) -> str:
    code = rule.get("code") if isinstance(rule, Mapping) else None
    return str(code) if code is not None else "?"


def start_draft(engine: Engine, program: str) -> Draft:
    """A draft equal to the program's current version; `NotFound` for no such program."""
    return _draft(program, read_program(engine, program))


def resume_draft(engine: Engine, program: str, base: int, rules_field: str) -> Draft:
    """The draft a page sent back: its rules on the document of version `base`.
    `NotFound` when the program has no such version; `DamagedDraft` when the rules are
    not a list of mappings as this editor writes them."""
    stored = _draft(program, read_program_version(engine, program, base))
    return stored.with_rules(rules_from_field(rules_field))


def _draft(program: str, version: Mapping[str, Any]) -> Draft:
    document = version["document"]
    if not isinstance(document, dict):
        document = {}
    rules = document.get("rules") or []
    return Draft(program, int(version["version"]), tuple(rules), {**document, "rules": rules})


def rules_from_field(text: str) -> list[JSON]:
    if len(text) > MAX_DRAFT_CHARS:
        raise DamagedDraft(f"the draft has more than {MAX_DRAFT_CHARS} characters")
    try:
        rules = json.loads(text, parse_float=Decimal)
    except (ValueError, RecursionError):
        raise DamagedDraft("the draft is not JSON") from None
    if not isinstance(rules, list) or len(rules) > MAX_RULES:
        raise DamagedDraft(f"the draft is not a list of at most {MAX_RULES} rules")
    if not all(isinstance(rule, dict) for rule in rules):
        raise DamagedDraft("the draft's rules are not all mappings")
    cleaned: list[JSON] = to_json(rules)
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
    rules = list(draft.rules)
    if index is None:
        rules.append(rule)
    elif 0 <= index < len(rules):
        rules[index] = rule
    else:
        raise DamagedDraft(f"the draft has no rule {index}")
    return draft.with_rules(rules)


def without(draft: Draft, index: int) -> Draft:
    rules = list(draft.rules)
    if not 0 <= index < len(rules):
        raise DamagedDraft(f"the draft has no rule {index}")
    del rules[index]
    return draft.with_rules(rules)


def rule_from(fields: Mapping[str, object]) -> JSON:
    """A rule document from the editor's parts, keys in the program file's order and the
    empty ones left out (the parser then says what is missing)."""
    rule: JSON = {}
    for key in RULE_KEYS:
        value = fields.get(key)
        if value is None or value == "" or value == {}:
            continue
        rule[key] = value
    converted: JSON = to_json(rule)
    return converted


def publish(engine: Engine, operator: Operator, draft: Draft, now: datetime) -> AppliedProgram:
    """The draft as the program's next version (`Conflict` when another version came
    after `draft.base`), audited as `program.publish` with the rules it changes."""
    try:
        applied = apply_program(engine, draft.document, actor=operator.actor, now=now,
                                based_on=draft.base)  # fmt: skip
    except IntegrityError:  # another publish took the same next version number at once
        raise Conflict(
            f"program {draft.program} changed meanwhile: another version was "
            f"published from version {draft.base}"
        ) from None
    if applied.created:
        changes = draft.changes()
        details: dict[str, Any] = {"version": applied.version, "based_on": draft.base}
        details.update({what: ", ".join(codes) for what, codes in changes.items() if codes})
        with engine.begin() as connection:
            record(connection, operator, "program.publish", f"program:{applied.code}",
                   details, now)  # fmt: skip
    return applied


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
