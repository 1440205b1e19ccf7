"""Triggers: rewards on occasions, fired by the worker (they have no purchase hooks)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from kopilka.checkout.mechanic import Mechanic, Step
from kopilka.mechanics.triggers.handlers import fire_triggers


class Triggers(Mechanic):
    name = "triggers"
    step = Step.LATER

    def due_work(self, engine: Engine, now: datetime) -> dict[str, int]:
        return {"triggers_fired": fire_triggers(engine, now=now)}
