"""Creating and editing coupon campaigns in the console: through the real app
(TestClient), on SQLite and PostgreSQL — the form read into the campaign document
exactly as typed, the service's refusals shown beside their fields with what was typed,
roles, CSRF, the audit row written in the campaign's own transaction, and Russian."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from babel.messages.extract import extract_from_file
from sqlalchemy import Engine, select

from kopilka.mechanics.coupons import console as console_coupons
from kopilka.mechanics.coupons.handlers import create_batch, create_campaign, read_campaign_of
from kopilka.mechanics.coupons.pages import (
    CampaignForm,
    campaign_document,
    field_of,
    local_moment,
    new_campaign,
)
from kopilka.operators import handlers as operators
from kopilka.operators.handlers import Operator
from kopilka.operators.tables import audit_log
from kopilka.operators.tables import operators as operator_rows
from kopilka.platform.console import i18n
from kopilka.platform.console.pages import templates
from tests.conftest import ROOT
from tests.store.conftest import NOW
from tests.web.conftest import csrf_of, sign_in

COUPONS = "/console/zerno/coupons"
MY_TEMPLATES = ("campaign_form.html", "campaign.html", "coupons.html")
ACTIONS = ("coupon.campaign.create", "coupon.campaign.update")


def spring(**changes: str) -> dict[str, str]:
    """The form of a unique campaign as a marketer fills it in (a comma for the point)."""
    form = {
        "code": "spring", "name": "Весна: −12,5 % на кофе", "kind": "unique",
        "public_code": "", "valid.from": "2026-03-01T00:00", "valid.until": "2026-06-01T10:30",
        "limits.per_code": "", "limits.per_member": "2", "limits.total": "1000",
        "limits.budget": "50000,50", "conditions.min_sum": "300.00",
        "conditions.categories": "coffee", "conditions.skus": "",
        "conditions.partners": "zerno", "conditions.locations": "rest-a, kiosk",
        "conditions.segments": "", "conditions.tiers": "vip",
        "effect.kind": "percent", "effect.value": "12.5", "effect.categories": "coffee",
        "effect.skus": "", "effect.earn_points": "on",
    }  # fmt: skip
    form.update(changes)
    return form


def post(client, path: str, form: dict[str, str], page: str) -> Any:
    return client.post(path, data={"csrf": csrf_of(client.get(page).text), **form})


def label_of(html: str, field: str) -> str:
    """The label around a field: where its problems are shown."""
    found = re.search(rf'<label for="field-{field}">.*?</label>', html, re.DOTALL)
    assert found, f"no field {field}"
    return found.group(0)


def audit_of(engine: Engine, action: str) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(select(audit_log).where(audit_log.c.action == action)))


def marketer_of(engine: Engine) -> Operator:
    with engine.connect() as connection:
        row = connection.execute(select(operator_rows).where(
            operator_rows.c.email == "marketer@zerno.example")).one()  # fmt: skip
    return Operator(row.id, row.program, row.email, row.role)


def stored_spring(engine: Engine) -> None:
    document = {"code": "spring", "kind": "unique", "name": "Spring",
                "valid": {"from": "2026-03-01", "until": "2026-05-31"},
                "limits": {"per_member": 1, "total": 100}, "effect": {"percent": 10}}  # fmt: skip
    create_campaign(engine, "zerno", document, actor="test", now=NOW)


# — creating —


def test_a_marketer_creates_a_unique_campaign_exactly_as_typed_audited(client, stocked):
    sign_in(client, "marketer")
    listed = client.get(COUPONS).text
    assert 'id="new-campaign"' in listed
    assert client.get(COUPONS + "/new").status_code == 200
    answer = post(client, COUPONS, spring(), COUPONS + "/new")
    assert answer.status_code == 200  # followed to the campaign's page
    assert 'id="saved"' in answer.text
    assert "/console/zerno/coupons/spring" in client.get(COUPONS).text
    made = read_campaign_of(stocked, "zerno", "spring", now=NOW)
    assert made["name"] == "Весна: −12,5 % на кофе"
    assert Decimal(made["effect"]["percent"]) == Decimal("12.5")
    assert made["effect"]["percent"] == "12.5"
    assert (made["effect"]["categories"], made["effect"]["earn_points"]) == (["coffee"], True)
    assert made["limits"] == {"per_code": 1, "per_member": 2, "total": 1000,
                              "budget": "50000.50"}  # fmt: skip
    assert made["conditions"]["min_sum"] == "300.00"
    assert made["conditions"]["locations"] == ["kiosk", "rest-a"]
    assert (made["conditions"]["partners"], made["conditions"]["tiers"]) == (["zerno"], ["vip"])
    assert made["conditions"]["skus"] is None
    assert made["valid"] == {"from": "2026-03-01T00:00:00+03:00",
                             "until": "2026-06-01T10:30:00+03:00"}  # fmt: skip
    assert made["actor"].startswith("operator:")
    [row] = audit_of(stocked, "coupon.campaign.create")
    assert (row.target, row.details) == ("campaign:spring", {"kind": "unique",
                                                              "name": made["name"]})  # fmt: skip
    assert f"operator:{row.operator_id}" == made["actor"]


def test_the_campaign_and_its_audit_row_are_kept_or_lost_together(stocked, monkeypatch):
    marketer = marketer_of(stocked)

    def broken(*_: object) -> None:
        raise RuntimeError("the audit log can't be written")

    monkeypatch.setattr(operators, "record", broken)
    document = {"code": "lost", "kind": "unique", "effect": {"percent": 5}}
    with pytest.raises(RuntimeError):
        console_coupons.create_campaign(stocked, marketer, document, NOW)
    with pytest.raises(Exception, match="does not exist"):
        read_campaign_of(stocked, "zerno", "lost", now=NOW)


def test_an_admin_creates_a_public_campaign_with_its_code(client, stocked):
    sign_in(client, "admin")
    form = {"code": "open", "kind": "public", "public_code": "spring10", "effect.kind": "amount",
            "effect.value": "150,00", "limits.per_member": "1"}  # fmt: skip
    answer = post(client, COUPONS, form, COUPONS + "/new")
    assert answer.status_code == 200
    assert 'id="generate"' not in answer.text  # one public code: no batches
    assert re.search(r'id="codes-generated">1<', answer.text)
    made = read_campaign_of(stocked, "zerno", "open", now=NOW)
    assert (made["kind"], made["public_code"], made["name"]) == ("public", "SPRING10", "open")
    assert made["effect"]["amount"] == "150.00"
    assert made["limits"]["per_code"] is None
    assert made["valid"] == {"from": None, "until": None}


# — editing —


def test_a_marketer_edits_validity_and_limits_audited(client, stocked):
    stored_spring(stocked)
    sign_in(client, "marketer")
    page = client.get(COUPONS + "/spring").text
    assert 'id="edit"' in page
    form_page = client.get(COUPONS + "/spring/edit").text
    assert 'value="2026-03-01T00:00"' in form_page  # the stored date, in Moscow time
    assert 'value="2026-06-01T00:00"' in form_page  # through 31 May: until 1 June
    assert 'name="code"' not in form_page  # shown, not sent
    assert 'id="fixed-code"' in form_page
    fields = dict(re.findall(r'name="([a-z_.]+)" type="[a-z-]+" value="([^"]*)"', form_page))
    fields.update({"valid.until": "2026-07-01T12:00", "limits.total": "500",
                   "limits.per_member": "", "code": "renamed", "kind": "public",
                   "paused": "on"})  # fmt: skip
    fields["effect.kind"] = "percent"
    answer = client.post(COUPONS + "/spring", data={"csrf": csrf_of(form_page), **fields})
    assert answer.status_code == 200
    assert 'id="saved"' in answer.text
    changed = read_campaign_of(stocked, "zerno", "spring", now=NOW)
    assert changed["valid"]["until"] == "2026-07-01T12:00:00+03:00"
    assert changed["valid"]["from"] == "2026-03-01T00:00:00+03:00"  # unchanged
    assert changed["limits"] == {"per_code": 1, "per_member": None, "total": 500,
                                 "budget": None}  # fmt: skip
    assert (changed["code"], changed["kind"], changed["paused"]) == ("spring", "unique", True)
    assert changed["effect"]["percent"] == "10"
    [row] = audit_of(stocked, "coupon.campaign.update")
    assert row.target == "campaign:spring"
    assert row.details == {"valid.until": "2026-07-01T12:00:00+03:00", "limits.total": "500",
                           "limits.per_member": "—", "paused": "true"}  # fmt: skip


def test_an_edit_the_service_refuses_changes_nothing_and_keeps_the_typed_values(client, stocked):
    stored_spring(stocked)
    sign_in(client, "admin")
    form = {"valid.from": "2026-03-01T00:00", "valid.until": "2026-02-01T00:00",
            "effect.kind": "percent", "effect.value": "10", "limits.total": "7"}  # fmt: skip
    answer = post(client, COUPONS + "/spring", form, COUPONS + "/spring/edit")
    assert answer.status_code == 422
    assert "valid.until: must be after" in label_of(answer.text, "valid-until")
    assert 'value="7"' in answer.text
    assert read_campaign_of(stocked, "zerno", "spring", now=NOW)["limits"]["total"] == 100
    assert audit_of(stocked, "coupon.campaign.update") == []


def test_an_unknown_campaign_is_not_found(client):
    sign_in(client, "marketer")
    assert client.get(COUPONS + "/nothing/edit").status_code == 404
    form = {"effect.kind": "percent", "effect.value": "10"}
    assert post(client, COUPONS + "/nothing", form, COUPONS).status_code == 404


# — refusals —


@pytest.mark.parametrize(
    ("changes", "field", "named"),
    [
        ({"effect.value": "150"}, "effect-value", "effect.percent: "),
        ({"effect.value": "1e3"}, "effect-value", "&#39;1e3&#39; is not a number"),
        ({"effect.value": ""}, "effect-value", "give exactly one of"),
        ({"valid.until": "2026-02-01T00:00"}, "valid-until", "valid.until: must be after"),
        ({"limits.per_member": "1.5"}, "limits-per_member", "is not a whole number"),
        ({"limits.total": "0"}, "limits-total", "limits.total: "),
        ({"conditions.categories": "coffee, juice"}, "conditions-categories",
         "&#39;juice&#39; is not a category of the program"),
        ({"code": "no spaces"}, "code", "code: "),
        ({"code": "new"}, "code", "names the new campaign form"),
        ({"public_code": "SPRING10"}, "public_code", "leave public_code out"),
    ],
)  # fmt: skip
@pytest.mark.slow
def test_refused_input_names_the_problem_beside_its_field_with_the_typed_values(
    client, stocked, changes, field, named
):
    sign_in(client, "marketer")
    typed = spring(**changes)
    answer = post(client, COUPONS, typed, COUPONS + "/new")
    assert answer.status_code == 422
    assert 'id="problems"' in answer.text
    assert named in label_of(answer.text, field)
    assert 'value="Весна: −12,5 % на кофе"' in answer.text  # what was typed is kept
    assert 'value="rest-a, kiosk"' in answer.text
    assert "/console/zerno/coupons/spring" not in client.get(COUPONS).text
    assert audit_of(stocked, "coupon.campaign.create") == []


def test_a_taken_code_or_public_code_is_409_beside_its_field(client, stocked):
    stored_spring(stocked)
    public = {"code": "open", "kind": "public", "public_code": "OPEN10", "effect": {"percent": 5}}
    create_campaign(stocked, "zerno", public, actor="test", now=NOW)
    sign_in(client, "marketer")
    taken = post(client, COUPONS, spring(), COUPONS + "/new")
    assert taken.status_code == 409
    assert "spring" in label_of(taken.text, "code")
    assert 'value="50000,50"' in taken.text
    form = {"code": "other", "kind": "public", "public_code": "open10", "effect.kind": "percent",
            "effect.value": "5"}  # fmt: skip
    public = post(client, COUPONS, form, COUPONS + "/new")
    assert public.status_code == 409
    assert "OPEN10" in label_of(public.text, "public_code")
    assert read_campaign_of(stocked, "zerno", "spring", now=NOW)["name"] == "Spring"


# — who may —


@pytest.mark.parametrize("role", ["analyst", "support"])
def test_only_admin_and_marketer_create_or_edit(client, stocked, role):
    stored_spring(stocked)
    sign_in(client, role)
    assert 'id="new-campaign"' not in client.get(COUPONS).text
    assert 'id="edit"' not in client.get(COUPONS + "/spring").text
    assert client.get(COUPONS + "/new").status_code == 403
    assert client.get(COUPONS + "/spring/edit").status_code == 403
    assert post(client, COUPONS, spring(code="mine"), COUPONS).status_code == 403
    edit = {"effect.kind": "percent", "effect.value": "50"}
    assert post(client, COUPONS + "/spring", edit, COUPONS).status_code == 403
    assert read_campaign_of(stocked, "zerno", "spring", now=NOW)["effect"]["percent"] == "10"


def test_a_form_without_the_csrf_token_is_refused(client, stocked):
    stored_spring(stocked)
    sign_in(client, "marketer")
    assert client.post(COUPONS, data={"csrf": "forged", **spring(code="x")}).status_code == 403
    edit = {"csrf": "forged", "effect.kind": "percent", "effect.value": "50"}
    assert client.post(COUPONS + "/spring", data=edit).status_code == 403
    foreign = client.post(COUPONS, data={"csrf": csrf_of(client.get(COUPONS).text),
                                         **spring(code="y")},
                          headers={"Origin": "https://evil.example"})  # fmt: skip
    assert foreign.status_code == 403
    assert audit_of(stocked, "coupon.campaign.create") == []
    assert audit_of(stocked, "coupon.campaign.update") == []


# — the form's reading —


def test_a_problems_place_names_its_field():
    assert field_of("conditions.skus[1]") == "conditions.skus"
    assert field_of("effect.percent") == "effect.value"
    assert field_of("effect") == "effect.value"
    assert field_of("limits.budget") == "limits.budget"
    assert field_of("valid") == ""


def test_numbers_are_read_exactly_and_only_when_plain():
    form = CampaignForm.typed(spring(**{"limits.budget": "1_000", "conditions.min_sum": "٣٠٠"}))
    document, problems = campaign_document(form)
    assert {problem.loc for problem in problems} == {"limits.budget", "conditions.min_sum"}
    document, problems = campaign_document(CampaignForm.typed(spring()))
    assert problems == []
    assert document["effect"]["percent"] == "12.5"
    assert document["limits"]["budget"] == "50000.50"
    assert document["conditions"]["locations"] == ["rest-a", "kiosk"]


def test_a_stored_moment_is_shown_in_the_programs_time_zone():
    assert local_moment("2026-03-01T00:00:00+03:00", "Europe/Moscow") == "2026-03-01T00:00"
    assert local_moment("2026-03-01T10:00:30+00:00", "Europe/Moscow") == "2026-03-01T13:00:30"
    assert local_moment(None, "Europe/Moscow") == ""


# — languages —


def test_every_text_of_the_campaign_pages_is_in_russian():
    """Each message of the campaign templates — a plural one in each of Russian's three
    forms — and each audit action of this module has a Russian translation."""
    russian = i18n.translations("ru")
    singular: set[str] = set(ACTIONS)
    plurals: set[tuple[str, str]] = set()
    options = {"extensions": "jinja2.ext.i18n"}
    for name in MY_TEMPLATES:
        path = ROOT / "kopilka" / "mechanics" / "coupons" / "templates" / name
        found = extract_from_file("jinja2.ext:babel_extract", path, options=options)
        for _, message, _, _ in found:
            if isinstance(message, str):
                singular.add(message)
            else:
                plurals.add((message[0], message[1]))
    assert sorted(m for m in singular if russian.gettext(m) == m) == []
    assert plurals, "the batch message is a plural"
    for one, many in plurals:
        forms = {russian.ngettext(one, many, n) for n in (1, 3, 5)}
        assert len(forms) == 3, f"{one!r} needs Russian's three plural forms"


@pytest.mark.parametrize(
    ("language", "count", "text"),
    [
        ("en", 1, "1 code is generated."),
        ("en", 25, "25 codes are generated."),
        ("ru", 1, "Создан 1 код."),
        ("ru", 21, "Создан 21 код."),
        ("ru", 3, "Создано 3 кода."),
        ("ru", 11, "Создано 11 кодов."),
        ("ru", 1000, "Создано 1\xa0000 кодов."),
    ],
)
def test_the_batch_message_has_the_plural_of_its_count(language, count, text):
    i18n.use_language(language)
    try:
        source = (
            "{% trans count=made|int, number=made|int|number %}{{ number }} code is generated."
            "{% pluralize count %}{{ number }} codes are generated.{% endtrans %}"
        )
        assert templates.from_string(source).render(made=str(count)) == text
    finally:
        i18n.use_language(i18n.DEFAULT_LANGUAGE)


def test_the_campaign_pages_speak_russian(client, stocked):
    stored_spring(stocked)
    sign_in(client, "marketer")
    assert "Новая кампания" in client.get(COUPONS + "?lang=ru").text
    form_page = client.get(COUPONS + "/new").text
    assert "Создать кампанию" in form_page
    assert "Сколько" in form_page
    page = client.get(COUPONS + "/spring").text
    assert "Изменить кампанию" in page
    answer = client.post(COUPONS + "/spring/batches", data={"csrf": csrf_of(page), "count": "3"})
    assert "Создано 3 кода." in answer.text
    edit = client.get(COUPONS + "/spring/edit").text
    edited = client.post(COUPONS + "/spring", data={
        "csrf": csrf_of(edit), "effect.kind": "percent", "effect.value": "15"})  # fmt: skip
    assert "Изменения сохранены" in edited.text
    sign_in(client, "admin")
    audit = client.get("/console/zerno/audit").text
    assert "кампания купонов изменена" in audit


def test_a_campaign_made_from_the_form_takes_batches(stocked):
    document, _ = campaign_document(CampaignForm.typed(spring()))
    console_coupons.create_campaign(stocked, marketer_of(stocked), new_campaign(document), NOW)
    made, _ = create_batch(stocked, "zerno", "spring", {"count": 2}, actor="test", now=NOW)
    assert made["count"] == 2
