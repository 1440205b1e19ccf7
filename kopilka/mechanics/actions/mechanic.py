"""The actions mechanic's hooks (skeleton)."""

from __future__ import annotations

from kopilka.checkout.mechanic import Mechanic, Step


class Actions(Mechanic):
    name = "actions"
    step = Step.LATER
