"""The charity's tables and queries, on the one schema `metadata` of `kopilka.platform.tables`.

`charity_choices` is the charity a member rounds their purchases up to (one row per
member, read with the purchase's load). `charity_donations` is one row per gift — a
donation a member asked for, or a purchase's round-up (written in the purchase's own
statement) — with the member, the charity, the points and the program's local day; the
report groups these rows, and `verify` proves each charity's ledger account equals them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Date,
    ForeignKey,
    Index,
    Integer,
    Row,
    String,
    Table,
    delete,
    func,
    insert,
    select,
    text,
    update,
)

from kopilka.kernel.ledger import AccountCode, AccountRef
from kopilka.mechanics.charity.model import Charity
from kopilka.platform.tables import Timestamp, metadata

charity_choices = Table(
    "charity_choices",
    metadata,
    Column("member_id", Integer, ForeignKey("members.id"), primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("charity", String(24), nullable=False),
    Column("chosen_at", Timestamp(), nullable=False),
)

charity_donations = Table(
    "charity_donations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("member_id", Integer, ForeignKey("members.id"), nullable=False),
    Column("charity", String(24), nullable=False),
    Column("kind", String(16), nullable=False),  # "donation" or "round_up"
    Column("points", BigInteger, nullable=False),  # point minor units, > 0
    Column("purchase_id", Integer, ForeignKey("purchases.id")),  # a round-up's purchase
    Column("transfer_key", String(200)),  # a donation's transfer (a round-up's: its purchase)
    Column("day", Date, nullable=False),  # the program's local day of the gift
    Column("actor", String(200), nullable=False),
    Column("created_at", Timestamp(), nullable=False),
    Index("ix_charity_donations_program_day", "program_id", "day"),
    Index("ix_charity_donations_member_id", "member_id"),
    Index("ix_charity_donations_purchase_id", "purchase_id"),
)

ROUND_UP_COLUMNS = ("program_id", "member_id", "charity", "kind", "points", "transfer_key",
                    "day", "actor", "created_at")  # fmt: skip

# what `kopilka verify` checks: each charity's ledger account holds exactly the points of
# its donation rows, each donation's transfer moved its points, and each purchase's
# round-up transfers equal its round-up rows
CHECKS = (
    (
        "charity accounts equal their donations",
        """
    select a.id, 'account ' || a.id || ' (' || a.owner || ', program ' || a.program_id
           || '): balance ' || (coalesce(c.total, 0) - coalesce(d.total, 0))
           || ', donations ' || coalesce(r.total, 0)
    from accounts a
    left join (select t.credit_account_id id, sum(t.amount) total from transfers t
               join accounts x on x.id = t.credit_account_id and x.code = 'charity'
               group by t.credit_account_id) c on c.id = a.id
    left join (select t.debit_account_id id, sum(t.amount) total from transfers t
               join accounts x on x.id = t.debit_account_id and x.code = 'charity'
               group by t.debit_account_id) d on d.id = a.id
    left join (select program_id, charity, sum(points) total from charity_donations
               group by program_id, charity) r
      on r.program_id = a.program_id and 'charity:' || r.charity = a.owner
    where a.code = 'charity' and coalesce(c.total, 0) - coalesce(d.total, 0) <> coalesce(r.total, 0)
    union all
    select r.id, 'donation ' || r.id || ': ' || r.points || ' points, its transfer '
           || coalesce(t.amount, 0)
    from charity_donations r
    left join transfers t on t.transfer_key = r.transfer_key and t.reason = 'charity.donation'
    where r.kind = 'donation' and (t.amount is null or t.amount <> r.points)
    union all
    select purchase_id, 'purchase ' || purchase_id || ': round-up rows ' || sum(given)
           || ', transfers ' || sum(moved)
    from (select purchase_id, points given, 0 moved from charity_donations
          where kind = 'round_up'
          union all
          select purchase_id, 0, amount from transfers where reason = 'charity.round_up'
         ) both_sides
    group by purchase_id
    having sum(given) <> sum(moved)""",
    ),
)

_OPEN_ACCOUNT = text(
    "INSERT INTO accounts (program_id, member_id, owner, code, debits_posted, credits_posted) "
    "VALUES (:program_id, NULL, :owner, :code, 0, 0) "
    "ON CONFLICT (program_id, owner, code) DO NOTHING"
)


def open_account(connection: Connection, program_id: int, charity: Charity) -> AccountRef:
    """The charity's ledger account, opened the first time a member gives to it or chooses
    it (`ON CONFLICT DO NOTHING`: two first gifts at once open it once)."""
    ref = AccountRef(charity.owner, AccountCode.CHARITY)
    connection.execute(_OPEN_ACCOUNT, {"program_id": program_id, "owner": ref.owner,
                                       "code": ref.code.value})  # fmt: skip
    return ref


def choice_of(connection: Connection, member_id: int) -> Row[Any] | None:
    return connection.execute(
        select(charity_choices.c.charity, charity_choices.c.chosen_at).where(
            charity_choices.c.member_id == member_id
        )
    ).one_or_none()


def save_choice(
    connection: Connection, program_id: int, member_id: int, charity: str, now: datetime
) -> None:
    """The member's round-ups go to `charity` from now on (the same one again changes
    nothing: its first moment stands)."""
    current = choice_of(connection, member_id)
    if current is None:
        connection.execute(
            insert(charity_choices).values(
                member_id=member_id, program_id=program_id, charity=charity, chosen_at=now
            )
        )
    elif current.charity != charity:
        connection.execute(update(charity_choices)
                           .where(charity_choices.c.member_id == member_id)
                           .values(charity=charity, chosen_at=now))  # fmt: skip


def drop_choice(connection: Connection, member_id: int) -> None:
    connection.execute(delete(charity_choices).where(charity_choices.c.member_id == member_id))


def record_donation(connection: Connection, **values: Any) -> int:
    """A gift's row; its id."""
    query = insert(charity_donations).values(**values).returning(charity_donations.c.id)
    return int(connection.execute(query).scalar_one())


def member_given(connection: Connection, member_id: int) -> dict[str, int]:
    """The points the member gave to each charity, round-ups included (the member's page)."""
    rows = connection.execute(
        select(charity_donations.c.charity, func.sum(charity_donations.c.points))
        .where(charity_donations.c.member_id == member_id)
        .group_by(charity_donations.c.charity)
    )  # fmt: skip
    return {charity: int(points) for charity, points in rows}


def donations_by_day(
    connection: Connection, program_id: int, first: date, last: date
) -> Sequence[Row[Any]]:
    """The program's gifts from `first` to `last` (the program's days, both included),
    grouped by charity, day, member and kind: what the report adds up by period (members
    are counted once per period, so they are kept apart here)."""
    d = charity_donations.c
    return connection.execute(
        select(d.charity, d.day, d.member_id, d.kind, func.count().label("n"),
               func.sum(d.points).label("points"))
        .where(d.program_id == program_id, d.day >= first, d.day <= last)
        .group_by(d.charity, d.day, d.member_id, d.kind)
        .order_by(d.charity, d.day)
    ).all()  # fmt: skip
