"""The exchange with an outside program, for real: two Kopilka servers (uvicorn, each on
a database of its own) that know each other only by URL and a shared secret, exchanging
points over the signed HTTP protocol — the happy path both ways, a member unknown there,
the target down, either side killed at each step and the worker finishing the saga, and
replayed or forged requests refused."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import Engine

from kopilka.ledger.verify import verify
from kopilka.mechanics.exchange.reconciliation import reconciliation
from kopilka.mechanics.exchange.signing import signed_headers
from kopilka.members.balances import adjust, balance
from kopilka.members.handlers import register_member
from kopilka.platform.http.app import create_app
from kopilka.programs.handlers import apply_program
from tests.api.conftest import key_for, serving_engine
from tests.databases import Templates
from tests.exchange.conftest import killed_at, program, worker
from tests.store.conftest import NOW
from tests.web.conftest import served

SECRET_ENV = "KOPILKA_EXCHANGE_TEST_SECRET"
SECRET = "a-secret-zerno-and-sky-share"
TIMEOUT = timedelta(minutes=16)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving(engine: Engine, port: int) -> Iterator[str]:
    """The app of `engine` served on `port` while the block runs (a port of our choosing,
    so a target that went down comes back at the same address)."""
    with served(create_app(serving_engine(engine)), port, log_level="critical") as url:
        yield url


@pytest.fixture
def other(engine: Engine, tmp_path: Any, templates: Templates) -> Iterator[Engine]:
    """A second database of the same kind: the outside program's own."""
    if engine.dialect.name == "sqlite":
        db = templates.sqlite(tmp_path / "other.sqlite3")
        yield db
        db.dispose()
        return
    with templates.postgresql(pool_size=20, max_overflow=60) as db:
        yield db


class Two:
    """zerno (here, database A) and sky (an outside program, database B), served."""

    def __init__(self, here: Engine, there: Engine) -> None:
        self.here, self.there = here, there
        self.port_here, self.port_there = free_port(), free_port()
        self.url_here = f"http://127.0.0.1:{self.port_here}"
        self.url_there = f"http://127.0.0.1:{self.port_there}"

    def set_up(self, **more: Any) -> None:
        to_sky = {"code": "sky", "partner": {
            "id": "sky", "url": f"{self.url_there}/v1/programs/sky/exchange/partners/zerno",
            "secret_env": SECRET_ENV, "precision": 0},
            "rate": {"give": "1000", "get": "800"}, "min": "100",
            "fee": {"percent": "2", "points": "5"}, "timeout_minutes": 15, **more}  # fmt: skip
        to_zerno = {"code": "zerno", "partner": {
            "id": "zerno", "url": f"{self.url_here}/v1/programs/zerno/exchange/partners/sky",
            "secret_env": SECRET_ENV, "precision": 2},
            "rate": {"give": "1", "get": "1"}}  # fmt: skip
        apply_program(self.here, program("zerno", 2, [to_sky]), actor="test", now=NOW)
        apply_program(self.there, program("sky", 0, [to_zerno]), actor="test", now=NOW)
        for engine, code, card in ((self.here, "zerno", "100001"), (self.there, "sky", "700001")):
            register_member(engine, code, {"card": card}, now=NOW)
            adjust(engine, code, f"card:{card}", {"points": "5000", "reason": "opening"},
                   actor="test", now=NOW)  # fmt: skip
        self.key_here = key_for(self.here, "admin", "zerno")
        self.key_there = key_for(self.there, "admin", "sky")

    def send(self, points: str, transaction_id: str, *, to_member: str = "card:700001",
             back: bool = False) -> httpx.Response:  # fmt: skip
        """A member exchanging points by the API: zerno → sky, or sky → zerno (`back`)."""
        url, key, code, card = ((self.url_there, self.key_there, "sky", "700001") if back else
                                (self.url_here, self.key_here, "zerno", "100001"))  # fmt: skip
        body = {"transaction_id": transaction_id, "to_program": "zerno" if back else "sky",
                "to_member": "card:100001" if back else to_member, "points": points}  # fmt: skip
        return httpx.post(f"{url}/v1/programs/{code}/members/card:{card}/exchanges", json=body,
                          headers={"Authorization": f"Bearer {key}"}, timeout=30)  # fmt: skip

    def state(self, transaction_id: str) -> str:
        answer = httpx.get(
            f"{self.url_here}/v1/programs/zerno/members/card:100001/exchanges/{transaction_id}",
            headers={"Authorization": f"Bearer {self.key_here}"},
        )
        return str(answer.json()["state"])

    def balances(self) -> tuple[Decimal, Decimal]:
        return (Decimal(balance(self.here, "zerno", "card:100001")["available"]),
                Decimal(balance(self.there, "sky", "card:700001")["available"]))  # fmt: skip

    def assert_sound(self) -> None:
        today = datetime.now(ZoneInfo("Europe/Moscow")).date()
        for engine, code in ((self.here, "zerno"), (self.there, "sky")):
            assert verify(engine)[1] == []
            assert reconciliation(engine, code, today)["items"] == []


@pytest.fixture
def two(engine: Engine, other: Engine, monkeypatch: pytest.MonkeyPatch) -> Two:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    both = Two(engine, other)
    both.set_up()
    return both


def later() -> datetime:
    return datetime.now(UTC) + TIMEOUT


def signed_get(url: str, path: str, secret: str = SECRET, **change: str) -> httpx.Response:
    headers = {**signed_headers(secret, "GET", path, b"", datetime.now(UTC)), **change}
    return httpx.get(url + path, headers=headers)


UNMOVED = (Decimal("5000.00"), Decimal("5000"))
MOVED = (Decimal("4000.00"), Decimal("5780"))  # 1000 less 25.00 fee, at 1000 : 800


def test_points_sent_out_are_credited_there_and_confirmed_here(two: Two) -> None:
    with serving(two.here, two.port_here), serving(two.there, two.port_there):
        answer = two.send("1000", "out-1")
        assert answer.status_code == 201
        assert (answer.json()["state"], answer.json()["credited"]) == ("confirmed", "780")
        again = two.send("1000", "out-1")
        assert (again.status_code, again.json()) == (200, answer.json())
        back = two.send("80", "back-1", back=True)  # and sky's member sends 80 back, 1 : 1
        assert (back.status_code, back.json()["state"]) == (201, "confirmed")
    assert two.balances() == (Decimal("4080.00"), Decimal("5700"))
    two.assert_sound()


def test_a_member_unknown_there_reverses_here(two: Two) -> None:
    with serving(two.here, two.port_here), serving(two.there, two.port_there):
        answer = two.send("1000", "nobody", to_member="card:111111").json()
    assert (answer["state"], answer["reason"].split(":")[:2]) == (
        "reversed",
        ["sky", " unknown_member"],
    )
    assert two.balances() == UNMOVED
    two.assert_sound()


def test_a_target_that_is_down_reverses_at_once(two: Two) -> None:
    with serving(two.here, two.port_here):
        answer = two.send("1000", "down").json()
    assert (answer["state"], answer["reason"].startswith("sky unreachable")) == ("reversed", True)
    assert two.balances() == UNMOVED
    two.assert_sound()


@pytest.mark.parametrize(("step", "outcome"), [("credit", "reversed"), ("credited", "confirmed")])
def test_a_target_killed_at_its_credit_is_resolved_by_the_worker(
    two: Two, step: str, outcome: str
) -> None:
    with serving(two.here, two.port_here), serving(two.there, two.port_there):
        with killed_at(step, "sky"):
            answer = two.send("1000", "killed-there").json()
        assert answer["state"] == "held"  # sky answered 500: the outcome is not known
        assert worker(two.here, datetime.now(UTC)) == {}  # not before its time-out
        assert worker(two.here, later()) == {f"exchange.{outcome}": 1}
        assert two.state("killed-there") == outcome
    assert two.balances() == (UNMOVED if outcome == "reversed" else MOVED)
    two.assert_sound()


def test_a_source_killed_after_its_hold_waits_for_a_target_that_is_down(two: Two) -> None:
    with serving(two.here, two.port_here):
        with serving(two.there, two.port_there), killed_at("hold", "zerno"):
            assert two.send("1000", "killed-here").status_code == 500
        assert worker(two.here, later()) == {"exchange.unresolved": 1}  # sky is down
        assert two.state("killed-here") == "held"
        with serving(two.there, two.port_there):
            assert worker(two.here, later()) == {"exchange.reversed": 1}
            late = {"transaction_id": "killed-here", "member": "card:700001", "points": "780"}
            path = "/v1/programs/sky/exchange/partners/zerno/credits"
            raw = json.dumps(late).encode()
            headers = signed_headers(SECRET, "POST", path, raw, datetime.now(UTC))
            refused = httpx.post(two.url_there + path, content=raw, headers=headers).json()
            assert refused["state"] == "reversed"  # a late credit is never made
    assert two.balances() == UNMOVED
    two.assert_sound()


def test_a_source_killed_after_its_confirm_leaves_nothing_to_do(two: Two) -> None:
    with serving(two.here, two.port_here), serving(two.there, two.port_there):
        with killed_at("settled", "zerno"):
            assert two.send("1000", "killed-late").status_code == 500
        assert two.state("killed-late") == "confirmed"
        assert worker(two.here, later()) == {}
    assert two.balances() == MOVED
    two.assert_sound()


def test_a_replayed_or_forged_request_is_refused(two: Two) -> None:
    path = "/v1/programs/sky/exchange/partners/zerno/credits/none-such"
    with serving(two.there, two.port_there):
        headers = signed_headers(SECRET, "GET", path, b"", datetime.now(UTC))
        first = httpx.get(two.url_there + path, headers=headers)
        assert (first.status_code, first.json()["state"]) == (200, "unknown")
        replayed = httpx.get(two.url_there + path, headers=headers)
        assert (replayed.status_code, replayed.json()["code"]) == (401, "unauthorized")
        assert "used before" in replayed.json()["detail"]
        forged = signed_get(two.url_there, path, secret="not-the-secret-at-all-0000")
        assert forged.status_code == 401
        stale = signed_headers(SECRET, "GET", path, b"", datetime.now(UTC) - timedelta(minutes=6))
        assert httpx.get(two.url_there + path, headers=stale).status_code == 401
        stranger = "/v1/programs/sky/exchange/partners/nobody/credits/none-such"
        assert signed_get(two.url_there, stranger).status_code == 404  # no such pair
        unsigned = httpx.get(two.url_there + path)
        assert unsigned.status_code == 401
