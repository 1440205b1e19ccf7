"""The rules editor and its "try a receipt" calculator (issue 8): through the real app
(TestClient) on SQLite and PostgreSQL, and end to end in Debian's Chromium.

The receipt used throughout: card 100001 (rule card-5, K1 = 5) buys two cappuccinos
(cappuccino-double, K2 = 2) at rest-a on Tuesday 2026-03-10 at 16:30 (happy-hours,
K3 = 3): 360.00 × 1 % × 5 × 2 × 3 = 108.00 points; happy-hours at 4 makes it 144.00.
With the discount coffee-10 (10 % off coffee) the receipt pays 324.00 and earns 97.20;
at 20 % it pays 288.00 and earns 86.40.
"""

from __future__ import annotations

import html
import json
import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from kopilka.kernel.errors import Conflict
from kopilka.mechanics.discounts.handlers import list_discounts
from kopilka.mechanics.discounts.section import EFFECT_KEYS
from kopilka.operators.handlers import audit_entries, authenticate
from kopilka.platform.files import load_document, parse_text
from kopilka.programs import rule_drafts, rules_pages
from kopilka.programs.handlers import apply_program, read_program, read_program_version, to_json
from tests.api.conftest import serving_engine
from tests.conftest import EXAMPLES, snap
from tests.databases import Templates
from tests.store.conftest import NOW, at_once
from tests.web.conftest import OTHER, PASSWORD, console_app, served, sign_in, stock

RULES = "/console/zerno/rules"
RECEIPT = {
    "receipt_location": "rest-a", "receipt_at": "2026-03-10T16:30",
    "receipt_member": "card:100001", "receipt_tier": "", "receipt_segments": "",
    "receipt_balance": "", "receipt_redeem": "",
    "line_sku": ["CAP-300", ""], "line_qty": ["2", ""], "line_price": ["", ""],
}  # fmt: skip
HTMX = {"HX-Request": "true"}


def rules_app(engine: Engine) -> FastAPI:
    return console_app(engine)  # create_app mounts the rules pages with the console


@pytest.fixture
def client(stocked: Engine) -> Iterator[TestClient]:
    with TestClient(rules_app(serving_engine(stocked)), base_url="http://testserver") as c:
        yield c


def hidden(page: str, name: str) -> str:
    found = re.search(rf'<input type="hidden" name="{name}" value="([^"]*)">', page)
    assert found, f"the page has no hidden {name} field"
    return html.unescape(found.group(1))


def state(page: str) -> dict[str, str]:
    """What every form of the editor carries: the CSRF token and the draft."""
    return {"csrf": hidden(page, "csrf"), "draft": hidden(page, "draft"),
            "draft_discounts": hidden(page, "draft_discounts"),
            "base": hidden(page, "base")}  # fmt: skip


def draft_rules(page: str) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = json.loads(hidden(page, "draft"))
    return rules


def index_of(page: str, code: str) -> int:
    return [rule["code"] for rule in draft_rules(page)].index(code)


def edit(client: TestClient, page: str, code: str, then: str, **more: Any) -> Any:
    """Save rule `code` of the draft with a new `then` (and the receipt, as htmx sends it)."""
    rule = draft_rules(page)[index_of(page, code)]
    form = {**state(page), "action": "save", "index": str(index_of(page, code)),
            "code": code, "name": "", "kind": rule["kind"], "priority": "",
            "when": rules_pages.yaml_text(rule.get("when")), "then": then, **RECEIPT}  # fmt: skip
    return client.post(RULES + "/draft", data=form, **more)


def accrued(page: str) -> str:
    return figure(page, "accrued")


def figure(page: str, name: str) -> str:
    """A figure of the calculator's answer: total, discount, paid, accrued, …"""
    found = re.search(rf'id="quote-{name}">([^<]*)<', page)
    assert found, "the page shows no quote"
    return html.unescape(found.group(1))


COFFEE_10 = {"code": "coffee-10", "name": "Coffee week", "percent": 10,
             "when": {"categories": ["coffee"]}}  # fmt: skip


@pytest.fixture
def with_discount(stocked: Engine) -> Engine:
    """Version 2 of zerno: version 1 with the discount coffee-10."""
    document = load_document(EXAMPLES / "zerno" / "program.yaml")
    assert isinstance(document, dict)
    document["discounts"] = [COFFEE_10]
    apply_program(stocked, document, actor="test", now=NOW)
    return stocked


def draft_discounts(page: str) -> list[dict[str, Any]]:
    discounts: list[dict[str, Any]] = json.loads(hidden(page, "draft_discounts"))
    return discounts


DISCOUNT_FORM = {"code": "", "name": "", "effect_kind": "percent", "effect_value": "",
                 "when": "", "stacking": "", "priority": "", "max_amount": ""}  # fmt: skip


def edit_discount(client: TestClient, page: str, code: str,
                  headers: dict[str, str] | None = None, **fields: str) -> Any:  # fmt: skip
    """Save discount `code` of the draft with `fields` changed (and the receipt, as the
    page sends it)."""
    codes = [item["code"] for item in draft_discounts(page)]
    item = draft_discounts(page)[codes.index(code)]
    effect = next(key for key in EFFECT_KEYS if key in item)
    form = {**state(page), **DISCOUNT_FORM, "action": "save", "index": str(codes.index(code)),
            "code": code, "name": item.get("name", ""), "effect_kind": effect,
            "effect_value": rules_pages.yaml_text(item[effect]),
            "when": rules_pages.yaml_text(item.get("when")), **RECEIPT, **fields}  # fmt: skip
    return client.post(RULES + "/discounts", data=form, headers=headers)


def add_discount(client: TestClient, page: str, headers: dict[str, str] | None = None,
                 **fields: str) -> Any:  # fmt: skip
    form = {**state(page), **DISCOUNT_FORM, "action": "add", **RECEIPT, **fields}
    return client.post(RULES + "/discounts", data=form, headers=headers)


# — reading —


@pytest.mark.parametrize("role", ["admin", "marketer", "support", "analyst"])
def test_every_role_reads_the_rules_and_only_editors_get_the_forms(client, role):
    sign_in(client, role)
    page = client.get(RULES)
    assert page.status_code == 200
    assert 'id="rules"' in page.text
    assert 'data-code="happy-hours"' in page.text
    assert "multiplier: 3" in page.text
    assert "time: {from: 16:00, to: 18:00}" in page.text
    assert 'id="calculator"' in page.text
    can_edit = role in ("admin", "marketer")
    assert ('id="publish"' in page.text) is can_edit
    assert ('name="action" value="save"' in page.text) is can_edit


def test_the_rules_ask_for_sign_in_and_another_program_is_not_found(client):
    answer = client.get(RULES, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/login?program=zerno"
    sign_in(client)
    assert client.get(f"/console/{OTHER}/rules").status_code == 404


def test_the_yaml_shown_reads_back_as_the_rule():
    when = {"members": ["card:100001"], "time": {"from": "16:00", "to": "02:00"},
            "dates": ["03-08", "2026-12-31"], "skus": ["100", "a b", "true"]}  # fmt: skip
    then = {"accrue": False, "redeem_percent": 0, "max_points": "50", "multiplier": "1.5"}
    for value in (when, then):
        assert to_json(parse_text(rules_pages.yaml_text(value), name="", as_json=False)) == value


# — the calculator —


def test_the_calculator_quotes_a_typed_receipt_with_each_lines_explanation(client):
    sign_in(client, "analyst")  # reading roles use the calculator too
    page = client.get(RULES).text
    answer = client.post(RULES + "/quote", data={**state(page), **RECEIPT}, headers=HTMX)
    assert answer.status_code == 200
    assert answer.text.startswith('<div id="quote"')
    assert accrued(answer.text) == "108.00"
    for why in ("rule card-5", "rule cappuccino-double", "rule happy-hours", "K = 3"):
        assert why in answer.text


def test_the_calculator_names_what_is_wrong_with_the_receipt(client):
    sign_in(client)
    page = client.get(RULES).text
    receipt = {**RECEIPT, "receipt_location": "nowhere", "line_qty": ["-2", ""],
               "receipt_redeem": "100000"}  # fmt: skip
    answer = client.post(RULES + "/quote", data={**state(page), **receipt}, headers=HTMX)
    assert answer.status_code == 200
    assert "&#39;nowhere&#39; is not a location of program zerno" in answer.text
    assert "qty" in answer.text
    assert 'role="alert"' in answer.text


def test_a_new_receipt_line_is_a_fragment(client):
    sign_in(client, "support")
    answer = client.get(RULES + "/line", headers=HTMX)
    assert answer.status_code == 200
    assert answer.text.lstrip().startswith("<tr>")
    assert 'name="line_sku"' in answer.text


def test_the_programs_discounts_are_listed_and_ride_in_the_quote(client, stocked):
    document = load_document(EXAMPLES / "zerno" / "program.yaml")
    assert isinstance(document, dict)
    document["discounts"] = [{"code": "coffee-10", "name": "Coffee week", "percent": 10,
                              "when": {"categories": ["coffee"]}}]  # fmt: skip
    apply_program(stocked, document, actor="test", now=NOW)
    sign_in(client, "marketer")
    page = client.get(RULES).text
    listed = page[page.index('id="discounts"') :]
    assert "coffee-10" in listed
    assert "percent: 10" in listed
    assert "categories: [coffee]" in listed
    answer = client.post(RULES + "/quote", data={**state(page), **RECEIPT}, headers=HTMX)
    assert "discount coffee-10 took" in answer.text
    assert accrued(answer.text) == "97.20"  # 108.00 on 324.00 paid


# — editing the draft —


def test_an_edit_changes_the_calculators_answer_before_anything_is_saved(client, stocked):
    sign_in(client, "marketer")
    page = client.get(RULES).text
    answer = edit(client, page, "happy-hours", "multiplier: 4", headers=HTMX)
    assert answer.status_code == 200
    assert answer.text.lstrip().startswith('<div id="editor">')
    assert 'hx-swap-oob="true"' in answer.text  # the quote, out of band
    assert accrued(answer.text) == "144.00"
    assert "accrued 108.00" in answer.text  # the published version, for comparison
    assert "changed: happy-hours" in answer.text
    assert draft_rules(answer.text)[index_of(page, "happy-hours")]["then"] == {"multiplier": 4}
    assert read_program(stocked, "zerno")["version"] == 1  # nothing stored yet


@pytest.mark.parametrize(
    ("then", "message"),
    [("multiplyer: 4", "then.multiplyer: unknown key; did you mean &#39;multiplier&#39;?"),
     ("multiplier: -1", "then.multiplier: "),
     ("{multiplier: 4", "then:1:"),
     ("multiplier: 2\npercent: 5", "two accrual effects in one rule"),
     ("multiplier: &a [*a]", "YAML anchors and aliases"),
     ("", "then: ")],
)  # fmt: skip
def test_an_edit_the_parser_refuses_shows_its_messages_in_the_form(client, then, message):
    sign_in(client)
    page = client.get(RULES).text
    answer = edit(client, page, "happy-hours", then)
    assert answer.status_code == 422
    assert message in answer.text
    form = answer.text[answer.text.index('data-code="happy-hours"') :]
    assert form.index('role="alert"') < form.index("</details>")  # next to its own form
    assert '<details class="edit" open>' in form
    assert draft_rules(answer.text) == draft_rules(page)  # the draft keeps its last valid state
    htmx = edit(client, page, "happy-hours", then, headers=HTMX)
    assert htmx.status_code == 200  # htmx swaps only 2xx answers
    assert message in htmx.text


def test_adding_and_deleting_rules(client):
    sign_in(client, "marketer")
    page = client.get(RULES).text
    form = {**state(page), "action": "add", "code": "happy-hours", "name": "", "kind": "behaviour",
            "priority": "", "when": "weekdays: [sun]", "then": "multiplier: 2"}  # fmt: skip
    duplicate = client.post(RULES + "/draft", data=form)
    assert duplicate.status_code == 422
    assert "duplicate rule code &#39;happy-hours&#39;" in duplicate.text
    added = client.post(
        RULES + "/draft",
        data={**form, "code": "sunday-double", "when": "weekdays: [sun]\nlocations: [kiosk]"},
    )
    assert added.status_code == 200
    assert draft_rules(added.text)[-1] == {
        "code": "sunday-double", "kind": "behaviour",
        "when": {"weekdays": ["sun"], "locations": ["kiosk"]}, "then": {"multiplier": 2},
    }  # fmt: skip
    assert "added: sunday-double" in added.text
    gone = client.post(
        RULES + "/draft",
        data={
            **state(added.text),
            "action": "delete",
            "index": str(index_of(added.text, "monday-20")),
        },
    )
    assert gone.status_code == 200
    assert "monday-20" not in [rule["code"] for rule in draft_rules(gone.text)]
    assert "removed: monday-20" in gone.text


def test_a_damaged_draft_is_refused_and_only_rules_come_from_the_page(client, stocked):
    sign_in(client)
    page = client.get(RULES).text
    damaged = client.post(RULES + "/draft", data={**state(page), "draft": "[{", "action": "add"})
    assert damaged.status_code == 400
    unknown_version = client.post(RULES + "/publish", data={**state(page), "base": "99"})
    assert unknown_version.status_code == 404
    # a draft that isn't a list of rules, or names keys the parser doesn't know
    sneaky = json.dumps([{"code": "x", "kind": "client", "then": {"multiplier": 9},
                          "partners": []}])  # fmt: skip
    answer = client.post(RULES + "/publish", data={**state(page), "draft": sneaky})
    assert answer.status_code == 422
    assert "rules[0] (x).partners: unknown key" in answer.text
    assert read_program(stocked, "zerno")["version"] == 1


# — publishing —


def test_publishing_makes_the_next_version_and_is_audited(client, stocked):
    sign_in(client, "marketer")
    edited_page = edit(client, client.get(RULES).text, "happy-hours", "multiplier: 4").text
    answer = client.post(RULES + "/publish", data=state(edited_page), follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == RULES + "?published=2"
    stored = read_program(stocked, "zerno")
    assert stored["version"] == 2
    assert stored["applied_by"].startswith("operator:")
    happy = next(r for r in stored["document"]["rules"] if r["code"] == "happy-hours")
    assert happy["then"] == {"multiplier": 4}
    first = read_program_version(stocked, "zerno", 1)["document"]
    assert {k: v for k, v in stored["document"].items() if k != "rules"} == {
        k: v for k, v in first.items() if k != "rules"
    }
    page = client.get(answer.headers["location"]).text
    assert "Version 2 is published." in page
    assert "no unpublished changes" in page
    entry = audit_entries(stocked, "zerno", limit=1)[0]
    assert entry["action"] == "program.publish"
    assert entry["operator"] == "marketer@zerno.example"
    assert entry["target"] == "program:zerno"
    assert entry["details"] == {"version": 2, "based_on": 1, "changed": "happy-hours"}
    # the same draft again: nothing new to publish
    again = client.post(RULES + "/publish", data={**state(page)})
    assert again.status_code == 200
    assert "Nothing to publish" in again.text
    assert read_program(stocked, "zerno")["version"] == 2


def test_publishing_with_htmx_keeps_the_receipt_and_answers_the_new_version(client):
    sign_in(client)
    edited_page = edit(client, client.get(RULES).text, "happy-hours", "multiplier: 4").text
    answer = client.post(RULES + "/publish", data={**state(edited_page), **RECEIPT},
                         headers=HTMX)  # fmt: skip
    assert answer.status_code == 200
    assert "Version 2 is published." in answer.text
    assert hidden(answer.text, "base") == "2"
    assert accrued(answer.text) == "144.00"


def test_a_version_published_meanwhile_is_a_clear_conflict(client, stocked):
    sign_in(client)
    page = client.get(RULES).text
    edited_page = edit(client, page, "happy-hours", "multiplier: 4").text
    other = load_document(EXAMPLES / "zerno" / "program.yaml")
    assert isinstance(other, dict)
    other["name"] = "Зерно, renamed elsewhere"
    apply_program(stocked, other, actor="test", now=NOW)
    answer = client.post(RULES + "/publish", data=state(edited_page))
    assert answer.status_code == 409
    assert "Version 2 was published while you edited a draft of version 1" in answer.text
    assert "multiplier: 4" in answer.text  # the draft is kept
    stored = read_program(stocked, "zerno")
    assert stored["version"] == 2
    assert stored["document"]["name"] == "Зерно, renamed elsewhere"


def test_two_drafts_published_at_once_from_one_version_make_one_version(stocked):
    operator = authenticate(stocked, "zerno", "admin@zerno.example", PASSWORD, NOW)
    assert operator is not None
    draft = rule_drafts.start_draft(stocked, "zerno")
    drafts = iter(
        rule_drafts.edited(draft, 10, {**draft.rules[10], "then": {"multiplier": n}})
        for n in (4, 5)
    )
    lock = threading.Lock()

    def publish_one() -> str:
        with lock:
            mine = next(drafts)
        try:
            return str(rule_drafts.publish(stocked, operator, mine, NOW).version)
        except Conflict:
            return "conflict"

    assert sorted(at_once(publish_one)) == ["2", "conflict"]
    assert read_program(stocked, "zerno")["version"] == 2
    published = [e for e in audit_entries(stocked, "zerno") if e["action"] == "program.publish"]
    assert len(published) == 1


def test_names_typed_in_a_rule_are_escaped(client):
    sign_in(client)
    page = client.get(RULES).text
    form = {**state(page), "action": "add", "code": "x-1", "name": "<b>bold</b>",
            "kind": "client", "priority": "", "when": "", "then": "percent: 2"}  # fmt: skip
    answer = client.post(RULES + "/draft", data=form)
    assert answer.status_code == 200
    assert "&lt;b&gt;bold&lt;/b&gt;" in answer.text
    assert "<b>bold</b>" not in answer.text


# — the draft's discounts —


def test_editing_a_discount_changes_the_calculators_answer_before_anything_is_saved(
    client, with_discount
):
    sign_in(client, "marketer")
    page = client.get(RULES).text
    answer = edit_discount(client, page, "coffee-10", effect_value="20", headers=HTMX)
    assert answer.status_code == 200
    assert answer.text.lstrip().startswith('<div id="editor">')
    assert 'hx-swap-oob="true"' in answer.text
    assert "72.00" in figure(answer.text, "discount")
    assert "288.00" in figure(answer.text, "paid")
    assert accrued(answer.text) == "86.40"
    compared = html.unescape(answer.text[answer.text.index('id="quote-published"') :])
    assert "discount RUB36.00" in compared.replace("\xa0", "")
    assert "accrued 97.20" in compared
    assert "discounts changed: coffee-10" in answer.text
    assert draft_discounts(answer.text) == [{**COFFEE_10, "percent": 20}]
    assert "discount coffee-10 took" in answer.text
    assert read_program(with_discount, "zerno")["version"] == 2  # nothing stored yet


@pytest.mark.usefixtures("with_discount")
def test_adding_and_deleting_discounts(client):
    sign_in(client, "marketer")
    page = client.get(RULES).text
    added = add_discount(client, page, code="two-for-one", name="2 for 1", effect_kind="buy_get",
                         effect_value="buy: 1\nget: 1", when="skus: [CAP-300]",
                         stacking="exclusive", priority="5", max_amount="150.00",
                         earn_points="1")  # fmt: skip
    assert added.status_code == 200
    assert draft_discounts(added.text)[-1] == {
        "code": "two-for-one", "name": "2 for 1", "when": {"skus": ["CAP-300"]},
        "buy_get": {"buy": 1, "get": 1}, "stacking": "exclusive", "priority": 5,
        "max_amount": "150.00", "earn_points": True,
    }  # fmt: skip
    assert "discounts added: two-for-one" in added.text
    assert "Discount two-for-one is saved in the draft" in added.text
    # alone, the exclusive one gives more (one cappuccino free, 180.00, cut to its
    # max_amount 150.00) than coffee-10 (36.00)
    assert "150.00" in figure(added.text, "discount")
    gone = client.post(RULES + "/discounts", data={**state(added.text), **RECEIPT,
                                                   "action": "delete", "index": "0"})  # fmt: skip
    assert gone.status_code == 200
    assert [item["code"] for item in draft_discounts(gone.text)] == ["two-for-one"]
    assert "discounts removed: coffee-10" in gone.text
    assert "Discount coffee-10 is removed from the draft." in gone.text
    russian = client.get(RULES + "?lang=ru").text
    assert "Добавить скидку" in russian
    assert "процент с каждой позиции" in russian


def test_the_last_discount_deleted_leaves_a_program_without_discounts(client):
    sign_in(client)
    page = client.get(RULES).text
    assert draft_discounts(page) == []
    added = add_discount(client, page, code="minus-50", effect_kind="amount",
                         effect_value="50.00")  # fmt: skip
    assert added.status_code == 200
    assert draft_discounts(added.text) == [{"code": "minus-50", "amount": "50.00"}]
    gone = client.post(RULES + "/discounts", data={**state(added.text), "action": "delete",
                                                   "index": "0"})  # fmt: skip
    assert "no unpublished changes" in gone.text  # as version 1: nothing to publish


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fields", "message"),
    [({"effect_value": "200"}, "percent: 200 is more than 100"),
     ({"effect_kind": "buy_get", "effect_value": "{buy: 0}"}, "buy_get.buy: 0 is less than 1"),
     ({"effect_kind": "code", "effect_value": "x"}, "effect: &#39;code&#39; is not one of"),
     ({"effect_value": ""}, "give exactly one effect"),
     ({"when": "skus: [NOPE]"}, "when.skus: unknown sku &#39;NOPE&#39;"),
     ({"when": "first_purchase: maybe"}, "when.first_purchase: &#39;maybe&#39; is not true"),
     ({"stacking": "sometimes"}, "stacking: &#39;sometimes&#39; is not one of"),
     ({"max_amount": "-5"}, "max_amount: "),
     ({"when": "skus: &a [*a]"}, "YAML anchors and aliases"),
     ({"effect_value": "{n: 2"}, "percent:1:")],
)  # fmt: skip
@pytest.mark.usefixtures("with_discount")
def test_a_discount_the_parser_refuses_shows_its_messages_in_the_form(client, fields, message):
    sign_in(client, "marketer")
    page = client.get(RULES).text
    answer = edit_discount(client, page, "coffee-10", **fields)
    assert answer.status_code == 422
    assert message in answer.text
    form = answer.text[answer.text.index('id="discount-0"') :]
    assert form.index('role="alert"') < form.index("</details>")  # next to its own form
    assert '<details class="edit" open>' in form
    for typed in fields.values():
        assert html.escape(typed, quote=True) in form or typed in html.unescape(form)
    assert draft_discounts(answer.text) == draft_discounts(page)  # the draft is unchanged
    htmx = edit_discount(client, page, "coffee-10", **fields, headers=HTMX)
    assert htmx.status_code == 200  # htmx swaps only 2xx answers
    assert message in htmx.text


@pytest.mark.usefixtures("with_discount")
def test_a_discount_added_with_a_code_taken_is_refused_in_the_add_form(client):
    sign_in(client)
    page = client.get(RULES).text
    answer = add_discount(client, page, code="coffee-10", effect_value="5")
    assert answer.status_code == 422
    assert "code: duplicate discount code &#39;coffee-10&#39;" in answer.text
    form = answer.text[answer.text.index('id="add-discount"') :]
    assert '<details class="edit" id="add-discount" open>' in answer.text
    assert 'role="alert"' in form
    assert draft_discounts(answer.text) == [COFFEE_10]


def test_publishing_makes_a_version_with_the_drafts_rules_and_discounts(client, with_discount):
    sign_in(client, "marketer")
    page = edit(client, client.get(RULES).text, "happy-hours", "multiplier: 4").text
    page = edit_discount(client, page, "coffee-10", effect_value="20").text
    page = add_discount(client, page, code="second-half", effect_kind="nth_item",
                        effect_value="{n: 2, percent: 50}").text  # fmt: skip
    answer = client.post(RULES + "/publish", data=state(page), follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == RULES + "?published=3"
    stored = list_discounts(with_discount, "zerno")
    assert stored["version"] == 3
    assert stored["items"] == [
        {**COFFEE_10, "percent": 20},
        {"code": "second-half", "nth_item": {"n": 2, "percent": 50}},
    ]
    document = read_program(with_discount, "zerno")["document"]
    happy = next(r for r in document["rules"] if r["code"] == "happy-hours")
    assert happy["then"] == {"multiplier": 4}
    entry = audit_entries(with_discount, "zerno", limit=1)[0]
    assert entry["details"] == {"version": 3, "based_on": 2, "changed": "happy-hours",
                                "discounts_changed": "coffee-10",
                                "discounts_added": "second-half"}  # fmt: skip
    published = client.get(answer.headers["location"]).text
    assert "no unpublished changes" in published
    assert "second-half" in published[published.index('id="discounts"') :]


def test_only_the_rules_and_discounts_come_from_the_page(client, with_discount):
    """The limits stay as published (shown, not edited); a damaged discounts field is
    refused; a form sent without one keeps the version's discounts."""
    document = read_program(with_discount, "zerno")["document"]
    apply_program(with_discount, {**document, "discount_limits": {"receipt_percent": 30}},
                  actor="test", now=NOW)  # fmt: skip
    sign_in(client)
    page = client.get(RULES).text
    assert "a receipt at most 30%, a line at most 100%" in page
    answer = edit_discount(client, page, "coffee-10", effect_value="90")
    assert answer.status_code == 200
    assert "108.00" in figure(answer.text, "discount")  # 90 % of 360.00, cut to 30 %
    damaged = client.post(RULES + "/discounts", data={**state(page), "draft_discounts": "{",
                                                      "action": "add"})  # fmt: skip
    assert damaged.status_code == 400
    no_index = edit_discount(client, page, "coffee-10", index="")
    assert no_index.status_code == 400
    assert draft_discounts(page) == [COFFEE_10]
    unknown = json.dumps([{**COFFEE_10, "discount_limits": {"receipt_percent": 100}}])
    refused = client.post(RULES + "/publish", data={**state(page), "draft_discounts": unknown})
    assert refused.status_code == 422
    assert "discounts[0] (coffee-10).discount_limits: unknown key" in refused.text
    without = {k: v for k, v in state(page).items() if k != "draft_discounts"}
    rules_only = client.post(RULES + "/quote", data={**without, **RECEIPT}, headers=HTMX)
    assert "36.00" in figure(rules_only.text, "discount")
    assert read_program(with_discount, "zerno")["version"] == 3


@pytest.mark.parametrize("role", ["support", "analyst"])
def test_reading_roles_see_the_discounts_but_can_not_change_them(client, with_discount, role):
    sign_in(client, role)
    page = client.get(RULES).text
    russian = client.get(RULES + "?lang=ru").text
    assert "Скидки" in russian
    assert "Добавить скидку" not in russian
    assert 'data-code="coffee-10"' in page
    assert 'id="add-discount"' not in page
    assert 'action="/console/zerno/rules/discounts"' not in page
    assert edit_discount(client, page, "coffee-10", effect_value="20").status_code == 403
    assert add_discount(client, page, code="x", effect_value="5").status_code == 403
    assert read_program(with_discount, "zerno")["version"] == 2


@pytest.mark.usefixtures("with_discount")
def test_a_discount_change_without_the_csrf_token_or_from_another_site_is_refused(client):
    sign_in(client, "marketer")
    page = client.get(RULES).text
    forged = edit_discount(client, page, "coffee-10", effect_value="20", csrf="forged")
    assert forged.status_code == 403
    elsewhere = edit_discount(client, page, "coffee-10", effect_value="20",
                              headers={"Origin": "https://evil.example"})  # fmt: skip
    assert elsewhere.status_code == 403
    assert edit_discount(client, page, "coffee-10", effect_value="20").status_code == 200


# — who may —


@pytest.mark.parametrize("role", ["support", "analyst"])
def test_reading_roles_can_not_change_or_publish(client, stocked, role):
    sign_in(client, role)
    page = client.get(RULES).text
    assert edit(client, page, "happy-hours", "multiplier: 4").status_code == 403
    assert client.post(RULES + "/publish", data=state(page)).status_code == 403
    assert read_program(stocked, "zerno")["version"] == 1


def test_posts_without_the_sessions_csrf_token_or_from_another_site_are_refused(client, stocked):
    sign_in(client)
    page = client.get(RULES).text
    edited_page = edit(client, page, "happy-hours", "multiplier: 4").text
    forged = {**state(edited_page), "csrf": "forged"}
    assert client.post(RULES + "/publish", data=forged).status_code == 403
    without = {k: v for k, v in state(edited_page).items() if k != "csrf"}
    assert client.post(RULES + "/publish", data=without).status_code == 403
    assert client.post(RULES + "/quote", data={**RECEIPT, "csrf": "forged"}).status_code == 403
    elsewhere = client.post(RULES + "/publish", data=state(edited_page),
                            headers={"Origin": "https://evil.example"})  # fmt: skip
    assert elsewhere.status_code == 403
    assert read_program(stocked, "zerno")["version"] == 1
    # htmx sends the token in a header instead
    answer = client.post(RULES + "/quote", data={**RECEIPT},
                         headers={**HTMX, "X-CSRF-Token": state(page)["csrf"]})  # fmt: skip
    assert answer.status_code == 200


def test_an_oversized_form_is_refused(client):
    sign_in(client)
    page = client.get(RULES).text
    answer = client.post(RULES + "/quote", data={**state(page), "draft": "[" + " " * 600_000 + "]"})
    assert answer.status_code == 413


# — in the browser —


@pytest.fixture(scope="module")
def browser_server(tmp_path_factory: pytest.TempPathFactory, templates: Templates) -> Iterator[str]:
    """The app with the rules pages on a free port, served by uvicorn in a thread."""
    engine = templates.sqlite(tmp_path_factory.mktemp("rules") / "kopilka.sqlite3")
    apply_program(engine, load_document(EXAMPLES / "zerno" / "program.yaml"), actor="test",
                  now=NOW)  # fmt: skip
    stock(engine)
    with served(rules_app(engine)) as url:
        yield url
    engine.dispose()


@pytest.fixture
def browser_page(browser: Any, browser_server: str) -> Iterator[Any]:
    """A page in Debian's Chromium that fails the test on any console error."""
    context = browser.new_context(base_url=browser_server, locale="en-US",
                                  viewport={"width": 1440, "height": 900})  # fmt: skip
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("requestfailed", lambda r: errors.append(f"{r.url}: {r.failure}"))
    yield page
    context.close()
    assert errors == [], f"the page reported errors: {errors}"


def shows(page: Any, selector: str, text: str) -> None:
    page.wait_for_function(
        "([selector, text]) => document.querySelector(selector)?.textContent.includes(text)",
        arg=[selector, text], timeout=10_000,
    )  # fmt: skip


def test_a_marketer_edits_a_rule_sees_the_calculator_change_and_publishes(browser_page):
    page = browser_page
    page.goto("/console/login")
    page.fill("input[name=program]", "zerno")
    page.fill("input[name=email]", "marketer@zerno.example")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/console/zerno/")
    page.goto("/console/zerno/rules")
    page.wait_for_selector("#rules")
    assert "multiplier: 3" in page.text_content("tbody[data-code=happy-hours] .rule-then")
    snap(page, "rules-01-page")

    page.select_option("select[name=receipt_location]", "rest-a")
    page.fill("input[name=receipt_at]", "2026-03-10T16:30")
    page.fill("input[name=receipt_member]", "card:100001")
    first_line = "#receipt-lines tr:nth-child(1)"
    page.fill(f"{first_line} input[name=line_sku]", "CAP-300")
    page.fill(f"{first_line} input[name=line_qty]", "2")
    shows(page, "#quote-accrued", "108.00")
    assert "K = 3" in page.text_content("#quote-lines")
    snap(page, "rules-02-receipt-quoted")

    rule = "tbody[data-code=happy-hours]"
    page.click(f"{rule} summary")
    page.fill(f"{rule} textarea[name=then]", "multiplyer: 4")
    page.click(f"{rule} button[value=save]")
    shows(page, f"{rule} .problem", "did you mean 'multiplier'?")
    assert page.text_content("#quote-accrued") == "108.00"  # a refused edit changes nothing
    snap(page, "rules-03-edit-refused")

    page.fill(f"{rule} textarea[name=then]", "multiplier: 4")
    page.click(f"{rule} button[value=save]")
    shows(page, "#quote-accrued", "144.00")
    shows(page, "#quote-published", "108.00")
    assert "multiplier: 4" in page.text_content(f"{rule} .rule-then")
    assert "changed: happy-hours" in page.text_content("#draft-status")
    snap(page, "rules-04-edited-quote-changed")

    page.click("#publish button")
    shows(page, "#rules-notice", "Version 2 is published.")
    shows(page, "#draft-status", "Version 2")
    assert page.text_content("#quote-accrued") == "144.00"
    assert page.locator("#quote-published").count() == 0
    snap(page, "rules-05-published")


def test_a_marketer_adds_and_edits_a_discount_sees_the_calculator_change_and_publishes(
    browser_page,
):
    page = browser_page
    page.goto("/console/login")
    page.fill("input[name=program]", "zerno")
    page.fill("input[name=email]", "marketer@zerno.example")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/console/zerno/")
    page.goto("/console/zerno/rules")
    page.wait_for_selector("#discounts")
    page.select_option("select[name=receipt_location]", "rest-a")
    page.fill("input[name=receipt_at]", "2026-03-10T16:30")
    page.fill("input[name=receipt_member]", "card:100001")
    first_line = "#receipt-lines tr:nth-child(1)"
    page.fill(f"{first_line} input[name=line_sku]", "CAP-300")
    page.fill(f"{first_line} input[name=line_qty]", "2")
    shows(page, "#quote-total", "360.00")
    assert "0.00" in page.text_content("#quote-discount")

    adding = "#add-discount"
    page.click(f"{adding} summary")
    page.fill(f"{adding} input[name=code]", "coffee-10")
    page.fill(f"{adding} input[name=name]", "Coffee week")
    page.select_option(f"{adding} select[name=effect_kind]", "percent")
    page.fill(f"{adding} textarea[name=effect_value]", "10")
    page.fill(f"{adding} textarea[name=when]", "categories: [coffee]")
    snap(page, "rules-06-discount-typed")
    page.click(f"{adding} button[value=add]")
    shows(page, "#quote-discount", "36.00")
    shows(page, "#quote-paid", "324.00")
    assert "discount coffee-10 took" in page.text_content("#quote-lines")
    assert "discounts added: coffee-10" in page.text_content("#draft-status")
    snap(page, "rules-07-discount-added")

    discount = "tbody[data-code=coffee-10]"
    page.click(f"{discount} summary")
    page.fill(f"{discount} textarea[name=effect_value]", "200")
    page.click(f"{discount} button[value=save]")
    shows(page, f"{discount} .problem", "percent: 200 is more than 100")
    assert "36.00" in page.text_content("#quote-discount")  # a refused edit changes nothing
    snap(page, "rules-08-discount-refused")

    page.fill(f"{discount} textarea[name=effect_value]", "20")
    page.click(f"{discount} button[value=save]")
    shows(page, "#quote-discount", "72.00")
    shows(page, "#quote-paid", "288.00")
    assert "percent: 20" in page.text_content(f"{discount} .discount-effect")
    snap(page, "rules-09-discount-edited")

    page.click("#publish button")
    shows(page, "#rules-notice", "is published.")
    shows(page, "#draft-status", "no unpublished changes")
    assert "72.00" in page.text_content("#quote-discount")
    assert "percent: 20" in page.text_content(f"{discount} .discount-effect")
    snap(page, "rules-10-discount-published")
