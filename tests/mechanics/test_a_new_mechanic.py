"""A new mechanic is one folder, one registration and its migration.

`tests/mechanics/thanks/` is such a folder: registered here only (never in
`kopilka.composition`), it reads its section of the program file, earns with the
purchase, answers, is taken back by the refund, keeps its own table (its Alembic branch)
and shows a console page — and no file of Kopilka knows it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, select

from kopilka.checkout.purchases import process_purchase, quote_purchase
from kopilka.checkout.records import awards_of
from kopilka.checkout.refunds import refund_purchase
from kopilka.kernel.errors import InvalidInput
from kopilka.kernel.program_parser import parse_program
from kopilka.ledger.verify import verify
from kopilka.platform.files import load_document
from kopilka.platform.migrate import is_current, upgrade
from kopilka.programs.handlers import apply_program
from tests.conftest import EXAMPLES
from tests.mechanics import thanks
from tests.mechanics.thanks.tables import thanks_given
from tests.store.conftest import NOW
from tests.web.conftest import console_app, sign_in, stock

ROOT = Path(__file__).resolve().parents[2]
# the mechanic's branch is migrated onto a database `upgrade` made, as a deployment's is
pytestmark = pytest.mark.real_migration


@pytest.fixture
def installed() -> Iterator[None]:
    thanks.install()
    try:
        yield
    finally:
        thanks.uninstall()


@pytest.fixture
def shop(engine: Engine, installed: None) -> Engine:  # noqa: ARG001 - it registers
    """The café chain with `thanks: {points: 5, min_total: 100}` on a database that has
    the mechanic's branch migrated too."""
    assert not is_current(engine), "the mechanic's branch is not migrated yet"
    upgrade(engine)
    assert is_current(engine)
    document = load_document(EXAMPLES / "zerno" / "program.yaml")
    assert isinstance(document, dict)
    document["thanks"] = {"points": "5", "min_total": "100.00"}
    apply_program(engine, document, actor="test", now=NOW)
    stock(engine)  # members, a purchase, operators of every role
    return engine


def receipt(receipt_id: str, price: str) -> dict[str, object]:
    return {"receipt_id": receipt_id, "location": "kiosk", "member": "card:100002",
            "at": "2026-03-10T11:00:00+03:00",
            "lines": [{"sku": "TEA-400", "qty": 1, "price": price}]}  # fmt: skip


def test_it_earns_answers_records_and_is_taken_back_by_the_refund(shop: Engine) -> None:
    quoted = quote_purchase(shop, "zerno", receipt("Q", "250.00"), now=NOW)
    assert quoted["thanks"]["points"] == "5.00"

    bought = process_purchase(shop, "zerno", receipt("T-1", "250.00"), now=NOW,
                              actor="pos:test").answer  # fmt: skip
    assert bought["thanks"] == {"points": "5.00", "note": "thank you for coming back",
                                "thanked_before": 0}  # fmt: skip
    rules = float(bought["accrued"])
    assert float(bought["balance"]["available"]) == pytest.approx(rules + 5)
    small = process_purchase(shop, "zerno", receipt("T-2", "50.00"), now=NOW,
                             actor="pos:test").answer  # fmt: skip
    assert "thanks" not in small  # under min_total

    with shop.connect() as connection:
        rows = connection.execute(
            select(thanks_given.c.purchase_id, thanks_given.c.points, thanks_given.c.taken_back)
            .where(thanks_given.c.member_id == _member_id(bought))
        ).all()  # fmt: skip
    assert [tuple(row) for row in rows] == [(int(bought["purchase_id"]), 500, 0)]
    with shop.connect() as connection:  # its typed record, beside the rules' own
        records = awards_of(connection, int(bought["purchase_id"]))
    assert [(a.kind, a.amount, a.n) for a in records if a.mechanic == "thanks"] == [
        ("points", 500, None)
    ]

    refund, _ = refund_purchase(shop, "zerno", bought["purchase_id"], {"refund_id": "RF-1"},
                                actor="pos:test", now=NOW)  # fmt: skip
    assert refund["thanks_back"] == "5.00"
    assert float(refund["accrued_back"]) == pytest.approx(rules + 5)
    assert float(refund["balance"]["available"]) == pytest.approx(float(small["accrued"]))
    with shop.connect() as connection:
        taken_back = select(thanks_given.c.taken_back).where(
            thanks_given.c.purchase_id == int(bought["purchase_id"])
        )
        assert connection.execute(taken_back).scalar_one() == 500
    _checks, discrepancies = verify(shop)
    assert discrepancies == []


def _member_id(answer: dict[str, object]) -> int:
    return int(str(answer["member"]))


def test_it_shows_in_a_console_page_of_its_own(shop: Engine) -> None:
    process_purchase(shop, "zerno", receipt("T-1", "250.00"), now=NOW, actor="pos:test")
    with TestClient(console_app(shop), base_url="http://testserver") as client:
        assert client.get("/console/zerno/thanks", follow_redirects=False).status_code == 303
        sign_in(client, "analyst")
        page = client.get("/console/zerno/thanks")
    assert page.status_code == 200
    assert "Thanks given" in page.text
    assert "100002" in page.text
    assert "5.00" in page.text


def test_unregistered_its_section_is_unknown_and_it_does_nothing() -> None:
    document = load_document(EXAMPLES / "zerno" / "program.yaml")
    assert isinstance(document, dict)
    document["thanks"] = {"points": "5"}
    with pytest.raises(InvalidInput, match="thanks"):
        parse_program(document)


def test_no_file_of_kopilka_names_it() -> None:
    for path in (ROOT / "kopilka").rglob("*.py"):
        assert "thanks" not in path.read_text(encoding="utf-8").lower(), path


def test_what_it_reads_goes_out_in_the_purchase_s_load(shop: Engine) -> None:
    """Its read (how many times the member was thanked) reaches its answer; on
    PostgreSQL it rides in the load that locks the member, so a purchase sends as many
    statements with the mechanic as without it."""
    first = process_purchase(shop, "zerno", receipt("L-1", "250.00"), now=NOW,
                             actor="pos:test").answer  # fmt: skip
    assert first["thanks"]["thanked_before"] == 0
    with_it = _statements(shop, receipt("L-2", "250.00"))
    assert with_it.answer["thanks"]["thanked_before"] == 1
    # a new version of the program: the load planned for the old one reads again for it
    document = load_document(EXAMPLES / "zerno" / "program.yaml")
    assert isinstance(document, dict)
    document["thanks"] = {"points": "7", "min_total": "100.00"}
    apply_program(shop, document, actor="test", now=NOW)
    changed = process_purchase(shop, "zerno", receipt("L-V", "250.00"), now=NOW,
                               actor="pos:test").answer  # fmt: skip
    assert changed["thanks"] == {"points": "7.00", "note": "thank you for coming back",
                                 "thanked_before": 2}  # fmt: skip
    with_it = _statements(shop, receipt("L-2b", "250.00"))
    assert with_it.answer["thanks"]["thanked_before"] == 3
    if shop.dialect.name != "postgresql":
        return  # SQLite: one query after another in one transaction, no round trips
    loads = [sql for sql in with_it.sent if "FOR UPDATE" in sql]
    assert len(loads) == 1  # one execution: one round trip
    assert "thanks_given" in loads[0]
    thanks.uninstall()
    try:
        _statements(shop, receipt("L-3", "250.00"))  # the load planned without it, once
        without = _statements(shop, receipt("L-4", "250.00"))
    finally:
        thanks.install()
    assert "thanks" not in without.answer
    assert not any("thanks_given" in sql for sql in without.sent)
    assert len(without.sent) == len(with_it.sent)  # its read and its write cost none
    assert sum("thanks_given" in sql for sql in with_it.sent) == 2  # the load, the write


@dataclass
class _Sent:
    answer: dict[str, Any]
    sent: list[str]


def _statements(engine: Engine, body: dict[str, object]) -> _Sent:
    """A purchase, and every statement it sent (a pipelined batch counts once)."""
    sent: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        answer = process_purchase(engine, "zerno", body, now=NOW, actor="pos:test").answer
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    return _Sent(answer, sent)


def test_its_writes_go_out_in_the_purchase_s_own_statement(shop: Engine) -> None:
    """On PostgreSQL a purchase the mechanic gives to (its award, its own row, its points)
    sends no more statements than one it gives nothing to: no round trip of its own."""
    if shop.dialect.name != "postgresql":
        pytest.skip("one statement: PostgreSQL's data-modifying CTEs")
    process_purchase(shop, "zerno", receipt("W-0", "250.00"), now=NOW, actor="pos:test")

    def statements(body: dict[str, object]) -> list[str]:
        done = _statements(shop, body)
        assert ("thanks" in done.answer) is (body["lines"][0]["price"] == "250.00")  # type: ignore[index]
        return done.sent

    given = statements(receipt("W-1", "250.00"))
    not_given = statements(receipt("W-2", "50.00"))
    assert len(given) == len(not_given)
    writes = [sql for sql in given if "INSERT INTO thanks_given" in sql]
    assert len(writes) == 1  # its row rode in the purchase's write
    assert "INSERT INTO purchases" in writes[0]
    assert not any("INSERT INTO thanks_given" in sql for sql in not_given)
