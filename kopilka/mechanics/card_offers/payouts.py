"""Paying card-linked rewards once their return period is over, and the bank's webhooks.

A confirmed reward becomes payable `return_days` after its clearing: from then on a
refund no longer takes it back from a pending amount, the bank credits the card, and
the merchant owes it. Each reward's change is also a webhook to the bank in the outbox
(kopilka/platform/webhooks.py), written in the same transaction as the change, with a
key of its own so a message taken twice never notifies twice.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from kopilka.mechanics.card_offers.section import card_offers_of
from kopilka.mechanics.card_offers.tables import (
    clo_cards,
    clo_offers,
    clo_reward_changes,
    clo_rewards,
)
from kopilka.platform.db import reading
from kopilka.platform.idempotency import retrying
from kopilka.platform.tables import programs
from kopilka.platform.webhooks import Target, deliver_due, enqueue, outbox_row
from kopilka.programs.handlers import load_program

ENDPOINT = "bank"
MIN_SECRET_LENGTH = 16  # a shorter secret is treated as none: nothing is sent
BATCH = 500  # rewards paid per transaction: a long backlog is paid in several


def notify(connection: Connection, *, program_id: int, event: str, key: str,
           body: dict[str, Any], now: datetime) -> None:  # fmt: skip
    """A webhook to the bank, in the caller's transaction."""
    enqueue(connection, program_id=program_id, endpoint=ENDPOINT, event=event, key=key,
            body=body, now=now)  # fmt: skip


def webhook_row(*, program_id: int, event: str, key: str, body: dict[str, Any],
                now: datetime) -> dict[str, Any]:  # fmt: skip
    """The outbox row `notify` adds, for a caller that writes it with its other rows (a
    feed message in one statement, a batch in bulk): inserted `ON CONFLICT (program_id,
    event_key) DO NOTHING`, as `enqueue` does."""
    return outbox_row(program_id=program_id, endpoint=ENDPOINT, event=event, key=key,
                      body=body, now=now)  # fmt: skip


def pay_due_rewards(engine: Engine, *, now: datetime) -> int:
    """Mark paid every confirmed reward whose return period is over by `now`; how many."""
    paid = 0
    while True:
        done = retrying(engine, lambda connection: _pay_batch(connection, now))
        paid += done
        if done < BATCH:
            return paid


def _pay_batch(connection: Connection, now: datetime) -> int:
    due = connection.execute(
        select(clo_rewards.c.id, clo_rewards.c.program_id, clo_rewards.c.purchase,
               clo_rewards.c.cashback, clo_rewards.c.fee, clo_offers.c.code, clo_cards.c.token)
        .join(clo_offers, clo_offers.c.id == clo_rewards.c.offer_id)
        .join(clo_cards, clo_cards.c.id == clo_rewards.c.card_id)
        .where(clo_rewards.c.status == "confirmed", clo_rewards.c.payable_at <= now)
        .order_by(clo_rewards.c.id).limit(BATCH)
    ).all()  # fmt: skip
    if not due:
        return 0
    connection.execute(update(clo_rewards).where(clo_rewards.c.id.in_([r.id for r in due]))
                       .values(status="paid", paid_at=now))  # fmt: skip
    connection.execute(insert(clo_reward_changes), [
        {"reward_id": reward.id, "transaction_id": reward.purchase, "status": "paid",
         "cashback_delta": 0, "fee_delta": 0, "reason": "return_period_over", "at": now}
        for reward in due])  # fmt: skip
    for reward in due:
        notify(connection, program_id=reward.program_id, event="reward.paid",
               key=f"{reward.purchase}:{reward.code}:paid", now=now,
               body={"event": "reward.paid", "transaction_id": reward.purchase,
                     "offer": reward.code, "card": reward.token,
                     "cashback_minor": reward.cashback, "fee_minor": reward.fee,
                     "paid_at": now.isoformat()})  # fmt: skip
    return len(due)


def deliver_webhooks(engine: Engine, *, now: datetime) -> dict[str, int]:
    """Send the bank's due webhooks, each program's to the URL its `card_offers` section
    names, signed with the secret in the environment variable it names."""
    banks = _banks(engine)
    if not banks:
        return {}
    return deliver_due(engine, now=now,
                       targets=lambda program_id, endpoint: banks.get(program_id)
                       if endpoint == ENDPOINT else None)  # fmt: skip


def _banks(engine: Engine) -> dict[int, Target]:
    found = {}
    with reading(engine) as connection:
        for row in connection.execute(select(programs.c.id, programs.c.code)).all():
            settings = card_offers_of(
                load_program(connection, row.code).calculator.program.sections
            )
            if settings is None or settings.webhook_url is None or settings.secret_env is None:
                continue
            secret = os.environ.get(settings.secret_env, "")
            if len(secret) >= MIN_SECRET_LENGTH:
                found[row.id] = Target(settings.webhook_url, secret)
    return found
