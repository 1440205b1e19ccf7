"""A coalition's partners and their money, on SQLite and PostgreSQL: the partner each
purchase was made at, statements from the ledger that reconcile to it to the kopeck,
cross-partner flows, a prepaid partner's blocks running out, a partner's exit (earning
stops, then redeeming, and its outstanding points move), and statements that never
change once closed."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, select

from kopilka.checkout.purchases import process_purchase, settle_hold
from kopilka.checkout.refunds import refund_purchase
from kopilka.kernel.errors import Conflict, InvalidInput
from kopilka.ledger.verify import verify
from kopilka.mechanics.coalition import handlers
from kopilka.mechanics.coalition.model import PrepaidExhausted
from kopilka.mechanics.coalition.tables import purchase_partners
from kopilka.members.handlers import register_member
from kopilka.platform.files import load_document
from kopilka.platform.tables import purchase_awards, purchases
from kopilka.programs.handlers import apply_program
from tests.conftest import EXAMPLES
from tests.store.conftest import at_once, require_postgresql

MARCH = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
APRIL = datetime(2026, 4, 10, 9, 0, tzinfo=UTC)
LATER = datetime(2026, 8, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def alliance(engine: Engine) -> Engine:
    document = load_document(EXAMPLES / "coalition" / "program.yaml")
    apply_program(engine, document, actor="test", now=datetime(2026, 1, 1, tzinfo=UTC))
    for card in ("100001", "100002"):
        register_member(engine, "alliance", {"card": card}, now=MARCH)
    return engine


def buy(
    engine: Engine, receipt: str, location: str, amount: str, *, now: datetime = MARCH,
    redeem: str | None = None, card: str = "100001", hold: bool = False,
) -> dict[str, Any]:  # fmt: skip
    body: dict[str, Any] = {
        "receipt_id": receipt, "location": location, "member": f"card:{card}",
        "at": now.isoformat(), "lines": [{"sku": "ITEM", "qty": 1, "price": amount}],
    }  # fmt: skip
    if redeem is not None:
        body["redeem"] = redeem
    if hold:
        body["hold"] = True
    return process_purchase(engine, "alliance", body, now=now, actor="test").answer


def block(engine: Engine, points: str, reference: str, *, now: datetime = MARCH) -> None:
    handlers.buy_block(engine, "alliance", "books", {"points": points, "price": "950.00",
                                                      "reference": reference},
                       actor="test", now=now)  # fmt: skip


def close(engine: Engine, partner: str, first: str | None, last: str, *,
          now: datetime = LATER) -> dict[str, Any]:  # fmt: skip
    body = {"until": last} | ({"from": first} if first else {})
    return handlers.close_statement(engine, "alliance", partner, body, actor="test", now=now)


def sound(engine: Engine) -> None:
    _checks, found = verify(engine)
    assert found == []


def test_a_purchase_records_its_partner_and_a_burning_partner_earns_nothing(
    alliance: Engine,
) -> None:
    earned = buy(alliance, "C-1", "cafe-1", "1000.00")
    assert earned["accrued"] == "50.00"
    at_fuel = buy(alliance, "F-1", "fuel-1", "400.00", redeem="30.00")
    assert (at_fuel["accrued"], at_fuel["redeemed"]) == ("0.00", "30.00")
    assert {entry["rule"] for entry in at_fuel["lines"][0]["explain"]} == {
        "partner:fuel:does_not_earn"
    }
    with alliance.connect() as connection:
        partners = dict(
            connection.execute(select(purchase_partners.c.purchase_id, purchase_partners.c.partner))
            .tuples()
            .all()
        )
    assert sorted(partners.values()) == ["cafe", "fuel"]
    june = datetime(2026, 6, 10, 9, 0, tzinfo=UTC)
    buy(alliance, "S-1", "shoes-1", "100.00", now=june)
    with alliance.connect() as connection:
        funders = set(connection.execute(
            select(purchases.c.receipt_id, purchase_awards.c.funded_by)
            .join(purchase_awards, purchase_awards.c.purchase_id == purchases.c.id)
            .where(purchase_awards.c.kind == "accrual")).tuples().all())  # fmt: skip
    assert {("C-1", "cafe"), ("S-1", "shoes:60")} <= funders
    sound(alliance)


def test_statements_reconcile_to_the_ledger_with_the_cross_partner_flows(
    alliance: Engine,
) -> None:
    buy(alliance, "C-1", "cafe-1", "2000.00")  # 100.00 points earned at the café
    buy(alliance, "F-1", "fuel-1", "500.00", redeem="60.00")  # 60 of them spent at the fuel
    refunded = buy(alliance, "C-2", "cafe-1", "400.00")  # 20.00 more, then returned
    refund_purchase(alliance, "alliance", refunded["purchase_id"], {"refund_id": "R-1"},
                    actor="test", now=MARCH)  # fmt: skip
    cafe = close(alliance, "cafe", "2026-03-01", "2026-03-31")
    assert cafe["points"] == {"issued": "100.00", "redeemed": "0.00",
                              "earned_here_spent_elsewhere": "60.00",
                              "earned_elsewhere_spent_here": "0.00"}  # fmt: skip
    # 100 points × 1.00, the period's fee; nothing redeemed there, so no fee on it
    assert cafe["lines"] == [
        {"what": "points issued, funded by the partner", "amount": "100.00"},
        {"what": "fee for the period", "amount": "1000.00"},
    ]
    assert (cafe["opening"], cafe["closing"]) == ("0.00", "1100.00")
    fuel = close(alliance, "fuel", "2026-03-01", "2026-03-31")
    assert fuel["points"]["redeemed"] == "60.00"
    assert fuel["points"]["earned_elsewhere_spent_here"] == "60.00"
    assert fuel["lines"] == [{"what": "points redeemed, reimbursed", "amount": "-51.00"}]
    assert fuel["closing"] == "-51.00"  # owed to the fuel station: 60 × 0.85
    sound(alliance)


def test_a_closed_statement_never_changes_and_corrections_land_in_the_next(
    alliance: Engine,
) -> None:
    buy(alliance, "C-1", "cafe-1", "1000.00")
    march = close(alliance, "cafe", "2026-03-01", "2026-03-31")
    with pytest.raises(InvalidInput, match="next begins 2026-04-01"):
        close(alliance, "cafe", "2026-03-01", "2026-03-31")
    handlers.add_correction(alliance, "alliance", "cafe",
                            {"amount": "-250.00", "note": "disputed March receipts"},
                            actor="test", now=LATER)  # fmt: skip
    buy(alliance, "C-2", "cafe-1", "600.00", now=APRIL)
    april = close(alliance, "cafe", None, "2026-04-30", now=datetime(2026, 8, 6, tzinfo=UTC))
    assert april["opening"] == march["closing"] == "1050.00"
    assert {"what": "correction: disputed March receipts", "amount": "-250.00"} in april["lines"]
    assert april["closing"] == "1830.00"  # 1050 + 30 issued + 1000 fee − 250
    again = handlers.read_statement(alliance, "alliance", "cafe", march["id"])
    assert again == march
    with pytest.raises(Conflict, match="closed once its period is over"):
        close(alliance, "cafe", None, "2026-12-31")
    sound(alliance)


def test_a_prepaid_partner_s_blocks_run_out_and_earning_stops_cleanly(
    alliance: Engine,
) -> None:
    with pytest.raises(PrepaidExhausted, match=r"0\.00 prepaid points left"):
        buy(alliance, "B-0", "books-1", "100.00")
    block(alliance, "30.00", "PAY-1")
    block(alliance, "30.00", "PAY-1")  # the same payment again: one block
    assert buy(alliance, "B-1", "books-1", "400.00")["accrued"] == "20.00"
    with pytest.raises(PrepaidExhausted, match=r"10\.00 prepaid points left"):
        buy(alliance, "B-2", "books-1", "400.00")
    assert buy(alliance, "B-3", "books-1", "200.00")["accrued"] == "10.00"  # the last of it
    with pytest.raises(PrepaidExhausted):
        buy(alliance, "B-4", "books-1", "20.00")
    bought = buy(alliance, "B-5", "cafe-1", "100.00")  # other partners earn on
    assert bought["accrued"] == "5.00"
    spent_only = buy(alliance, "B-6", "books-1", "20.00", redeem="20.00")  # paid in full
    assert spent_only["accrued"] == "0.00"
    first = buy(alliance, "B-1", "books-1", "400.00")  # a replay: no second draw
    refund_purchase(alliance, "alliance", first["purchase_id"], {"refund_id": "R-1"},
                    actor="test", now=MARCH)  # fmt: skip
    position = handlers.position(alliance, "alliance", "books")
    assert position["prepaid"]["left"] == "20.00"  # the refund gave its 20 back
    held = buy(alliance, "B-7", "books-1", "400.00", hold=True)
    assert handlers.position(alliance, "alliance", "books")["prepaid"]["left"] == "0.00"
    settle_hold(alliance, "alliance", held["purchase_id"], "cancel", actor="test", now=MARCH)
    assert handlers.position(alliance, "alliance", "books")["prepaid"]["left"] == "20.00"
    books = close(alliance, "books", "2026-03-01", "2026-03-31")
    assert {"what": "prepaid block PAY-1", "amount": "950.00"} in books["lines"]
    assert books["points"]["issued"] == "10.00"  # 20 + 10 earned, 20 refunded
    sound(alliance)


def test_racing_purchases_for_a_block_s_last_points_cannot_both_have_them(
    alliance: Engine,
) -> None:
    if alliance.dialect.name != "postgresql":
        require_postgresql()
        pytest.skip("the race is PostgreSQL's: SQLite writes one at a time")
    block(alliance, "20.00", "PAY-1")

    def race(receipt: str) -> str:
        try:
            return str(buy(alliance, receipt, "books-1", "400.00")["accrued"])
        except PrepaidExhausted:
            return "refused"

    results = at_once(lambda: race(f"R-{datetime.now(UTC).timestamp()}"), times=4)
    assert sorted(results) == ["20.00", "refused", "refused", "refused"]
    assert handlers.position(alliance, "alliance", "books")["prepaid"]["left"] == "0.00"
    sound(alliance)


def test_a_partner_s_exit_stops_earning_then_redeeming_and_moves_its_points(
    alliance: Engine,
) -> None:
    june = datetime(2026, 6, 10, 9, 0, tzinfo=UTC)
    buy(alliance, "S-1", "shoes-1", "2000.00", now=june)  # 100 points at the shoe shop
    july = datetime(2026, 7, 10, 9, 0, tzinfo=UTC)
    after = buy(alliance, "S-2", "shoes-1", "1000.00", now=july, redeem="10.00")
    assert (after["accrued"], after["redeemed"]) == ("0.00", "10.00")
    assert {entry["rule"] for entry in after["lines"][0]["explain"]} == {
        "partner:shoes:earning_ended"
    }
    gone = buy(alliance, "S-3", "shoes-1", "1000.00", now=LATER)
    assert (gone["accrued"], gone["max_redeemable"]) == ("0.00", "0.00")
    for taker, reason in (("fuel-x", "is not a partner"), ("shoes", "its own points")):
        with pytest.raises(InvalidInput, match=reason):
            handlers.move_liability(alliance, "alliance", "shoes", {"to": taker}, actor="t",
                                    now=LATER)  # fmt: skip
    moved = handlers.move_liability(alliance, "alliance", "shoes",
                                    {"to": "cafe", "note": "shoes left the coalition"},
                                    actor="test", now=LATER)  # fmt: skip
    assert (moved["points"], moved["value"]) == ("90.00", "81.00")  # 90 × 0.90
    assert handlers.position(alliance, "alliance", "shoes")["outstanding_points"] == "0.00"
    with pytest.raises(Conflict, match="moved already"):
        handlers.move_liability(alliance, "alliance", "shoes", {"to": "program"}, actor="t",
                                now=LATER)  # fmt: skip
    spent = buy(alliance, "C-1", "cafe-1", "100.00", now=LATER, redeem="50.00")
    assert spent["redeemed"] == "50.00"
    august = datetime(2026, 9, 2, tzinfo=UTC)
    shoes = close(alliance, "shoes", "2026-08-01", "2026-08-31", now=august)
    assert {"what": "outstanding points moved to cafe", "amount": "81.00"} in shoes["lines"]
    cafe = close(alliance, "cafe", "2026-08-01", "2026-08-31", now=august)
    assert {"what": "outstanding points taken over from shoes", "amount": "-81.00"} in cafe["lines"]
    # the points the café took over count as its own when spent there
    assert cafe["points"]["earned_elsewhere_spent_here"] == "0.00"
    assert Decimal(cafe["points"]["redeemed"]) == Decimal("50.00")
    sound(alliance)


def test_a_refunded_redemption_is_no_cross_partner_flow(alliance: Engine) -> None:
    buy(alliance, "C-1", "cafe-1", "2000.00")
    spent = buy(alliance, "F-1", "fuel-1", "500.00", redeem="60.00")
    refund_purchase(alliance, "alliance", spent["purchase_id"],
                    {"refund_id": "R-1", "lines": [{"n": 0, "qty": "0.5"}]},
                    actor="test", now=MARCH)  # fmt: skip
    march = {"from": "2026-03-01", "until": "2026-03-31"}
    half = handlers.draft_statement(alliance, "alliance", "fuel", march, now=LATER)
    assert half["points"]["redeemed"] == half["points"]["earned_elsewhere_spent_here"] == "30.00"
    refund_purchase(alliance, "alliance", spent["purchase_id"], {"refund_id": "R-2"},
                    actor="test", now=MARCH)  # fmt: skip
    fuel = close(alliance, "fuel", "2026-03-01", "2026-03-31")
    assert fuel["points"]["redeemed"] == "0.00"
    assert fuel["points"]["earned_elsewhere_spent_here"] == "0.00"
    cafe = close(alliance, "cafe", "2026-03-01", "2026-03-31")
    assert cafe["points"]["earned_here_spent_elsewhere"] == "0.00"
    sound(alliance)


def test_a_whole_coalition_s_period_is_closed_at_once(alliance: Engine) -> None:
    buy(alliance, "C-1", "cafe-1", "2000.00")
    buy(alliance, "F-1", "fuel-1", "500.00", redeem="60.00")
    close(alliance, "cafe", "2026-02-01", "2026-02-28")  # the café began a month earlier
    closed = handlers.close_period(alliance, "alliance", {"from": "2026-03-01",
                                                          "until": "2026-03-31"},
                                   actor="test", now=LATER)["items"]  # fmt: skip
    assert [(item["partner"], item["from"]) for item in closed] == [
        ("cafe", "2026-03-01"), ("books", "2026-03-01"), ("fuel", "2026-03-01"),
        ("shoes", "2026-03-01")]  # fmt: skip
    one_by_one = {item["partner"]: item for item in closed}
    assert one_by_one["fuel"]["points"]["earned_elsewhere_spent_here"] == "60.00"
    assert one_by_one["cafe"]["points"]["earned_here_spent_elsewhere"] == "60.00"
    with pytest.raises(InvalidInput, match="next begins 2026-04-01"):
        close(alliance, "fuel", "2026-03-01", "2026-03-31")
    sound(alliance)
