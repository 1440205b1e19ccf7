"""The member page's personal links (issue 8), on the one schema `metadata` of
`kopilka.platform.tables`.

A link's token is signed by the server (`kopilka.members.links`) and carries the
row's random `link_id`; the row is what makes a single link revocable. The token itself
is never stored: it can be signed again from the row, and a copy of this table opens no
member's page.
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, Integer, String, Table

from kopilka.platform.tables import Timestamp, metadata

member_links = Table(
    "member_links",
    metadata,
    Column("id", Integer, primary_key=True),  # the order links were made in; never shown
    Column("link_id", String(32), nullable=False, unique=True),  # random, in the token
    Column("member_id", Integer, ForeignKey("members.id"), nullable=False),
    Column("created_at", Timestamp(), nullable=False),
    Column("expires_at", Timestamp()),  # null: the link has no end date
    Column("revoked_at", Timestamp()),
    Column("created_by", String(200), nullable=False),  # key:12, operator:3, cli
    Column("label", String(200)),  # where it was sent or shown: sms, partner site…
    Index("ix_member_links_member_id", "member_id", "id"),
)
