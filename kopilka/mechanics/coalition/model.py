"""Partners' terms and what a period's settlement owes (issue 19, begun: the pure model;
not registered yet — no section, tables or routes).

A coalition's operator settles with every partner per period, from ledger rows only:
points issued at the partner × its price per point (the share of them the partner
funds), points redeemed there × its reimbursement per point, the fees, and the
cross-partner flows (points earned at one partner and spent at another) that move
liability between them. Worked out here from plain figures, exactly (Decimal, money
in minor units, one rounding per line, half up), so that a statement is the same
whoever computes it and reconciles to the ledger to the kopeck.

Pure: the standard library and the kernel's reader only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from kopilka.kernel.errors import KopilkaError
from kopilka.kernel.reading import Reader, show

TERMS_KEYS = ("partner", "role", "funded_by", "price_per_point", "reimbursement_per_point",
              "fees", "billing", "reserve_percent", "earning_until", "redeeming_until")  # fmt: skip
FUNDING_KEYS = ("partner_percent",)
FEES_KEYS = ("per_period", "percent_of_issued", "percent_of_redeemed")
HUNDRED = Decimal(100)
MAX_PRICE = Decimal(1_000_000)  # money per point: more is a typo, not a contract


class PrepaidExhausted(KopilkaError):
    """A purchase at a prepaid partner would earn more points than its blocks have left:
    the purchase is refused whole (nothing written), so the till can sell without the
    card or the partner can buy a block — never points nobody paid for."""

    code = "prepaid_points_exhausted"
    title = "The partner's prepaid points are used up"


class Role(StrEnum):
    """Where a partner takes part: members earn there, spend there, or both."""

    EARNS = "earns"
    BURNS = "burns"
    BOTH = "both"

    @property
    def earns(self) -> bool:
        return self is not Role.BURNS

    @property
    def burns(self) -> bool:
        return self is not Role.EARNS


class Billing(StrEnum):
    """Prepaid: the partner buys blocks of points and its purchases earn from the oldest;
    postpaid: it is billed for what its purchases earned, per period."""

    PREPAID = "prepaid"
    POSTPAID = "postpaid"


@dataclass(frozen=True, slots=True)
class Fees:
    per_period: int = 0  # money minor units a period
    percent_of_issued: Decimal = Decimal(0)  # of the issuance charge
    percent_of_redeemed: Decimal = Decimal(0)  # of the reimbursement


@dataclass(frozen=True, slots=True)
class PartnerTerms:
    partner: str
    role: Role
    partner_percent: Decimal  # the share of the points its purchases earn it funds, 0–100
    price_per_point: Decimal  # money (major units) the funder pays per point issued
    reimbursement_per_point: Decimal  # money the partner is paid per point redeemed there
    fees: Fees
    billing: Billing
    reserve_percent: Decimal  # of its outstanding points' value, held against them
    earning_until: date | None  # its last day of earning (an exit)
    redeeming_until: date | None  # its last day of redeeming

    def earns_on(self, day: date) -> bool:
        return self.role.earns and (self.earning_until is None or day <= self.earning_until)

    def burns_on(self, day: date) -> bool:
        return self.role.burns and (self.redeeming_until is None or day <= self.redeeming_until)


@dataclass(frozen=True, slots=True)
class Flows:
    """A partner's figures for a period, read from the ledger (point minor units)."""

    issued: int  # points its purchases earned
    redeemed: int  # points spent at it
    earned_here_spent_elsewhere: int  # of what was spent elsewhere, earned at this partner
    earned_elsewhere_spent_here: int  # of what was spent here, earned at other partners


@dataclass(frozen=True, slots=True)
class Line:
    what: str
    amount: int  # money minor units: + the partner owes the operator, − the operator owes


@dataclass(frozen=True, slots=True)
class Statement:
    partner: str
    opening: int  # money minor units the partner owed at the period's start (− owed to it)
    lines: tuple[Line, ...]
    flows: Flows  # the period's points, shown beside the lines (the cross-partner flows)

    @property
    def net(self) -> int:
        return sum(line.amount for line in self.lines)

    @property
    def closing(self) -> int:
        return self.opening + self.net


def money(value: Decimal, money_digits: int) -> int:
    """`value` (major units) in minor units, rounded half up: the one rounding of a line."""
    return int((value.scaleb(money_digits)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def points_value(points: int, per_point: Decimal, point_digits: int) -> Decimal:
    """The money (major units, exact) `points` minor units are worth at `per_point`."""
    return Decimal(points).scaleb(-point_digits) * per_point


def settle(
    terms: PartnerTerms, flows: Flows, opening: int, *, point_digits: int, money_digits: int,
    corrections: Sequence[Line] = (),
) -> Statement:  # fmt: skip
    """The period's statement for one partner: what its members' points cost it, what
    their spending there earns it back, the fees, and the corrections carried from a
    closed period (a closed statement is never changed: corrections are lines of the
    next)."""
    issued = points_value(flows.issued, terms.price_per_point, point_digits)
    # a prepaid partner paid for its points when it bought their blocks (lines of their own)
    prepaid = terms.billing is Billing.PREPAID
    funded = Decimal(0) if prepaid else issued * terms.partner_percent / HUNDRED
    redeemed = points_value(flows.redeemed, terms.reimbursement_per_point, point_digits)
    fees = terms.fees
    issued_fee = funded * fees.percent_of_issued / HUNDRED
    redeemed_fee = redeemed * fees.percent_of_redeemed / HUNDRED
    lines = [
        Line("points issued, funded by the partner", money(funded, money_digits)),
        Line("points redeemed, reimbursed", -money(redeemed, money_digits)),
        Line("fee on points issued", money(issued_fee, money_digits)),
        Line("fee on points redeemed", money(redeemed_fee, money_digits)),
        Line("fee for the period", fees.per_period),
        *corrections,
    ]
    kept = tuple(line for line in lines if line.amount)
    return Statement(terms.partner, opening, kept, flows)


def reserve(terms: PartnerTerms, outstanding: int, *, point_digits: int, money_digits: int) -> int:
    """Money (minor units) held against the partner's outstanding points: their value at
    its reimbursement rate × its reserve percent."""
    value = points_value(outstanding, terms.reimbursement_per_point, point_digits)
    return money(value * terms.reserve_percent / HUNDRED, money_digits)


# — the section of the program file —


def parse_partner_terms(
    top: Reader, partners: frozenset[str], money_digits: int
) -> tuple[PartnerTerms, ...]:
    """`partner_terms: [{partner, role, funded_by, price_per_point, …}]`, one per partner
    of the program (`partners`: their codes)."""
    found: list[PartnerTerms] = []
    seen: set[str] = set()
    for item in top.records("partner_terms", TERMS_KEYS, code_key="partner"):
        partner = item.code("partner")
        if partner is None:
            continue
        if partner not in partners:
            item.report(item.at("partner"), f"{show(partner)} is not a partner of the program")
        if partner in seen:
            item.report(item.at("partner"), f"the terms of {show(partner)} are given twice")
        seen.add(partner)
        terms = _terms(item, partner, money_digits)
        if terms is not None:
            found.append(terms)
    return tuple(found)


def _terms(item: Reader, partner: str, money_digits: int) -> PartnerTerms | None:
    role = item.choice("role", Role, required=True)
    price = item.decimal("price_per_point", minimum=Decimal(0), maximum=MAX_PRICE)
    back = item.decimal("reimbursement_per_point", minimum=Decimal(0), maximum=MAX_PRICE)
    share = _partner_percent(item)
    fees = _fees(item, money_digits)
    reserve_percent = item.decimal("reserve_percent", minimum=Decimal(0), maximum=HUNDRED)
    earning_until = item.day("earning_until")
    redeeming_until = item.day("redeeming_until")
    if earning_until and redeeming_until and redeeming_until < earning_until:
        item.report(item.at("redeeming_until"),
                    f"{redeeming_until} is before earning_until ({earning_until}): points "
                    "earned on the last day could not be spent there")  # fmt: skip
    if role is None or share is None:
        return None
    return PartnerTerms(
        partner=partner, role=role, partner_percent=share,
        price_per_point=price or Decimal(0), reimbursement_per_point=back or Decimal(0),
        fees=fees, billing=item.choice("billing", Billing) or Billing.POSTPAID,
        reserve_percent=reserve_percent or Decimal(0),
        earning_until=earning_until, redeeming_until=redeeming_until,
    )  # fmt: skip


def _partner_percent(item: Reader) -> Decimal | None:
    """`funded_by: partner | program | {partner_percent: 40}` as the partner's share."""
    raw = item.raw("funded_by")
    if raw is None or raw == "partner":
        return HUNDRED
    if raw == "program":
        return Decimal(0)
    if not isinstance(raw, dict):
        item.report(item.at("funded_by"),
                    f"{show(raw)} is not partner, program or {{partner_percent: N}}")  # fmt: skip
        return None
    split = item.mapping("funded_by", FUNDING_KEYS)
    assert split is not None  # a mapping, checked above
    return split.decimal("partner_percent", required=True, minimum=Decimal(0), maximum=HUNDRED)


def _fees(item: Reader, money_digits: int) -> Fees:
    fees = item.mapping("fees", FEES_KEYS)
    if fees is None:
        return Fees()
    return Fees(
        per_period=fees.minor("per_period", money_digits, unit="money") or 0,
        percent_of_issued=fees.decimal("percent_of_issued", minimum=Decimal(0),
                                       maximum=HUNDRED) or Decimal(0),
        percent_of_redeemed=fees.decimal("percent_of_redeemed", minimum=Decimal(0),
                                         maximum=HUNDRED) or Decimal(0),
    )  # fmt: skip
