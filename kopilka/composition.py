"""The composition root: the mechanics this Kopilka runs, registered in one place.

A new mechanic is one folder under `kopilka/mechanics/`, one line here, and its
migration (see docs/architecture.md, "Adding a mechanic"). The order within a step is
the order below: expiry's due work runs before the triggers' and the tiers' review.
"""

from __future__ import annotations

from kopilka.checkout.mechanic import register
from kopilka.mechanics.actions.mechanic import Actions
from kopilka.mechanics.bounce_back.mechanic import BounceBack
from kopilka.mechanics.card_offers.mechanic import CardOffers
from kopilka.mechanics.cashback.mechanic import Cashback
from kopilka.mechanics.challenges.mechanic import Challenges
from kopilka.mechanics.charity.mechanic import Charity
from kopilka.mechanics.claims.mechanic import Claims
from kopilka.mechanics.clubs.mechanic import Clubs
from kopilka.mechanics.coalition.mechanic import Coalition
from kopilka.mechanics.coupons.mechanic import Coupons
from kopilka.mechanics.discounts.mechanic import Discounts
from kopilka.mechanics.exchange.mechanic import Exchange
from kopilka.mechanics.expiry.mechanic import Expiry
from kopilka.mechanics.referrals.mechanic import Referrals
from kopilka.mechanics.stamps.mechanic import Stamps
from kopilka.mechanics.tiers.mechanic import Tiers
from kopilka.mechanics.triggers.mechanic import Triggers

# The coalition comes last: a prepaid partner's blocks pay for every point the purchase
# earns, the other mechanics' rewards included, so it plans after all of them.
MECHANICS = (Discounts(), Coupons(), Cashback(), Expiry(), Triggers(), Tiers(), Stamps(),
             Challenges(), BounceBack(), Actions(), Referrals(), Claims(), Clubs(),
             Exchange(), Charity(), Coalition(), CardOffers())  # fmt: skip

for mechanic in MECHANICS:
    register(mechanic)
