"""The challenges' and badges' tables, on the one schema `metadata` of
`kopilka.platform.tables`.

`member_challenges` is a member's running state per challenge and period (the progress,
a weekly streak's last week and grace weeks used, whether it was completed), added to in
the purchase's own write; `member_categories` the categories a member has bought from
(for "a category never tried"). `purchase_challenges` keeps what each purchase added to
each challenge and whether it completed it, for its refunds; `member_badges` the badges
members earned (a row per award; a refund of the purchase that earned one revokes it).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, String, Table

from kopilka.platform.statements import RunningTotal
from kopilka.platform.tables import Timestamp, metadata

member_challenges = Table(
    "member_challenges",
    metadata,
    Column("member_id", Integer, ForeignKey("members.id"), primary_key=True),
    Column("challenge", String(64), primary_key=True),
    Column("period", String(16), primary_key=True),  # its first day, or "ever"
    Column("progress", BigInteger, nullable=False),
    Column("marker", BigInteger, nullable=False),  # a weekly streak's last week counted
    Column("spare", BigInteger, nullable=False),  # … and the grace weeks it used
    Column("completions", BigInteger, nullable=False),  # 0 or 1 in a period
)

CHALLENGES = RunningTotal(member_challenges, ("member_id", "challenge", "period"),
                          ("progress", "marker", "spare", "completions"))  # fmt: skip

member_categories = Table(
    "member_categories",
    metadata,
    Column("member_id", Integer, ForeignKey("members.id"), primary_key=True),
    Column("category", String(64), primary_key=True),
    Column("purchases", BigInteger, nullable=False),
)

CATEGORIES = RunningTotal(member_categories, ("member_id", "category"), ("purchases",))

purchase_challenges = Table(
    "purchase_challenges",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("purchase_id", Integer, ForeignKey("purchases.id"), nullable=False),
    Column("member_id", Integer, ForeignKey("members.id"), nullable=False),
    Column("challenge", String(64), nullable=False),
    Column("period", String(16), nullable=False),
    Column("progress", BigInteger, nullable=False),  # what the purchase added
    Column("completed", Integer, nullable=False),  # 1: it completed the challenge
    Column("points", BigInteger, nullable=False),  # the reward's points it gave
    Column("taken_back", BigInteger, nullable=False),  # progress its refunds took back
    Column("reward_back", Integer, nullable=False),  # 1: a refund took the completion back
    Column("created_at", Timestamp(), nullable=False),
    Index("ix_purchase_challenges_purchase_id", "purchase_id"),
)

PURCHASE_CHALLENGE_COLUMNS = ("program_id", "member_id", "challenge", "period", "progress",
                              "completed", "points", "taken_back", "reward_back",
                              "created_at")  # fmt: skip

member_badges = Table(
    "member_badges",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("purchase_id", Integer, ForeignKey("purchases.id"), nullable=False),
    Column("member_id", Integer, ForeignKey("members.id"), nullable=False),
    Column("badge", String(64), nullable=False),
    Column("challenge", String(64), nullable=False),
    Column("earned_at", Timestamp(), nullable=False),
    Column("revoked_at", Timestamp()),
    Index("ix_member_badges_member_id", "member_id"),
    Index("ix_member_badges_purchase_id", "purchase_id"),
)

BADGE_COLUMNS = ("program_id", "member_id", "badge", "challenge", "earned_at")

__all__ = ["BADGE_COLUMNS", "CATEGORIES", "CHALLENGES", "PURCHASE_CHALLENGE_COLUMNS",
           "member_badges", "member_categories", "member_challenges",
           "purchase_challenges"]  # fmt: skip


# what `kopilka verify` checks: each member's running state per challenge and period is
# the sum of what their purchases added and their refunds took back
CHECKS = (
    (
        "challenges' running state equals their purchases' progress",
        """
    select member_id, 'member ' || member_id || ' challenge ' || challenge || ' '
           || period || ': kept ' || sum(kept) || '/' || sum(kept_done) || ', purchases '
           || sum(bought) || '/' || sum(bought_done)
    from (select member_id, challenge, period, progress kept, completions kept_done,
                 0 bought, 0 bought_done from member_challenges
          union all
          select member_id, challenge, period, 0, 0, sum(progress - taken_back),
                 sum(completed - reward_back) from purchase_challenges
          group by member_id, challenge, period) both_sides
    group by member_id, challenge, period
    having sum(kept) <> sum(bought) or sum(kept_done) <> sum(bought_done)""",
    ),
)
