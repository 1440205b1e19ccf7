"""The worker and the clubs' clock: an automatic membership's period ending opens its
expected payment (once, however often the worker runs for that moment); a payment
recorded in the grace renews it from where the paid period ended; unpaid, it lapses when
the grace ends — and a membership renewed by hand lapses when its period ends."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from kopilka.ledger.verify import verify
from kopilka.mechanics.clubs import handlers as clubs
from kopilka.platform.worker import run_due_work
from tests.clubs.conftest import DAY, NOW, buy, member, pay, status_of

PAID_UNTIL = datetime.fromisoformat("2026-04-10T09:00:00+00:00")


def _events(engine: Engine, who: str, club: str = "wine") -> list[str]:
    history = clubs.membership_history(engine, "zerno", who, club, now=NOW)
    return [event["action"] for event in history["events"]]


def test_the_period_s_end_opens_the_expected_payment_once(cafe: Engine) -> None:
    who = member(cafe, "500001")
    pay(cafe, who)
    assert clubs.due_work(cafe, PAID_UNTIL - DAY) == {"clubs_renewals_due": 0, "clubs_lapsed": 0}
    assert clubs.due_work(cafe, PAID_UNTIL) == {"clubs_renewals_due": 1, "clubs_lapsed": 0}
    assert clubs.due_work(cafe, PAID_UNTIL) == {"clubs_renewals_due": 0, "clubs_lapsed": 0}
    expected = clubs.clubs_overview(cafe, "zerno", now=PAID_UNTIL)["expected_renewals"]
    assert [(r["club"], r["amount"], r["due_at"]) for r in expected] == [
        ("wine", "990.00", PAID_UNTIL.isoformat())]  # fmt: skip
    assert status_of(cafe, who, "wine", PAID_UNTIL + DAY) == "active"  # in its grace
    assert _events(cafe, who) == ["renewal_due", "join"]


def test_the_payment_recorded_in_the_grace_renews_from_the_period_s_end(cafe: Engine) -> None:
    who = member(cafe, "500002")
    pay(cafe, who)
    clubs.due_work(cafe, PAID_UNTIL)
    answer, _ = pay(cafe, who, at=PAID_UNTIL + 2 * DAY, reference="RENEW-1")
    assert answer["paid_until"] == "2026-05-10T09:00:00+00:00"
    assert answer["in_force_until"] == "2026-05-13T09:00:00+00:00"
    assert clubs.clubs_overview(cafe, "zerno", now=PAID_UNTIL)["expected_renewals"] == []
    assert clubs.due_work(cafe, PAID_UNTIL + 5 * DAY)["clubs_lapsed"] == 0
    assert _events(cafe, who) == ["renew", "renewal_due", "join"]
    assert buy(cafe, who, "TEA-400", at=PAID_UNTIL + 5 * DAY)["accrued"] == "4.50"


def test_unpaid_it_lapses_when_the_grace_ends_and_its_rule_stops(cafe: Engine) -> None:
    who = member(cafe, "500003")
    pay(cafe, who)
    clubs.due_work(cafe, PAID_UNTIL)
    grace_end = PAID_UNTIL + 3 * DAY
    assert clubs.due_work(cafe, grace_end - DAY)["clubs_lapsed"] == 0
    assert clubs.due_work(cafe, grace_end) == {"clubs_renewals_due": 0, "clubs_lapsed": 1}
    assert clubs.due_work(cafe, grace_end) == {"clubs_renewals_due": 0, "clubs_lapsed": 0}
    assert status_of(cafe, who, "wine", grace_end) == "lapsed"
    assert _events(cafe, who) == ["lapse", "renewal_due", "join"]
    assert buy(cafe, who, "TEA-400", at=grace_end + DAY)["accrued"] == "1.50"
    overview = clubs.clubs_overview(cafe, "zerno", now=grace_end)
    wine = overview["clubs"][0]
    assert (wine["members"], wine["joins"], wine["lapses"]) == (0, 1, 1)
    assert overview["expected_renewals"] == []
    # paying after the lapse starts a new membership
    again, _ = pay(cafe, who, at=grace_end + 2 * DAY)
    assert again["since"] == (grace_end + 2 * DAY).isoformat()
    assert verify(cafe)[1] == []


def test_a_membership_renewed_by_hand_lapses_at_its_period_s_end(cafe: Engine) -> None:
    who = member(cafe, "500004")
    answer, _ = pay(cafe, who, "trial", amount="100.00")
    assert answer["paid_until"] == (NOW + 10 * DAY).isoformat()
    assert answer["auto_renew"] is False
    assert clubs.due_work(cafe, NOW + 10 * DAY) == {"clubs_renewals_due": 0, "clubs_lapsed": 1}
    assert _events(cafe, who, "trial") == ["lapse", "join"]


def test_the_kopilka_worker_runs_the_clubs_due_work(cafe: Engine) -> None:
    who = member(cafe, "500005")
    pay(cafe, who)
    done = run_due_work(cafe, now=PAID_UNTIL + 3 * DAY)
    assert done["clubs_renewals_due"] == 1
    assert done["clubs_lapsed"] == 1
    assert status_of(cafe, who, "wine", PAID_UNTIL + 3 * DAY) == "lapsed"
