"""The member page's personal links, kept by the server so each can be revoked (issue 8).

Links made before this revision carried no row; there were no deployments, so they are
simply refused (404) from now on.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "member_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("link_id", sa.String(32), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("expires_at", TZ),
        sa.Column("revoked_at", TZ),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("label", sa.String(200)),
        sa.PrimaryKeyConstraint("id", name="pk_member_links"),
        sa.UniqueConstraint("link_id", name="uq_member_links_link_id"),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name="fk_member_links_member_id_members"
        ),
    )
    op.create_index("ix_member_links_member_id", "member_links", ["member_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_member_links_member_id", "member_links")
    op.drop_table("member_links")
