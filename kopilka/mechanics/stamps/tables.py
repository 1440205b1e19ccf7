"""The stamp cards' tables, on the one schema `metadata` of `kopilka.platform.tables`.

`member_stamps` is a member's running state per card, added to in the purchase's own
write (a `Bump`): what the card holds now, and the stamps and rewards of its life. So a
purchase reads one row per card and never sums a member's history. `purchase_stamps`
keeps what each purchase earned and gave on each card (written with the purchase), which
its refunds take back and `verify` sums to the running state.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, String, Table

from kopilka.platform.statements import RunningTotal
from kopilka.platform.tables import Timestamp, metadata

member_stamps = Table(
    "member_stamps",
    metadata,
    Column("member_id", Integer, ForeignKey("members.id"), primary_key=True),
    Column("card", String(64), primary_key=True),
    Column("held", BigInteger, nullable=False),  # stamps on the card now (< 0: owed)
    Column("earned", BigInteger, nullable=False),  # stamps earned, net of refunds
    Column("rewards", BigInteger, nullable=False),  # rewards given, net of claw-backs
)

STAMPS = RunningTotal(member_stamps, ("member_id", "card"), ("held", "earned", "rewards"))

purchase_stamps = Table(
    "purchase_stamps",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("purchase_id", Integer, ForeignKey("purchases.id"), nullable=False),
    Column("member_id", Integer, ForeignKey("members.id"), nullable=False),
    Column("card", String(64), nullable=False),
    Column("size", Integer, nullable=False),  # the card's stamps for a reward, then
    Column("stamps", BigInteger, nullable=False),  # earned by the purchase
    Column("rewards", BigInteger, nullable=False),  # completed by it
    Column("points", BigInteger, nullable=False),  # the rewards' points (point minor units)
    Column("stamps_back", BigInteger, nullable=False),  # taken back by its refunds
    Column("rewards_back", BigInteger, nullable=False),  # clawed back by its refunds
    Column("created_at", Timestamp(), nullable=False),
    Index("ix_purchase_stamps_purchase_id", "purchase_id"),
    Index("ix_purchase_stamps_member_id_card", "member_id", "card"),
)

PURCHASE_STAMP_COLUMNS = ("program_id", "member_id", "card", "size", "stamps", "rewards",
                          "points", "stamps_back", "rewards_back", "created_at")  # fmt: skip

__all__ = ["PURCHASE_STAMP_COLUMNS", "STAMPS", "member_stamps", "purchase_stamps"]


# what `kopilka verify` checks: each member's running state per card is the sum of what
# their purchases gave and their refunds took back
CHECKS = (
    (
        "stamp cards' running state equals their purchases' stamps",
        """
    select member_id, 'member ' || member_id || ' card ' || card || ': kept '
           || sum(kept) || ' stamps/' || sum(kept_rewards) || ' rewards, purchases '
           || sum(bought) || '/' || sum(bought_rewards)
    from (select member_id, card, earned kept, rewards kept_rewards, 0 bought,
                 0 bought_rewards from member_stamps
          union all
          select member_id, card, 0, 0, sum(stamps - stamps_back),
                 sum(rewards - rewards_back) from purchase_stamps group by member_id, card
         ) both_sides
    group by member_id, card
    having sum(kept) <> sum(bought) or sum(kept_rewards) <> sum(bought_rewards)""",
    ),
)
