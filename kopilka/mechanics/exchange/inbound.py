"""Requests from outside programs: whose secret signs them, and their single-use nonces.

A nonce is recorded once its request's signature is good (so nobody without the secret
fills the table), in a transaction of its own before the request is processed: a second
request with the same nonce is refused, whatever its body. Nonces are kept for the
signature's timestamp window (a request older than that is refused by its timestamp
anyway) and then purged by the worker.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, delete, insert, select
from sqlalchemy.exc import IntegrityError

from kopilka.kernel.errors import NotFound
from kopilka.mechanics.exchange.model import RemoteSide, exchange_of
from kopilka.mechanics.exchange.signing import TOLERANCE_SECONDS, secrets_in
from kopilka.mechanics.exchange.tables import exchange_nonces
from kopilka.platform.db import writing
from kopilka.programs.handlers import load_program

KEPT = timedelta(seconds=2 * TOLERANCE_SECONDS)  # the window either side of a timestamp


def partner_secrets(engine: Engine, program_code: str, partner: str) -> list[str]:
    """The secrets a request from the outside program `partner` may be signed with; none
    when its variable is not set. `NotFound` when the program has no pair with it: an
    exchange partner that does not exist, as an id of another program."""
    with engine.connect() as connection:
        program = load_program(connection, program_code)
    pair = exchange_of(program.calculator.program).with_partner(partner)
    if pair is None or not isinstance(pair.other, RemoteSide):
        raise NotFound(f"exchange partner {partner!r} does not exist")
    return secrets_in(os.environ.get(pair.other.secret_env))


def is_nonce_new(engine: Engine, program_code: str, partner: str, nonce: str,
                 now: datetime) -> bool:  # fmt: skip
    """Record the nonce; False when it was seen before (a replayed request)."""
    try:
        with writing(engine), engine.begin() as connection:
            program = load_program(connection, program_code)
            connection.execute(
                insert(exchange_nonces).values(
                    program_id=program.program_id, partner=partner, nonce=nonce, seen_at=now
                )
            )
    except IntegrityError:
        return False
    return True


def purge_nonces(engine: Engine, *, now: datetime) -> int:
    """Forget the nonces older than the window: their requests are refused by timestamp."""
    with writing(engine), engine.begin() as connection:
        return _purge(connection, now)


def _purge(connection: Connection, now: datetime) -> int:
    old = select(exchange_nonces.c.nonce).where(exchange_nonces.c.seen_at < now - KEPT).limit(1)
    if connection.execute(old).first() is None:
        return 0
    result = connection.execute(delete(exchange_nonces)
                                .where(exchange_nonces.c.seen_at < now - KEPT))  # fmt: skip
    return int(result.rowcount or 0)
