"""The coupon campaigns' console pages (issue 8), the coupons mechanic's `pages`: the
console mounts them (`kopilka.platform.console.routes.register`) and finds their
templates in this package's `templates/` folder.

    /console/{program}/coupons                        campaigns, discounts       every role
    /console/{program}/coupons/new                    a new campaign's form      admin, marketer
    POST /console/{program}/coupons                   create a campaign          admin, marketer
    /console/{program}/coupons/{campaign}             a campaign, its batches    every role
    /console/{program}/coupons/{campaign}/edit        a campaign's edit form     admin, marketer
    POST /console/{program}/coupons/{campaign}        change the campaign        admin, marketer
    POST /console/{program}/coupons/{campaign}/batches  generate codes           admin, marketer
    /console/{program}/coupons/{campaign}/codes.csv   export the codes           admin

A campaign is made and changed with a form of plain fields (no JSON to type), read into
the campaign document of docs/coupons.md; what the service refuses comes back as the
form, as typed, with each problem beside its field. A code is a bearer secret: only an
admin exports them, the export is audited and not cached. Every change is audited. The
engine is the app's (`request.app.state.engine`).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import Engine

from kopilka.kernel.errors import Conflict, Duplicate, InvalidInput, KopilkaError, NotFound, Problem
from kopilka.mechanics.coupons import console as console_coupons
from kopilka.mechanics.coupons import handlers as coupons
from kopilka.mechanics.coupons.model import CONDITION_KEYS, EFFECT_KINDS, LIMIT_KEYS
from kopilka.operators import handlers as operators
from kopilka.operators.handlers import Operator
from kopilka.platform.console.pages import redirect, render
from kopilka.platform.console.routes import EVERYONE, form_of, operator_of, serve
from kopilka.platform.requests import now, run
from kopilka.programs import handlers as programs
from kopilka.programs.rules_pages import discount_rows

GENERATORS = ("admin", "marketer")
EDITORS = ("admin", "marketer")  # who creates and changes campaigns
NEW = "new"  # /coupons/new is the form of a new campaign, not a campaign's page
ADMIN = ("admin",)
EXPORT_PAGE = 10_000  # codes read per query while the CSV streams
BASE = "/console/{program}/coupons"

router = APIRouter()


def _engine_of(request: Request) -> Engine:
    """The engine the app serves (`create_app` keeps it in the app's state)."""
    engine: Engine = request.app.state.engine
    return engine


def _problems(error: KopilkaError) -> list[str]:
    return [str(p) for p in getattr(error, "problems", ())] or [error.detail]


@router.get(BASE, include_in_schema=False)
async def campaigns(request: Request, program: str) -> Response:
    engine = _engine_of(request)
    operator = await operator_of(request, engine, program, EVERYONE)
    listed = await serve(engine, coupons.list_campaigns, engine, program, now=now())
    current = await serve(engine, programs.read_program, engine, program)
    return render(request, "coupons.html", operator=operator, program=program,
                  campaigns=listed["items"], can_create=operator.role in EDITORS,
                  discounts=discount_rows(current["document"]))  # fmt: skip


@router.get(f"{BASE}/{NEW}", include_in_schema=False)
async def new_campaign_form(request: Request, program: str) -> Response:
    engine = _engine_of(request)
    operator = await operator_of(request, engine, program, EDITORS)
    fresh = CampaignForm.typed({"kind": "unique", "effect.kind": "percent"})
    return await _form_page(request, engine, operator, fresh)


@router.post(BASE, include_in_schema=False)
async def create_campaign(request: Request, program: str) -> Response:
    engine = _engine_of(request)
    operator = await operator_of(request, engine, program, EDITORS)
    form = CampaignForm.typed(await form_of(request, MAX_FIELDS))
    document, unread = campaign_document(form)
    if form.values["code"] == NEW:  # its page's address would be this form's
        unread.append(Problem("code", f"{NEW!r} names the new campaign form: choose another"))
    if unread:
        return await _form_page(request, engine, operator, form.refused(unread), 422)
    try:
        made = await serve(engine, console_coupons.create_campaign, engine, operator,
                           new_campaign(document), now())  # fmt: skip
    except InvalidInput as error:
        return await _form_page(request, engine, operator, form.refused(error.problems),
                                422)  # fmt: skip
    except Duplicate as error:
        taken = await _taken_field(engine, program, form.values["code"])
        return await _form_page(request, engine, operator,
                                form.refused([Problem(taken, error.detail)]), 409)  # fmt: skip
    return redirect(request, f"/console/{program}/coupons/{made['code']}?saved=created")


@router.get(BASE + "/{campaign}/edit", include_in_schema=False)
async def edit_campaign_form(request: Request, program: str, campaign: str) -> Response:
    engine = _engine_of(request)
    operator = await operator_of(request, engine, program, EDITORS)
    found = await serve(engine, coupons.read_campaign_of, engine, program, campaign, now=now())
    facts = await serve(engine, operators.program_facts, engine, program)
    return await _form_page(request, engine, operator, stored_form(found, facts.timezone),
                            campaign=found)  # fmt: skip


@router.post(BASE + "/{campaign}", include_in_schema=False)
async def update_campaign(request: Request, program: str, campaign: str) -> Response:
    engine = _engine_of(request)
    operator = await operator_of(request, engine, program, EDITORS)
    fields = await form_of(request, MAX_FIELDS)
    found = await serve(engine, coupons.read_campaign_of, engine, program, campaign, now=now())
    # the identity is shown as stored, whatever a crafted form says of it
    form = CampaignForm.typed({**fields, **{key: found.get(key) or ""
                                            for key in FIXED_FIELDS}})  # fmt: skip
    document, unread = campaign_document(form)
    try:
        if unread:
            raise InvalidInput(unread)
        await serve(engine, console_coupons.update_campaign, engine, operator, campaign,
                    campaign_change(document), now())  # fmt: skip
    except InvalidInput as error:
        return await _form_page(request, engine, operator, form.refused(error.problems),
                                422, campaign=found)  # fmt: skip
    except KopilkaError as error:  # a campaign the program's units no longer read
        return await _form_page(request, engine, operator,
                                form.refused([Problem("", error.detail)]), 409,
                                campaign=found)  # fmt: skip
    return redirect(request, f"/console/{program}/coupons/{campaign}?saved=updated")


@router.get(BASE + "/{campaign}", include_in_schema=False)
async def campaign(request: Request, program: str, campaign: str) -> Response:
    engine = _engine_of(request)
    operator = await operator_of(request, engine, program, EVERYONE)
    return await _campaign_page(request, engine, operator, campaign)


@router.post(BASE + "/{campaign}/batches", include_in_schema=False)
async def batch(request: Request, program: str, campaign: str) -> Response:
    engine = _engine_of(request)
    operator = await operator_of(request, engine, program, GENERATORS)
    fields = await form_of(request)
    count = fields.get("count", "").strip()
    try:
        made = await serve(engine, operators.generate_batch, engine, operator, campaign,
                           count, now())  # fmt: skip
    except InvalidInput as error:
        return await _campaign_page(request, engine, operator, campaign, 422,
                                    problems=_problems(error), count=count)  # fmt: skip
    except Conflict as error:  # a campaign with one public code
        return await _campaign_page(request, engine, operator, campaign, 409,
                                    problems=_problems(error), count=count)  # fmt: skip
    return redirect(request, f"/console/{program}/coupons/{campaign}?made={made['count']}")


@router.get(BASE + "/{campaign}/codes.csv", include_in_schema=False)
async def export(request: Request, program: str, campaign: str) -> Response:
    engine = _engine_of(request)
    operator = await operator_of(request, engine, program, ADMIN)
    first = await serve(engine, coupons.code_page, engine, program, campaign,
                        limit=EXPORT_PAGE)  # fmt: skip
    await run(engine, operators.note_export, engine, operator, campaign, now())
    return StreamingResponse(
        _csv_lines(engine, program, campaign, first), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{campaign}-codes.csv"',
                 "Cache-Control": "no-store"},
    )  # fmt: skip


async def _csv_lines(
    engine: Engine, program: str, campaign: str, page: dict[str, Any]
) -> AsyncIterator[str]:
    """The campaign's codes as CSV, a page of codes at a time (a batch may be a million)."""
    yield coupons.csv_text(page["items"], header=True)
    while page["next"] is not None:
        page = await run(engine, coupons.code_page, engine, program, campaign,
                         after=int(page["next"]), limit=EXPORT_PAGE)  # fmt: skip
        yield coupons.csv_text(page["items"], header=False)


async def _campaign_page(
    request: Request, engine: Engine, operator: Operator, campaign: str, status: int = 200,
    **form: Any,
) -> Response:  # fmt: skip
    program = operator.program
    found = await serve(engine, coupons.read_campaign_of, engine, program, campaign, now=now())
    batches = await serve(engine, coupons.list_batches, engine, program, campaign)
    facts = await serve(engine, operators.program_facts, engine, program)
    made = request.query_params.get("made", "")
    saved = request.query_params.get("saved", "")
    return render(request, "campaign.html", status, operator=operator, program=program,
                  campaign=found, batches=batches["items"], facts=facts,
                  can_edit=operator.role in EDITORS,
                  saved=saved if saved in ("created", "updated") else "",
                  can_generate=operator.role in GENERATORS and found["kind"] == "unique",
                  can_export=operator.role in ADMIN and found["kind"] == "unique",
                  made=made if made.isdigit() else "", problems=form.get("problems", []),
                  count=form.get("count", ""))  # fmt: skip


async def _taken_field(engine: Engine, program: str, code: str) -> str:
    """Which code of a new campaign is taken: its own code, or else its public code."""
    try:
        await run(engine, coupons.read_campaign_of, engine, program, code, now=now())
    except NotFound:
        return "public_code"
    return "code"


async def _form_page(
    request: Request, engine: Engine, operator: Operator, form: CampaignForm,
    status: int = 200, campaign: dict[str, Any] | None = None,
) -> Response:  # fmt: skip
    """The campaign form: a new campaign's (`campaign` None) or the campaign's edit."""
    facts = await serve(engine, operators.program_facts, engine, operator.program)
    return render(request, "campaign_form.html", status, operator=operator,
                  program=operator.program, form=form, campaign=campaign, facts=facts,
                  kinds=("unique", "public"), effect_kinds=EFFECT_KINDS)  # fmt: skip


# — the campaign form —
#
# A marketer fills plain fields; they are read here into the service's campaign
# document (the keys of docs/coupons.md), and the service's problems are put back beside
# the fields they name. Each input's name is the document's path to its key
# (`limits.total`), so a problem's place names its field.

FIXED_FIELDS = ("code", "kind", "public_code")  # shown, not changed, on an edit
TEXT_FIELDS = ("code", "name", "kind", "public_code", "valid.from", "valid.until")
COUNT_FIELDS = ("limits.per_code", "limits.per_member", "limits.total")
AMOUNT_FIELDS = ("limits.budget", "conditions.min_sum")
LIST_FIELDS = (*(f"conditions.{key}" for key in CONDITION_KEYS[1:]), "effect.skus",
               "effect.categories")  # fmt: skip
EFFECT_FIELDS = ("effect.kind", "effect.value")
FLAG_FIELDS = ("effect.earn_points", "issued_only", "paused")
FIELDS = TEXT_FIELDS + COUNT_FIELDS + AMOUNT_FIELDS + LIST_FIELDS + EFFECT_FIELDS + FLAG_FIELDS
MAX_FIELDS = len(FIELDS) + 1  # and the CSRF token
_WHOLE = re.compile(r"-?[0-9]+", re.ASCII)
# ASCII digits with a point or a comma: no 1_000, 1e3 or other scripts' digits, which
# Python's Decimal would read
_AMOUNT = re.compile(r"-?[0-9]+(?:[.,][0-9]+)?", re.ASCII)
_LIST_SEPARATOR = re.compile(r"[,;\s]+")


@dataclass(frozen=True)
class CampaignForm:
    """What the form shows: the values as typed (or as stored), and the problems found,
    by field (`""`: the form as a whole)."""

    values: dict[str, str]
    problems: dict[str, list[str]] = field(default_factory=dict)

    @staticmethod
    def typed(fields: dict[str, str]) -> CampaignForm:
        return CampaignForm({name: fields.get(name, "").strip() for name in FIELDS})

    def refused(self, problems: Sequence[Problem]) -> CampaignForm:
        by_field: dict[str, list[str]] = {}
        for problem in problems:
            by_field.setdefault(field_of(problem.loc), []).append(str(problem))
        return CampaignForm(self.values, by_field)

    @property
    def all_problems(self) -> list[str]:
        return [text for texts in self.problems.values() for text in texts]


def field_of(loc: str) -> str:
    """The form field a problem's place names (`conditions.skus[1]` → `conditions.skus`;
    `effect.percent` → `effect.value`); `""` for a place no field has."""
    base = loc.split("[", 1)[0]
    if base == "effect" or base.removeprefix("effect.") in EFFECT_KINDS:
        return "effect.value"
    return base if base in FIELDS else ""


def stored_form(campaign: dict[str, Any], timezone: str) -> CampaignForm:
    """The edit form of a stored campaign (the API's document of it)."""
    valid, limits = campaign["valid"], campaign["limits"]
    conditions, effect = campaign["conditions"], campaign["effect"]
    kind = next((key for key in EFFECT_KINDS if effect.get(key) is not None), "")
    values = {
        "code": campaign["code"], "name": campaign["name"], "kind": campaign["kind"],
        "public_code": campaign.get("public_code") or "",
        "valid.from": local_moment(valid.get("from"), timezone),
        "valid.until": local_moment(valid.get("until"), timezone),
        **{f"limits.{key}": _text_of(limits.get(key)) for key in LIMIT_KEYS},
        **{f"conditions.{key}": _text_of(conditions.get(key)) for key in CONDITION_KEYS},
        "effect.kind": kind, "effect.value": _text_of(effect.get(kind)),
        "effect.skus": _text_of(effect.get("skus")),
        "effect.categories": _text_of(effect.get("categories")),
        "effect.earn_points": _flag_of(effect.get("earn_points")),
        "issued_only": _flag_of(campaign.get("issued_only")),
        "paused": _flag_of(campaign.get("paused")),
    }  # fmt: skip
    return CampaignForm(values)


def local_moment(iso: str | None, timezone: str) -> str:
    """A stored moment as a `datetime-local` input shows it: in the program's time zone."""
    if not iso:
        return ""
    moment = datetime.fromisoformat(iso).astimezone(ZoneInfo(timezone))
    return moment.strftime("%Y-%m-%dT%H:%M:%S" if moment.second else "%Y-%m-%dT%H:%M")


def _text_of(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return str(value)


def _flag_of(value: object) -> str:
    return "on" if value is True else ""


def campaign_document(form: CampaignForm) -> tuple[dict[str, Any], list[Problem]]:
    """The service's campaign document the form's values make, and what could not be
    read as typed (a number that is not one) — the service checks everything else.
    An empty field is null: left out of a new campaign, cleared on an edit."""
    problems: list[Problem] = []
    values = form.values

    def text(name: str) -> str | None:
        return values[name] or None

    def count(name: str) -> int | None:
        return _count(values[name], name, problems)

    def amount(name: str) -> str | None:
        return _amount(values[name], name, problems)

    document: dict[str, Any] = {
        "code": text("code"), "name": text("name"), "kind": text("kind"),
        "public_code": text("public_code"),
        "valid": {"from": text("valid.from"), "until": text("valid.until")},
        "limits": {**{key.split(".")[1]: count(key) for key in COUNT_FIELDS},
                   "budget": amount("limits.budget")},
        "conditions": {"min_sum": amount("conditions.min_sum"),
                       **{key: _codes(values[f"conditions.{key}"])
                          for key in CONDITION_KEYS[1:]}},
        "effect": _effect(values, problems),
        "issued_only": values["issued_only"] == "on", "paused": values["paused"] == "on",
    }  # fmt: skip
    return document, problems


def _effect(values: dict[str, str], problems: list[Problem]) -> dict[str, Any]:
    """The effect: its kind with its value, the lines it targets, whether they earn."""
    kind, raw = values["effect.kind"], values["effect.value"]
    effect: dict[str, Any] = {
        "skus": _codes(values["effect.skus"]),
        "categories": _codes(values["effect.categories"]),
        "earn_points": values["effect.earn_points"] == "on",
    }
    if kind not in EFFECT_KINDS:
        problems.append(Problem("effect.kind", f"choose one of {', '.join(EFFECT_KINDS)}"))
    elif kind == "free_sku":
        effect[kind] = raw or None
    else:
        effect[kind] = _amount(raw, "effect.value", problems)
    return effect


def _count(raw: str, name: str, problems: list[Problem]) -> int | None:
    if not raw:
        return None
    if not _WHOLE.fullmatch(raw):
        problems.append(Problem(name, f"{raw!r} is not a whole number"))
        return None
    return int(raw)


def _amount(raw: str, name: str, problems: list[Problem]) -> str | None:
    """The amount as a decimal string (exact: the service reads it as a Decimal)."""
    if not raw:
        return None
    if not _AMOUNT.fullmatch(raw):
        problems.append(Problem(name, f"{raw!r} is not a number (digits and a decimal "
                                      "point or comma)"))  # fmt: skip
        return None
    return raw.replace(",", ".")


def _codes(raw: str) -> list[str] | None:
    """`coffee, tea` (commas, semicolons or spaces between) as a list; empty: none."""
    codes = [code for code in _LIST_SEPARATOR.split(raw) if code]
    return codes or None


def new_campaign(document: dict[str, Any]) -> dict[str, Any]:
    """A new campaign's document: the keys given (an empty public code is left out, so a
    public campaign without one is told it needs one)."""
    return {key: value for key, value in document.items() if value is not None}


def campaign_change(document: dict[str, Any]) -> dict[str, Any]:
    """An edit's change: every changeable key (null clears one), never the identity."""
    return {key: value for key, value in document.items() if key not in FIXED_FIELDS}
