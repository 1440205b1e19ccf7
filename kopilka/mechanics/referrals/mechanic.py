"""The referrals mechanic's hooks (skeleton)."""

from __future__ import annotations

from kopilka.checkout.mechanic import Mechanic, Step


class Referrals(Mechanic):
    name = "referrals"
    step = Step.LATER
