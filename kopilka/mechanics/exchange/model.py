"""The exchange of points between programs ("roaming"): the pairs a program exchanges
with, and the arithmetic of one exchange.

A pair names the other side — a program of this Kopilka by its code, or an outside
program by its id, the base URL of its exchange endpoints and the environment variable
holding the secret both sides sign with — and, for points this program's members send
there: the rate (`give` of ours for `get` of theirs), the least a member may send, the
fee taken at the source (a percent and/or fixed points), a daily limit per member and
the saga's time-out. Whether each direction is open is the pair's too: `send` (our
members may send points there) and `receive` (points the other side sends are credited
here).

The arithmetic, exact (integers of minor units, Fractions for the rate):
- fee = fixed points + points × percent / 100, rounded half up to the source's precision
  (never more than the points);
- net = points − fee;
- credit = net × get / give, rounded **down** to the target's precision (a program never
  gives what it was not paid for); an exchange whose credit rounds to nothing is refused.

Pure: the standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from fractions import Fraction
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kopilka.kernel.program import Program

KEY = "exchange"
DEFAULT_TIMEOUT_MINUTES = 15
MAX_TIMEOUT_MINUTES = 7 * 24 * 60
DEFAULT_REMOTE_PRECISION = 2


class State(Enum):
    """Where a saga stands at the source."""

    HELD = "held"  # the member's points are held; the credit is not known yet
    CONFIRMED = "confirmed"  # credited at the target and posted here: irrevocable
    REVERSED = "reversed"  # the credit failed, was refused or timed out: points back


class CreditState(Enum):
    """Where a transaction stands at the target."""

    CREDITED = "credited"
    REFUSED = "refused"  # unknown member, closed pair …: nothing credited
    REVERSED = "reversed"  # the source gave up on it before it was credited: never will be


class Refusal(Enum):
    """Why a target credits nothing (or a source reverses)."""

    UNKNOWN_MEMBER = "unknown_member"
    PAIR_CLOSED = "pair_closed"
    MEMBER_INACTIVE = "member_inactive"
    UNREACHABLE = "unreachable"  # the target could not be reached: nothing was sent
    TIMED_OUT = "timed_out"  # no credit within the time-out; the target never credits it
    TARGET_REFUSED = "target_refused"  # the outside program refused, for its own reason


@dataclass(frozen=True, slots=True)
class LocalSide:
    """A program of the same Kopilka."""

    program: str

    @property
    def name(self) -> str:
        return self.program


@dataclass(frozen=True, slots=True)
class RemoteSide:
    """An outside program: its id (as our side names it), the base URL of its exchange
    endpoints, the variable holding the shared secret, and its points' precision."""

    id: str
    url: str
    secret_env: str
    precision: int = DEFAULT_REMOTE_PRECISION

    @property
    def name(self) -> str:
        return self.id


@dataclass(frozen=True, slots=True)
class Rate:
    give: Decimal  # points of this program …
    get: Decimal  # … for this many points of the other

    @property
    def ratio(self) -> Fraction:
        return Fraction(self.get) / Fraction(self.give)


@dataclass(frozen=True, slots=True)
class Fee:
    percent: Decimal = Decimal(0)
    points: int = 0  # fixed, source minor units


@dataclass(frozen=True, slots=True)
class Pair:
    code: str
    name: str
    other: LocalSide | RemoteSide
    rate: Rate
    min_points: int = 0  # source minor units, gross (before the fee)
    fee: Fee = Fee()
    daily_limit: int | None = None  # source minor units per member per local day, gross
    timeout_minutes: int = DEFAULT_TIMEOUT_MINUTES
    sends: bool = True
    receives: bool = True

    @property
    def is_remote(self) -> bool:
        return isinstance(self.other, RemoteSide)


@dataclass(frozen=True, slots=True)
class ExchangeSettings:
    pairs: tuple[Pair, ...] = ()

    def find(self, code: str) -> Pair | None:
        return next((pair for pair in self.pairs if pair.code == code), None)

    def with_program(self, program: str) -> Pair | None:
        """The pair whose other side is the program `program` of this Kopilka."""
        return next((pair for pair in self.pairs
                     if isinstance(pair.other, LocalSide) and pair.other.program == program),
                    None)  # fmt: skip

    def with_partner(self, partner: str) -> Pair | None:
        """The pair whose other side is the outside program `partner`."""
        return next((pair for pair in self.pairs
                     if isinstance(pair.other, RemoteSide) and pair.other.id == partner),
                    None)  # fmt: skip


def exchange_of(program: Program) -> ExchangeSettings:
    """The program's `exchange` section (registered in `kopilka.sections`): none if absent."""
    found = program.sections.get(KEY)
    return found if isinstance(found, ExchangeSettings) else ExchangeSettings()


@dataclass(frozen=True, slots=True)
class Amounts:
    """One exchange's figures: source minor units but `credit` (the target's)."""

    points: int  # what the member gives, gross
    fee: int
    credit: int

    @property
    def net(self) -> int:
        return self.points - self.fee


def fee_of(fee: Fee, points: int) -> int:
    """The fee on `points` (minor units): fixed + percent, the percent's part rounded half
    up; never more than the points."""
    share = Fraction(points) * Fraction(fee.percent) / 100
    rounded = int(share + Fraction(1, 2)) if share else 0  # share ≥ 0: floor(x + ½)
    return min(points, fee.points + rounded)


def credit_of(net: int, rate: Rate, source_digits: int, target_digits: int) -> int:
    """What `net` source minor units are worth at the target, rounded down."""
    exact = Fraction(net, 10**source_digits) * rate.ratio * 10**target_digits
    return int(exact)  # exact ≥ 0: int() is floor


def amounts_of(pair: Pair, points: int, source_digits: int, target_digits: int) -> Amounts:
    fee = fee_of(pair.fee, points)
    return Amounts(points, fee, credit_of(points - fee, pair.rate, source_digits, target_digits))
