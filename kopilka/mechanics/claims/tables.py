"""The claims' tables, on the one schema `metadata` of `kopilka.platform.tables` (made by
this mechanic's own Alembic branch, `migrations/`).

- `claims`: one per receipt claimed (unique by program, location and receipt id): the
  receipt as filed (the purchase's body, verbatim), the program version in force at its
  time, its SLA deadline, the decision, and — once processed — its purchase and the
  points it earned.
- `claim_events`: every step of a claim — filed, confirmed, rejected, processed, and a
  purchase refused at confirm (`unprocessed`): who (a key, an operator, a member, the
  worker), when, why. Rows are only ever inserted.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
)

from kopilka.kernel.reading import MAX_NOTE, MAX_TEXT
from kopilka.platform.tables import Timestamp, metadata

claims = Table(
    "claims",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("location", String(64), nullable=False),
    Column("receipt_id", String(200), nullable=False),
    Column("member_id", Integer, ForeignKey("members.id"), nullable=False),
    Column("at", Timestamp(), nullable=False),  # the receipt's own time
    Column("receipt", JSON, nullable=False),  # the purchase's body, as filed
    Column("total", BigInteger, nullable=False),  # the receipt's lines, money minor units
    Column("program_version", Integer, nullable=False),  # in force at `at`
    Column("note", String(MAX_NOTE)),  # the filer's words
    Column("status", String(16), nullable=False),  # open | confirmed | processed | rejected
    Column("filed_by", String(MAX_TEXT), nullable=False),  # key:3 | operator:5 | member:12
    Column("created_at", Timestamp(), nullable=False),
    Column("due_at", Timestamp(), nullable=False),  # the SLA's deadline for a decision
    Column("decided_by", String(MAX_TEXT)),
    Column("decided_at", Timestamp()),
    Column("reason", String(MAX_NOTE)),  # the decider's words (required to reject)
    Column("purchase_id", Integer, ForeignKey("purchases.id")),
    Column("points", BigInteger),  # what its purchase earned by the rules, minor units
    Column("processed_at", Timestamp()),
    UniqueConstraint("program_id", "location", "receipt_id"),
    Index(None, "program_id", "status", "due_at"),
)

claim_events = Table(
    "claim_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("claim_id", Integer, ForeignKey("claims.id"), nullable=False),
    Column("action", String(16), nullable=False),  # file | confirm | reject | process | unprocessed
    Column("status", String(16), nullable=False),  # the claim's status after it
    Column("note", String(MAX_NOTE)),
    Column("actor", String(MAX_TEXT), nullable=False),
    Column("at", Timestamp(), nullable=False),
    Index(None, "claim_id", "id"),
)

# what `kopilka verify` proves of the claims (`Mechanic.checks`): a processed claim's
# purchase is its receipt's — the same location, receipt id and member — and the points
# it keeps are what that purchase earned; a claim not processed has no purchase
CHECKS = (
    (
        "a processed claim is its receipt's purchase and keeps its points",
        """
    select c.id, 'claim ' || c.id || ' (' || c.status || '): purchase '
           || coalesce(cast(c.purchase_id as varchar(20)), 'none') || ', points '
           || coalesce(cast(c.points as varchar(20)), 'none')
    from claims c left join purchases p on p.id = c.purchase_id
    where (c.status = 'processed'
           and (p.id is null or c.points is null or p.program_id <> c.program_id
                or p.location <> c.location or p.receipt_id <> c.receipt_id
                or p.member_id <> c.member_id or p.accrued <> c.points))
       or (c.status <> 'processed' and c.purchase_id is not null)""",
    ),
)
