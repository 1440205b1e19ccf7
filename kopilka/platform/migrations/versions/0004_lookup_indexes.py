"""Indexes for the lookups the hot paths make: a member's accounts, a purchase's
transfers and lots.

Without `ix_accounts_member_id` every purchase scanned the whole accounts table to
find the member's balances (four rows per member: the cost grew with the members).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_accounts_member_id", "accounts", ["member_id"]),
    ("ix_transfers_purchase_id", "transfers", ["purchase_id"]),
    ("ix_lots_purchase_id", "lots", ["purchase_id"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _columns in INDEXES:
        op.drop_index(name, table_name=table)
