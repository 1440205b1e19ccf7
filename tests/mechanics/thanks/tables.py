"""The mechanic's own table, as its migration makes it (the keys to the platform's
programs, members and purchases are the migration's; queries need only the columns).

On a metadata of its own: the platform's `metadata` is what its migrations must make
(`test_the_migrated_schema_is_the_declared_one`), and this mechanic is registered only
in its own tests.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, Table

metadata = MetaData()

thanks_given = Table(
    "thanks_given",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("program_id", Integer, nullable=False),
    Column("member_id", Integer, nullable=False),
    Column("purchase_id", Integer, nullable=False, unique=True),
    Column("points", BigInteger, nullable=False),
    Column("taken_back", BigInteger, nullable=False, default=0),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
