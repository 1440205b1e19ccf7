"""The console's forms refuse text no field may hold (issue 15): a NUL or another control
character in any field — the same rule as the API's — is a 422 page and nothing is stored,
on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select

from kopilka.platform.console import i18n, pages
from kopilka.platform.tables import metadata
from tests.web.conftest import csrf_of, sign_in
from tests.web.test_rules_pages import RULES, edit, state

MEMBER = "/console/zerno/members/1"


def row_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {table.name: connection.execute(select(func.count()).select_from(table)).scalar_one()
                for table in metadata.sorted_tables}  # fmt: skip


@pytest.mark.parametrize("text", ["a gift\x00", "a\x1bgift", "a gift\x85"])
def test_a_control_character_in_a_form_field_refuses_the_form(client, stocked, text):
    sign_in(client, "support")
    before = row_counts(stocked)
    page = client.get(MEMBER).text
    answer = client.post(MEMBER + "/adjustments",
                         data={"csrf": csrf_of(page), "points": "10", "reason": text})  # fmt: skip
    assert answer.status_code == 422
    assert "nothing was saved" in answer.text
    assert "reason: the control character U+" in answer.text
    assert row_counts(stocked) == before
    assert client.get(MEMBER).status_code == 200


def test_a_textareas_line_breaks_are_text_but_a_nul_in_a_rule_is_refused(client):
    sign_in(client, "admin")
    page = client.get(RULES).text
    kept = edit(client, page, "happy-hours", "multiplier: 2\r\n")
    assert kept.status_code == 200, kept.text
    refused = edit(client, page, "happy-hours", "multiplier: 2\x00")
    assert refused.status_code == 422
    assert "then: the control character U+0000" in refused.text
    assert state(client.get(RULES).text)["draft"] == state(page)["draft"]


def test_the_refusal_reads_in_russian() -> None:
    assert i18n.translations("ru").gettext(pages.UNSTORABLE) != pages.UNSTORABLE
