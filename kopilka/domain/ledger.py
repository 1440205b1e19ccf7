"""The points ledger's rules, after TigerBeetle: accounts, immutable transfers, postings.

A member's points sit in credit-normal accounts (available, pending, held): their balance
is credits − debits. A member's `debt` (points a refund clawed back that were already
spent, when the program keeps debts rather than negative balances) is debit-normal: it is
owed to the program, and later accruals pay it first. The program's own accounts are
debit-normal: `issuance` is where accrued points come from, `redeemed` where paid points
go, `adjustments` the other side of operators' corrections, `expired` where burnt points
go. Every transfer moves a positive amount from one account to another, so the sum of
all debits always equals the sum of all credits; a mistake is corrected by a reversing transfer.
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
    DEBT = "debt"

    @property
    def is_member_account(self) -> bool:
        return self in MEMBER_ACCOUNTS

    @property
    def is_debit_normal(self) -> bool:
        return self not in (AccountCode.AVAILABLE, AccountCode.PENDING, AccountCode.HELD)


MEMBER_ACCOUNTS = (AccountCode.AVAILABLE, AccountCode.PENDING, AccountCode.HELD, AccountCode.DEBT)
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
    HOLD_RESERVE = "hold.reserve"  # points set aside for a purchase not yet confirmed
    HOLD_CANCEL = "hold.cancel"  # … given back on cancel
    HOLD_TIMEOUT = "hold.timeout"  # … given back when nobody confirmed in time
    ACTIVATION = "accrual.activation"  # pending points becoming available
    DEBT = "refund.debt"  # clawed-back points that were already spent, owed
    DEBT_REPAYMENT = "debt.repayment"  # later accruals paying the debt
    ERASURE = "erasure.forfeit"  # an erased member's points leave the books
    EXPIRY = "expiry"  # points that were not spent in time burn (FIFO, by lot)
    TRIGGER = "trigger"  # a reward the program gives by itself (the note names the trigger)


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
    return debits - credits if code.is_debit_normal else credits - debits


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
