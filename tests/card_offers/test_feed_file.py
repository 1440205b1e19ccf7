"""A bank's feed as a file (`kopilka import card-transactions`), on SQLite and
PostgreSQL: each line taken as the API takes a message, in the file's order; a line
taken before is counted, not taken twice; a line that can't be taken is rejected with
its line number and why, and the rest are taken all the same."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import Engine, func, select

from kopilka.mechanics.card_offers import handlers
from kopilka.mechanics.card_offers.tables import clo_rewards, clo_transactions
from tests.card_offers.test_feed_api import AUTH, CAFE, WEEKDAYS
from tests.cli.test_import import db_url, kopilka, read_rejects
from tests.store.conftest import NOW

__all__ = ["db_url"]


def test_a_feed_file_is_taken_line_by_line_and_again_safely(
    zerno_engine: Engine, db_url: str, tmp_path: Path
) -> None:
    handlers.put_merchant(zerno_engine, "zerno", "cafe", CAFE, now=NOW)
    offer = {**WEEKDAYS, "activation_required": False}
    handlers.put_offer(zerno_engine, "zerno", "weekdays", offer, actor="test", now=NOW)
    card = {"scheme": "visa", "first_six": "427600", "last_four": "1234"}
    handlers.put_card(zerno_engine, "zerno", "tok-anna", card, now=NOW)
    lines = [
        json.dumps(AUTH),
        "",  # a blank line is skipped
        "{not json",
        json.dumps({**AUTH, "transaction_id": "A-2", "card": "tok-nobody"}),
        json.dumps({**AUTH, "transaction_id": "C-1", "kind": "clearing", "amount": "800.00",
                    "original": "A-1"}),
    ]  # fmt: skip
    feed = tmp_path / "feed.jsonl"
    feed.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rejects = tmp_path / "rejects.csv"
    first = kopilka("import", "card-transactions", str(feed), "--program", "zerno",
                    "--db", db_url, "--rejects", str(rejects))  # fmt: skip
    assert first.exit_code == 1, first.output
    assert "imported 2, already there 0, rejected 2" in first.output
    rejected = read_rejects(rejects)
    assert [row["reason"].split(":")[0] for row in rejected] == ["validation_error", "not_found"]
    again = kopilka("import", "card-transactions", str(feed), "--program", "zerno",
                    "--db", db_url)  # fmt: skip
    assert "imported 0, already there 2, rejected 2" in again.output
    with zerno_engine.connect() as connection:
        taken = connection.execute(select(func.count()).select_from(clo_transactions)).scalar()
        reward = connection.execute(select(clo_rewards.c.status, clo_rewards.c.cashback)).one()
    assert taken == 2
    assert tuple(reward) == ("confirmed", 8000)  # 10 % of the cleared 800.00
    missing = kopilka("import", "card-transactions", str(tmp_path / "none.jsonl"),
                      "--program", "zerno", "--db", db_url)  # fmt: skip
    assert missing.exit_code == 2
