"""The webhook outbox for real: rows on SQLite and PostgreSQL, sent over HTTP to a
receiver served by uvicorn that checks each signature and can be told to fail or to
be slow. Time moves by the `now` each call is given."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from kopilka.platform.tables import programs, webhook_outbox
from kopilka.platform.webhooks import (
    MAX_ATTEMPTS,
    Target,
    deliver_due,
    enqueue,
    outbox_counts,
    retry_delay,
    sign,
    verify,
)
from tests.store.conftest import NOW, at_once
from tests.web.conftest import served

SECRET = "whsec-bank-shares-this-0123456789"
BODY = {"transaction": "T-1", "state": "confirmed", "amount": "150.00", "card": "4242"}


@dataclass(frozen=True)
class Heard:
    headers: dict[str, str]
    body: bytes
    verified: bool


class Receiver:
    """A bank's webhook endpoint: hears every request, answers 401 to a bad signature,
    and 503 (with `failure_body`) to the first `failures` good ones, after `delay` s."""

    def __init__(self) -> None:
        self.url = ""
        self.heard: list[Heard] = []
        self.failures = 0
        self.failure_body = "try later"
        self.delay = 0.0
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self.heard.clear()
        self.failures, self.failure_body, self.delay = 0, "try later", 0.0

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hooks", self._hear, methods=["POST"])])

    async def _hear(self, request: Request) -> Response:
        body = await request.body()
        headers = {name.lower(): value for name, value in request.headers.items()}
        verified = verify(SECRET, headers.get("x-kopilka-timestamp", ""),
                          headers.get("x-kopilka-delivery", ""), body,
                          headers.get("x-kopilka-signature", ""))  # fmt: skip
        with self._lock:
            self.heard.append(Heard(headers, body, verified))
        if self.delay:
            await asyncio.sleep(self.delay)
        if not verified:
            return PlainTextResponse("bad signature", status_code=401)
        with self._lock:
            failing = self.failures > 0
            self.failures -= failing
        if failing:
            return PlainTextResponse(self.failure_body, status_code=503)
        return Response(status_code=204)

    def target(self) -> Target:
        return Target(f"{self.url}/hooks", SECRET)


@pytest.fixture(scope="module")
def served_receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    with served(receiver.app(), log_level="critical") as url:
        receiver.url = url
        yield receiver


@pytest.fixture
def receiver(served_receiver: Receiver) -> Receiver:
    served_receiver.reset()
    return served_receiver


@pytest.fixture
def program_id(engine: Engine) -> int:
    return make_program(engine, "bank-offers")


def make_program(engine: Engine, code: str) -> int:
    with engine.begin() as connection:
        return int(connection.execute(
            insert(programs).values(code=code, current_version=1, created_at=NOW)
            .returning(programs.c.id)
        ).scalar_one())  # fmt: skip


def add(engine: Engine, program_id: int, key: str = "T-1.confirmed", **body: Any) -> bool:
    with engine.begin() as connection:
        return enqueue(connection, program_id=program_id, endpoint="bank",
                       event="transaction.confirmed", key=key, body=body or BODY,
                       now=NOW)  # fmt: skip


def to(receiver: Receiver) -> Any:
    """`targets` that send every program's "bank" webhooks to the receiver."""
    return lambda _program_id, endpoint: receiver.target() if endpoint == "bank" else None


def row_of(engine: Engine, key: str = "T-1.confirmed") -> Any:
    with engine.connect() as connection:
        return connection.execute(
            select(webhook_outbox).where(webhook_outbox.c.event_key == key)
        ).one()


NOTHING = {"webhooks_delivered": 0, "webhooks_retried": 0, "webhooks_given_up": 0}


def counted(delivered: int = 0, retried: int = 0, given_up: int = 0) -> dict[str, int]:
    return {"webhooks_delivered": delivered, "webhooks_retried": retried,
            "webhooks_given_up": given_up}  # fmt: skip


# ---------------------------------------------------------------- signatures


def test_a_signature_covers_the_timestamp_the_delivery_and_the_body() -> None:
    signature = sign(SECRET, 1773133200, 7, b'{"a":1}')
    assert signature.startswith("sha256=")
    assert len(signature) == len("sha256=") + 64
    assert verify(SECRET, "1773133200", "7", '{"a":1}', signature)
    assert not verify(SECRET, 1773133201, 7, b'{"a":1}', signature)
    assert not verify(SECRET, 1773133200, 8, b'{"a":1}', signature)
    assert not verify(SECRET, 1773133200, 7, b'{"a":2}', signature)
    assert not verify("another secret of enough length", 1773133200, 7, b'{"a":1}', signature)
    assert not verify(SECRET, 1773133200, 7, b'{"a":1}', "sha256=ÿ")


def test_verify_refuses_a_timestamp_far_from_the_receivers_clock() -> None:
    timestamp = int(NOW.timestamp())
    signature = sign(SECRET, timestamp, 7, b"{}")
    assert verify(SECRET, timestamp, 7, b"{}", signature, now=NOW + timedelta(minutes=4))
    assert not verify(SECRET, timestamp, 7, b"{}", signature, now=NOW + timedelta(minutes=6))
    assert not verify(SECRET, "soon", 7, b"{}", signature, now=NOW)


def test_a_target_shows_no_secret_in_its_repr() -> None:
    assert SECRET not in repr(Target("https://bank.example/hooks", SECRET))


def test_the_retry_delay_doubles_from_a_minute_up_to_six_hours() -> None:
    minutes = [retry_delay(attempts) / timedelta(minutes=1) for attempts in range(1, 12)]
    assert minutes == [1, 2, 4, 8, 16, 32, 64, 128, 256, 360, 360]


# ---------------------------------------------------------------- enqueueing


def test_enqueueing_the_same_key_twice_adds_one_webhook(engine: Engine, program_id: int) -> None:
    assert add(engine, program_id) is True
    assert add(engine, program_id, state="clawed_back") is False
    row = row_of(engine)
    assert row.body == '{"amount":"150.00","card":"4242","state":"confirmed","transaction":"T-1"}'
    assert (row.attempts, row.next_attempt_at, row.delivered_at) == (0, NOW, None)
    other = make_program(engine, "other-bank")
    assert add(engine, other) is True  # a key is unique within its program


def test_a_rolled_back_transaction_enqueues_nothing(engine: Engine, program_id: int) -> None:
    def change_that_fails() -> None:
        with engine.begin() as connection:
            enqueue(connection, program_id=program_id, endpoint="bank",
                    event="transaction.paid", key="T-1.paid", body=BODY, now=NOW)  # fmt: skip
            raise RuntimeError("the state change failed after the webhook was added")

    with pytest.raises(RuntimeError):
        change_that_fails()
    with engine.connect() as connection:
        assert connection.execute(select(webhook_outbox)).all() == []


def test_a_body_with_a_float_or_an_overlong_key_is_refused(engine: Engine, program_id: int) -> None:
    with pytest.raises(TypeError, match="float"):
        add(engine, program_id, amount=1.5)
    with pytest.raises(ValueError, match="key"):
        add(engine, program_id, key="k" * 201)


# ---------------------------------------------------------------- delivering


def test_a_webhook_is_delivered_once_with_a_signature_the_receiver_verifies(
    engine: Engine, program_id: int, receiver: Receiver
) -> None:
    add(engine, program_id)
    assert deliver_due(engine, now=NOW, targets=to(receiver)) == counted(delivered=1)
    assert deliver_due(engine, now=NOW + timedelta(days=1), targets=to(receiver)) == NOTHING
    [heard] = receiver.heard
    row = row_of(engine)
    assert heard.verified
    assert heard.body == row.body.encode()
    assert heard.headers["content-type"] == "application/json"
    assert heard.headers["x-kopilka-event"] == "transaction.confirmed"
    assert heard.headers["x-kopilka-delivery"] == str(row.id)
    assert heard.headers["x-kopilka-timestamp"] == str(int(NOW.timestamp()))
    assert (row.attempts, row.delivered_at, row.last_error) == (1, NOW, None)


def test_a_receiver_that_fails_twice_gets_three_attempts_on_the_back_off_schedule(
    engine: Engine, program_id: int, receiver: Receiver
) -> None:
    add(engine, program_id)
    receiver.failures = 2
    second, third = NOW + timedelta(minutes=1), NOW + timedelta(minutes=3)
    moments = [(NOW, counted(retried=1)), (second - timedelta(seconds=1), NOTHING),
               (second, counted(retried=1)), (third - timedelta(seconds=1), NOTHING),
               (third, counted(delivered=1)), (third + timedelta(hours=7), NOTHING)]  # fmt: skip
    for now, expected in moments:
        assert deliver_due(engine, now=now, targets=to(receiver)) == expected, now
    assert [heard.headers["x-kopilka-timestamp"] for heard in receiver.heard] == [
        str(int(moment.timestamp())) for moment in (NOW, second, third)
    ]
    assert {heard.headers["x-kopilka-delivery"] for heard in receiver.heard} == {
        str(row_of(engine).id)
    }
    row = row_of(engine)
    assert (row.attempts, row.delivered_at) == (3, third)
    assert row.last_error == "HTTP 503: try later"  # the last failure's, kept


def test_a_webhook_is_given_up_after_max_attempts(
    engine: Engine, program_id: int, receiver: Receiver
) -> None:
    add(engine, program_id)
    receiver.failures = 100
    now = NOW
    for attempt in range(1, MAX_ATTEMPTS):
        assert deliver_due(engine, now=now, targets=to(receiver)) == counted(retried=1)
        now += retry_delay(attempt)
    assert deliver_due(engine, now=now, targets=to(receiver)) == counted(given_up=1)
    assert deliver_due(engine, now=now + timedelta(days=30), targets=to(receiver)) == NOTHING
    row = row_of(engine)
    assert (row.attempts, row.given_up_at, row.delivered_at) == (MAX_ATTEMPTS, now, None)
    assert len(receiver.heard) == MAX_ATTEMPTS
    assert outbox_counts(engine, program_id, now=now)["given_up"] == 1


def test_a_webhook_without_a_target_is_left_untouched_and_keeps_no_other_waiting(
    engine: Engine, program_id: int, receiver: Receiver
) -> None:
    unconfigured = make_program(engine, "no-webhooks")
    for n in range(3):
        add(engine, unconfigured, key=f"U-{n}")
    add(engine, program_id, key="C-1")

    def targets(program: int, _endpoint: str) -> Target | None:
        return receiver.target() if program == program_id else None

    assert deliver_due(engine, now=NOW, targets=targets, limit=2) == counted(delivered=1)
    assert [heard.headers["x-kopilka-delivery"] for heard in receiver.heard] == [
        str(row_of(engine, "C-1").id)
    ]
    for n in range(3):
        row = row_of(engine, f"U-{n}")
        assert (row.attempts, row.next_attempt_at, row.last_error) == (0, NOW, None)
        assert (row.delivered_at, row.given_up_at) == (None, None)


def test_a_time_out_is_a_failed_attempt(
    engine: Engine, program_id: int, receiver: Receiver
) -> None:
    add(engine, program_id)
    receiver.delay = 1.0
    done = deliver_due(engine, now=NOW, targets=to(receiver), timeout_seconds=0.2)
    assert done == counted(retried=1)
    row = row_of(engine)
    assert row.attempts == 1
    assert row.next_attempt_at == NOW + timedelta(minutes=1)
    assert row.last_error == "ReadTimeout: timed out"


def test_the_last_error_never_holds_the_secret(
    engine: Engine, program_id: int, receiver: Receiver
) -> None:
    add(engine, program_id, key="echoed")
    add(engine, program_id, key="refused")
    receiver.failures, receiver.failure_body = 1, f"your secret {SECRET} is wrong"
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = int(probe.getsockname()[1])
    refused = Target(f"http://127.0.0.1:{closed}/hooks?token={SECRET}", SECRET)
    # the first due (the echoed) goes to the receiver; the other to the closed port
    assert deliver_due(engine, now=NOW, targets=to(receiver), limit=1) == counted(retried=1)
    assert deliver_due(engine, now=NOW, targets=lambda *_: refused) == counted(retried=1)
    echoed, unreached = row_of(engine, "echoed"), row_of(engine, "refused")
    assert echoed.last_error == "HTTP 503: your secret [secret] is wrong"
    assert unreached.last_error.startswith("ConnectError: ")
    for row in (echoed, unreached):
        assert SECRET not in row.last_error


def test_two_workers_at_once_send_each_webhook_exactly_once(
    engine: Engine, program_id: int, receiver: Receiver
) -> None:
    for n in range(20):
        add(engine, program_id, key=f"T-{n}")
    receiver.delay = 0.02  # the sends of the two overlap
    results = at_once(lambda: deliver_due(engine, now=NOW, targets=to(receiver), limit=15))
    assert sum(done["webhooks_delivered"] for done in results) == 20
    deliveries = [heard.headers["x-kopilka-delivery"] for heard in receiver.heard]
    assert len(deliveries) == len(set(deliveries)) == 20
    if engine.dialect.name == "postgresql":  # SQLite's claims wait their turn, one by one
        assert all(done["webhooks_delivered"] > 0 for done in results)


def test_outbox_counts_say_what_waits_and_for_how_long(
    engine: Engine, program_id: int, receiver: Receiver
) -> None:
    empty = outbox_counts(engine, program_id, now=NOW)
    assert empty == {"pending": 0, "delivered": 0, "given_up": 0, "oldest_pending_seconds": None}
    add(engine, program_id, key="first")
    add(engine, program_id, key="second")
    deliver_due(engine, now=NOW, targets=to(receiver), limit=1)
    later: datetime = NOW + timedelta(minutes=5)
    counts = outbox_counts(engine, program_id, now=later)
    assert counts == {"pending": 1, "delivered": 1, "given_up": 0, "oldest_pending_seconds": 300}
