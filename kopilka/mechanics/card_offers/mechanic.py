"""Card-linked offers as a mechanic: its routes, tables, checks and due work.

It takes no part in a receipt's purchase: card transactions are a feed of their own
(`POST /v1/programs/{program}/card-transactions`, and the batch). Its due work pays the
rewards whose return period is over and sends the bank's webhooks (`kopilka worker`).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from kopilka.checkout.mechanic import Mechanic, Step
from kopilka.mechanics.card_offers.pages import router as pages
from kopilka.mechanics.card_offers.payouts import deliver_webhooks, pay_due_rewards
from kopilka.mechanics.card_offers.routes import router
from kopilka.mechanics.card_offers.tables import CHECKS

HERE = Path(__file__).resolve().parent


class CardOffers(Mechanic):
    name = "card_offers"
    step = Step.LATER
    router = router
    pages = pages
    templates = HERE / "templates"
    translations = HERE / "locale"  # its page's texts, ru and en
    migrations = HERE / "migrations"
    console_link = ("card-offers", "Card-linked offers")
    checks = CHECKS

    def due_work(self, engine: Engine, now: datetime) -> dict[str, int]:
        """Pay the rewards whose return period is over, then send the bank its webhooks
        (those of the payments just made among them)."""
        done = {"card_rewards_paid": pay_due_rewards(engine, now=now)}
        done.update(deliver_webhooks(engine, now=now))
        return done
