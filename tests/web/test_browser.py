"""End to end in a real browser: Debian's headless Chromium driven by Playwright, against
the real app served by uvicorn (SQLite). Every page is saved as a screenshot under
test-artifacts/screenshots/, and any console error in a page fails the test.

Without /usr/bin/chromium these tests are skipped, except under CI=true where its
absence is a failure (`.ci/run` installs it).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from kopilka.mechanics.coupons.handlers import create_campaign
from tests import conftest
from tests.databases import Templates
from tests.store.conftest import NOW
from tests.web.conftest import PASSWORD, console_app, served, stocked_sqlite

# Debian's Chromium (tests/conftest.py), and a whole page's screenshot; test_browser_coupons
# takes them from here
browser = conftest.browser
snap = conftest.snap


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory, templates: Templates) -> Iterator[Engine]:
    engine = stocked_sqlite(templates, tmp_path_factory.mktemp("web") / "kopilka.sqlite3")
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def server(database: Engine) -> Iterator[str]:
    """The app on a free port, served by uvicorn in a thread, as `kopilka serve` serves it."""
    with served(console_app(database)) as url:
        yield url


@pytest.fixture
def page(browser, server):
    """A fresh page (its own cookies) that records every console error and failed load."""
    context = browser.new_context(base_url=server, locale="en-US")
    opened = context.new_page()
    errors: list[str] = []
    opened.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.on("requestfailed", lambda r: errors.append(f"{r.url}: {r.failure}"))
    yield opened
    context.close()
    assert errors == [], f"the page reported errors: {errors}"


def sign_in(page, role: str = "admin") -> None:
    page.goto("/console/login")
    snap(page, "01-login")
    page.fill("input[name=program]", "zerno")
    page.fill("input[name=email]", f"{role}@zerno.example")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/console/zerno/")


def test_an_admin_signs_in_and_reads_the_dashboard(page):
    sign_in(page)
    assert page.text_content("#members-count") == "2"
    assert page.locator("#points-chart rect.accrued").count() == 30
    snap(page, "02-dashboard")


def test_support_finds_a_member_reads_why_and_adjusts_with_a_reason(page):
    sign_in(page, "support")
    page.click("nav >> text=Members")
    page.fill("input[name=q]", "анна")
    page.click("form.search button")
    page.wait_for_selector("#found")
    snap(page, "03-members-search")
    page.click("#found >> text=100001")
    page.wait_for_selector("#history")
    # htmx puts the purchase's explanation into the profile, without leaving it
    page.click("#history a.explain-link")
    explained = page.wait_for_selector(".explain")
    assert "card-5" in explained.text_content()
    assert "K = 5" in explained.text_content()
    assert "/members/" in page.url
    snap(page, "04-member-explained")
    page.fill("#adjust input[name=points]", "10")
    page.fill("#adjust input[name=reason]", "a receipt the till lost")
    page.click("#adjust button")
    page.wait_for_selector("#adjusted")
    assert page.text_content("#available") == "24.50"
    snap(page, "05-member-adjusted")
    page.click("nav >> text=Audit log")
    page.wait_for_selector("#audit")
    assert "a receipt the till lost" in page.text_content("#audit")
    snap(page, "06-audit")


def test_the_language_switch_turns_the_console_russian(page):
    sign_in(page)
    page.click("#lang-ru")
    page.wait_for_selector("html[lang=ru]")
    assert page.text_content("nav") is not None
    assert "Сводка" in page.text_content("nav")
    page.goto("/console/zerno/members/1")
    assert "доступно баллов" in page.text_content("main")
    assert "," in (page.text_content("#available") or "")  # the Russian decimal comma
    snap(page, "07-member-ru")


def test_an_admin_blocks_a_member_generates_codes_and_manages_keys(page, database):
    autumn = {"code": "autumn", "kind": "unique", "name": "Autumn", "effect": {"percent": 5}}
    create_campaign(database, "zerno", autumn, actor="test", now=NOW)
    sign_in(page)
    page.goto("/console/zerno/members/2")
    page.click("#block")
    page.wait_for_selector("#blocked")
    assert page.text_content("#member-status") == "blocked"
    snap(page, "08-member-blocked")
    page.click("#unblock")
    page.wait_for_selector("#unblocked")
    assert page.text_content("#member-status") == "active"
    page.click("nav >> text=Coupons")
    page.wait_for_selector("#campaigns")
    snap(page, "09-coupons")
    page.click("#campaigns >> text=autumn")
    page.wait_for_selector("#generate")
    page.fill("#generate input[name=count]", "25")
    page.click("#generate button")
    page.wait_for_selector("#made")
    assert page.text_content("#codes-generated") == "25"
    assert page.locator("#batches tbody tr").count() == 1
    snap(page, "10-campaign-batch")
    page.click("nav >> text=Keys")
    page.wait_for_selector("#create-key")
    page.select_option("#create-key select[name=role]", "pos")
    page.fill("#create-key input[name=location]", "kiosk")
    page.fill("#create-key input[name=label]", "till 1")
    page.click("#create-key button")
    page.wait_for_selector("#new-key")
    key = page.text_content("#new-key") or ""
    assert key.startswith("kpk_")
    snap(page, "11-key-created")
    page.goto("/console/zerno/keys")
    assert key not in page.content()
    page.click("#keys tr:has-text('till 1') form.revoke button")
    page.wait_for_selector("#revoked")
    assert page.locator("#keys tr:has-text('till 1') form.revoke").count() == 0
    snap(page, "12-key-revoked")
    page.click("nav >> text=Audit log")
    audit = page.text_content("#audit") or ""
    for action in ("member blocked", "member unblocked", "coupon codes generated",
                   "access key created", "access key revoked"):  # fmt: skip
        assert action in audit
    snap(page, "13-audit-actions")
