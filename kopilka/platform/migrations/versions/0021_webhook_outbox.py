"""The webhook outbox: signed webhooks a mechanic adds in the transaction of the state
change they report (card-linked offers' states, for the bank), which the worker sends
with back-off until the receiver answers 2xx or they are given up.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

UNDELIVERED = "delivered_at IS NULL AND given_up_at IS NULL"


def upgrade() -> None:
    op.create_table(
        "webhook_outbox",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("program_id", sa.Integer, sa.ForeignKey("programs.id"), nullable=False),
        sa.Column("endpoint", sa.String(64), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("event_key", sa.String(200), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True)),
        sa.Column("given_up_at", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.String(500)),
        sa.UniqueConstraint("program_id", "event_key"),
    )
    # the worker's question: the undelivered rows due by now
    op.create_index("ix_webhook_outbox_due", "webhook_outbox", ["next_attempt_at"],
                    postgresql_where=sa.text(UNDELIVERED),
                    sqlite_where=sa.text(UNDELIVERED))  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_webhook_outbox_due", "webhook_outbox")
    op.drop_table("webhook_outbox")
