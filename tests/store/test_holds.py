"""Two-phase purchases: points held, then paid on confirm, given back on cancel or time-out."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from kopilka.checkout.purchases import process_purchase, release_due_holds, settle_hold
from kopilka.checkout.refunds import refund_purchase
from kopilka.kernel.errors import Conflict, InvalidInput
from kopilka.ledger.verify import verify
from kopilka.members.balances import adjust, balance, history
from kopilka.members.handlers import register_member
from kopilka.platform.files import load_document
from kopilka.programs.handlers import apply_program
from tests.conftest import EXAMPLES
from tests.store.conftest import NOW
from tests.store.test_purchases import receipt

THREE_TEAS = [{"sku": "TEA-400", "qty": 3}]  # 450.00


@pytest.fixture
def held(zerno_engine: Engine) -> dict[str, Any]:
    """A member with 100.00 points holds 30.00 of them for three teas."""
    register_member(zerno_engine, "zerno", {"card": "100009"}, now=NOW)
    adjust(zerno_engine, "zerno", "card:100009", {"points": "100", "reason": "start"},
           actor="op", now=NOW)  # fmt: skip
    body = receipt(member="card:100009", lines=THREE_TEAS, redeem="30.00", hold=True)
    return process_purchase(zerno_engine, "zerno", body, now=NOW, actor="pos").answer


def points(engine: Engine) -> tuple[str, str, str]:
    figures = balance(engine, "zerno", "card:100009")
    return figures["available"], figures["pending"], figures["held"]


def settle(engine: Engine, purchase_id: str, action: str, **kw: Any) -> tuple[dict[str, Any], bool]:
    return settle_hold(engine, "zerno", purchase_id, action, actor="pos", now=kw.get("now", NOW))


def test_a_hold_reserves_the_points_and_accrues_nothing_yet(zerno_engine, held):
    assert held["status"] == "held"
    assert held["balance"] == {"available": "70.00", "pending": "0.00", "held": "30.00"}
    assert points(zerno_engine) == ("70.00", "0.00", "30.00")
    assert verify(zerno_engine)[1] == []


def test_confirm_pays_the_held_points_and_posts_the_accrual(zerno_engine, held):
    answer, created = settle(zerno_engine, held["purchase_id"], "confirm")
    assert created
    assert answer["status"] == "completed"
    assert answer["balance"] == {"available": "74.20", "pending": "0.00", "held": "0.00"}
    again, created_again = settle(zerno_engine, held["purchase_id"], "confirm")
    assert (again, created_again) == (answer, False)
    assert points(zerno_engine) == ("74.20", "0.00", "0.00")
    figures = balance(zerno_engine, "zerno", "card:100009")
    assert (figures["lifetime_accrued"], figures["lifetime_redeemed"]) == ("4.20", "30.00")
    assert verify(zerno_engine)[1] == []


def test_cancel_gives_the_points_back_and_a_settled_hold_refuses_the_other_action(
    zerno_engine, held
):
    answer, _ = settle(zerno_engine, held["purchase_id"], "cancel")
    assert answer["status"] == "cancelled"
    assert points(zerno_engine) == ("100.00", "0.00", "0.00")
    with pytest.raises(Conflict, match="cancelled"):
        settle(zerno_engine, held["purchase_id"], "confirm")
    with pytest.raises(Conflict, match="cancelled"):
        refund_purchase(zerno_engine, "zerno", held["purchase_id"], {"refund_id": "RF-1"},
                        actor="pos", now=NOW)  # fmt: skip
    reasons = [item["reason"] for item in history(zerno_engine, "zerno", "card:100009")["items"]]
    assert reasons[:2] == ["hold.cancel", "hold.reserve"]
    assert verify(zerno_engine)[1] == []


def test_a_hold_not_confirmed_in_time_is_released_once(zerno_engine, held):
    late = NOW + timedelta(minutes=61)  # the program's default hold_minutes is 60
    assert release_due_holds(zerno_engine, now=NOW + timedelta(minutes=59)) == 0
    assert release_due_holds(zerno_engine, now=late) == 1
    assert release_due_holds(zerno_engine, now=late) == 0
    assert points(zerno_engine) == ("100.00", "0.00", "0.00")
    with pytest.raises(Conflict, match="expired"):
        settle(zerno_engine, held["purchase_id"], "confirm", now=late)
    assert verify(zerno_engine)[1] == []


def test_confirm_after_the_deadline_is_refused_even_before_the_worker_ran(zerno_engine, held):
    with pytest.raises(Conflict, match="expired at"):
        settle(zerno_engine, held["purchase_id"], "confirm", now=NOW + timedelta(hours=2))
    assert points(zerno_engine) == ("70.00", "0.00", "30.00")


def test_a_confirmed_hold_is_refunded_like_any_purchase(zerno_engine, held):
    settle(zerno_engine, held["purchase_id"], "confirm")
    answer, _ = refund_purchase(zerno_engine, "zerno", held["purchase_id"],
                                {"refund_id": "RF-1"}, actor="pos", now=NOW)  # fmt: skip
    assert (answer["accrued_back"], answer["redeemed_back"]) == ("4.20", "30.00")
    assert points(zerno_engine) == ("100.00", "0.00", "0.00")
    assert verify(zerno_engine)[1] == []


def test_a_replayed_held_receipt_holds_nothing_more(zerno_engine, held):
    body = receipt(member="card:100009", lines=THREE_TEAS, redeem="30.00", hold=True)
    again = process_purchase(zerno_engine, "zerno", body, now=NOW, actor="pos")
    assert (again.answer, again.created) == (held, False)
    assert points(zerno_engine) == ("70.00", "0.00", "30.00")


@pytest.mark.usefixtures("held")
def test_a_hold_needs_a_member_and_an_unknown_purchase_is_not_found(zerno_engine):
    with pytest.raises(InvalidInput, match="hold"):
        process_purchase(zerno_engine, "zerno", receipt(receipt_id="R-9", hold=True), now=NOW,
                         actor="pos")  # fmt: skip
    with pytest.raises(Exception, match="does not exist"):
        settle(zerno_engine, "424242", "confirm")


@pytest.mark.slow
def test_the_worker_command_releases_due_holds_once(tmp_path, templates):
    url = f"sqlite:///{tmp_path / 'k.sqlite3'}"
    engine = templates.sqlite(tmp_path / "k.sqlite3")
    apply_program(engine, load_document(EXAMPLES / "zerno" / "program.yaml"), actor="t", now=NOW)
    register_member(engine, "zerno", {"card": "100009"}, now=NOW)
    adjust(engine, "zerno", "card:100009", {"points": "10", "reason": "start"}, actor="op",
           now=NOW)  # fmt: skip
    body = receipt(member="card:100009", redeem="4.00", hold=True)
    process_purchase(engine, "zerno", body, now=NOW, actor="pos")
    kopilka = str(Path(sys.executable).parent / "kopilka")
    late = (NOW + timedelta(hours=2)).isoformat()
    runs = [
        subprocess.run(
            [kopilka, "worker", "--db", url, "--once", "--now", late],
            capture_output=True,
            text=True,
            check=True,
        )
        for _ in range(2)
    ]
    assert [json.loads(run.stdout)["holds_released"] for run in runs] == [1, 0]
    assert points(engine) == ("10.00", "0.00", "0.00")
