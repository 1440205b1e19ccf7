"""In a real browser (Debian's Chromium): a member's page on a phone shows their stamp
cards with a progress bar, their challenges and badges — in Russian, inside the screen's
width, with no error in the page. Without Chromium or Playwright it is skipped (a
failure under CI=true)."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from kopilka.checkout.purchases import process_purchase
from kopilka.members.links import member_link
from kopilka.platform.files import load_document
from kopilka.programs.handlers import apply_program
from tests.conftest import EXAMPLES
from tests.databases import Templates
from tests.store.conftest import NOW
from tests.web.conftest import SECRET, console_app, served, stocked_sqlite
from tests.web.test_engagement_pages import BADGES, CHALLENGES, STAMPS

PHONE = {"width": 360, "height": 740}


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory, templates: Templates) -> Iterator[Engine]:
    db = stocked_sqlite(templates, tmp_path_factory.mktemp("engaged") / "kopilka.sqlite3")
    document = load_document(EXAMPLES / "zerno" / "program.yaml")
    assert isinstance(document, dict)
    document |= {"stamp_cards": STAMPS, "challenges": CHALLENGES, "badges": BADGES}
    apply_program(db, copy.deepcopy(document), actor="test", now=NOW)
    for n in range(4):  # 8 coffees: a reward, 2 of 6 on the card; 3 visits: the badge
        body = {
            "receipt_id": f"B-{n}",
            "location": "kiosk",
            "member": "card:100001",
            "lines": [{"sku": "CAP-300", "qty": 2}],
        }
        process_purchase(db, "zerno", body, now=NOW, actor="pos:test")
    yield db
    db.dispose()


def test_a_member_sees_their_cards_and_badges_on_a_phone(browser: Any, database: Engine) -> None:
    link = member_link(database, "zerno", "card:100001", base_url="http://testserver",
                       secret=SECRET, now=NOW, days=None)  # fmt: skip
    errors: list[str] = []
    with served(console_app(database)) as server:
        context = browser.new_context(viewport=PHONE, locale="ru-RU")
        page = context.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(server + link.removeprefix("http://testserver"))
        card = page.locator("#stamps-coffee")
        assert card.is_visible()
        assert "Кофейная карта" in card.inner_text()
        assert "2 из 6" in card.inner_text()
        bar = card.locator("[role=progressbar]")
        assert bar.get_attribute("aria-valuenow") == "2"
        assert page.locator("#challenge-three-visits").is_visible()
        assert page.locator("#badge-regular").inner_text().strip().startswith("Завсегдатай")
        if os.environ.get("KOPILKA_SCREENSHOTS"):  # for a person to look at
            page.screenshot(path=os.environ["KOPILKA_SCREENSHOTS"], full_page=True)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], (
            f"the page is {width} px wide on a {PHONE['width']} px screen"
        )
        context.close()
    assert errors == []
