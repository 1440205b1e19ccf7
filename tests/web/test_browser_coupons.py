"""Coupon campaigns end to end in a real browser (the fixtures of `test_browser`: Debian's
headless Chromium, the app served by uvicorn on SQLite, a console error fails the test,
screenshots under test-artifacts/screenshots/): a marketer creates a campaign and
generates its codes; support resends one of them to the member who holds it."""

from __future__ import annotations

from datetime import UTC, datetime

from kopilka.mechanics.coupons.handlers import (
    code_page,
    issue_coupon,
    read_campaign_of,
    read_coupon,
)
from tests.web import test_browser

# the browser, the served app and its database, a page that fails on console errors
database = test_browser.database
server = test_browser.server
browser = test_browser.browser
page = test_browser.page
sign_in, snap = test_browser.sign_in, test_browser.snap


def create_winter(page) -> None:
    """The marketer's new campaign, filled in as a person would (a comma for the point)."""
    page.click("nav >> text=Coupons")
    page.click("#new-campaign")
    page.wait_for_selector("#campaign-form")
    page.fill("#field-code", "winter")
    page.fill("#field-name", "Winter coffee")
    page.select_option("#field-effect-kind", "percent")
    page.fill("#field-effect-value", "12,5")
    page.fill("#field-effect-categories", "coffee")
    page.fill("#field-valid-until", "2099-12-31T23:59")
    page.fill("#field-limits-per_member", "2")
    page.fill("#field-conditions-min_sum", "300")
    snap(page, "20-campaign-new")
    page.click("#save")
    page.wait_for_selector("#saved")
    snap(page, "21-campaign-created")


def generate(page, count: str) -> str:
    page.fill("#generate input[name=count]", count)
    page.click("#generate button")
    page.wait_for_selector("#made")
    return page.text_content("#made") or ""


def test_a_marketer_creates_a_campaign_generates_codes_and_support_resends_one(page, database):
    sign_in(page, "marketer")
    create_winter(page)
    made = read_campaign_of(database, "zerno", "winter", now=datetime.now(UTC))
    assert (made["effect"]["percent"], made["conditions"]["min_sum"]) == ("12.5", "300.00")
    assert generate(page, "1") == "1 code is generated."
    assert generate(page, "3") == "3 codes are generated."
    assert page.text_content("#codes-generated") == "4"
    assert page.locator("#batches tbody tr").count() == 2
    snap(page, "22-campaign-batches")
    page.click("#lang-ru")
    page.wait_for_selector("html[lang=ru]")
    assert generate(page, "2") == "Создано 2 кода."
    assert page.text_content("#codes-generated") == "6"
    snap(page, "23-campaign-batches-ru")
    page.click("#lang-en")
    page.wait_for_selector("html[lang=en]")

    # set-up: one of the codes is given to Анна (card 100001) by SMS
    code = code_page(database, "zerno", "winter")["items"][0]["code"]
    issue_coupon(database, "zerno", code, {"member": "card:100001", "channel": "sms"},
                 now=datetime.now(UTC))  # fmt: skip

    sign_in(page, "support")
    page.goto("/console/zerno/members/1")
    row = page.locator(f"tr:has-text('{code}')")
    row.locator("select[name=channel]").select_option("email")
    snap(page, "24-member-coupon")
    row.locator("form.resend button").click()
    page.wait_for_selector("#resent")
    assert read_coupon(database, "zerno", code, now=datetime.now(UTC))["channel"] == "email"
    snap(page, "25-member-coupon-resent")
    page.click("nav >> text=Audit log")
    page.wait_for_selector("#audit")
    resent = page.locator("#audit td[data-action='coupon.resend']")
    assert resent.count() == 1
    assert "channel: email" in (page.text_content("#audit") or "")
    assert page.locator("#audit td[data-action='coupon.campaign.create']").count() == 1
    snap(page, "26-audit-resend")
