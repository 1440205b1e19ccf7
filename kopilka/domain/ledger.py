"""The points ledger's rules, after TigerBeetle: accounts, immutable transfers, postings.

A member's points sit in credit-normal accounts (available, pending, held): their balance
is credits − debits. The program's own accounts are debit-normal: `issuance` is where
accrued points come from, `redeemed` where paid points go, `adjustments` the other side
of operators' corrections, `expired` where burnt points go. Every transfer moves a
positive amount from one account to another, so the sum of all debits always equals
the sum of all credits; a mistake is corrected by a reversing transfer.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class AccountCode(Enum):
    AVAILABLE = "available"
    PENDING = "pending"
    HELD = "held"
    ISSUANCE = "issuance"
    REDEEMED = "redeemed"
    ADJUSTMENTS = "adjustments"
    EXPIRED = "expired"

    @property
    def is_member_account(self) -> bool:
        return self in MEMBER_ACCOUNTS


MEMBER_ACCOUNTS = (AccountCode.AVAILABLE, AccountCode.PENDING, AccountCode.HELD)
PROGRAM_ACCOUNTS = (
    AccountCode.ISSUANCE,
    AccountCode.REDEEMED,
    AccountCode.ADJUSTMENTS,
    AccountCode.EXPIRED,
)


class Reason(Enum):
    """Why points moved — every transfer carries one."""

    PURCHASE_ACCRUAL = "purchase.accrual"
    PURCHASE_REDEMPTION = "purchase.redemption"
    REFUND_ACCRUAL = "refund.accrual"  # accrued points taken back
    REFUND_REDEMPTION = "refund.redemption"  # redeemed points given back
    ADJUSTMENT = "adjustment"


@dataclass(frozen=True, slots=True)
class AccountRef:
    """An account by its owner ("program" or "member:<id>") and code."""

    owner: str
    code: AccountCode

    @classmethod
    def of_member(cls, member_id: int, code: AccountCode) -> AccountRef:
        return cls(f"member:{member_id}", code)

    @classmethod
    def of_program(cls, code: AccountCode) -> AccountRef:
        return cls("program", code)


@dataclass(frozen=True, slots=True)
class Posting:
    """A transfer to be written: `key` is its idempotency id, unique forever."""

    key: str
    debit: AccountRef
    credit: AccountRef
    amount: int  # point minor units, > 0
    reason: Reason


def balance(code: AccountCode, debits: int, credits: int) -> int:
    """An account's balance in its normal direction."""
    return credits - debits if code.is_member_account else debits - credits


def purchase_postings(
    purchase_key: str, member_id: int, *, redeemed: int, accrued: int, pending: bool
) -> list[Posting]:
    """The transfers of a completed purchase: points paid, then points earned."""
    postings: list[Posting] = []
    available = AccountRef.of_member(member_id, AccountCode.AVAILABLE)
    if redeemed:
        postings.append(
            Posting(
                f"{purchase_key}:redeem",
                available,
                AccountRef.of_program(AccountCode.REDEEMED),
                redeemed,
                Reason.PURCHASE_REDEMPTION,
            )
        )
    if accrued:
        earned_into = AccountRef.of_member(
            member_id, AccountCode.PENDING if pending else AccountCode.AVAILABLE
        )
        postings.append(
            Posting(
                f"{purchase_key}:accrue",
                AccountRef.of_program(AccountCode.ISSUANCE),
                earned_into,
                accrued,
                Reason.PURCHASE_ACCRUAL,
            )
        )
    return postings


def refund_postings(
    refund_key: str, member_id: int, *, redeemed_back: int, accrued_back: int, pending: bool
) -> list[Posting]:
    """Redeemed points return first, then accrued points come off (from where they went)."""
    postings: list[Posting] = []
    available = AccountRef.of_member(member_id, AccountCode.AVAILABLE)
    if redeemed_back:
        postings.append(Posting(f"{refund_key}:return", AccountRef.of_program(
            AccountCode.REDEEMED), available, redeemed_back, Reason.REFUND_REDEMPTION))  # fmt: skip
    if accrued_back:
        earned_in = AccountRef.of_member(
            member_id, AccountCode.PENDING if pending else AccountCode.AVAILABLE
        )
        postings.append(Posting(f"{refund_key}:clawback", earned_in, AccountRef.of_program(
            AccountCode.ISSUANCE), accrued_back, Reason.REFUND_ACCRUAL))  # fmt: skip
    return postings


def adjustment_posting(key: str, member_id: int, points: int) -> Posting:
    """An operator's correction: positive credits the member, negative debits them."""
    member = AccountRef.of_member(member_id, AccountCode.AVAILABLE)
    program = AccountRef.of_program(AccountCode.ADJUSTMENTS)
    if points > 0:
        return Posting(key, program, member, points, Reason.ADJUSTMENT)
    return Posting(key, member, program, -points, Reason.ADJUSTMENT)


def luhn_check_digit(digits: str) -> str:
    """The Luhn check digit to append to `digits` (card numbers a cashier can mistype)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def is_luhn_valid(number: str) -> bool:
    return number.isdigit() and len(number) > 1 and luhn_check_digit(number[:-1]) == number[-1]
