"""Signed webhooks from an outbox: a mechanic adds one in the transaction of the state
change it reports (so a webhook exists if and only if the change committed); the worker
sends it later, outside any transaction, and retries it with back-off (docs/webhooks.md).

Each delivery is a POST of the stored JSON body with the headers

    Content-Type:        application/json
    X-Kopilka-Event:     <event>, e.g. transaction.confirmed
    X-Kopilka-Delivery:  <the outbox row's id>: the same for every attempt, so a receiver
                         that has seen it answers 2xx and does nothing again
    X-Kopilka-Timestamp: <Unix time in seconds of the attempt>
    X-Kopilka-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<delivery>.<raw body>"
                         under the endpoint's secret>

A receiver checks the signature over the raw bytes it received (`verify`, in constant
time) and that the timestamp is recent; the delivery id is signed too, so a body can't
be replayed under another id. A 2xx answer (within `TIMEOUT_SECONDS`) delivers it;
anything else — another status, a time-out, a refused connection — is a failed attempt,
tried again `FIRST_RETRY` later, then twice as long each time up to `LONGEST_RETRY`, and
given up after `MAX_ATTEMPTS`. Delivery is at least once (a worker that dies after
sending sends again after its lease) and in no particular order.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypedDict

import httpx
from sqlalchemy import Connection, Engine, Select, and_, func, not_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from kopilka.platform.db import reading, writing
from kopilka.platform.tables import webhook_outbox

TIMEOUT_SECONDS = 20.0  # a receiver answers within it (Fidel API's practice)
MAX_ATTEMPTS = 8
FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(hours=6)
# A claimed row is not due again for this margin plus the time-out of every send in its
# batch: sends are one after another, so another worker never takes a row still waiting
# its turn; a worker that dies mid-batch leaves its rows to be sent after the lease.
LEASE_MARGIN = timedelta(seconds=60)
TOLERANCE_SECONDS = 300  # how far from the receiver's clock `verify` accepts a timestamp

EVENT_HEADER = "X-Kopilka-Event"
DELIVERY_HEADER = "X-Kopilka-Delivery"
TIMESTAMP_HEADER = "X-Kopilka-Timestamp"
SIGNATURE_HEADER = "X-Kopilka-Signature"

# the columns' lengths (kopilka.platform.tables.webhook_outbox)
ENDPOINT_LENGTH = 64
EVENT_LENGTH = 64
KEY_LENGTH = 200
ERROR_LENGTH = 500
_ANSWER_SHOWN = 200  # characters of a failed answer's body kept in last_error


@dataclass(frozen=True, slots=True)
class Target:
    """Where an endpoint's webhooks go and the secret they are signed with (kept out of
    the repr, so a logged target shows no secret)."""

    url: str
    secret: str = field(repr=False)


Targets = Callable[[int, str], Target | None]  # (program id, endpoint) → its target, if any


class OutboxCounts(TypedDict):
    """A program's outbox: webhooks waiting (`pending`, those not yet tried among them),
    delivered and given up, and how long the oldest waiting one has waited."""

    pending: int
    delivered: int
    given_up: int
    oldest_pending_seconds: int | None


# ---------------------------------------------------------------- signatures (pure)


def sign(secret: str, timestamp: int | str, delivery_id: int | str, body: bytes | str) -> str:
    """The X-Kopilka-Signature of a delivery: `sha256=<hex>`."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    message = f"{timestamp}.{delivery_id}.".encode() + raw
    return "sha256=" + hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def verify(
    secret: str, timestamp: int | str, delivery_id: int | str, body: bytes | str,
    signature: str, *, now: datetime | None = None, tolerance_seconds: int = TOLERANCE_SECONDS,
) -> bool:  # fmt: skip
    """Whether `signature` is the delivery's, compared in constant time; with `now`, also
    whether the timestamp is within `tolerance_seconds` of it (a captured request can't
    be sent again later)."""
    if now is not None:
        try:
            moment = int(timestamp)
        except ValueError:
            return False
        if abs(now.timestamp() - moment) > tolerance_seconds:
            return False
    expected = sign(secret, timestamp, delivery_id, body)
    return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))


# ---------------------------------------------------------------- enqueueing


def serialized(body: dict[str, Any]) -> str:
    """The body as sent: compact JSON, keys sorted, ASCII only. Amounts come as strings or
    integers; a float (binary, inexact) or a Decimal is refused."""
    _refuse_inexact(body)
    return json.dumps(body, separators=(",", ":"), sort_keys=True, allow_nan=False)


def _refuse_inexact(value: Any) -> None:
    if isinstance(value, float):
        raise TypeError(f"a webhook's body holds no floats (got {value!r}): send a string")
    if isinstance(value, dict):
        for item in value.values():
            _refuse_inexact(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _refuse_inexact(item)


def outbox_row(
    *, program_id: int, endpoint: str, event: str, key: str, body: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """A webhook as its outbox row, due at once (its lengths checked, its body as sent):
    what `enqueue` adds, for a caller that writes it with other rows of its own."""
    _check_length("endpoint", endpoint, ENDPOINT_LENGTH)
    _check_length("event", event, EVENT_LENGTH)
    _check_length("key", key, KEY_LENGTH)
    return {"program_id": program_id, "endpoint": endpoint, "event": event, "event_key": key,
            "body": serialized(body), "created_at": now, "attempts": 0,
            "next_attempt_at": now}  # fmt: skip


def enqueue(
    connection: Connection, *, program_id: int, endpoint: str, event: str, key: str,
    body: dict[str, Any], now: datetime,
) -> bool:  # fmt: skip
    """Add a webhook in the caller's transaction, due at once; True if it was added, False
    if the program already has one of this `key` (the same event reported again)."""
    row = outbox_row(program_id=program_id, endpoint=endpoint, event=event, key=key,
                     body=body, now=now)  # fmt: skip
    statement = (
        _insert(connection).values(**row)
        .on_conflict_do_nothing(index_elements=["program_id", "event_key"])
        .returning(webhook_outbox.c.id)
    )  # fmt: skip
    return connection.execute(statement).first() is not None


def enqueue_many(connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Many webhooks (`outbox_row`s) in the caller's transaction (a batch's, in bulk), each
    as `enqueue` adds it: none added twice for a program and key."""
    if rows:
        statement = _insert(connection).on_conflict_do_nothing(
            index_elements=["program_id", "event_key"])  # fmt: skip
        connection.execute(statement, list(rows))


def _insert(connection: Connection) -> Any:
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    return dialect.insert(webhook_outbox)


def _check_length(name: str, value: str, longest: int) -> None:
    if not value or len(value) > longest:
        raise ValueError(f"a webhook's {name} is 1 to {longest} characters, got {value!r}")


# ---------------------------------------------------------------- delivering


@dataclass(frozen=True, slots=True)
class Claimed:
    """A row this worker holds by its lease, with where it goes."""

    id: int
    event: str
    body: str
    attempts: int  # before this one: recording the outcome checks it is still so
    target: Target


@dataclass(frozen=True, slots=True)
class Outcome:
    delivered: bool
    error: str | None = None


def retry_delay(attempts: int) -> timedelta:
    """How long after its `attempts`-th failed attempt a webhook is tried again."""
    doublings = min(max(attempts - 1, 0), 30)  # 2³⁰ minutes is far past the cap already
    return min(FIRST_RETRY * (1 << doublings), LONGEST_RETRY)


def deliver_due(
    engine: Engine, *, now: datetime, targets: Targets, client: httpx.Client | None = None,
    limit: int = 100, timeout_seconds: float = TIMEOUT_SECONDS,
) -> dict[str, int]:  # fmt: skip
    """Send up to `limit` webhooks due by `now` and record each outcome; how many were
    delivered, will be retried, were given up. A row whose program has no target for its
    endpoint (`targets` answers None) is left as it is, not counted an attempt. `targets`
    is called while the claim's transaction is open: it should read, not write or call out.
    No transaction is open while a request is on the wire."""
    claimed = _claim(engine, now=now, targets=targets, limit=limit,
                     timeout_seconds=timeout_seconds)  # fmt: skip
    done = {"webhooks_delivered": 0, "webhooks_retried": 0, "webhooks_given_up": 0}
    if not claimed:
        return done
    with _client(client) as http:
        for row in claimed:
            outcome = _send(http, row, now=now, timeout_seconds=timeout_seconds)
            count = _record(engine, row, outcome, now=now)
            if count is not None:
                done[count] += 1
    return done


@contextmanager
def _client(given: httpx.Client | None) -> Iterator[httpx.Client]:
    if given is not None:
        yield given
        return
    with httpx.Client() as made:
        yield made


def _claim(
    engine: Engine, *, now: datetime, targets: Targets, limit: int, timeout_seconds: float
) -> list[Claimed]:
    """Take up to `limit` due rows that have a target, moving each one's next attempt past
    the lease in one short transaction; rows of endpoints with no target stay untouched.
    Page after page, leaving out the endpoints found without one, so that many rows of an
    unconfigured program never keep the others waiting."""
    found: dict[tuple[int, str], Target | None] = {}
    claimed: list[Claimed] = []
    with writing(engine), engine.begin() as connection:
        while len(claimed) < limit:
            wanted = limit - len(claimed)
            untargeted = [pair for pair, target in found.items() if target is None]
            taken = [row.id for row in claimed]
            rows = connection.execute(_due(connection, now, untargeted, taken, wanted)).all()
            for row in rows:
                pair = (row.program_id, row.endpoint)
                if pair not in found:
                    found[pair] = targets(*pair)
                target = found[pair]
                if target is not None:
                    claimed.append(Claimed(row.id, row.event, row.body, row.attempts, target))
            if len(rows) < wanted:
                break
        lease = LEASE_MARGIN + timedelta(seconds=timeout_seconds * len(claimed))
        _lease(connection, [row.id for row in claimed], until=now + lease)
    return claimed


def _due(
    connection: Connection, now: datetime, untargeted: list[tuple[int, str]], taken: list[int],
    limit: int,
) -> Select[Any]:  # fmt: skip
    outbox = webhook_outbox.c
    query = (
        select(outbox.id, outbox.program_id, outbox.endpoint, outbox.event, outbox.body,
               outbox.attempts)
        .where(outbox.delivered_at.is_(None), outbox.given_up_at.is_(None),
               outbox.next_attempt_at <= now)
        .order_by(outbox.next_attempt_at, outbox.id)
        .limit(limit)
    )  # fmt: skip
    if taken:  # this claim's own, locked by it (SKIP LOCKED skips only others' locks)
        query = query.where(outbox.id.not_in(taken))
    if untargeted:
        query = query.where(not_(or_(*(
            and_(outbox.program_id == program_id, outbox.endpoint == endpoint)
            for program_id, endpoint in untargeted
        ))))  # fmt: skip
    if connection.dialect.name == "postgresql":
        # two workers never take one row: each skips the rows the other is claiming
        query = query.with_for_update(skip_locked=True)
    return query


def _lease(connection: Connection, ids: list[int], *, until: datetime) -> None:
    if ids:
        leased = update(webhook_outbox).where(webhook_outbox.c.id.in_(ids))
        connection.execute(leased.values(next_attempt_at=until))


def _send(http: httpx.Client, row: Claimed, *, now: datetime, timeout_seconds: float) -> Outcome:
    timestamp = str(int(now.timestamp()))
    headers = {
        "Content-Type": "application/json",
        EVENT_HEADER: row.event,
        DELIVERY_HEADER: str(row.id),
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(row.target.secret, timestamp, row.id, row.body),
    }
    try:
        with http.stream("POST", row.target.url, content=row.body.encode("utf-8"),
                         headers=headers, timeout=timeout_seconds,
                         follow_redirects=False) as response:  # fmt: skip
            if response.is_success:
                return Outcome(delivered=True)
            answer = _beginning_of(response)
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        return Outcome(False, _redacted(f"{type(error).__name__}: {error}", row.target))
    return Outcome(False, _redacted(f"HTTP {response.status_code}: {answer}", row.target))


def _beginning_of(response: httpx.Response) -> str:
    """The first characters of a failed answer's body (a receiver's "bad signature" is the
    likeliest reason to read it), read no further: the answer may be long."""
    read = b""
    for chunk in response.iter_bytes():
        read += chunk
        if len(read) >= _ANSWER_SHOWN * 4:
            break
    return " ".join(read.decode("utf-8", "replace").split())[:_ANSWER_SHOWN]


def _redacted(error: str, target: Target) -> str:
    """`error` fit for last_error: never the secret (a receiver may echo it, a URL may
    carry it), at most ERROR_LENGTH characters."""
    if target.secret:
        error = error.replace(target.secret, "[secret]")
    return error[:ERROR_LENGTH]


def _record(engine: Engine, row: Claimed, outcome: Outcome, *, now: datetime) -> str | None:
    """Write the attempt's outcome, unless another worker recorded this attempt (after
    the lease ran out); the name of the count it adds to, None when it was not written."""
    attempts = row.attempts + 1
    if outcome.delivered:
        values: dict[str, Any] = {"delivered_at": now}
        count = "webhooks_delivered"
    elif attempts >= MAX_ATTEMPTS:
        values = {"given_up_at": now, "last_error": outcome.error}
        count = "webhooks_given_up"
    else:
        values = {"next_attempt_at": now + retry_delay(attempts), "last_error": outcome.error}
        count = "webhooks_retried"
    outbox = webhook_outbox.c
    with writing(engine), engine.begin() as connection:
        written = connection.execute(
            update(webhook_outbox)
            .where(outbox.id == row.id, outbox.attempts == row.attempts,
                   outbox.delivered_at.is_(None), outbox.given_up_at.is_(None))
            .values(attempts=attempts, **values)
        ).rowcount  # fmt: skip
    return count if written else None


# ---------------------------------------------------------------- the console's figures


def outbox_counts(engine: Engine, program_id: int, *, now: datetime) -> OutboxCounts:
    """The program's outbox as of `now` (for the console and a health check)."""
    outbox = webhook_outbox.c
    pending = and_(outbox.delivered_at.is_(None), outbox.given_up_at.is_(None))
    query = select(
        func.count().filter(pending),
        func.count().filter(outbox.delivered_at.is_not(None)),
        func.count().filter(outbox.given_up_at.is_not(None)),
        func.min(outbox.created_at).filter(pending),
    ).where(outbox.program_id == program_id)
    with reading(engine) as connection:
        waiting, delivered, given_up, oldest = connection.execute(query).one()
    return OutboxCounts(
        pending=int(waiting),
        delivered=int(delivered),
        given_up=int(given_up),
        oldest_pending_seconds=None if oldest is None else _seconds_since(oldest, now),
    )


def _seconds_since(moment: datetime | str, now: datetime) -> int:
    # an aggregate's result skips the column's type: SQLite gives back its stored text
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=now.tzinfo)
    return max(0, int((now - moment).total_seconds()))
