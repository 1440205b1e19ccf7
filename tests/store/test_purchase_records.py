"""Typed purchase records on SQLite and PostgreSQL: a purchase writes its lines and what
each mechanic gave as rows, in its own write; refunds, holds and `verify` read them; and
revision 0015 back-fills them from a database made by the previous release — the same rows
the pipeline writes for the same receipts today."""

from __future__ import annotations

import copy
import random
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, func, insert, inspect, select, text

from kopilka.checkout.purchases import process_purchase, settle_hold
from kopilka.checkout.refunds import refund_purchase
from kopilka.ledger.verify import verify
from kopilka.mechanics.coupons import handlers as coupons
from kopilka.members.balances import adjust
from kopilka.members.handlers import register_member
from kopilka.platform.db import make_engine
from kopilka.platform.files import load_document
from kopilka.platform.migrate import upgrade
from kopilka.platform.tables import metadata, purchase_awards, purchase_lines, purchases, refunds
from kopilka.programs.handlers import apply_program
from tests.conftest import EXAMPLES
from tests.store.conftest import NOW
from tests.store.test_cashback_purchases import CASHBACK, LUNCH_DEAL
from tests.store.test_coupon_purchases import POINTS, TEN_OFF_TEA, campaign

RELEASE_DB = Path(__file__).parent / "data" / "release-0014.sqlite3"
AWARD_FIELDS = ("n", "mechanic", "kind", "source", "unit", "amount", "funded_by", "detail")
LINE_FIELDS = ("n", "sku", "category", "qty_micro", "amount", "discount", "redeemed", "accrued")


def records(engine: Engine) -> dict[str, Any]:
    """Every purchase's and refund's records, by receipt and refund id (ids may differ)."""
    with engine.connect() as connection:
        receipts: dict[int, str] = {
            row.id: row.receipt_id
            for row in connection.execute(select(purchases.c.id, purchases.c.receipt_id))
        }
        figures = {
            row.receipt_id: (row.status, row.total, row.discount, row.redeemed, row.paid,
                             row.accrued, row.spend)
            for row in connection.execute(select(purchases))
        }  # fmt: skip
        lines = sorted(
            (receipts[row.purchase_id], *(getattr(row, f) for f in LINE_FIELDS))
            for row in connection.execute(select(purchase_lines))
        )
        awards = sorted(
            (receipts[row.purchase_id], *(repr(getattr(row, f)) for f in AWARD_FIELDS))
            for row in connection.execute(select(purchase_awards))
        )
        backs = {
            row.refund_id: (row.redeemed_back, row.accrued_back, row.accrued_burnt)
            for row in connection.execute(select(refunds))
        }
    return {"purchases": figures, "lines": lines, "awards": awards, "refunds": backs}


@pytest.fixture
def released(tmp_path: Path) -> Iterator[Engine]:
    """A copy of the previous release's database, upgraded to this one."""
    copy = tmp_path / "release.sqlite3"
    shutil.copyfile(RELEASE_DB, copy)
    engine = make_engine(f"sqlite:///{copy}")
    upgrade(engine)
    yield engine
    engine.dispose()


def test_the_upgrade_back_fills_every_purchase_and_keeps_the_books_sound(released):
    found = records(released)
    assert len(found["purchases"]) == 8
    assert all(None not in figures for figures in found["purchases"].values())
    assert len(found["lines"]) == 8 * 3
    assert {award[2:4] for award in found["awards"]} >= {
        ("'points'", "'accrual'"), ("'points'", "'redemption'"), ("'discounts'", "'discount'"),
        ("'coupons'", "'discount'"), ("'coupons'", "'points'"), ("'cashback'", "'cashback'"),
    }  # fmt: skip
    assert found["refunds"]["RF1"][0] > 0  # points paid for line 0 went back
    assert verify(released)[1] == []


def test_back_filled_records_are_the_rows_the_pipeline_writes_today(released, engine):
    """The receipts of the previous release's database, replayed through today's pipeline
    into a fresh database (SQLite or PostgreSQL), make the same records."""
    replay_release(engine)
    today, back_filled = records(engine), records(released)
    planned = [award for award in today["awards"] if award[3] == "'cashback.on_confirm'"]
    # a hold's planned cashback is recorded when it is held; once it was settled, the
    # previous release had overwritten it in the answer with what the settle gave (or
    # nothing), so the back-fill cannot know it — nor does anything read it after the settle
    assert {award[0] for award in planned} == {"R5", "R6", "R7"}  # the settled holds
    today["awards"] = [award for award in today["awards"] if award not in planned]
    assert today == back_filled


def test_a_purchase_made_after_the_upgrade_refunds_against_back_filled_rows(released):
    refund = refund_purchase(released, "zerno", purchase_of(released, "R2"),
                             {"refund_id": "RF9"}, actor="t", now=NOW)[0]  # fmt: skip
    assert refund["purchase_status"] == "refunded"
    answer = process_purchase(released, "zerno", receipt("R9", "card:100001"), now=NOW,
                              actor="t").answer  # fmt: skip
    refund_purchase(released, "zerno", answer["purchase_id"], {"refund_id": "RF10"}, actor="t",
                    now=NOW)  # fmt: skip
    assert verify(released)[1] == []


def test_an_upgrade_on_postgresql_back_fills_the_same_rows(released, engine):
    """The previous release's rows copied into PostgreSQL at revision 0014, then upgraded."""
    if engine.dialect.name != "postgresql":
        pytest.skip("the SQLite upgrade is the `released` fixture's")
    with engine.connect() as connection:
        schema = f"{connection.exec_driver_sql('SHOW search_path').scalar()}_old"
    url = engine.url.render_as_string(hide_password=False)
    old = create_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    with old.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        upgrade(old, "0014")
        copy_rows(RELEASE_DB, old)
        upgrade(old)
        assert records(old) == records(released)
        assert verify(old)[1] == []
    finally:
        old.dispose()
        with engine.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))


def test_a_purchase_writes_its_records_in_its_own_statement(zerno_engine):
    """On PostgreSQL a purchase's lines and awards add no statement to its write."""
    engine = zerno_engine
    if engine.dialect.name != "postgresql":
        pytest.skip("one statement: PostgreSQL's data-modifying CTEs")
    register_member(engine, "zerno", {"card": "100001"}, now=NOW)
    process_purchase(engine, "zerno", receipt("W0", "card:100001"), now=NOW, actor="t")
    inserts: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "purchase_lines" in statement or "purchase_awards" in statement:
            inserts.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        process_purchase(engine, "zerno", receipt("W1", "card:100001"), now=NOW, actor="t")
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert len(inserts) == 1
    assert "INSERT INTO purchases" in inserts[0]
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(purchase_lines)).scalar() == 6


# — the previous release's receipts, replayed —


def receipt(receipt_id: str, member: str | None, **more: Any) -> dict[str, Any]:
    """The receipts of tests/store/data/README.md's script."""
    body = {"receipt_id": receipt_id, "location": "kiosk", "at": "2026-03-10T12:00:00+03:00",
            "lines": [{"sku": "TEA-400", "qty": 2}, {"sku": "CAP-300", "qty": 1},
                      {"sku": "LUNCH-1", "qty": "1.5"}],
            "payment": {"method": "card", "bin": "22001234"}, **more}  # fmt: skip
    if member:
        body["member"] = member
    return body


def purchase_of(engine: Engine, receipt_id: str) -> str:
    with engine.connect() as connection:
        found = connection.execute(
            select(purchases.c.id).where(purchases.c.receipt_id == receipt_id)
        ).scalar_one()
    return str(found)


def replay_release(engine: Engine) -> None:
    """Today's pipeline, fed what made the previous release's database (the same program,
    the same coupon codes, the same order)."""
    document = load_document(EXAMPLES / "zerno" / "program.yaml")
    assert isinstance(document, dict)
    document["cashback"] = copy.deepcopy(CASHBACK)
    document["discounts"] = [LUNCH_DEAL]
    apply_program(engine, document, actor="test", now=NOW)
    for card in ("100001", "100002", "100003"):
        register_member(engine, "zerno", {"card": card}, now=NOW)
    adjust(engine, "zerno", "card:100002", {"points": "500", "reason": "start"}, actor="op",
           now=NOW)  # fmt: skip
    campaign(engine, TEN_OFF_TEA)
    coupons.create_batch(engine, "zerno", "tea-10", {"count": 3}, actor="t", now=NOW,
                         rng=random.Random(7))  # fmt: skip
    codes = [item["code"] for item in
             coupons.code_page(engine, "zerno", "tea-10", limit=3)["items"]]  # fmt: skip
    campaign(engine, POINTS)

    def buy(body: dict[str, Any]) -> str:
        return str(process_purchase(engine, "zerno", body, now=NOW, actor="t")
                   .answer["purchase_id"])  # fmt: skip

    def back(purchase: str, refund_id: str, lines: Any = None) -> None:
        body = {"refund_id": refund_id} | ({"lines": lines} if lines else {})
        refund_purchase(engine, "zerno", purchase, body, actor="t", now=NOW)

    buy(receipt("R1", "card:100001"))
    paid = buy(receipt("R2", "card:100002", redeem="120.50"))
    back(paid, "RF1", [{"n": 0, "qty": 1}])
    back(paid, "RF2", [{"n": 2, "qty": "0.5"}])
    back(buy(receipt("R3", "card:100003", coupons=[codes[0], "BONUS200"])), "RF3")
    buy(receipt("R4", None))
    held = buy(receipt("R5", "card:100002", redeem="40", hold=True))
    settle_hold(engine, "zerno", held, "confirm", actor="t", now=NOW)
    held = buy(receipt("R6", "card:100001", hold=True, coupons=[codes[1]]))
    settle_hold(engine, "zerno", held, "cancel", actor="t", now=NOW)
    held = buy(receipt("R7", "card:100003", hold=True, coupons=["BONUS200"]))
    settle_hold(engine, "zerno", held, "confirm", actor="t", now=NOW)
    buy(receipt("R8", "card:100002", redeem="max"))


def copy_rows(source: Path, target: Engine) -> None:
    """Every row of the SQLite database `source` into `target` at the same revision, read
    and written through the declared tables (their column types), in dependency order;
    sequences moved past the ids copied."""
    sqlite = make_engine(f"sqlite:///{source}")
    found = inspect(sqlite)
    present = {name: {c["name"] for c in found.get_columns(name)}
               for name in found.get_table_names()}  # fmt: skip
    with sqlite.connect() as reading, target.begin() as writing:
        for table in metadata.sorted_tables:
            if table.name not in present:
                continue
            columns = [column for column in table.c if column.name in present[table.name]]
            rows = [dict(row._mapping) for row in reading.execute(select(*columns))]
            if not rows:
                continue
            writing.execute(insert(table), rows)
            if "id" in present[table.name]:
                top = max(row["id"] for row in rows)
                writing.execute(text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), {top})"
                ))  # fmt: skip
    sqlite.dispose()
