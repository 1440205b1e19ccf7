"""Input refused at the edge (issue 15), through the real app on SQLite and PostgreSQL:
text no field may hold, documents nested too deep, numbers in other scripts' digits and
amounts beyond what the ledger keeps — each a 422 problem naming its place, nothing
written, and every list still answering afterwards."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from kopilka.members.handlers import register_member
from kopilka.platform.files import load_document
from kopilka.platform.tables import metadata
from tests.api.conftest import Api
from tests.conftest import EXAMPLES
from tests.store.conftest import NOW

MEMBER = "/members/card:100001"
RECEIPT = {
    "receipt_id": "R-1",
    "location": "kiosk",
    "member": "card:100001",
    "at": "2026-03-10T11:00:00+03:00",
    "lines": [{"sku": "TEA-400", "qty": 1, "name": "tea", "category": "tea"}],
    "coupons": ["NOPE"],
    "payment": {"method": "card"},
}
CAMPAIGN = {"code": "spring", "kind": "unique", "name": "Весна", "effect": {"percent": 10}}
DISCOUNT = {"name": "Lunch", "percent": 10}
PAYOUT = {"amount": "1.00", "destination": {"type": "card", "number": "4000000000000002"}}

# (method, path, a body the server takes, where the poisoned text goes): every text field
# of the API that reached the database or a 500 with a lone surrogate or a NUL
FIELDS: list[tuple[str, str, dict[str, Any], str]] = [
    *(("POST", "/members", {"card": "100777"}, key)
      for key in ("card", "phone", "email", "external_id", "name", "referrer")),
    *(("PATCH", MEMBER, {}, key) for key in ("phone", "email", "name")),
    *(("POST", "/purchases", RECEIPT, loc)
      for loc in ("receipt_id", "location", "member", "lines[0].sku", "lines[0].name",
                  "lines[0].category", "coupons[0]", "payment.method")),
    ("POST", "/purchases/quote", RECEIPT, "receipt_id"),
    *(("POST", MEMBER + "/adjustments", {"points": "10", "reason": "a gift"}, key)
      for key in ("reason", "adjustment_id")),
    ("PUT", MEMBER + "/tier", {"tier": "base", "reason": "by hand"}, "reason"),
    ("POST", "/purchases/1/refunds", {"refund_id": "RF-1"}, "refund_id"),
    *(("POST", "/keys", {"role": "pos", "location": "kiosk"}, key)
      for key in ("label", "location")),
    ("POST", MEMBER + "/link", {"days": 30}, "label"),
    *(("POST", "/coupon-campaigns", CAMPAIGN, key) for key in ("name", "code")),
    ("PATCH", "/coupon-campaigns/spring", {}, "name"),
    ("PUT", "/discounts/lunch", DISCOUNT, "name"),
    ("POST", MEMBER + "/cashback/payouts", PAYOUT, "destination.number"),
]  # fmt: skip
LISTS = ["/coupon-campaigns", "/keys", "/discounts", MEMBER, MEMBER + "/history",
         MEMBER + "/links", "", "/cashback/payouts"]  # fmt: skip


def send(api: Api, method: str, path: str, body: Any) -> Any:
    """`body` as JSON text with every non-ASCII character escaped: a lone surrogate travels
    as `\\ud800`, exactly as a client's JSON library sends it."""
    text = json.dumps(body, default=str)  # a program file's Decimals as their text
    return api.client.request(method, api.base + path, content=text.encode(),
                              headers={"Authorization": f"Bearer {api.key}",
                                       "Content-Type": "application/json"})  # fmt: skip


def poisoned(body: dict[str, Any], loc: str, text: str) -> dict[str, Any]:
    """A copy of `body` with `text` at `loc` (`lines[0].sku`)."""
    copy: dict[str, Any] = json.loads(json.dumps(body))
    *parents, last = loc.replace("[", ".").replace("]", "").split(".")
    target: Any = copy
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    target[int(last) if last.isdigit() else last] = text
    return copy


def row_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {table.name: connection.execute(select(func.count()).select_from(table)).scalar_one()
                for table in metadata.sorted_tables}  # fmt: skip


def refused(answer: Any, loc: str, *fragments: str) -> None:
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    document = answer.json()
    assert document["code"] == "validation_error"
    messages = [e["message"] for e in document["errors"] if e["loc"] == loc]
    assert any(all(f in m for f in fragments) for m in messages), document["errors"]


@pytest.fixture
def member(zerno_engine: Engine) -> None:
    register_member(zerno_engine, "zerno", {"card": "100001"}, now=NOW)


@pytest.mark.usefixtures("member")
def test_a_lone_surrogate_or_a_nul_in_any_text_field_is_refused_and_nothing_is_written(
    admin: Api, zerno_engine: Engine
) -> None:
    assert admin.post("/coupon-campaigns", CAMPAIGN).status_code == 201
    before = row_counts(zerno_engine)
    for method, path, body, loc in FIELDS:
        for text, what in (("\ud800", "U+D800"), ("a\u0000b", "U+0000")):
            answer = send(admin, method, path, poisoned(body, loc, text))
            refused(answer, loc, what, "not allowed in text")
    assert row_counts(zerno_engine) == before
    for path in LISTS:
        assert admin.get(path).status_code == 200, path


@pytest.mark.usefixtures("member")
def test_a_line_break_or_control_character_in_one_line_text_is_refused_where_it_is_read(
    admin: Api, zerno_engine: Engine
) -> None:
    before = row_counts(zerno_engine)
    refused(send(admin, "PATCH", MEMBER, {"name": "Анна\nПетрова"}), "name", "U+000A")
    refused(send(admin, "POST", "/purchases", poisoned(RECEIPT, "receipt_id", "R\t1")),
            "receipt_id", "U+0009")  # fmt: skip
    refused(send(admin, "POST", MEMBER + "/adjustments", {"points": "1", "reason": "x\x7f"}),
            "reason", "U+007F")  # fmt: skip
    assert row_counts(zerno_engine) == before


@pytest.mark.usefixtures("member")
def test_a_key_of_a_json_object_is_held_to_the_same_rule(admin: Api) -> None:
    refused(send(admin, "POST", "/members", {"card": "100778", "\ud800": 1}), "", "the key")


@pytest.mark.usefixtures("member")
def test_texts_longer_than_their_maximum_are_refused_not_stored(
    admin: Api, zerno_engine: Engine
) -> None:
    before = row_counts(zerno_engine)
    for key in ("reason", "adjustment_id"):
        body = {"points": "10", "reason": "a gift", key: "x" * 100_000}
        refused(send(admin, "POST", MEMBER + "/adjustments", body), key, "at most 200")
    refused(send(admin, "POST", "/keys", {"role": "analyst", "label": "k" * 201}),
            "label", "at most 200")  # fmt: skip
    refused(send(admin, "POST", "/purchases", {**RECEIPT, "coupons": ["C" * 201]}),
            "coupons[0]", "at most 200")  # fmt: skip
    assert row_counts(zerno_engine) == before


# — depth —


def nested(levels: int) -> Any:
    document: Any = {"method": "card"}
    for _ in range(levels - 1):
        document = {"x": document}
    return document


@pytest.mark.usefixtures("member")
def test_a_body_nested_500_levels_deep_is_refused_naming_the_limit(
    admin: Api, zerno_engine: Engine
) -> None:
    before = row_counts(zerno_engine)
    answer = send(admin, "POST", "/purchases", {**RECEIPT, "payment": nested(500)})
    refused(answer, "payment" + ".x" * 31, "nested more than 32 levels deep")
    program = load_document(EXAMPLES / "zerno" / "program.yaml")
    assert isinstance(program, dict)
    deep = {**program, "discounts": [{"code": "d", "percent": 5, "when": nested(500)}]}
    refused(send(admin, "PUT", "", deep), "discounts[0].when" + ".x" * 29, "32 levels")
    flat_text = ("[" * 100_000 + "]" * 100_000).encode()
    answer = admin.client.post(admin.base + "/purchases", content=flat_text,
                               headers={"Authorization": f"Bearer {admin.key}"})  # fmt: skip
    refused(answer, "", "nested more than 32 levels deep")
    assert row_counts(zerno_engine) == before


def test_a_body_32_levels_deep_is_still_read(admin: Api) -> None:
    body = {**RECEIPT, "member": None, "payment": nested(31)}
    answer = send(admin, "POST", "/purchases/quote", body)
    refused(answer, "payment.x", "unknown key")  # read by the service, not refused as too deep


# — digits and numbers —


@pytest.mark.usefixtures("member")
def test_numbers_in_other_scripts_digits_are_refused_as_amounts(
    admin: Api, zerno_engine: Engine
) -> None:
    before = row_counts(zerno_engine)
    refused(send(admin, "POST", MEMBER + "/adjustments", {"points": "١٢٣", "reason": "x"}),
            "points", "non-zero amount")  # fmt: skip
    line = {"sku": "TEA-400", "qty": "١٢٣"}
    refused(send(admin, "POST", "/purchases", {**RECEIPT, "lines": [line]}),
            "lines[0] (TEA-400).qty", "is not a number")  # fmt: skip
    refused(send(admin, "POST", MEMBER + "/cashback/payouts", {**PAYOUT, "amount": "１２"}),
            "amount", "is not")  # fmt: skip
    refused(send(admin, "PUT", "/discounts/lunch", {**DISCOUNT, "percent": "１２"}),
            "discounts[0] (lunch).percent", "is not")  # fmt: skip
    for text in (" 12", "1e5", "NaN", "Infinity", "1_000", "+-1", "1.", ".5", "²"):
        answer = send(admin, "POST", "/purchases/quote", {**RECEIPT, "lines": [
            {"sku": "TEA-400", "qty": 1, "price": text}]})  # fmt: skip
        refused(answer, "lines[0] (TEA-400).price", "is not an amount")
    assert row_counts(zerno_engine) == before


def test_a_json_number_with_an_exponent_is_read_exactly(admin: Api) -> None:
    body = {**RECEIPT, "member": None, "coupons": [],
            "lines": [{"sku": "TEA-400", "qty": 2e0, "price": 1.5e2}]}  # fmt: skip
    answer = admin.client.post(admin.base + "/purchases/quote",
                               content=json.dumps(body).replace("2.0", "2E0").encode(),
                               headers={"Authorization": f"Bearer {admin.key}"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.json()["total"] == "300.00"
    refused(admin.client.post(admin.base + "/purchases/quote", content=b'{"lines": 1e999}',
                              headers={"Authorization": f"Bearer {admin.key}"}),
            "", "out of range")  # fmt: skip


# — amounts the ledger can't hold —


@pytest.mark.usefixtures("member")
def test_a_line_or_receipt_beyond_ten_trillion_is_refused_in_quotes_and_purchases(
    admin: Api, zerno_engine: Engine
) -> None:
    before = row_counts(zerno_engine)
    huge = {"sku": "TEA-400", "qty": 1_000_000, "price": "99999999999999.99"}
    for path in ("/purchases/quote", "/purchases"):
        answer = send(admin, "POST", path, {**RECEIPT, "coupons": [], "lines": [huge]})
        refused(answer, "lines[0] (TEA-400)", "a receipt may come to at most "
                                              "10000000000000.00 RUB")  # fmt: skip
    many = [{"sku": "TEA-400", "qty": 1, "price": "6000000000000.00"}] * 2
    answer = send(admin, "POST", "/purchases", {**RECEIPT, "coupons": [], "lines": many})
    refused(answer, "lines", "add up to 12000000000000.00 RUB")
    assert row_counts(zerno_engine) == before


def test_a_receipt_of_exactly_the_limit_is_quoted(admin: Api) -> None:
    line = {"sku": "TEA-400", "qty": 1, "price": "10000000000000.00"}
    answer = send(admin, "POST", "/purchases/quote", {"lines": [line]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["total"] == "10000000000000.00"
