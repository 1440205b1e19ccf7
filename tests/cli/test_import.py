"""`kopilka import members|receipts`: through the real command line, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner, Result

from kopilka.cli import app
from kopilka.imports import handlers as imports
from kopilka.imports import receipt_order
from kopilka.members.balances import balance
from kopilka.members.handlers import read_member
from kopilka.platform.tables import members, purchases

MEMBERS = """\
card,phone,email,name,birthday
300001,+7 912 345-67-01,anna@example.com,Анна,1990-05-01
300002,8 912 345-67-02,,Борис,
,,vera@example.com,Вера,
"""

# Line 2 redeems points earned by the receipts of lines 3–5, which happened before it:
# only an import in time order can pay it. Tuesday to Thursday mornings: no rule but the
# base 1 % applies to TEA-400 (drinks) and CRS-1 (bakery).
RECEIPTS = """\
receipt_id,location,at,member,sku,qty,price,category,redeem
R-3,kiosk,2026-02-12T10:00:00+03:00,card:300001,TEA-400,1,150.00,,5.00
R-1,kiosk,2026-02-10T10:00:00+03:00,card:300001,TEA-400,2,150.00,,
R-2,rest-a,2026-02-11T10:00:00+03:00,card:300001,CRS-1,1,140.00,,
R-2,rest-a,,,TEA-400,0.5,150.00,,
R-4,kiosk,2026-02-13T10:00:00+03:00,card:300001,TEA-400,1,150.00,,
R-4,kiosk,2026-02-13T10:00:00+03:00,card:300001,CRS-1,-1,140.00,,
"""
# 300.00 → 3.00; R-2: 140.00 + 75.00 → 2.15; R-3: 150.00 − 5.00 paid in points → 1.45
AVAILABLE_AFTER = "1.60"  # 3.00 + 2.15 − 5.00 + 1.45
ACCRUED_AFTER = "6.60"


@pytest.fixture
def db_url(zerno_engine: Engine) -> str:
    """A `--db` URL for the test's database, holding the zerno program."""
    url = zerno_engine.url.render_as_string(hide_password=False)
    if zerno_engine.dialect.name != "postgresql":
        return url
    with zerno_engine.connect() as connection:
        schema = connection.execute(text("select current_schema()")).scalar_one()
    return f"{url}?options=-csearch_path%3D{schema}"  # the test's own schema


def kopilka(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def write(path: Path, content: str, encoding: str = "utf-8") -> Path:
    path.write_text(content, encoding=encoding)
    return path


def read_rejects(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def import_members(file: Path, db_url: str, *more: str) -> Result:
    return kopilka("import", "members", str(file), "--program", "zerno", "--db", db_url, *more)


def import_receipts(file: Path, db_url: str, *more: str) -> Result:
    return kopilka("import", "receipts", str(file), "--program", "zerno", "--db", db_url, *more)


def count_members(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(members)).scalar_one()


def count_purchases(engine: Engine, receipt_id: str | None = None) -> int:
    query = select(func.count()).select_from(purchases)
    if receipt_id is not None:
        query = query.where(purchases.c.receipt_id == receipt_id)
    with engine.connect() as connection:
        return connection.execute(query).scalar_one()


# ---- members -------------------------------------------------------------------------


def test_members_are_registered_once_and_a_second_import_finds_them_there(
    tmp_path: Path, db_url: str, zerno_engine: Engine
):
    file = write(tmp_path / "members.csv", MEMBERS)
    first = import_members(file, db_url)
    assert first.exit_code == 0, first.output
    assert "members: imported 3, already there 0, rejected 0" in first.stdout
    again = import_members(file, db_url)
    assert again.exit_code == 0, again.output
    assert "members: imported 0, already there 3, rejected 0" in again.stdout
    assert count_members(zerno_engine) == 3
    anna = read_member(zerno_engine, "zerno", "card:300001")
    assert (anna["phone"], anna["name"], anna["birthday"]) == ("+79123456701", "Анна", "1990-05-01")
    vera = read_member(zerno_engine, "zerno", "email:vera@example.com")
    assert vera["card"].startswith("2")  # no card in the file: one was generated


def test_rejected_members_are_listed_with_their_reasons_and_written_to_the_rejects_file(
    tmp_path: Path, db_url: str, zerno_engine: Engine
):
    import_members(write(tmp_path / "members.csv", MEMBERS), db_url)
    file = write(tmp_path / "more.csv", (
        "card,phone,email,name\n"
        "300004,12345,,Гена\n"                       # line 2: not a phone
        "300005,+79123456701,,Дима\n"                # line 3: Анна's phone
        ",,,Ева\n"                                   # line 4: nothing finds her again
        "300002,+7 912 345-67-99,,Борис\n"           # line 5: Борис, but another phone
        "300001,+7 912 345-67-01,ANNA@example.com,\n"  # line 6: Анна as she is: already there
        "300006,,erin@example.com,Эрин\n"            # line 7: new
    ))  # fmt: skip
    rejects = tmp_path / "rejects.csv"
    result = import_members(file, db_url, "--rejects", str(rejects))
    assert result.exit_code == 1, result.output
    assert "members: imported 1, already there 1, rejected 4" in result.stdout
    assert "card:300004" in result.stdout  # the table names each rejected row by its key
    reasons = {row["card"]: row["reason"] for row in read_rejects(rejects)}
    anna = read_member(zerno_engine, "zerno", "card:300001")["id"]
    assert reasons == {
        "300004": "validation_error: phone: '12345' is not a phone number (e.g. +7 912 345-67-89)",
        "300005": f"conflict: phone +79123456701 is member {anna}'s (card 300001), "
                  "not card:300005's",
        "": "validation_error: a row needs a card, external_id, phone or email: without one, "
            "a second import of the file would register the member again",
        "300002": "conflict: card:300002 is already a member whose phone is not the row's; "
                  "an import changes no member (update it through the API)",
    }  # fmt: skip
    assert read_member(zerno_engine, "zerno", "card:300002")["phone"] == "+79123456702"
    assert count_members(zerno_engine) == 4


def test_the_rejects_file_fixed_is_imported_again_with_its_reason_column(
    tmp_path: Path, db_url: str, zerno_engine: Engine
):
    file = write(tmp_path / "members.csv", "card,phone\n300007,12345\n300008,+79123456708\n")
    rejects = tmp_path / "rejects.csv"
    assert import_members(file, db_url, "--rejects", str(rejects)).exit_code == 1
    fixed = rejects.read_text(encoding="utf-8-sig").replace("300007,12345", "300007,+79123456707")
    write(rejects, fixed)
    result = import_members(rejects, db_url, "--rejects", str(tmp_path / "rejects-2.csv"))
    assert result.exit_code == 0, result.output
    assert "members: imported 1, already there 0, rejected 0" in result.stdout
    assert read_member(zerno_engine, "zerno", "card:300007")["phone"] == "+79123456707"
    assert read_rejects(tmp_path / "rejects-2.csv") == []  # written, and empty


def test_an_unknown_column_refuses_the_whole_file_naming_it(
    tmp_path: Path, db_url: str, zerno_engine: Engine
):
    file = write(tmp_path / "members.csv", "card,phone,loyalty_level\n300001,,gold\n")
    result = import_members(file, db_url)
    assert result.exit_code == 2
    assert "unknown column 'loyalty_level'" in result.stderr
    assert "Traceback" not in result.output
    assert count_members(zerno_engine) == 0


@pytest.mark.parametrize(
    ("kind", "content", "message"),
    [
        ("members", "", "no header row"),
        ("members", "name,birthday\nЕва,1999-01-01\n", "no column finds a member again"),
        ("members", "card,card\n1,2\n", "column 'card' appears twice"),
        ("members", "card,phne\n300001,\n", "unknown column 'phne'; did you mean 'phone'?"),
        ("receipts", "receipt_id,location,at,member,sku,price\n", "missing column 'qty'"),
        (
            "receipts",
            'receipt_id,location,at,member,sku,qty,price\n"R-1,kiosk\n',
            "line 2: unexpected end of data",
        ),
    ],
    ids=["empty", "no-identity", "twice", "typo", "missing", "open-quote"],
)
def test_a_file_that_cannot_be_imported_exits_2_saying_why(
    tmp_path: Path, db_url: str, kind: str, content: str, message: str
):
    file = write(tmp_path / "file.csv", content)
    result = kopilka("import", kind, str(file), "--program", "zerno", "--db", db_url)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_a_file_not_in_utf8_is_refused_before_anything_is_written(
    tmp_path: Path, db_url: str, zerno_engine: Engine
):
    file = write(tmp_path / "members.csv", MEMBERS + "300009,,,Жанна\n", encoding="cp1251")
    result = import_members(file, db_url)
    assert result.exit_code == 2, result.output
    assert "not UTF-8 text" in result.stderr
    assert count_members(zerno_engine) == 0


def test_a_missing_file_or_program_exits_2(tmp_path: Path, db_url: str):
    missing = import_members(tmp_path / "nope.csv", db_url)
    assert (missing.exit_code, "No such file" in missing.stderr) == (2, True)
    file = write(tmp_path / "members.csv", MEMBERS)
    result = kopilka("import", "members", str(file), "--program", "nope", "--db", db_url)
    assert (result.exit_code, "program 'nope' does not exist" in result.stderr) == (2, True)


# ---- receipts ------------------------------------------------------------------------


@pytest.fixture
def with_members(tmp_path: Path, db_url: str) -> str:
    assert import_members(write(tmp_path / "members.csv", MEMBERS), db_url).exit_code == 0
    return db_url


def test_receipts_are_processed_in_time_order_with_the_points_of_the_program(
    tmp_path: Path, with_members: str, zerno_engine: Engine
):
    rejects = tmp_path / "rejects.csv"
    result = import_receipts(write(tmp_path / "receipts.csv", RECEIPTS), with_members,
                             "--rejects", str(rejects))  # fmt: skip
    assert result.exit_code == 1, result.output  # R-4 is rejected
    assert "receipts: imported 3, already there 0, rejected 1" in result.stdout
    points = balance(zerno_engine, "zerno", "card:300001")
    assert (points["available"], points["lifetime_accrued"], points["lifetime_redeemed"]) == (
        AVAILABLE_AFTER, ACCRUED_AFTER, "5.00")  # fmt: skip
    with zerno_engine.connect() as connection:
        actors = connection.execute(text("select distinct actor from transfers")).scalars().all()
        at = connection.execute(select(purchases.c.created_at)
                                .where(purchases.c.receipt_id == "R-1")).scalar_one()  # fmt: skip
    assert actors == ["import"]
    assert at == datetime(2026, 2, 10, 7, 0, tzinfo=UTC)  # when it happened, not today


def test_a_second_import_of_the_receipts_has_no_second_effect(
    tmp_path: Path, with_members: str, zerno_engine: Engine
):
    file = write(tmp_path / "receipts.csv", RECEIPTS)
    import_receipts(file, with_members)
    again = import_receipts(file, with_members)
    assert again.exit_code == 1, again.output
    assert "receipts: imported 0, already there 3, rejected 1" in again.stdout
    assert count_purchases(zerno_engine) == 3
    assert balance(zerno_engine, "zerno", "card:300001")["available"] == AVAILABLE_AFTER


def test_a_receipt_with_one_bad_line_is_rejected_whole(
    tmp_path: Path, with_members: str, zerno_engine: Engine
):
    rejects = tmp_path / "rejects.csv"
    result = import_receipts(write(tmp_path / "receipts.csv", RECEIPTS), with_members,
                             "--rejects", str(rejects))  # fmt: skip
    assert "6–7" in result.stdout  # the table: the receipt's lines and its id
    assert "R-4 at kiosk" in result.stdout
    assert count_purchases(zerno_engine, "R-4") == 0
    rows = read_rejects(rejects)
    assert [(row["receipt_id"], row["sku"]) for row in rows] == [("R-4", "TEA-400"),
                                                                   ("R-4", "CRS-1")]  # fmt: skip
    assert {row["reason"] for row in rows} == {"validation_error: line 7 qty: -1 is less than 0"}


@pytest.mark.parametrize(
    ("lines", "reason"),
    [
        (
            "R-9,kiosk,2026-02-14T10:00:00+03:00,card:300001,NOPE-1,1,,,\n",
            "validation_error: line 2 price: is required (sku 'NOPE-1' has no catalog price)",
        ),
        (
            "R-9,kiosk,2026-02-14T10:00,card:300001,TEA-400,1,150.00,,\n",
            "validation_error: line 2 at: '2026-02-14T10:00' is not an ISO 8601 time with offset"
            " (e.g. 2026-03-09T16:30:00+03:00)",
        ),
        (
            "R-9,kiosk,2026-02-14T10:00:00+03:00,card:399999,TEA-400,1,150.00,,\n",
            "not_found: member 'card:399999' does not exist",
        ),
        (
            "R-9,kiosk,2026-02-14T10:00:00+03:00,card:300001,TEA-400,1,150.00,,999\n",
            "insufficient_points: ",
        ),
        (
            "R-9,kiosk,2026-02-14T10:00:00+03:00,card:300001,TEA-400,1,150.00,,\n"
            "R-9,kiosk,2026-02-14T11:00:00+03:00,card:300001,TEA-400,1,150.00,,\n",
            "validation_error: line 3 at: '2026-02-14T11:00:00+03:00' differs from the receipt's"
            " first line ('2026-02-14T10:00:00+03:00')",
        ),
        (
            "R-9,kiosk,2026-02-14T10:00:00+03:00,card:300001,TEA-400,1,150.00,,\n"
            "R-8,kiosk,2026-02-14T10:30:00+03:00,card:300001,TEA-400,1,150.00,,\n"
            "R-9,kiosk,2026-02-14T10:00:00+03:00,card:300001,CRS-1,1,140.00,,\n",
            "validation_error: the lines of this receipt are not together in the file",
        ),
    ],
    ids=["unknown-sku", "no-offset", "no-member", "redeem-too-much", "two-times", "scattered"],
)
def test_a_receipt_the_service_refuses_is_rejected_with_its_reason_and_nothing_written(
    tmp_path: Path, with_members: str, zerno_engine: Engine, lines: str, reason: str
):
    header = RECEIPTS.splitlines()[0] + "\n"
    rejects = tmp_path / "rejects.csv"
    result = import_receipts(write(tmp_path / "receipts.csv", header + lines), with_members,
                             "--rejects", str(rejects))  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    rows = [row for row in read_rejects(rejects) if row["receipt_id"] == "R-9"]
    assert rows
    assert all(row["reason"].startswith(reason) for row in rows), rows
    assert count_purchases(zerno_engine, "R-9") == 0


def test_receipts_beyond_one_sorting_run_are_spilled_and_merged_in_time_order(
    tmp_path: Path, with_members: str, zerno_engine: Engine, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(receipt_order, "RUN_RECEIPTS", 2)
    # Tuesday 10 to Sunday 15 February, newest first: each receipt but the first (in time)
    # pays 1.00 with the points the receipt before it earned
    rows = [f"S-{day},kiosk,2026-02-{day:02}T10:00:00+03:00,card:300002,TEA-400,1,150.00,,"
            f"{'1.00' if day > 10 else ''}\n" for day in range(15, 9, -1)]  # fmt: skip
    file = write(tmp_path / "receipts.csv", RECEIPTS.splitlines()[0] + "\n" + "".join(rows))
    result = import_receipts(file, with_members)
    assert result.exit_code == 0, result.output
    assert "receipts: imported 6, already there 0, rejected 0" in result.stdout
    # 150.00 → 1.50 on the first; 149.00 paid → 1.49 on each of the five others, less 1.00
    assert balance(zerno_engine, "zerno", "card:300002")["available"] == "3.95"


def test_the_ledger_verifies_after_an_import(tmp_path: Path, with_members: str):
    import_receipts(write(tmp_path / "receipts.csv", RECEIPTS), with_members)
    result = kopilka("verify", "--db", with_members)
    assert result.exit_code == 0, result.output
    assert "the ledger is sound" in result.stdout


def test_a_row_with_more_cells_than_the_header_is_rejected(tmp_path: Path, db_url: str):
    file = write(tmp_path / "members.csv", "card,phone\n300010,+79123456710,surplus\n")
    rejects = tmp_path / "rejects.csv"
    result = import_members(file, db_url, "--rejects", str(rejects))
    assert result.exit_code == 1, result.output
    assert read_rejects(rejects)[0]["reason"] == (
        "validation_error: line 2: has 1 more cells than the header has columns"
    )


def test_a_value_too_long_for_its_column_is_a_rejected_row_not_a_traceback(
    tmp_path: Path, db_url: str
):
    # SQLite keeps any length; PostgreSQL refuses over 200 characters (the service lets it by)
    file = write(tmp_path / "members.csv", f"card,name\n300011,{'Я' * 250}\n")
    rejects = tmp_path / "rejects.csv"
    result = import_members(file, db_url, "--rejects", str(rejects))
    assert result.exit_code in (0, 1), result.output
    assert "Traceback" not in result.output
    for row in read_rejects(rejects):
        assert row["reason"].startswith(("validation_error: name", "database_error: ")), row


def test_a_database_that_stops_answering_ends_the_import_with_exit_3(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
):
    def unreachable(*_args, **_kwargs):
        raise OperationalError("INSERT …", {}, ConnectionRefusedError("connection refused"))

    monkeypatch.setattr(imports, "register_member", unreachable)
    result = import_members(write(tmp_path / "members.csv", MEMBERS), db_url)
    assert result.exit_code == 3, result.output
    assert "the database stopped answering after 0 of 3 (connection refused)" in result.stderr
    assert "running the same import again picks up where it stopped" in result.stderr
