"""The mechanic protocol: what the purchase pipeline asks of every mechanic it runs.

A mechanic (discounts, coupons, points, cashback, tiers, and every one to come) is one
package under `kopilka/mechanics/` with a `Mechanic` that the composition root
(`kopilka.composition`) registers. The pipeline knows this protocol, never a mechanic:

- `reads` — what the mechanic needs to know of the member to price a receipt (facts
  for the calculator's `MemberContext`, such as past purchases or cards in force), as
  queries the pipeline sends with the purchase's load (`Reads`): in its one round trip
  on PostgreSQL, so a mechanic that reads adds none;
- `step` — its place in the price of a receipt, in one order for every purchase:
  discounts → coupons → points → cashback → what comes later (`Step`);
- `offering` — its discounts for a receipt, made from the lines as the program's
  discounts leave them, within the receipt's one pricing (the coupons);
- `admit` — before a purchase is planned: refuse it (a coupon that does not apply);
- `quoted` — its part of a quote's answer (what it would give), writing nothing;
- `planned` — before the purchase is written: its part of the stored answer, its
  postings on the member's wallet, its typed records (`Sale.awards`) and rows of its own
  tables (`Sale.rows`), which all go out in the purchase's own write;
- `completed` / `confirmed` / `cancelled` / `refunded` — what it does when a purchase
  is completed, a held purchase is confirmed or cancelled (or its hold runs out), and a
  purchase is refunded, each inside that operation's own transaction; it may add its
  part to the answer (`answer`), which the pipeline stores with the purchase;
  `refund_points` — points it gave that a refund takes back with the lines' own;
- `due_work` — what falls due with time (`kopilka worker`): how many things it did;
- `joined` — a member registered (inside the registration's transaction): what the
  registration carried beyond the profile (a referral code, a device) is the mechanic's;
- `member_part` — its part of a member as the member API, the member page and the
  console's profile show them (stamps, badges, a referral code), or None.

A mechanic keeps a member's progress as running state (`Sale.bumps`: counts added to in
the purchase's own write) and may ask for a personal coupon as a reward
(`Sale.coupons_wanted`): the coupons mechanic gives it in its `issue` hook, which runs
after every mechanic's `planned`, so no mechanic imports another.

Every hook has a default that does nothing, so a mechanic writes only what it does.
Mechanics are run in `step` order (registration order within a step). A mechanic
also names what it brings to the platform beside the pipeline: an HTTP `router`, its
console `pages` (a router mounted under the console), its `templates` folder, its
`translations` folder (its console texts' catalogs) and its `migrations` folder (an
Alembic branch of its own).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kopilka.kernel.ledger import Reason

if TYPE_CHECKING:  # types only: the pipeline hands these to mechanics
    from fastapi import APIRouter
    from sqlalchemy import Connection, Engine, Row, ScalarSelect, Select

    from kopilka.checkout.offers import OfferStep
    from kopilka.checkout.pricing import Priced, PricingContext
    from kopilka.checkout.records import Award
    from kopilka.kernel.receipt import Receipt
    from kopilka.ledger.wallet import Wallet
    from kopilka.platform.statements import Bump, ChildRows
    from kopilka.programs.handlers import LoadedProgram

JSON = dict[str, Any]


def _no_parameters(now: datetime) -> JSON:  # noqa: ARG001 - the queries need no values
    return {}


@dataclass(frozen=True, eq=False)
class Reads:
    """What a mechanic reads of a member to price their receipt: queries the pipeline
    sends with the purchase's load (in its one round trip on PostgreSQL), and the facts
    their rows make.

    The queries depend only on the program's version (they are compiled once per
    version): they name the member by the subquery `Mechanic.reads` is given, and what
    changes with each purchase as bind parameters (`bindparam`) whose values
    `parameters(now)` gives. Those names begin with the mechanic's name, so the reads of
    two mechanics never mix."""

    queries: tuple[Select[Any], ...]
    facts: Callable[[Sequence[Sequence[Any]]], JSON]  # each query's rows, in order → facts
    parameters: Callable[[datetime], JSON] = _no_parameters


class Step(IntEnum):
    """A mechanic's place in the price of a receipt and in the handling of a purchase."""

    DISCOUNTS = 100
    COUPONS = 200
    POINTS = 300
    CASHBACK = 400
    LATER = 500  # tiers, triggers, and the mechanics still to come


@dataclass(frozen=True)
class CouponWanted:
    """A personal coupon a mechanic gives as a reward: one new code of the program's coupon
    campaign `campaign`, the member's own, usable from `valid_from` until `valid_until`
    (None: as long as the campaign runs); `reason` says why, in the answer."""

    mechanic: str  # who asked: a refund of the purchase asks it what to take back
    campaign: str
    reason: str
    valid_from: datetime | None = None
    valid_until: datetime | None = None


@dataclass
class Sale:
    """A purchase as the pipeline makes it (or quotes it), handed to each mechanic."""

    connection: Connection
    program: LoadedProgram
    receipt: Receipt
    member: Row[Any] | None  # the member's row as the purchase loaded it (with `tier`)
    wallet: Wallet | None  # the member's points, the purchase's postings planned on it
    priced: Priced
    answer: JSON  # the answer being built; a mechanic adds its part under its own key
    now: datetime
    actor: str
    hold: bool = False
    purchase_id: int | None = None  # known once the purchase's row is written
    # what each mechanic gave or took, as the purchase's typed records: those added by
    # `planned` go out in the purchase's own write, those added by `completed` after it
    awards: list[Award] = field(default_factory=list)
    # rows of a mechanic's own tables that hang off the purchase (`purchase_id` filled in
    # with its id), added by `planned`: they go out in the purchase's own write (one
    # statement on PostgreSQL), so a mechanic that writes this way adds no round trip
    rows: list[ChildRows] = field(default_factory=list)
    # counts a mechanic keeps per member (progress on a card, a challenge), added to in the
    # purchase's own write: running state, never a sum over the member's history
    bumps: list[Bump] = field(default_factory=list)
    # personal coupons the mechanics give as rewards, issued by the coupons mechanic
    coupons_wanted: list[CouponWanted] = field(default_factory=list)

    @property
    def member_id(self) -> int | None:
        return int(self.member.id) if self.member is not None else None


@dataclass
class Settlement:
    """A held purchase being confirmed, cancelled or released (its hold ran out)."""

    connection: Connection
    program: LoadedProgram
    wallet: Wallet
    purchase_id: int
    member_id: int
    outcome: str  # "confirmed", "cancelled" or "expired"
    stored: JSON  # the purchase's stored answer (for replays); a mechanic updates its part
    answer: JSON  # the settlement's answer
    now: datetime
    actor: str
    paid: int = 0  # money the purchase paid (minor units), from its record
    awards: list[Award] = field(default_factory=list)  # what the purchase recorded
    added: list[Award] = field(default_factory=list)  # what the settlement gives, recorded
    # the personal coupons the purchase gave that the cancel revoked (unused), by the
    # mechanic that gave them: a reward whose coupon was already used stands
    revoked: dict[str, int] = field(default_factory=dict)


@dataclass
class Refunding:
    """A refund of a purchase, whole or in part, being written."""

    connection: Connection
    program: LoadedProgram
    wallet: Wallet | None
    purchase: Any  # the purchase's row: id, member_id, status, paid, lots_used
    refund_row: int  # the refund's row id
    refund_key: str  # the ledger key prefix of this refund
    money_back: int  # the money the refund gives back (minor units, after points)
    whole: bool  # every line of the purchase is now returned
    answer: JSON  # the refund's answer; a mechanic adds its part under its own key
    now: datetime
    actor: str
    changed: bool = field(default=False)  # set when a hook changed `answer`
    awards: list[Award] = field(default_factory=list)  # what the purchase recorded
    # the quantity of each line (by `n`) returned by the purchase's refunds, this one too
    returned: dict[int, Any] = field(default_factory=dict)
    # what is left of each line of the purchase once this refund is written
    left: list[LineLeft] = field(default_factory=list)
    # the personal coupons the purchase gave that this refund revoked (unused), by the
    # mechanic that gave them (the coupons mechanic, first in step order, fills it in)
    revoked: dict[str, int] = field(default_factory=dict)

    def gift_stands(self, mechanic: str) -> bool:
        """Whether what `mechanic` gave with the purchase (a personal coupon) stands after
        this refund: that mechanic's `gift_stands` says."""
        for known in mechanics():
            if known.name == mechanic:
                return known.gift_stands(self)
        return not self.whole


@dataclass(frozen=True, slots=True)
class LineLeft:
    """A line of a refunded purchase as its refunds leave it: the quantity not returned,
    and the money paid for it (after discounts) in proportion."""

    n: int
    sku: str
    category: str | None
    qty: Decimal
    amount: int  # money minor units


@dataclass
class Joining:
    """A member being registered, handed to each mechanic inside the registration's
    transaction."""

    connection: Connection
    program: LoadedProgram
    member_id: int
    referrer_id: int | None  # the member `referrer` named, if any
    extras: JSON  # what the registration carried for the mechanics: referral_code, device
    answer: JSON  # the registration's answer; a mechanic may add its part
    now: datetime


class Mechanic:
    """A mechanic's hooks into the purchase pipeline; every default does nothing."""

    name: str = ""
    step: Step = Step.LATER
    router: APIRouter | None = None  # its HTTP routes, mounted by the app
    pages: APIRouter | None = None  # its console pages, mounted by the console
    templates: Path | None = None  # its console templates' folder
    translations: Path | None = None  # its console texts: <lang>/LC_MESSAGES/messages.po
    migrations: Path | None = None  # its Alembic branch's versions folder
    # its page on the console's Engagement page: the path under /console/{program}/ and
    # its title (a text of its translations)
    console_link: tuple[str, str] | None = None
    # what `kopilka verify` checks of its own tables: (name, SQL selecting `id, detail` of
    # each discrepancy), on PostgreSQL and SQLite alike
    checks: tuple[tuple[str, str], ...] = ()

    def reads(
        self,
        program: LoadedProgram,  # noqa: ARG002 - the default reads nothing
        member: ScalarSelect[Any],  # noqa: ARG002
    ) -> Reads | None:
        """What this mechanic reads of the member (`member`: their id, as a subquery) to
        price their receipt under `program`, as queries; None when it reads nothing."""
        return None

    def offering(self, context: PricingContext) -> OfferStep | None:  # noqa: ARG002
        """Its step in the receipt's one pricing: a function from the lines as the
        program's discounts leave them to its offers (None: it offers nothing here). What
        it learns goes in `context.parts[name]`, for its other hooks (`sale.priced.parts`)."""
        return None

    def admit(self, priced: Priced) -> None:
        """Before a purchase is planned: raise a `KopilkaError` to refuse it."""

    def quoted(self, sale: Sale) -> None:
        """Add this mechanic's part to a quote's answer (writing nothing)."""

    def planned(self, sale: Sale) -> None:
        """Before the purchase is written: add to the answer stored with it, and plan
        postings on the member's wallet (they go out in the purchase's own write)."""

    def issue(self, sale: Sale) -> None:
        """After every mechanic's `planned`: act on what the others asked of this one
        (the coupons mechanic issues `sale.coupons_wanted`)."""

    def writes_after(self, sale: Sale) -> bool:
        """Whether `completed` will write for this sale (asked before the purchase is
        written). When no mechanic will, the purchase's write carries its transaction's
        COMMIT in the same round trip, and nothing may be written after it. The default:
        a mechanic that has a `completed` writes."""
        del sale
        return type(self).completed is not Mechanic.completed

    def completed(self, sale: Sale) -> None:
        """The purchase is written (or held, `sale.hold`): do this mechanic's part."""

    def confirmed(self, settlement: Settlement) -> None:
        """A held purchase is confirmed: what was deferred to the confirm happens now."""

    def cancelled(self, settlement: Settlement) -> None:
        """A held purchase is cancelled or its hold ran out: give back what it took."""

    def refund_points(self, refund: Refunding) -> int:  # noqa: ARG002 - gave none
        """Points this mechanic gave with the purchase that this refund takes back with
        the lines' own (minor units), before the refund's postings are planned."""
        return 0

    def refunded(self, refund: Refunding) -> None:
        """A purchase is refunded (whole when `refund.whole`): take back this mechanic's
        share of what the purchase gave."""

    def gift_stands(self, refund: Refunding) -> bool:
        """Whether a personal coupon this mechanic gave with the purchase stands after
        `refund` (the coupons mechanic revokes it, unused, when not): by default until
        the last of the receipt is returned."""
        return not refund.whole

    def due_work(self, engine: Engine, now: datetime) -> dict[str, int]:  # noqa: ARG002
        """Do what fell due by `now` (idempotent for its moment); counts by name."""
        return {}

    def joined(self, joining: Joining) -> None:
        """A member is being registered (`joining.extras`: what they came with)."""

    def member_part(
        self,
        connection: Connection,  # noqa: ARG002 - the default shows nothing
        program: LoadedProgram,  # noqa: ARG002
        member_id: int,  # noqa: ARG002
        now: datetime,  # noqa: ARG002
    ) -> JSON | None:
        """This mechanic's part of a member as the API and the pages show them (under
        its name), or None when it has nothing to show."""
        return None


@dataclass(frozen=True, slots=True)
class Undone:
    """A held purchase being cancelled, as a mechanic's refund plan reads a purchase:
    nothing of it counts any more (its day, the moment of the cancel, no matter)."""

    id: int
    member_id: int
    created_at: datetime
    location: str | None = None


def confirm_points(settlement: Settlement, mechanic: str) -> None:
    """A held purchase confirmed: the points `mechanic` recorded for it (its awards of
    kind `points`), accrued now — a purchase's own points wait for its confirm too."""
    points = sum(
        a.amount for a in settlement.awards if a.mechanic == mechanic and a.kind == "points"
    )
    if not points:
        return
    settings = settlement.program.calculator.program
    settlement.wallet.accrue(f"{settings.code}:hold:{settlement.purchase_id}:{mechanic}", points,
                             reason=Reason.MECHANIC, purchase_id=settlement.purchase_id,
                             pending=settings.accrual.pending_days > 0)  # fmt: skip


_registered: list[Mechanic] = []
_loaded = False


def register(mechanic: Mechanic) -> None:
    """Run `mechanic` in every purchase from now on (the composition root calls this)."""
    if any(known.name == mechanic.name for known in _registered):
        raise ValueError(f"a mechanic named {mechanic.name!r} is registered already")
    _registered.append(mechanic)
    _registered.sort(key=lambda known: known.step)  # stable: registration order in a step


def unregister(name: str) -> None:
    _registered[:] = [known for known in _registered if known.name != name]


def mechanics() -> tuple[Mechanic, ...]:
    """The registered mechanics in step order. The composition root is loaded by name on
    first use, so the checkout never imports a mechanic."""
    global _loaded
    if not _loaded:
        _loaded = True
        importlib.import_module("kopilka.composition")
    return tuple(_registered)


@contextmanager
def registered_also(mechanic: Mechanic) -> Iterator[Mechanic]:
    """`mechanic` registered for the block (a test's own mechanic)."""
    mechanics()
    register(mechanic)
    try:
        yield mechanic
    finally:
        unregister(mechanic.name)
