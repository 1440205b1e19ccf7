"""The rules editor and its "try a receipt" calculator (issue 8): `router`, which
`create_app` adds to the app after the console (whose sessions, static files and error
pages these pages use); the engine is the app's (`request.app.state.engine`).

    /console/{program}/rules                 rules and discounts, the calculator  every role
    POST /console/{program}/rules/draft      edit, add or delete a draft's rule   admin, marketer
    POST /console/{program}/rules/discounts  … or a draft's discount              admin, marketer
    POST /console/{program}/rules/quote      the calculator's answer (the draft)  every role
    POST /console/{program}/rules/publish    the draft as the next version        admin, marketer
    /console/{program}/rules/line            one more empty receipt line (htmx)   every role

The draft is kept by the page: hidden `draft` (the rules, as JSON), `draft_discounts`
(the discounts, as JSON) and `base` (the version it started from) go with every form;
the server re-reads the rest of the document from version `base` and validates the
whole with the program parser on every change, so nothing is stored until the draft is
published, any worker can serve the next request, and a changed field can't reach past
the rules and discounts (the discount limits and cards stay as published). Leaving or
reloading the page drops the draft. An edit the parser refuses is not taken into the
draft: its form comes back with what was typed and the parser's messages.

With htmx, a change answers the editor (`#editor`) and, out of band, the calculator's
answer (`#quote`) for the receipt typed in the calculator; without it, the whole page.
Every POST passes the console's origin and CSRF checks.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy import Engine
from starlette.datastructures import FormData

from kopilka.checkout.quoting import QuoteRequest
from kopilka.checkout.wire import JSON
from kopilka.kernel.errors import Conflict, InvalidInput, KopilkaError, NotFound, Problem
from kopilka.mechanics.discounts.section import EFFECT_KEYS, Stacking
from kopilka.operators.handlers import PROGRAM_ROLES, Operator
from kopilka.operators.sessions import CSRF_FIELD, CSRF_HEADER, is_same_origin, is_valid_csrf
from kopilka.platform.console.i18n import gettext_ as _
from kopilka.platform.console.pages import PageError, redirect, refuse_unstorable, render, visit_of
from kopilka.platform.console.routes import operator_of, serve
from kopilka.platform.files import parse_text
from kopilka.platform.requests import now, run
from kopilka.programs import rule_drafts
from kopilka.programs.rule_drafts import DamagedDraft, Draft

EDITORS = ("admin", "marketer")
EVERYONE = PROGRAM_ROLES
KINDS = ("client", "product", "behaviour")
MAX_BODY = 512 * 1024  # the draft rides in every form: a thousand rules still fit
MAX_FIELDS = 400
MAX_TEXT = 5000  # one rule's `when` or `then`, one discount's `when` or effect
MAX_LINES = 50  # receipt lines typed in the calculator
ANY_MEMBER = "member"  # a receipt of some member: accrues, matches no `members` condition
STACKINGS = ("", *(stacking.value for stacking in Stacking))  # "": the parser's default
BASE = "/console/{program}/rules"

router = APIRouter()


def _engine_of(request: Request) -> Engine:
    """The engine the app serves (`create_app` keeps it in the app's state)."""
    engine: Engine = request.app.state.engine
    return engine


@router.get(BASE, include_in_schema=False)
async def rules_page(request: Request, program: str) -> Response:
    engine = _engine_of(request)
    operator = await operator_of(request, engine, program, EVERYONE)
    draft = await serve(engine, rule_drafts.start_draft, engine, program)
    published = request.query_params.get("published", "")
    notice = (
        _("Version %(version)s is published.") % {"version": published}
        if published.isdigit() else ""
    )  # fmt: skip
    receipt = ReceiptForm.default(draft, now())
    return await _page(request, operator, draft, receipt, notice=notice)


@router.get(BASE + "/line", include_in_schema=False)
async def receipt_line(request: Request, program: str) -> Response:
    engine = _engine_of(request)
    await operator_of(request, engine, program, EVERYONE)
    return render(request, "rules_line.html", line=("", "", ""))


@router.post(BASE + "/quote", include_in_schema=False)
async def quote(request: Request, program: str) -> Response:
    engine = _engine_of(request)
    operator = await operator_of(request, engine, program, EVERYONE)
    form = await _form(request)
    draft = await _draft_of(engine, program, form, required=False)
    receipt = ReceiptForm.from_form(form)
    if not _is_htmx(request):
        return await _page(request, operator, draft, receipt)
    answer = await _quote(draft, receipt)
    return render(request, "rules_quote.html", quote=answer, currency=_currency(draft),
                  base=draft.base)  # fmt: skip


@router.post(BASE + "/draft", include_in_schema=False)
async def change_rule(request: Request, program: str) -> Response:
    return await _change(request, _engine_of(request), program, RULES)


@router.post(BASE + "/discounts", include_in_schema=False)
async def change_discount(request: Request, program: str) -> Response:
    return await _change(request, _engine_of(request), program, DISCOUNTS)


@router.post(BASE + "/publish", include_in_schema=False)
async def publish(request: Request, program: str) -> Response:
    engine = _engine_of(request)
    operator = await operator_of(request, engine, program, EDITORS)
    form = await _form(request)
    draft = await _draft_of(engine, program, form)
    receipt = ReceiptForm.from_form(form)
    try:
        applied = await run(engine, rule_drafts.publish, engine, operator, draft, now())
    except InvalidInput as error:
        return await _answer(request, operator, draft, receipt, status=422,
                             problems=[str(p) for p in error.problems])  # fmt: skip
    except Conflict:
        current = await serve(engine, rule_drafts.start_draft, engine, program)
        message = _(
            "Version %(current)s was published while you edited a draft of version "
            "%(base)s, so nothing was published. Your draft is still here: note your "
            "changes, open the rules again to start from version %(current)s, and make "
            "them there."
        ) % {"current": current.base, "base": draft.base}
        return await _answer(request, operator, draft, receipt, status=409,
                             problems=[message], conflict=True)  # fmt: skip
    if not applied.created:
        return await _answer(request, operator, draft, receipt, notice=_(
            "Nothing to publish: the draft equals version %(version)s."
        ) % {"version": applied.version})  # fmt: skip
    if not _is_htmx(request):
        return redirect(request, f"/console/{program}/rules?published={applied.version}")
    fresh = await serve(engine, rule_drafts.start_draft, engine, program)
    return await _answer(request, operator, fresh, receipt, notice=_(
        "Version %(version)s is published."
    ) % {"version": applied.version})  # fmt: skip


@dataclass(frozen=True)
class _Part:
    """A list of the draft the editor changes item by item: the rules or the discounts."""

    key: str  # the document's key, and how the parser's messages name an item
    read: Callable[[FormData], tuple[JSON, dict[str, str], list[Problem]]]
    edited: Callable[[Draft, int | None, JSON], Draft]
    without: Callable[[Draft, int], Draft]
    saved: Callable[[str], str]  # the notice after saving the item with this code
    removed: Callable[[str], str]

    def items(self, draft: Draft) -> list[JSON]:
        return draft.discounts if self.key == "discounts" else draft.rules


async def _change(request: Request, engine: Engine, program: str, part: _Part) -> Response:
    """Edit (`action=save`, `index`), add (`add`) or delete (`delete`, `index`) an item
    of the draft; a change the parser refuses comes back in its form (422)."""
    operator = await operator_of(request, engine, program, EDITORS)
    form = await _form(request)
    draft = await _draft_of(engine, program, form)
    receipt = ReceiptForm.from_form(form)
    action = _text(form, "action")
    items = part.items(draft)
    try:
        if action == "delete":
            gone = _required(_index(form))
            smaller = part.without(draft, gone)
            notice = part.removed(str(items[gone].get("code", "")))
            return await _answer(request, operator, smaller, receipt, notice=notice)
        if action not in ("save", "add"):
            raise PageError(400, "Unknown action.")
        index = _required(_index(form)) if action == "save" else None  # save: never an add
        item, typed, problems = part.read(form)
        changed = part.edited(draft, index, item)
    except DamagedDraft:
        raise PageError(400, _DAMAGED) from None
    problems = problems or await run_in_threadpool(rule_drafts.problems_of, changed)
    if problems:
        position = len(items) if index is None else index
        failed = _Failed(part.key, "new" if index is None else index, typed,
                         _problems_for(problems, part.key, position))  # fmt: skip
        return await _answer(request, operator, draft, receipt, status=422, failed=failed)
    return await _answer(request, operator, changed, receipt,
                         notice=part.saved(str(item.get("code", ""))),
                         opened=(part.key, index))  # fmt: skip


_DAMAGED = "The draft could not be read back: open the rules again (its changes are lost)."


def _is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def _required(index: int | None) -> int:
    if index is None:
        raise DamagedDraft("no rule index")
    return index


# — reading the forms —


async def _form(request: Request) -> FormData:
    """The POSTed form after the console's origin and CSRF checks (as
    `kopilka.platform.console.routes.form_of`, but with room for the draft and the
    receipt's lines)."""
    if not is_same_origin(request):
        raise PageError(403, "The request came from another site.")
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_BODY:
        raise PageError(413, "The form is too large.")
    if len(await request.body()) > MAX_BODY:
        raise PageError(413, "The form is too large.")
    form = await request.form(max_files=0, max_fields=MAX_FIELDS)
    sent = _text(form, CSRF_FIELD) or request.headers.get(CSRF_HEADER)
    if not is_valid_csrf(visit_of(request).session, sent):
        raise PageError(403, "The form has expired: reload the page and try again.")
    refuse_unstorable(form.multi_items())
    return form


def _text(form: FormData, key: str, limit: int = MAX_TEXT) -> str:
    value = form.get(key)
    return value[:limit] if isinstance(value, str) else ""


def _index(form: FormData) -> int | None:
    raw = _text(form, "index", 10)
    return int(raw) if raw.isascii() and raw.isdigit() else None


async def _draft_of(engine: Engine, program: str, form: FormData, *, required: bool = True
                    ) -> Draft:  # fmt: skip
    """The draft the form carries; without one (a reader's calculator, a form posted
    without htmx) the current version, when `required` is False."""
    base, rules = _text(form, "base", 12), form.get("draft")
    discounts = form.get("draft_discounts")  # a page from before discounts were edited: none
    if not isinstance(rules, str) or not (base.isascii() and base.isdigit()):
        if required:
            raise PageError(400, _DAMAGED)
        return await serve(engine, rule_drafts.start_draft, engine, program)
    try:
        return await run(engine, rule_drafts.resume_draft, engine, program, int(base), rules,
                         discounts if isinstance(discounts, str) else None)  # fmt: skip
    except NotFound:
        raise PageError(404, _DAMAGED) from None
    except DamagedDraft:
        raise PageError(400, _DAMAGED) from None


_ANCHOR = re.compile(r"(?:^|[\s\[\]{},:-])[&*][^\s\[\]{},]")


def _rule_of(form: FormData) -> tuple[JSON, dict[str, str], list[Problem]]:
    """The rule a form describes, what was typed, and the problems of reading its YAML."""
    typed = {key: _text(form, key) for key in ("code", "name", "kind", "priority", "when", "then")}
    parts: dict[str, object] = {
        "code": typed["code"].strip(), "name": typed["name"].strip(),
        "kind": typed["kind"].strip(),
    }  # fmt: skip
    problems = _read_yaml(form, typed, ("priority", "when", "then"), parts)
    return rule_drafts.rule_from(parts), typed, problems


_DISCOUNT_FIELDS = ("code", "name", "effect_kind", "effect_value", "when", "stacking", "priority",
                    "max_amount", "earn_points")  # fmt: skip


def _discount_of(form: FormData) -> tuple[JSON, dict[str, str], list[Problem]]:
    """The discount a form describes, what was typed, and the problems of reading it: the
    effect is chosen from a list and its value typed in YAML beside it (`10` for
    percent, `{buy: 2, get: 1}` for buy_get, …)."""
    typed = {key: _text(form, key) for key in _DISCOUNT_FIELDS}
    parts: dict[str, object] = {
        "code": typed["code"].strip(), "name": typed["name"].strip(),
        "stacking": typed["stacking"].strip(), "earn_points": typed["earn_points"] == "1" or None,
    }  # fmt: skip
    problems = _read_yaml(form, typed, ("when", "priority", "max_amount"), parts)
    effect = typed["effect_kind"].strip()
    if effect not in EFFECT_KEYS:
        problems.append(Problem("effect", f"{effect!r} is not one of {'|'.join(EFFECT_KEYS)}"))
        return rule_drafts.discount_from(parts), typed, problems
    values: dict[str, object] = {}
    problems += _read_yaml(form, typed, ("effect_value",), values, name=effect)
    parts[effect] = values.get("effect_value")
    return rule_drafts.discount_from(parts), typed, problems


_ANCHOR = re.compile(r"(?:^|[\s\[\]{},:-])[&*][^\s\[\]{},]")


def _read_yaml(
    form: FormData, typed: dict[str, str], keys: tuple[str, ...], into: dict[str, object],
    name: str | None = None,
) -> list[Problem]:  # fmt: skip
    """Read each of `keys` typed in YAML into `into` (an empty one left out); the problems
    name the field (or `name`, the key it becomes in the program file)."""
    problems: list[Problem] = []
    for key in keys:
        text, where = typed[key], name or key
        if len(_text(form, key, MAX_TEXT + 1)) > MAX_TEXT:
            problems.append(Problem(where, f"is longer than {MAX_TEXT} characters"))
        elif _ANCHOR.search(text):  # `&a [*a]` refers to itself; nested aliases explode
            problems.append(Problem(where, "YAML anchors and aliases (&name, *name) are not "
                                           "accepted here: write each value out"))  # fmt: skip
        elif text.strip():
            try:
                into[key] = parse_text(text, name=where, as_json=False)
            except InvalidInput as error:
                problems.extend(error.problems)
    return problems


@dataclass
class _Failed:
    """A form the parser refused: which part and item, what was typed, what is wrong."""

    part: str  # "rules" or "discounts"
    index: int | str  # "new": the form that adds one
    typed: dict[str, str]
    problems: list[str]


def _problems_for(problems: list[Problem], part: str, index: int) -> list[str]:
    """The messages for the form of item `index` of `part`: its own without the
    `rules[n] (code).` prefix, any other as the parser wrote it."""
    own = re.compile(rf"^{part}\[{index}\](?: \([^)]*\))?\.?")
    shown = []
    for problem in problems:
        found = own.match(problem.loc)
        shown.append(str(Problem(problem.loc[found.end() :], problem.message)) if found
                     else str(problem))  # fmt: skip
    return shown


RULES = _Part(
    "rules", _rule_of, rule_drafts.edited, rule_drafts.without,
    saved=lambda code: _("Rule %(code)s is saved in the draft: publish it to apply it.")
    % {"code": code},
    removed=lambda code: _("Rule %(code)s is removed from the draft.") % {"code": code},
)  # fmt: skip
DISCOUNTS = _Part(
    "discounts", _discount_of, rule_drafts.edited_discount, rule_drafts.without_discount,
    saved=lambda code: _("Discount %(code)s is saved in the draft: publish it to apply it.")
    % {"code": code},
    removed=lambda code: _("Discount %(code)s is removed from the draft.") % {"code": code},
)  # fmt: skip


@dataclass
class ReceiptForm:
    """The calculator's receipt as typed: every field a string."""

    location: str = ""
    at: str = ""
    member: str = ""
    anonymous: bool = False
    tier: str = ""
    segments: str = ""
    balance: str = ""
    redeem: str = ""
    lines: list[tuple[str, str, str]] = field(default_factory=list)  # sku, qty, price

    @staticmethod
    def default(draft: Draft, moment: datetime) -> ReceiptForm:
        locations = _locations(draft.document)
        zone = locations[0][2] if locations else str(draft.document.get("timezone") or "UTC")
        products = _products(draft.document)
        first = [(products[0][0], "1", "")] if products else []
        return ReceiptForm(
            location=locations[0][0] if locations else "",
            at=moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M"),
            lines=[*first, *[("", "", "")] * (3 - len(first))],
        )

    @staticmethod
    def from_form(form: FormData) -> ReceiptForm:
        columns = [
            [value[:200] for value in form.getlist(name) if isinstance(value, str)]
            for name in ("line_sku", "line_qty", "line_price")
        ]
        lines = [
            (sku, qty, price) for sku, qty, price in itertools.zip_longest(*columns, fillvalue="")
        ][:MAX_LINES]
        return ReceiptForm(
            location=_text(form, "receipt_location", 64), at=_text(form, "receipt_at", 40),
            member=_text(form, "receipt_member", 200),
            anonymous=_text(form, "receipt_anonymous", 5) == "1",
            tier=_text(form, "receipt_tier", 64), segments=_text(form, "receipt_segments", 500),
            balance=_text(form, "receipt_balance", 40), redeem=_text(form, "receipt_redeem", 40),
            lines=lines or [("", "", "")],
        )  # fmt: skip

    def is_empty(self) -> bool:
        return not any(sku.strip() for sku, _, _ in self.lines)

    def request(self) -> QuoteRequest:
        lines: list[dict[str, str]] = []
        for sku, qty, price in self.lines:
            if not sku.strip():
                continue
            line = {"sku": sku.strip(), "qty": _number(qty) or "1"}
            if price.strip():
                line["price"] = _number(price)
            lines.append(line)
        body: dict[str, Any] = {"lines": lines}
        if self.location.strip():
            body["location"] = self.location.strip()
        if self.at.strip():
            body["at"] = self.at.strip()
        if self.redeem.strip():
            redeem = self.redeem.strip()
            body["redeem"] = "max" if redeem.lower() == "max" else _number(redeem)
        if not self.anonymous:
            body["member"] = self.member.strip() or ANY_MEMBER
        segments = frozenset(s for s in re.split(r"[,\s]+", self.segments) if s)
        return QuoteRequest(body, tier=self.tier.strip() or None, segments=segments,
                            balance=_number(self.balance) or None)  # fmt: skip


def _number(text: str) -> str:
    """A number as a person may type it: spaces between thousands, a decimal comma."""
    return text.strip().replace(" ", "").replace("\u00a0", "").replace(",", ".")


# — answering —


@dataclass
class QuoteView:
    answer: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)
    published: dict[str, Any] | None = None  # the same receipt with the base version


async def _quote(draft: Draft, receipt: ReceiptForm) -> QuoteView:
    if receipt.is_empty():
        return QuoteView()
    moment = now()
    try:
        request = receipt.request()
        answer = await run_in_threadpool(rule_drafts.quote_draft, draft.document, request, moment)
    except InvalidInput as error:
        return QuoteView(problems=[str(p) for p in error.problems])
    except KopilkaError as error:  # more points asked than may be redeemed, …
        return QuoteView(problems=[error.detail])
    published = None
    if draft.is_changed:
        document = draft.as_published().document
        try:
            published = await run_in_threadpool(rule_drafts.quote_draft, document, request,
                                                moment)  # fmt: skip
        except KopilkaError:
            published = None  # the published rules refuse this receipt: nothing to compare
    return QuoteView(answer, published=published)


async def _answer(request: Request, operator: Operator, draft: Draft, receipt: ReceiptForm,
                  status: int = 200, **context: Any) -> Response:  # fmt: skip
    """After a change: the editor and the calculator's answer (htmx), or the page."""
    if not _is_htmx(request):
        return await _page(request, operator, draft, receipt, status, **context)
    # htmx swaps only 2xx answers; a refused change says so inside the editor
    return render(request, "rules_update.html",
                  **_editor_context(operator, draft, **context),
                  quote=await _quote(draft, receipt), receipt=receipt)  # fmt: skip


async def _page(request: Request, operator: Operator, draft: Draft, receipt: ReceiptForm,
                status: int = 200, **context: Any) -> Response:  # fmt: skip
    document = draft.document
    return render(
        request, "rules.html", status, **_editor_context(operator, draft, **context),
        quote=await _quote(draft, receipt), receipt=receipt,
        locations=_locations(document), products=_products(document), tiers=_tiers(document),
    )  # fmt: skip


def _editor_context(
    operator: Operator, draft: Draft, *, notice: str = "", problems: list[str] | None = None,
    failed: _Failed | None = None, opened: tuple[str, int | None] | None = None,
    conflict: bool = False,
) -> dict[str, Any]:  # fmt: skip
    changes, discount_changes = draft.changes(), draft.discount_changes()
    touched = {*changes["added"], *changes["changed"]}
    touched_discounts = {*discount_changes["added"], *discount_changes["changed"]}
    return {
        "operator": operator, "program": operator.program, "draft": draft,
        "draft_field": draft.to_field(), "discounts_field": draft.discounts_field(),
        "changes": changes, "discount_changes": discount_changes, "is_changed": draft.is_changed,
        "rows": [_row(n, rule, touched) for n, rule in enumerate(draft.rules)],
        "discounts": [_discount_row(n, item, touched_discounts)
                      for n, item in enumerate(draft.discounts)],
        "limits": _limits(draft.document), "kinds": KINDS, "effects": EFFECT_KEYS,
        "stackings": STACKINGS, "can_edit": operator.role in EDITORS, "notice": notice,
        "problems": problems or [], "failed": failed, "opened": opened or ("", None),
        "conflict": conflict, "currency": _currency(draft), "base": draft.base,
    }  # fmt: skip


def _row(index: int, rule: dict[str, Any], touched: set[str]) -> dict[str, Any]:
    priority = rule.get("priority")
    return {
        "index": index,
        "code": str(rule.get("code", "")),
        "name": str(rule.get("name", "") or ""),
        "kind": str(rule.get("kind", "")),
        "priority": "" if priority is None else str(priority),
        "when": yaml_text(rule.get("when")),
        "then": yaml_text(rule.get("then")),
        "changed": rule.get("code") in touched,
    }


def _discount_row(index: int, item: dict[str, Any], touched: set[str]) -> dict[str, Any]:
    """A discount as its row shows it and its form edits it (every field a string)."""
    effect = next((key for key in EFFECT_KEYS if key in item), EFFECT_KEYS[0])
    return {
        **_discount_view(item), "index": index, "changed": item.get("code") in touched,
        "effect_kind": effect, "effect_value": yaml_text(item.get(effect)),
        "max_amount": yaml_text(item.get("max_amount")),
        "earn_points": "1" if item.get("earn_points") is True else "",
    }  # fmt: skip


def _limits(document: dict[str, Any]) -> dict[str, str] | None:
    """The program's discount limits (read-only here), when it sets any."""
    limits = document.get("discount_limits")
    if not isinstance(limits, dict):
        return None
    return {key: str(limits.get(key, "100")) for key in ("receipt_percent", "line_percent")}


def _currency(draft: Draft) -> str:
    return str(draft.document.get("currency") or "")


def _locations(document: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(code, name, time zone) of every location."""
    found = []
    zone = str(document.get("timezone") or "UTC")
    for partner in document.get("partners") or []:
        for place in partner.get("locations") or []:
            code = str(place.get("code", ""))
            found.append((code, str(place.get("name") or code), str(place.get("timezone") or zone)))
    return found


def _products(document: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(sku, name, price) of every product of the catalog."""
    catalog = document.get("catalog") or {}
    return [
        (str(p.get("sku", "")), str(p.get("name") or ""), str(p.get("price") or ""))
        for p in catalog.get("products") or []
    ]


def _tiers(document: dict[str, Any]) -> list[tuple[str, str]]:
    tiers = document.get("tiers") or {}
    return [(str(t.get("code", "")), str(t.get("name") or t.get("code", "")))
            for t in tiers.get("levels") or []]  # fmt: skip


def discount_rows(document: dict[str, Any]) -> list[dict[str, str]]:
    """The document's discounts as `_discounts.html`'s `discount_table` shows them."""
    return [_discount_view(item) for item in document.get("discounts") or []]


def _discount_view(item: dict[str, Any]) -> dict[str, str]:
    effects = [f"{key}: {_flow(item[key])}" for key in EFFECT_KEYS if key in item]
    extras = [f"{key}: {_flow(item[key])}" for key in ("max_amount", "earn_points") if key in item]
    return {
        "code": str(item.get("code", "")), "name": str(item.get("name") or ""),
        "when": yaml_text(item.get("when")), "effect": "; ".join(effects),
        "extras": "; ".join(extras), "stacking": str(item.get("stacking") or ""),
        "priority": "" if item.get("priority") is None else str(item["priority"]),
    }  # fmt: skip


# — YAML as a person reads it —

_PLAIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:+/@-]*$")


def yaml_text(value: object) -> str:
    """A rule's `when` or `then` as YAML a marketer edits: one key a line, the values in
    flow style (`time: {from: 16:00, to: 18:00}`); reads back as the same value."""
    if value is None:
        return ""
    if isinstance(value, dict):
        return "\n".join(f"{_scalar(str(key))}: {_flow(item)}" for key, item in value.items())
    if isinstance(value, list) and value:  # a discount's accumulative bands: one a line
        return "\n".join(f"- {_flow(item)}" for item in value)
    return _flow(value)


def _flow(value: object) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_scalar(str(k))}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(item) for item in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    return _scalar(str(value))


def _scalar(text: str) -> str:
    """A string plain when YAML reads it back as that string, or as the decimal number it
    spells (`180.00`: the document keeps decimals as such strings), else double-quoted."""
    if _PLAIN.match(text):
        try:
            read = parse_text(text, name="", as_json=False)
        except InvalidInput:
            read = None
        if read == text or (isinstance(read, Decimal) and str(read) == text):
            return text
    return json.dumps(text, ensure_ascii=False)
