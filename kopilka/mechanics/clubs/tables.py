"""The clubs' tables, on the one schema `metadata` of `kopilka.platform.tables` (made by
this mechanic's own Alembic branch, `migrations/`).

- `club_memberships`: one row per member and club — since when, paid until, in force
  until (paid until plus the grace; none for a club joined by invitation), its status
  (`active`, `lapsed`, `left`), whether it renews by itself, and who or what made it.
  A purchase reads the member's rows in force with its load (`Mechanic.reads`).
- `club_events`: the membership's history, every change with its actor: joined, paid
  (with the payment's reference, unique in the program, and its money or points),
  renewal due, lapsed, left.
- `club_renewals`: the payments an automatic renewal expects (no payment gateway: the
  operator confirms them by recording the payment), `expected` → `paid` or `missed`.
- `club_invites`: invite codes with their limit of uses and the uses taken (running
  state: taken by one conditional UPDATE, so two members never take the last use).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from kopilka.kernel.reading import MAX_TEXT
from kopilka.platform.tables import Timestamp, metadata

MAX_REFERENCE = 100  # a payment's reference: it goes into a ledger transfer's key

club_memberships = Table(
    "club_memberships",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("member_id", Integer, ForeignKey("members.id"), nullable=False),
    Column("club", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # active | lapsed | left
    Column("joined_by", String(16), nullable=False),  # payment | invitation
    Column("since", Timestamp(), nullable=False),  # the start of the current membership
    Column("paid_until", Timestamp()),  # a paid club's period end; none by invitation
    Column("ends_at", Timestamp()),  # in force until (paid_until + grace, or when it ended)
    Column("auto_renew", Boolean, nullable=False),
    Column("invite_id", Integer, ForeignKey("club_invites.id")),
    Column("actor", String(MAX_TEXT), nullable=False),  # who or what made it: key:7, operator
    Column("updated_at", Timestamp(), nullable=False),
    UniqueConstraint("member_id", "club"),
    Index("ix_club_memberships_program_club", "program_id", "club", "status"),
)

club_events = Table(
    "club_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("membership_id", Integer, ForeignKey("club_memberships.id"), nullable=False),
    Column("member_id", Integer, ForeignKey("members.id"), nullable=False),
    Column("club", String(64), nullable=False),
    # join | renew | renewal_due | lapse | leave
    Column("action", String(24), nullable=False),
    Column("status", String(16), nullable=False),  # the membership's status after it
    Column("paid_until", Timestamp()),  # … and its paid_until after it
    Column("amount", BigInteger),  # money paid (minor units)
    Column("points", BigInteger),  # points paid (point minor units), a ledger transfer
    Column("payment_ref", String(MAX_REFERENCE)),
    Column("invite_id", Integer, ForeignKey("club_invites.id")),
    Column("actor", String(MAX_TEXT), nullable=False),
    Column("note", Text),
    Column("at", Timestamp(), nullable=False),
    UniqueConstraint("program_id", "payment_ref"),  # a payment is recorded once
    Index("ix_club_events_membership", "membership_id", "id"),
    Index("ix_club_events_program_club", "program_id", "club", "action"),
)

club_renewals = Table(
    "club_renewals",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("membership_id", Integer, ForeignKey("club_memberships.id"), nullable=False),
    Column("due_at", Timestamp(), nullable=False),  # the period's end it continues from
    Column("amount", BigInteger, nullable=False),  # the fee expected (money minor units)
    Column("status", String(16), nullable=False),  # expected | paid | missed
    Column("created_at", Timestamp(), nullable=False),
    Column("settled_at", Timestamp()),
    UniqueConstraint("membership_id", "due_at"),  # the worker opens each one once
    Index("ix_club_renewals_program_status", "program_id", "status"),
)

club_invites = Table(
    "club_invites",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("club", String(64), nullable=False),
    Column("code", String(32), nullable=False),  # normalised: upper case, no dashes
    Column("max_uses", Integer, nullable=False),
    Column("used", Integer, nullable=False),
    Column("expires_at", Timestamp()),
    Column("note", Text),
    Column("created_by", String(MAX_TEXT), nullable=False),
    Column("created_at", Timestamp(), nullable=False),
    UniqueConstraint("program_id", "code"),
)

# what `kopilka verify` checks: an invite's uses taken equal the memberships it made
CHECKS = (
    (
        "club invites' uses equal the joins they made",
        """
    select i.id, 'invite ' || i.id || ' of club ' || i.club || ': ' || i.used
           || ' uses taken, ' || coalesce(e.joins, 0) || ' joins recorded'
    from club_invites i
    left join (select invite_id, count(*) joins from club_events
               where action = 'join' and invite_id is not null group by invite_id) e
      on e.invite_id = i.id
    where i.used <> coalesce(e.joins, 0) or i.used > i.max_uses""",
    ),
)
