"""A card-transaction feed through the offers: the two steps both paths share.

**Per card** (`CardDesk.take`): each message of a card, in feed order, is matched to a
location and judged against the merchant's offers with the card's state (activations,
uses, the merchant seen before); it yields `Claim`s — open a reward, adjust it to a
clearing's amount, release it (an authorisation reversed), claw it back (a refund).
A use counts a purchase that met the offer's terms, whether or not the budget paid it,
so this step never needs another card's transactions.

**Per offer** (`OfferDesk.settle`): an offer's claims, in feed order, against its
budget and its rewards' states; it yields the `Change`s written: a reward provisionally
qualified, confirmed, adjusted, released, clawed back, or refused (budget spent).

Online, a message goes through both at once, its card's and its offers' state read from
the database. In batch (kopilka/mechanics/card_offers/batch.py) the first step runs
partitioned by card, the second by offer, on Dask. Both give the same changes because
they are the same functions on the same order: the feed's (`Message.seq`).

Pure: the standard library only.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from kopilka.mechanics.card_offers.model import (
    Budget,
    Card,
    CardState,
    Catalog,
    Kind,
    Location,
    Match,
    Offer,
    Purchase,
    Reason,
    judge,
)


@dataclass(frozen=True, slots=True)
class Message:
    """One message of the feed. `seq` is its place in the feed (online: the order it was
    taken in); `original` the transaction a clearing, reversal or refund is about."""

    seq: int
    id: str
    kind: Kind
    card: str
    amount: int
    at: datetime
    scheme: str
    merchant_id: str | None = None
    descriptor: str = ""
    mcc: str | None = None
    original: str | None = None


@dataclass(frozen=True, slots=True)
class Known:
    """What a purchase already taken left for the messages about it: where it was, its
    amount, and the offers it met the terms of."""

    match: Match | None
    amount: int
    offers: tuple[str, ...]
    cleared: bool = False
    released: bool = False  # its authorisation was reversed


class Action(StrEnum):
    OPEN = "open"  # a purchase met an offer's terms: a reward, if the budget pays
    ADJUST = "adjust"  # its clearing: the reward on the cleared amount, confirmed
    RELEASE = "release"  # its authorisation reversed: the reward withdrawn
    CLAW = "claw"  # a refund of it: the reward taken back in proportion


@dataclass(frozen=True, slots=True)
class Claim:
    """What a message asks of one offer's reward (`reward`: the purchase's transaction
    id). `amount`: the purchase's amount (open, adjust) or the refund's (claw)."""

    seq: int
    message: str
    offer: str
    reward: str
    action: Action
    amount: int
    at: datetime
    card: str
    merchant: str
    confirmed: bool = False  # an OPEN from a clearing with no authorisation before it


@dataclass(frozen=True, slots=True)
class Judged:
    """A message after the per-card step: where it was made (None: unmatched), each of
    the merchant's offers and why it did or did not qualify, and its claims."""

    message: Message
    match: Match | None
    verdicts: tuple[tuple[str, Reason], ...]
    claims: tuple[Claim, ...]
    problem: str | None = None  # a message that could not be taken (an unknown original)


class CardDesk:
    """The per-card step for the messages of one card, in feed order."""

    def __init__(self, catalog: Catalog, offers: Mapping[str, Sequence[Offer]], card: Card,
                 state: CardState, known: dict[str, Known]) -> None:  # fmt: skip
        self.catalog = catalog
        self.offers = offers  # by merchant, in code order
        self.card = card
        self.state = state
        self.known = known  # by transaction id: this card's purchases taken before

    def take(self, message: Message) -> Judged:
        if message.kind is Kind.AUTHORISATION:
            return self._purchase(message, confirmed=False)
        before = self.known.get(message.original or "")
        if message.kind is Kind.CLEARING:
            # cleared with no authorisation seen, or after its authorisation was reversed
            # (the money moved all the same): judged now, confirmed
            if before is None or before.released:
                return self._purchase(message, confirmed=True, reward=message.original)
            return self._about(message, before, Action.ADJUST)
        if before is None:
            return Judged(message, None, (), (), problem="original_not_found")
        if message.kind is Kind.REVERSAL:
            if before.cleared or before.released:
                problem = "original_cleared" if before.cleared else "original_reversed"
                return Judged(message, before.match, (), (), problem=problem)
            for offer in before.offers:
                self.state.uses[offer] = self.state.uses.get(offer, 1) - 1
            self.known[message.original or ""] = replace(before, released=True)
            return self._about(message, before, Action.RELEASE)
        return self._about(message, before, Action.CLAW)

    def _purchase(self, message: Message, *, confirmed: bool,
                  reward: str | None = None) -> Judged:  # fmt: skip
        reward = reward or message.id
        match = self.catalog.match(message.scheme, message.merchant_id, message.descriptor,
                                   message.mcc)  # fmt: skip
        if match is None:
            self.known[reward] = Known(None, message.amount, (), cleared=confirmed)
            return Judged(message, None, (), ())
        purchase = Purchase(self.card, message.amount, message.at, match.location,
                            match.merchant)  # fmt: skip
        locations = self._locations(match.merchant)
        verdicts, claims = [], []
        for offer in self.offers.get(match.merchant, ()):
            reason = judge(offer, purchase, self.state, locations)
            verdicts.append((offer.code, reason))
            if reason is Reason.QUALIFIED:
                self.state.uses[offer.code] = self.state.uses.get(offer.code, 0) + 1
                claims.append(Claim(message.seq, message.id, offer.code, reward, Action.OPEN,
                                    message.amount, message.at, self.card.token,
                                    match.merchant, confirmed))  # fmt: skip
        self.state.saw(match.merchant, message.at)
        qualified = tuple(claim.offer for claim in claims)
        self.known[reward] = Known(match, message.amount, qualified, cleared=confirmed)
        return Judged(message, match, tuple(verdicts), tuple(claims))

    def _about(self, message: Message, before: Known, action: Action) -> Judged:
        reward = message.original or ""
        if action is Action.ADJUST:
            self.known[reward] = Known(before.match, message.amount, before.offers, True)
        merchant = before.match.merchant if before.match else ""
        claims = tuple(
            Claim(message.seq, message.id, offer, reward, action, message.amount,
                  message.at, self.card.token, merchant)
            for offer in before.offers
        )  # fmt: skip
        return Judged(message, before.match, (), claims)

    def _locations(self, merchant: str) -> list[Location]:
        return self.catalog.merchant_locations(merchant)


NO_CASHBACK = "cashback_below_a_minor_unit"  # met the terms; its cashback rounds to nothing


class Status(StrEnum):
    PENDING = "pending"  # provisionally qualified (authorised)
    CONFIRMED = "confirmed"  # cleared: payable after the return period
    RELEASED = "released"  # the authorisation was reversed
    CLAWED_BACK = "clawed_back"  # refunded whole
    REFUSED = "refused"  # met the terms, but the budget was spent
    PAID = "paid"


@dataclass
class Reward:
    """An offer's reward for one purchase, as its messages left it."""

    offer: str
    reward: str  # the purchase's transaction id
    card: str
    merchant: str
    status: Status
    amount: int  # the purchase's amount (authorised, then cleared)
    cashback: int  # what the budget granted, net of what was clawed back
    fee: int
    granted: int = 0  # what the budget granted before any refund: a refund's share is of it
    refunded: int = 0  # money refunded of the purchase
    payable_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """A reward's change, as written: its status after, and the cashback and fee moved."""

    seq: int
    message: str
    offer: str
    reward: str
    status: Status
    cashback_delta: int
    fee_delta: int
    cashback: int
    fee: int
    reason: str


@dataclass
class OfferDesk:
    """The per-offer step: an offer's claims in feed order against its budget."""

    offer: Offer
    budget: Budget
    rewards: dict[str, Reward] = field(default_factory=dict)  # by purchase

    def settle(self, claims: Iterable[Claim]) -> Iterator[Change]:
        for claim in claims:
            change = self._settle(claim)
            if change is not None:
                yield change

    def _settle(self, claim: Claim) -> Change | None:
        if claim.action is Action.OPEN:
            return self._open(claim)
        reward = self.rewards.get(claim.reward)
        if reward is None or reward.status in (Status.REFUSED, Status.RELEASED):
            return None  # nothing was granted: nothing to move
        if claim.action is Action.ADJUST:
            return self._adjust(claim, reward)
        if claim.action is Action.RELEASE:
            return self._release(claim, reward)
        return self._claw(claim, reward)

    def _open(self, claim: Claim) -> Change:
        wanted = self.offer.cashback(claim.amount)
        granted = self.budget.grant(wanted) if wanted > 0 else 0
        if wanted == 0:  # a purchase too small for a minor unit of cashback
            status, fee, reason = Status.REFUSED, 0, NO_CASHBACK
        elif granted == 0:
            status, fee, reason = Status.REFUSED, 0, Reason.BUDGET_SPENT.value
        else:
            confirmed = claim.confirmed
            status = Status.CONFIRMED if confirmed else Status.PENDING
            fee, reason = self.offer.fee(claim.amount), Reason.QUALIFIED.value
        reward = Reward(self.offer.code, claim.reward, claim.card, claim.merchant, status,
                        claim.amount, granted, fee, granted)  # fmt: skip
        if status is Status.CONFIRMED:
            reward.payable_at = self._payable(claim.at)
        self.rewards[claim.reward] = reward
        return self._change(claim, reward, granted, fee, reason)

    def _adjust(self, claim: Claim, reward: Reward) -> Change:
        """The reward on the cleared amount, less the share of what was refunded before
        the clearing came (a purchase refunded whole stays clawed back)."""
        refunded = min(reward.refunded, claim.amount)
        kept = claim.amount - refunded
        wanted = self.offer.cashback(claim.amount)
        delta = _share(wanted, kept, claim.amount) - reward.cashback
        delta = self.budget.grant(delta) if delta > 0 else delta
        if delta < 0:
            self.budget.give_back(-delta)
        fee_delta = _share(self.offer.fee(claim.amount), kept, claim.amount) - reward.fee
        reward.cashback += delta
        # what a later refund's share is of: the cashback before refunds, as far as the
        # budget paid it
        reward.granted = reward.cashback if refunded == 0 else min(wanted, reward.granted)
        reward.fee += fee_delta
        reward.amount, reward.refunded = claim.amount, refunded
        reward.status = Status.CONFIRMED if kept > 0 else Status.CLAWED_BACK
        reward.payable_at = self._payable(claim.at)
        return self._change(claim, reward, delta, fee_delta, "cleared")

    def _release(self, claim: Claim, reward: Reward) -> Change:
        cashback, fee = reward.cashback, reward.fee
        self.budget.give_back(cashback)
        reward.cashback = reward.fee = 0
        reward.status = Status.RELEASED
        return self._change(claim, reward, -cashback, -fee, "reversed")

    def _claw(self, claim: Claim, reward: Reward) -> Change:
        refunded = min(reward.amount, reward.refunded + claim.amount)
        keep_cashback = _share(reward.granted, reward.amount - refunded, reward.amount)
        keep_fee = _share(self.offer.fee(reward.amount), reward.amount - refunded, reward.amount)
        cashback_delta = keep_cashback - reward.cashback
        fee_delta = keep_fee - reward.fee
        self.budget.give_back(-cashback_delta)
        reward.refunded = refunded
        reward.cashback, reward.fee = keep_cashback, keep_fee
        if refunded >= reward.amount:
            reward.status = Status.CLAWED_BACK
        return self._change(claim, reward, cashback_delta, fee_delta, "refunded")

    def _payable(self, cleared_at: datetime) -> datetime:
        return cleared_at + timedelta(days=self.offer.return_days)

    def _change(self, claim: Claim, reward: Reward, cashback_delta: int, fee_delta: int,
                reason: str) -> Change:  # fmt: skip
        return Change(claim.seq, claim.message, self.offer.code, claim.reward, reward.status,
                      cashback_delta, fee_delta, reward.cashback, reward.fee, reason)  # fmt: skip


def _share(whole: int, part: int, of: int) -> int:
    """`whole` × part / of, half up (a refund's share of a reward)."""
    if of <= 0:
        return 0
    return int((Decimal(whole) * part / of).quantize(Decimal(1), ROUND_HALF_UP))


@dataclass
class World:
    """Everything a feed is taken against, as it stands before it: the catalog, the
    offers by merchant (in code order), the cards, and the state earlier messages left —
    each card's, each card's purchases taken (`known`, by card then transaction), each
    offer's budget and its rewards."""

    catalog: Catalog
    offers: dict[str, list[Offer]]
    cards: dict[str, Card]
    states: dict[str, CardState] = field(default_factory=dict)
    known: dict[str, dict[str, Known]] = field(default_factory=dict)
    budgets: dict[str, Budget] = field(default_factory=dict)
    rewards: dict[str, dict[str, Reward]] = field(default_factory=dict)

    def card_desk(self, token: str) -> CardDesk:
        card = self.cards.get(token) or Card(token, "")
        return CardDesk(self.catalog, self.offers, card,
                        self.states.setdefault(token, CardState()),
                        self.known.setdefault(token, {}))  # fmt: skip

    def offer_desk(self, offer: Offer) -> OfferDesk:
        budget = self.budgets.setdefault(offer.code, Budget(offer.budget))
        return OfferDesk(offer, budget, self.rewards.setdefault(offer.code, {}))

    def offer(self, code: str) -> Offer:
        return self._by_code()[code]

    def _by_code(self) -> dict[str, Offer]:
        return {offer.code: offer for offers in self.offers.values() for offer in offers}


def run_in_order(world: World, messages: Iterable[Message]) -> tuple[list[Judged], list[Change]]:
    """The feed one message at a time through both steps, as the online path takes it:
    the reference the batch path must equal."""
    by_code = world._by_code()
    judged: list[Judged] = []
    changes: list[Change] = []
    for message in messages:
        outcome = world.card_desk(message.card).take(message)
        judged.append(outcome)
        for claim in outcome.claims:
            changes.extend(world.offer_desk(by_code[claim.offer]).settle([claim]))
    return judged, changes
