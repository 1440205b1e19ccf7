"""Referrals, the pure part: the settings, a member's code, the identities the fraud
checks compare, and the verdict on a referral (docs/referrals.md).

A referral is a friend registered with a member's code (or naming them as `referrer`).
It waits until the friend's first qualifying purchase has stood `waiting_days` without a
refund; then the checks decide: a hard failure (the friend is the referrer under another
name, or a member of the same young chain) rejects it for good, a limit reached rejects it
with the limit's name, a suspicion sends it to a person's review, and otherwise both
sides are paid. Everything here is standard library: the facts are gathered by `status`,
and time is a parameter.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum

from kopilka.kernel.periods import CalendarPeriod

# — settings —

DEFAULT_WAITING_DAYS = 14  # a fortnight: the usual distance-selling return window
MAX_WAITING_DAYS = 365
MAX_LINK = 200  # a link template's length, the `{code}` placeholder included
CODE_PLACEHOLDER = "{code}"


@dataclass(frozen=True, slots=True)
class Rewards:
    referrer: int  # points, minor units: what the member who invited gets
    friend: int  # … and what the friend who came gets


@dataclass(frozen=True, slots=True)
class PeriodLimit:
    period: CalendarPeriod
    count: int  # paid referrals per referrer within one calendar period


@dataclass(frozen=True, slots=True)
class Limits:
    per_referrer: int | None = None  # paid referrals per referrer, ever
    per_period: PeriodLimit | None = None


@dataclass(frozen=True, slots=True)
class ReviewThresholds:
    """When a referral is suspicious enough for a person to look at it."""

    young_days: int = 30  # accounts registered within this many days of each other are young
    chain_length: int = 4  # this many young accounts linked by referrals is a chain to review
    accounts_per_identity: int = 1  # earlier accounts on the friend's phone or email allowed
    accounts_per_device: int = 3  # earlier accounts on the friend's device allowed


@dataclass(frozen=True, slots=True)
class ReferralSettings:
    rewards: Rewards
    waiting_days: int = DEFAULT_WAITING_DAYS
    min_purchase: int = 0  # money, minor units: the least the first purchase must pay
    limits: Limits = field(default_factory=Limits)
    link: str | None = None  # "https://zerno.example/r/{code}"
    review: ReviewThresholds = field(default_factory=ReviewThresholds)

    def link_for(self, code: str) -> str | None:
        return self.link.replace(CODE_PLACEHOLDER, code) if self.link else None


# — statuses and reasons —


class Status(Enum):
    WAITING = "waiting"  # for the friend's first qualifying purchase to stand
    REVIEW = "review"  # suspicious: a person approves or rejects it
    PAID = "paid"  # both sides were paid, once
    REJECTED = "rejected"  # never pays: a failed check, a limit, a refund or a person


# hard checks: the friend shares an identity with the referrer (self-referral) …
SELF_REFERRAL = "self_referral_{kind}"
# … or with another young account of the referral's chain (a ring coming back)
RING = "ring_{kind}"
FIRST_PURCHASE_REFUNDED = "first_purchase_refunded"
LIMIT_PER_REFERRER = "limit_per_referrer"
LIMIT_PER_PERIOD = "limit_per_period"
REJECTED_BY_REVIEWER = "rejected_by_reviewer"
# suspicions: a person decides
REFERRAL_CHAIN = "referral_chain"
SHARED = "shared_{kind}"  # earlier accounts on the friend's phone, email or device


# — codes —

# no 0/O, 1/I/L: a code read aloud or copied by hand stays the same code
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 10  # 31^10 ≈ 8·10^14 codes: guessing one of a million takes ~10^9 tries
CODE_PATTERN = re.compile(r"^[0-9A-Za-z-]{4,32}$")


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(code: str) -> str:
    """Codes are read case-insensitively, with or without dashes ("abcd-efgh2k")."""
    return code.replace("-", "").upper()


# — identities —


class Kind(Enum):
    PHONE = "phone"  # the profile's phone, digits only
    EMAIL = "email"  # the profile's email, its provider's aliases folded
    CARD = "card"  # the member card's number, as a cashier would key it
    PAYMENT = "payment_card"  # a payment card's BIN and last four digits
    DEVICE = "device"  # a device fingerprint: at registration, or paying


# providers that ignore dots in the local part, and those whose tags begin with "-" too
_DOTLESS = {"gmail.com", "googlemail.com"}
_DASH_TAGS = {"yahoo.com", "protonmail.com", "proton.me", "pm.me"}
_SAME_MAILBOX = {"googlemail.com": "gmail.com", "pm.me": "proton.me", "protonmail.com": "proton.me"}


def normalise_email(email: str) -> str:
    """One mailbox, one form: lower case, "+tag" dropped (and "-tag" where the provider
    reads it so), dots dropped at Gmail, a provider's other domain names folded."""
    local, _, domain = email.strip().lower().rpartition("@")
    local = local.split("+", 1)[0]
    if domain in _DASH_TAGS:
        local = local.split("-", 1)[0]
    if domain in _DOTLESS:
        local = local.replace(".", "")
    return f"{local}@{_SAME_MAILBOX.get(domain, domain)}"


def normalise_phone(phone: str) -> str:
    """The digits of a phone number (the profile keeps E.164: "+79123456789")."""
    return "".join(char for char in phone if char.isascii() and char.isdigit())


def normalise_card(card: str) -> str:
    """A member card as a cashier keys it: no dashes, upper case, no leading zeros."""
    return card.replace("-", "").upper().lstrip("0") or "0"


def payment_card(card_bin: str | None, last4: str | None) -> str | None:
    return f"{card_bin}:{last4}" if card_bin and last4 else None


def fingerprint(kind: Kind, value: str) -> str:
    """What is kept of an identity: a one-way hash of its normalised form, so the checks
    outlive a member's erasure without keeping their phone or email."""
    return hashlib.sha256(f"{kind.value}:{value}".encode()).hexdigest()


Identity = tuple[Kind, str]  # a kind and a fingerprint


def identities(
    *,
    phone: str | None = None,
    email: str | None = None,
    card: str | None = None,
    device: str | None = None,
    payment: str | None = None,
) -> set[Identity]:
    """The fingerprints of what is known of a member."""
    found: set[Identity] = set()
    for kind, value, normalise in (
        (Kind.PHONE, phone, normalise_phone),
        (Kind.EMAIL, email, normalise_email),
        (Kind.CARD, card, normalise_card),
        (Kind.DEVICE, device, str),
        (Kind.PAYMENT, payment, str),
    ):
        if value:
            found.add((kind, fingerprint(kind, normalise(value))))
    return found


# — the verdict —


@dataclass(frozen=True)
class Facts:
    """What `status` found of a referral at the moment it is judged."""

    friend: frozenset[Identity]
    referrer: frozenset[Identity]
    chain: frozenset[Identity] = frozenset()  # of the chain's other young accounts
    chain_length: int = 2  # young accounts linked by referrals, the two of this one included
    earlier_accounts: Mapping[Kind, int] = field(default_factory=dict)  # sharing the friend's
    paid_by_referrer: int = 0  # the referrer's referrals paid, ever
    paid_in_period: int = 0  # … within the current calendar period of the limit


@dataclass(frozen=True)
class Verdict:
    status: Status
    reasons: tuple[str, ...] = ()


def hard_reasons(facts: Facts) -> list[str]:
    """Why the referral must never pay: the friend is the referrer, or one of the chain."""
    reasons = [
        SELF_REFERRAL.format(kind=kind.value) for kind in _kinds(facts.friend & facts.referrer)
    ]
    chain_only = (facts.friend & facts.chain) - facts.referrer
    return reasons + [RING.format(kind=kind.value) for kind in _kinds(chain_only)]


def limit_reasons(limits: Limits, facts: Facts) -> list[str]:
    reasons = []
    if limits.per_referrer is not None and facts.paid_by_referrer >= limits.per_referrer:
        reasons.append(LIMIT_PER_REFERRER)
    period = limits.per_period
    if period is not None and facts.paid_in_period >= period.count:
        reasons.append(LIMIT_PER_PERIOD)
    return reasons


def suspicions(review: ReviewThresholds, facts: Facts) -> list[str]:
    reasons = []
    if facts.chain_length >= review.chain_length:
        reasons.append(REFERRAL_CHAIN)
    for kind in (Kind.PHONE, Kind.EMAIL):
        if facts.earlier_accounts.get(kind, 0) >= review.accounts_per_identity:
            reasons.append(SHARED.format(kind=kind.value))
    if facts.earlier_accounts.get(Kind.DEVICE, 0) >= review.accounts_per_device:
        reasons.append(SHARED.format(kind=Kind.DEVICE.value))
    return reasons


def judge(settings: ReferralSettings, facts: Facts) -> Verdict:
    """The referral's fate once its purchase stands: rejected (a hard check, then a
    limit), to review (a suspicion), or paid."""
    hard = hard_reasons(facts)
    if hard:
        return Verdict(Status.REJECTED, tuple(hard))
    limited = limit_reasons(settings.limits, facts)
    if limited:
        return Verdict(Status.REJECTED, tuple(limited))
    suspected = suspicions(settings.review, facts)
    if suspected:
        return Verdict(Status.REVIEW, tuple(suspected))
    return Verdict(Status.PAID)


def _kinds(found: Iterable[Identity]) -> list[Kind]:
    """The kinds of identity among `found`, in the order of `Kind` (stable reasons)."""
    kinds = {kind for kind, _ in found}
    return [kind for kind in Kind if kind in kinds]
