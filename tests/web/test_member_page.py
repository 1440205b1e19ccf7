"""The member page (issue 8): personal links, what the page shows, and the page itself —
through the services and HTTP on SQLite and PostgreSQL, and in Debian's Chromium, where
the QR code and the barcode on the rendered page are decoded back to the card number.

Without /usr/bin/chromium, playwright or zxing-cpp the browser tests are skipped, except
under CI=true where their absence is a failure (`.ci/run` installs them).

Revoking links, their listing and the API's roles: `tests/web/test_member_links.py`.
"""

from __future__ import annotations

import contextvars
import hashlib
import os
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from babel.messages.extract import extract_from_file
from fastapi import FastAPI
from fastapi.testclient import TestClient
from itsdangerous import URLSafeSerializer, URLSafeTimedSerializer
from sqlalchemy import Engine

from kopilka.kernel.errors import Conflict, InvalidInput, NotFound
from kopilka.mechanics.coupons.handlers import (
    code_page,
    create_batch,
    create_campaign,
    issue_coupon,
    update_campaign,
)
from kopilka.members import balances
from kopilka.members import page as member_page
from kopilka.members.balances import adjust
from kopilka.members.handlers import erase_member, register_member, set_member_status
from kopilka.members.links import (
    SALT,
    BadLink,
    ExpiredLink,
    RevokedLink,
    member_link,
    member_view,
    read_token,
    signed_target,
)
from kopilka.platform.console import i18n
from tests.api.conftest import key_for, serving_engine
from tests.conftest import ROOT, needed
from tests.databases import Templates
from tests.store.conftest import NOW
from tests.web.conftest import SECRET, console_app, served, stocked_sqlite

BASE = "https://kopilka.example"
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def member_app(engine: Engine) -> FastAPI:
    """The app with the console and the member page, as `create_app` mounts them."""
    return console_app(engine)


def link(engine: Engine, ref: str = "card:100001", **kw: Any) -> str:
    kw.setdefault("now", NOW)
    return member_link(engine, "zerno", ref, base_url=BASE, secret=SECRET, **kw)


def token_of(url: str) -> str:
    return url.rsplit("/m/", 1)[1]


def with_coupons(engine: Engine) -> list[str]:
    """Анна holds a coupon of `spring` and, issued later, one of `winter`; winter is
    then paused. The codes, spring's first."""
    codes = []
    for campaign in ("spring", "winter"):
        create_campaign(engine, "zerno", {"code": campaign, "kind": "unique", "name": campaign,
                                          "effect": {"percent": 10}},
                        actor="test", now=NOW)  # fmt: skip
        create_batch(engine, "zerno", campaign, {"count": 1}, actor="test", now=NOW)
        code = code_page(engine, "zerno", campaign)["items"][0]["code"]
        issue_coupon(engine, "zerno", code, {"member": "card:100001", "channel": "sms"}, now=NOW)
        codes.append(code)
    update_campaign(engine, "zerno", "winter", {"paused": True}, now=NOW)
    return codes


SEVEN_DIGITS, NINE_DIGITS = "card:100007", "card:100009"  # see with_big_balances


def with_big_balances(engine: Engine) -> None:
    """Two members with long balances: Вера's 1,234,567.89 points were earned a day at a
    time for a year (so points expire on 365 days), Глеб's 123,456,789.12 at once."""
    register_member(engine, "zerno", {"card": "100007", "name": "Вера"}, now=NOW)
    register_member(engine, "zerno", {"card": "100009", "name": "Глеб"}, now=NOW)
    daily = Decimal("12.50")
    first = Decimal("1234567.89") - daily * 364
    for day in range(365):
        points = first if day == 0 else daily
        adjust(engine, "zerno", SEVEN_DIGITS, {"points": str(points), "reason": "test",
                                               "adjustment_id": f"day-{day}"},
               actor="test", now=NOW + timedelta(days=day))  # fmt: skip
    adjust(engine, "zerno", NINE_DIGITS, {"points": "123456789.12", "reason": "test"},
           actor="test", now=NOW)  # fmt: skip


# — links —


def test_a_link_names_the_program_and_member_and_expires(stocked: Engine) -> None:
    url = link(stocked, days=30)
    assert url.startswith(f"{BASE}/m/")
    target = read_token(stocked, token_of(url), secret=SECRET, now=NOW + timedelta(days=29))
    assert (target.program, target.member_id) == ("zerno", 1)
    assert target.expires_at == NOW + timedelta(days=30)
    with pytest.raises(ExpiredLink):
        read_token(stocked, token_of(url), secret=SECRET, now=NOW + timedelta(days=30))
    forever = read_token(stocked, token_of(link(stocked, days=None)), secret=SECRET,
                         now=NOW + timedelta(days=10_000))  # fmt: skip
    assert forever.expires_at is None


def test_a_link_not_signed_by_us_opens_nothing(stocked: Engine) -> None:
    token = token_of(link(stocked, days=None))
    ours = URLSafeSerializer(SECRET, salt=SALT, signer_kwargs={"digest_method": hashlib.sha256})
    link_id = ours.loads(token)["l"]
    assert read_token(stocked, ours.dumps({"l": link_id, "p": "zerno", "m": 1, "e": None}),
                      secret=SECRET, now=NOW)  # fmt: skip
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    bad = [
        tampered,
        token_of(member_link(stocked, "zerno", "1", base_url=BASE, secret="another", now=NOW)),
        # a payload naming another member, with the old signature
        URLSafeSerializer("x", salt="y")
        .dumps({"l": link_id, "p": "zerno", "m": 2, "e": None})
        .split(".")[0]
        + "."
        + token.split(".")[1],
        # the console's session cookie, signed with the same secret but its own salt
        URLSafeTimedSerializer(SECRET, salt="kopilka.console.session").dumps(
            {"c": "x", "o": 1, "l": None}
        ),
        # well signed, but not what a link holds
        ours.dumps([1]),
        ours.dumps({"l": link_id, "p": "zerno", "m": "1", "e": None}),
        ours.dumps({"l": link_id, "p": "zerno", "m": 1, "e": "never"}),
        ours.dumps({"l": link_id, "p": "zerno", "m": 1, "e": 10**20}),
        ours.dumps({"l": "../" * 3, "p": "zerno", "m": 1, "e": None}),
        # a link made before links were kept (no id), or an id that is no row
        ours.dumps({"p": "zerno", "m": 1, "e": None}),
        ours.dumps({"l": "A" * 22, "p": "zerno", "m": 1, "e": None}),
        # the right link, said to be another member's, another program's or to end later
        ours.dumps({"l": link_id, "p": "zerno", "m": 2, "e": None}),
        ours.dumps({"l": link_id, "p": "north", "m": 1, "e": None}),
        ours.dumps({"l": link_id, "p": "zerno", "m": 1, "e": 4102444800}),
        "",
        "x" * 5000,
    ]
    for token_text in bad:
        with pytest.raises(BadLink):
            read_token(stocked, token_text, secret=SECRET, now=NOW)


def test_only_a_member_of_the_program_gets_a_link(stocked: Engine) -> None:
    with pytest.raises(NotFound):
        link(stocked, "card:999999")
    with pytest.raises(NotFound):
        member_link(stocked, "nope", "1", base_url=BASE, secret=SECRET, now=NOW)
    for days in (0, -1, 10_000, True, "30"):
        with pytest.raises(InvalidInput):
            link(stocked, days=days)
    url = link(stocked, "card:100002")
    erase_member(stocked, "zerno", "card:100002", actor="test", now=NOW)
    with pytest.raises(Conflict):
        link(stocked, "card:100002")
    with pytest.raises(RevokedLink):  # the erasure ended the links made before it
        read_token(stocked, token_of(url), secret=SECRET, now=NOW)
    target = signed_target(token_of(url), secret=SECRET)
    with pytest.raises(BadLink):  # and the page of an erased member opens nothing anyway
        member_view(stocked, "zerno", target.member_id, now=NOW)


# — what the page shows —


def test_the_view_has_balance_tier_progress_history_and_coupons(stocked: Engine) -> None:
    spring, winter = with_coupons(stocked)
    # the purchase of `stock` is booked at the clock's time: the tier window must hold it
    view = member_view(stocked, "zerno", 1, now=datetime.now(UTC))
    assert view.balance == balances.balance(stocked, "zerno", "card:100001")
    assert view.member["card"] == "100001"
    assert (view.program_name, view.currency, view.timezone) == ("Кофейня «Зерно»", "RUB",
                                                                  "Europe/Moscow")  # fmt: skip
    assert view.moves
    assert view.moves[0]["reason"] == "purchase.accrual"
    assert view.member["next_tier"]["code"] == "vip"
    [spend] = view.progress
    assert (spend.what, spend.need) == ("spend", Decimal(150000))
    assert Decimal(0) < spend.have < spend.need
    assert 0 <= spend.percent < 100
    # the usable coupon first, though the paused one was issued later
    assert [(c["code"], c["status"]) for c in view.coupons] == [(spring, "issued"),
                                                                (winter, "paused")]  # fmt: skip


# — over HTTP —


@pytest.fixture
def client(stocked: Engine) -> Iterator[TestClient]:
    with TestClient(member_app(serving_engine(stocked)), base_url="http://testserver") as c:
        yield c


def test_a_key_makes_a_link_that_opens_the_page(client: TestClient, stocked: Engine) -> None:
    headers = {"Authorization": f"Bearer {key_for(stocked, 'support')}"}
    path = "/v1/programs/zerno/members/card:100001/link"
    made = client.post(path, headers=headers, json={"days": 7})
    assert made.status_code == 201, made.text
    assert made.json()["url"].startswith("http://testserver/m/")
    assert made.json()["expires_at"] is not None
    page = client.get(made.json()["url"].removeprefix("http://testserver"),
                      headers={"Accept-Language": "en"})  # fmt: skip
    assert page.status_code == 200
    assert 'id="available">14.50<' in page.text
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert '<svg width="' in page.text
    assert 'id="card-qr"' in page.text
    assert 'id="card-barcode"' in page.text
    forever = client.post(path, headers=headers, json={"days": None}).json()
    assert forever["expires_at"] is None
    assert client.post(path, headers=headers).status_code == 201  # no body: a year


def test_the_link_route_keeps_roles_programs_and_bodies(client: TestClient,
                                                        stocked: Engine) -> None:  # fmt: skip
    path = "/v1/programs/zerno/members/{}/link"
    analyst = {"Authorization": f"Bearer {key_for(stocked, 'analyst')}"}
    admin = {"Authorization": f"Bearer {key_for(stocked, 'admin')}"}
    assert client.post(path.format("1"), headers=analyst).status_code == 403
    assert client.post(path.format("1")).status_code == 401
    assert client.post(path.format("card:404"), headers=admin).status_code == 404
    assert client.post("/v1/programs/other/members/1/link", headers=admin).status_code == 404
    for body in ({"days": 0}, {"days": "7"}, {"weeks": 1}, [1]):
        answer = client.post(path.format("1"), headers=admin, json=body)
        assert answer.status_code == 422, body
        assert answer.headers["content-type"] == "application/problem+json"


def test_a_bad_or_expired_link_is_a_friendly_page(client: TestClient, stocked: Engine) -> None:
    bad = client.get("/m/not-a-token", headers={"Accept-Language": "en"})
    assert bad.status_code == 404
    assert "This link does not open a card" in bad.text
    expired = token_of(link(stocked, now=NOW - timedelta(days=400)))
    gone = client.get(f"/m/{expired}", headers={"Accept-Language": "ru"})
    assert gone.status_code == 410
    assert "Срок действия ссылки истёк" in gone.text
    assert gone.headers["cache-control"] == "no-store"
    assert client.get("/m/" + "x" * 5000).status_code == 404


def test_the_page_speaks_russian_and_shows_a_blocked_card(client: TestClient,
                                                          stocked: Engine) -> None:  # fmt: skip
    with_coupons(stocked)
    set_member_status(stocked, "zerno", "card:100001", "blocked", now=NOW)
    page = client.get(f"/m/{token_of(link(stocked, days=None))}?lang=ru")
    assert page.status_code == 200
    assert '<html lang="ru">' in page.text
    assert 'id="available">14,50<' in page.text  # Babel: the Russian decimal comma
    assert "доступно баллов" in page.text
    assert "Мои купоны" in page.text
    assert "начисление за покупку" in page.text  # a reason from the console's catalog
    assert "можно использовать" in page.text
    assert "приостановлен" in page.text
    assert 'id="blocked"' in page.text
    english = client.get(
        f"/m/{token_of(link(stocked, days=None))}", headers={"Accept-Language": "en"}
    )
    assert "points available" in english.text
    assert "My coupons" in english.text


def test_the_card_svgs_hold_the_card_number() -> None:
    qr = str(member_page.qr_svg("100001"))
    assert qr.startswith("<svg")
    assert "<title>100001</title>" in qr
    bar = str(member_page.barcode_svg("A-<1>"))
    assert "<title>A-&lt;1&gt;</title>" in bar  # escaped


def test_every_text_of_the_member_page_is_in_russian() -> None:
    """Each message of the member templates (and each coupon status) has a Russian
    translation in `member.po`, or — for the shared ones — in the console's catalog."""
    folder = ROOT / "kopilka" / "platform" / "console" / "templates"
    wanted = {f"coupon.{status}" for status in ("issued", "available", "paused", "expired",
                                                "used", "revoked")}  # fmt: skip
    for name in ("member_base.html", "member_page.html", "member_page_error.html"):
        found = extract_from_file("jinja2.ext:babel_extract", folder / name,
                                  options={"extensions": "jinja2.ext.i18n"})  # fmt: skip
        wanted |= {message for _, message, _, _ in found if isinstance(message, str)}
    russian = member_page.translations("ru")
    untranslated = sorted(m for m in wanted if russian.gettext(m) == m)
    assert untranslated == []


# — on a phone: what the page keeps short (issue 15) —


def test_a_figure_is_sized_by_its_length() -> None:
    assert member_page.figure_size("14.50") == "chars-8"
    assert member_page.figure_size("1,234,567.89") == "chars-12"
    assert member_page.figure_size("1\u202f234\u202f567,89") == "chars-12"
    assert member_page.figure_size("123,456,789.12") == "chars-14"
    assert member_page.figure_size("9" * 40) == "chars-28"  # the longest step, at least


def test_only_figures_that_are_not_zero_are_shown() -> None:
    zeros = {"available": "0.00", "pending": "0.00", "held": "0.00"}
    assert member_page.figures_shown(zeros) == ["available"]  # the balance, even at 0
    some = {**zeros, "held": "3.00", "debt": "12.50"}
    assert member_page.figures_shown(some) == ["available", "held", "debt"]


def test_expiring_points_are_the_nearest_days_and_a_sum_of_the_rest() -> None:
    daily = [{"date": f"2027-03-{day:02}", "points": "12.50"} for day in range(31, 0, -1)]
    soon = member_page.expiring_soon(daily)
    assert [item["date"] for item in soon.nearest] == ["2027-03-01", "2027-03-02", "2027-03-03"]
    assert (soon.later_days, soon.later_points, soon.last_day) == (28, Decimal("350.00"),
                                                                   "2027-03-31")  # fmt: skip
    few = member_page.expiring_soon(daily[-2:])
    assert (len(few.nearest), few.later_days, few.last_day) == (2, 0, None)


def test_the_later_line_takes_the_plural_its_days_ask_for() -> None:
    later = ("later: %(num)s more day, until %(date)s", "later: %(num)s more days, until %(date)s")
    russian, english = member_page.translations("ru"), member_page.translations("en")
    said = [russian.ngettext(*later, n) % {"num": n, "date": "D"} for n in (1, 3, 5, 21, 362)]
    assert said == ["позже: ещё 1 день, до D", "позже: ещё 3 дня, до D", "позже: ещё 5 дней, до D",
                    "позже: ещё 21 день, до D", "позже: ещё 362 дня, до D"]  # fmt: skip
    assert english.ngettext(*later, 1) % {"num": 1, "date": "D"} == "later: 1 more day, until D"


def test_a_program_speaks_the_language_of_its_time_zone() -> None:
    language = member_page.program_language
    assert language("Europe/Moscow") == language("Asia/Yekaterinburg") == "ru"
    assert language("Asia/Almaty") == "ru"  # Kazakhstan: Russian is official too
    assert language("Europe/London") == language("America/New_York") == "en"
    for elsewhere in ("Europe/Berlin", "Europe/Kyiv", "UTC", "Nowhere/Atlantis"):
        assert language(elsewhere) == "en", elsewhere  # none we have: the default


def test_the_browser_language_wins_over_the_programs() -> None:
    choose = member_page.page_language
    assert choose(None, "", "ru") == "ru"
    assert choose(None, "de-DE,de;q=0.9,*;q=0.5", "ru") == "ru"  # nothing of ours
    assert choose(None, "en-US,en;q=0.9", "ru") == "en"
    assert choose(None, "de, en;q=0.1", "ru") == "en"  # however little it is wanted
    assert choose(None, "de, ru;q=0.5, en;q=0.8", "ru") == "en"
    assert choose("en", "ru", "ru") == "en"  # the switch first
    assert choose("xx", "", "ru") == "ru"


def test_the_page_is_in_the_programs_language_unless_the_browser_asks(
    client: TestClient, stocked: Engine
) -> None:
    url = f"/m/{token_of(link(stocked, days=None))}"
    bare = client.get(url)  # no Accept-Language at all
    assert bare.status_code == 200
    assert '<html lang="ru">' in bare.text
    assert "доступно баллов" in bare.text
    assert '<html lang="ru">' in client.get(url, headers={"Accept-Language": "de-DE"}).text
    english = client.get(url, headers={"Accept-Language": "en"})
    assert '<html lang="en">' in english.text
    assert "points available" in english.text
    switched = client.get(url + "?lang=en", headers={"Accept-Language": "ru"})
    assert '<html lang="en">' in switched.text
    expired = client.get(f"/m/{token_of(link(stocked, now=NOW - timedelta(days=400)))}")
    assert expired.status_code == 410
    assert "Срок действия ссылки истёк" in expired.text  # the program's language too
    assert '<html lang="en">' in client.get("/m/not-a-token").text  # no program: the default


def test_the_page_lists_a_year_of_expiring_points_in_four_lines(database: Engine) -> None:
    """On the browser tests' SQLite database (its members made once): how many lines the
    page has is no matter of the database."""
    with TestClient(member_app(database), base_url="http://testserver") as client:
        url = f"/m/{token_of(link(database, SEVEN_DIGITS, days=None))}"
        russian = client.get(url).text
        english = client.get(url, headers={"Accept-Language": "en"}).text
    assert 'id="available">1\u00a0234\u00a0567,89<' in russian
    assert 'id="pending"' not in russian  # zero: no box
    assert 'id="held"' not in russian
    expiring = russian[russian.index('id="expiring"') : russian.index('id="tier"')]
    assert expiring.count("<tr") == 1 + 3 + 1  # the heads, the nearest three days, the rest
    later = russian[russian.index('id="expiring-later"') : russian.index('id="tier"')]
    # the date in no-break spaces: it is never split over two lines
    assert "позже: ещё 362 дня, до 8\u00a0марта\u00a02028\u202fг." in later
    assert "4\u00a0525,00" in later
    assert "later: 362 more days, until March\u00a08,\u00a02028" in english
    assert "4,525.00" in english


# — in the browser —


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory, templates: Templates) -> Iterator[Engine]:
    db = stocked_sqlite(templates, tmp_path_factory.mktemp("member") / "kopilka.sqlite3")
    with_coupons(db)
    with_big_balances(db)
    yield db
    db.dispose()


@pytest.fixture(scope="module")
def server(database: Engine) -> Iterator[str]:
    with served(member_app(database)) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true and Chromium is not installed at /usr/bin/chromium")
        pytest.skip("Chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    sync_api = needed("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def errors() -> list[str]:
    """The page's console errors and failed loads; a test takes out those it expects."""
    return []


@pytest.fixture
def page(browser: Any, server: str, errors: list[str]) -> Iterator[Any]:
    """A fresh page that records every console error and failed load."""
    context = browser.new_context(base_url=server, locale="en-US", device_scale_factor=1)
    opened = context.new_page()
    opened.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.on("requestfailed", lambda r: errors.append(f"{r.url}: {r.failure}"))
    yield opened
    context.close()
    assert errors == [], f"the page reported errors: {errors}"


def snap(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def png_pixels(png: bytes) -> tuple[bytes, int, int]:
    """A PNG (8-bit grey, RGB or RGBA, not interlaced — as Chromium saves them) as one
    grey byte per pixel: what the decoder reads. Enough of PNG for a screenshot."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    position, data, header = 8, b"", b""
    while position < len(png):
        length, kind = struct.unpack(">I4s", png[position : position + 8])
        chunk = png[position + 8 : position + 8 + length]
        if kind == b"IHDR":
            header = chunk
        elif kind == b"IDAT":
            data += chunk
        position += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    assert (depth, interlace) == (8, 0), "a PNG kind this reader does not know"
    raw = zlib.decompress(data)
    stride = width * channels
    previous = bytearray(stride)
    grey = bytearray()
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, corner = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                guess = left + up - corner
                pa, pb, pc = abs(guess - left), abs(guess - up), abs(guess - corner)
                best = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + best) & 0xFF
        previous = line
        for x in range(width):
            pixel = line[x * channels : x * channels + min(channels, 3)]
            grey.append(sum(pixel) // len(pixel))
    return bytes(grey), width, height


def decoded(png: bytes, kind: str) -> list[str]:
    zxingcpp = needed("zxingcpp")
    grey, width, height = png_pixels(png)
    image = zxingcpp.ImageView(grey, width, height, zxingcpp.ImageFormat.Lum)
    formats = {"qr": zxingcpp.BarcodeFormat.QRCode, "code128": zxingcpp.BarcodeFormat.Code128}
    return [found.text for found in zxingcpp.read_barcodes(image, formats=formats[kind])]


def test_a_member_opens_their_link_and_a_cashier_scans_the_card(page: Any, database: Engine
                                                                 ) -> None:  # fmt: skip
    url = member_link(database, "zerno", "card:100001", base_url="", secret=SECRET, now=NOW,
                      days=None)  # fmt: skip
    page.goto(url)
    assert page.text_content("#available") == "14.50"
    assert page.text_content("#card-number") == "100001"
    assert page.locator("#coupons tbody tr").count() == 2
    assert "ready to use" in (page.text_content("#coupons tbody tr:first-child") or "")
    snap(page, "20-member-page")
    assert decoded(page.locator("#card-qr").screenshot(), "qr") == ["100001"]
    assert decoded(page.locator("#card-barcode").screenshot(), "code128") == ["100001"]
    page.click("#lang-ru")
    page.wait_for_selector("html[lang=ru]")
    assert page.text_content("#available") == "14,50"
    snap(page, "21-member-page-ru")


def test_an_expired_link_is_a_friendly_page_in_the_browser(page: Any, database: Engine,
                                                           errors: list[str]) -> None:  # fmt: skip
    url = member_link(database, "zerno", "card:100001", base_url="", secret=SECRET,
                      now=NOW - timedelta(days=400))  # fmt: skip
    answer = page.goto(url)
    assert answer is not None
    assert answer.status == 410
    assert "This link has expired" in (page.text_content("#link-problem") or "")
    snap(page, "22-member-link-expired")
    # Chromium logs the document's own 410 as a console error: that one is expected
    errors[:] = [e for e in errors if "status of 410" not in e]


# — on a phone (issue 15) —

# Widths the page is looked at: a small phone, the phone the outside check used, a desktop
SMALL_PHONE, PHONE, DESKTOP = 360, 420, 1280
HISTORY_BELOW = 1500  # px: how far down the history may start, a year of expiry or not


@contextmanager
def viewed(browser: Any, server: str, width: int, locale: str = "en-US") -> Iterator[Any]:
    """A page `width` px wide in a browser asking for `locale`; it must report no error
    (a style the content policy refused, say)."""
    context = browser.new_context(base_url=server, locale=locale, device_scale_factor=1,
                                  viewport={"width": width, "height": 800})  # fmt: skip
    opened, errors = context.new_page(), []
    opened.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    opened.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield opened
    finally:
        context.close()
    assert errors == [], f"the page reported errors: {errors}"


def assert_fits(page: Any, selector: str) -> None:
    """The figure's text is whole in its box (nothing scrolled off, no text outside its
    card) and the page does not scroll sideways."""
    box = page.eval_on_selector(
        selector,
        """element => {
        const range = document.createRange();
        range.selectNodeContents(element);
        const text = range.getBoundingClientRect(), card = element.closest('.figure')
            .getBoundingClientRect();
        return {scroll: element.scrollWidth, client: element.clientWidth,
                text: [text.left, text.right, text.top, text.bottom],
                card: [card.left, card.right, card.top, card.bottom],
                viewport: document.documentElement.clientWidth,
                page: document.documentElement.scrollWidth};
    }""",
    )
    assert box["scroll"] <= box["client"], (selector, box)
    left, right, top, bottom = box["text"]
    card_left, card_right, card_top, card_bottom = box["card"]
    assert card_left <= left < right <= card_right, (selector, box)
    assert card_top <= top < bottom <= card_bottom, (selector, box)
    assert 0 <= left < right <= box["viewport"], (selector, box)
    assert box["page"] <= box["viewport"], f"the page scrolls sideways: {box}"


# the smallest phone in Russian: its words and figures are the longest
@pytest.mark.parametrize(("width", "locale"), [(SMALL_PHONE, "ru-RU"), (PHONE, "en-US"),
                                               (DESKTOP, "en-US")])  # fmt: skip
def test_a_balance_of_any_length_fits_its_box(browser: Any, server: str, database: Engine,
                                              width: int, locale: str) -> None:  # fmt: skip
    with viewed(browser, server, width, locale) as page:
        for who in ("card:100001", SEVEN_DIGITS, NINE_DIGITS):
            page.goto(member_link(database, "zerno", who, base_url="", secret=SECRET, now=NOW,
                                  days=None))  # fmt: skip
            snap(page, f"23-member-{who[-1]}-at-{width}")  # before the checks: to look at
            assert_fits(page, "#available")
            assert page.locator(".figure").count() == 1  # nothing pending, held or owed
            # the coupons and the history fit their cards (they would scroll inside them)
            for table in page.locator(".scroll").all():
                assert table.evaluate("e => e.scrollWidth <= e.clientWidth"), (who, width)


@pytest.mark.parametrize(("width", "locale"), [(PHONE, "de-DE"), (DESKTOP, "en-US")])
def test_a_year_of_expiring_points_is_a_few_lines(browser: Any, server: str, database: Engine,
                                                  width: int, locale: str) -> None:  # fmt: skip
    url = member_link(database, "zerno", SEVEN_DIGITS, base_url="", secret=SECRET, now=NOW,
                      days=None)  # fmt: skip
    with viewed(browser, server, width, locale) as page:
        page.goto(url)
        snap(page, f"24-member-expiring-{width}")
        # a browser asking for German gets the program's language, not the default
        assert page.get_attribute("html", "lang") == ("ru" if locale == "de-DE" else "en")
        # the nearest days and one line summing the rest
        assert page.locator("#expiring tbody tr").count() == member_page.EXPIRING_SHOWN + 1
        history_top = page.eval_on_selector("#history", "e => e.getBoundingClientRect().top")
        assert history_top < HISTORY_BELOW, f"the history starts {history_top} px down"


@pytest.mark.parametrize("width", [SMALL_PHONE, DESKTOP])
def test_every_figure_fits(browser: Any, server: str, database: Engine, width: int) -> None:
    """Long figures pending, held and owed beside the balance, in Russian (a wider
    figure), on a small phone and a desktop — rendered from Вера's page with the figures
    swapped in, as no member here can hold points or owe them."""
    url = member_link(database, "zerno", SEVEN_DIGITS, base_url="", secret=SECRET, now=NOW)
    view = member_view(database, "zerno", signed_target(token_of(url), secret=SECRET).member_id,
                       now=NOW)  # fmt: skip
    figures = {"pending": "98765432.10", "held": "1234.50", "debt": "12.00"}
    swapped = replace(view, balance={**view.balance, **figures})

    def render() -> str:
        i18n.use_language("ru")  # in a copy of the context: no other test hears it
        return member_page.templates.get_template("member_page.html").render(
            language="ru", path="/m/x", **member_page.page_context(swapped, None)
        )

    html = contextvars.copy_context().run(render)
    with viewed(browser, server, width) as page:
        page.set_content(html)
        snap(page, f"25-member-figures-{width}-ru")
        for name in ("available", *figures):
            assert_fits(page, f"#{name}")
        assert "долг в баллах" in (page.text_content(".figures") or "")


def test_every_reason_points_move_for_is_in_russian() -> None:
    """The history names each movement by its reason: none is shown as its code."""
    from kopilka.kernel.ledger import Reason

    russian = member_page.translations("ru")
    assert [
        reason.value for reason in Reason if russian.gettext(reason.value) == reason.value
    ] == []
