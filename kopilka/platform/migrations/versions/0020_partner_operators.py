"""A console operator of role partner is bound to one coalition partner: it sees that
partner's page only (its terms, statements and customers' purchases).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("operators") as batch:
        batch.add_column(sa.Column("partner", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("operators") as batch:
        batch.drop_column("partner")
