"""The points ledger's rules, after TigerBeetle: accounts, immutable transfers, postings.

A member's points sit in credit-normal accounts (available, pending, held): their balance
is credits − debits. A member's `debt` (points a refund clawed back that were already
spent, when the program keeps debts rather than negative balances) is debit-normal: it is
owed to the program, and later accruals pay it first. The program's own accounts are
debit-normal: `issuance` is where accrued points come from, `redeemed` where paid points
go, `adjustments` the other side of operators' corrections, `expired` where burnt points
go. Every transfer moves a positive amount from one account to another, so the sum of
all debits always equals the sum of all credits; a mistake is corrected by a reversing transfer.

Cashback is money, not points, and lives in the same ledger under codes of its own
(`cashback.*`, amounts in the currency's minor units). A member's cashback accounts are
owned by "cashback:<id>" — apart from the points of "member:<id>", so nothing that reads a
member's points sees them — and opened when the member first gets cashback: `pending`,
`available`, `requested` (asked to be paid out, not yet paid) are credit-normal; `debt`
(cashback a refund took back after it was paid out) is debit-normal and later cashback
pays it first. The program's `cashback.issuance` is where cashback comes from (and
clawbacks return to); `cashback.paid_out` is where paid payouts go.
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
    CASHBACK_PENDING = "cashback.pending"
    CASHBACK_AVAILABLE = "cashback.available"
    CASHBACK_REQUESTED = "cashback.requested"
    CASHBACK_DEBT = "cashback.debt"
    CASHBACK_ISSUANCE = "cashback.issuance"
    CASHBACK_PAID_OUT = "cashback.paid_out"
    # points exchanged with other programs (kopilka/mechanics/exchange): held while the
    # saga runs, sent out or received (the clearing account), the fees taken
    EXCHANGE_HELD = "exchange.held"
    EXCHANGE_CLEARING = "exchange.clearing"
    EXCHANGE_FEES = "exchange.fees"
    # a charity's points (kopilka/mechanics/charity): one per charity, owned by
    # "charity:<code>", credited by donations and round-ups; no cached totals
    CHARITY = "charity"

    @property
    def is_member_account(self) -> bool:
        return self in MEMBER_ACCOUNTS or self in CASHBACK_MEMBER_ACCOUNTS

    @property
    def is_debit_normal(self) -> bool:
        return self not in CREDIT_NORMAL


MEMBER_ACCOUNTS = (AccountCode.AVAILABLE, AccountCode.PENDING, AccountCode.HELD, AccountCode.DEBT)
CASHBACK_MEMBER_ACCOUNTS = (
    AccountCode.CASHBACK_PENDING,
    AccountCode.CASHBACK_AVAILABLE,
    AccountCode.CASHBACK_REQUESTED,
    AccountCode.CASHBACK_DEBT,
)
PROGRAM_ACCOUNTS = (
    AccountCode.ISSUANCE,
    AccountCode.REDEEMED,
    AccountCode.ADJUSTMENTS,
    AccountCode.EXPIRED,
    AccountCode.CASHBACK_ISSUANCE,
    AccountCode.CASHBACK_PAID_OUT,
    AccountCode.EXCHANGE_HELD,
    AccountCode.EXCHANGE_CLEARING,
    AccountCode.EXCHANGE_FEES,
)
CREDIT_NORMAL = frozenset(
    {
        AccountCode.AVAILABLE,
        AccountCode.PENDING,
        AccountCode.HELD,
        AccountCode.CASHBACK_PENDING,
        AccountCode.CASHBACK_AVAILABLE,
        AccountCode.CASHBACK_REQUESTED,
    }
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
    COUPON = "coupon"  # points a coupon gives with a purchase (taken back if it is returned)
    # points another registered mechanic gives with a purchase (the key ends in its name);
    # taken back by the purchase's refund like the rules' own
    MECHANIC = "mechanic.award"
    CLUB_FEE = "club.fee"  # points paid for a club's membership (the key names the club)
    CHARITY_DONATION = "charity.donation"  # points a member gives a charity
    CHARITY_ROUND_UP = "charity.round_up"  # a purchase's round-up given to a charity
    # cashback (money): given, becoming payable, taken back by a refund, paid out
    CASHBACK_ACCRUAL = "cashback.accrual"
    CASHBACK_ACTIVATION = "cashback.activation"  # pending cashback becoming available
    CASHBACK_CLAWBACK = "cashback.clawback"  # a refund takes back the cashback it earned
    CASHBACK_DEBT = "cashback.debt"  # … what was already paid out, owed
    CASHBACK_DEBT_REPAYMENT = "cashback.debt_repayment"  # later cashback paying the debt
    CASHBACK_PAYOUT_REQUEST = "cashback.payout.request"  # available → requested
    CASHBACK_PAYOUT_REJECT = "cashback.payout.reject"  # requested → back to available
    CASHBACK_PAYOUT_PAID = "cashback.payout.paid"  # requested → paid out
    # points exchanged with another program (kopilka/mechanics/exchange)
    EXCHANGE_HOLD = "exchange.hold"  # the member's points held while the saga runs
    EXCHANGE_CONFIRM = "exchange.confirm"  # … sent: held → the clearing account
    EXCHANGE_FEE = "exchange.fee"  # … the fee: held → the program's fees
    EXCHANGE_REVERSE = "exchange.reverse"  # … given back: the credit failed or timed out
    EXCHANGE_CREDIT = "exchange.credit"  # points another program sent, credited here


@dataclass(frozen=True, slots=True)
class AccountRef:
    """An account by its owner ("program" or "member:<id>") and code."""

    owner: str
    code: AccountCode

    @classmethod
    def of_member(cls, member_id: int, code: AccountCode) -> AccountRef:
        return cls(f"member:{member_id}", code)

    @classmethod
    def of_cashback(cls, member_id: int, code: AccountCode) -> AccountRef:
        """A member's cashback account (money, apart from their points)."""
        return cls(f"cashback:{member_id}", code)

    @classmethod
    def of_program(cls, code: AccountCode) -> AccountRef:
        return cls("program", code)


@dataclass(frozen=True, slots=True)
class Posting:
    """A transfer to be written: `key` is its idempotency id, unique forever."""

    key: str
    debit: AccountRef
    credit: AccountRef
    amount: int  # point minor units (money minor units for cashback), > 0
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
