"""The clubs mechanic's tables: invites, memberships, their events and expected renewals
(kopilka/mechanics/clubs/tables.py) — a branch of its own, forked from the platform's
newest revision when clubs came.

Revision ID: k001
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "k001"
down_revision = "0018"
branch_labels = ("clubs",)
depends_on = None

TZ = sa.DateTime(timezone=True)


def _program() -> sa.Column[int]:
    return sa.Column("program_id", sa.Integer, sa.ForeignKey("programs.id"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "club_invites",
        sa.Column("id", sa.Integer, primary_key=True),
        _program(),
        sa.Column("club", sa.String(64), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("max_uses", sa.Integer, nullable=False),
        sa.Column("used", sa.Integer, nullable=False),
        sa.Column("expires_at", TZ),
        sa.Column("note", sa.Text),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("program_id", "code", name="uq_club_invites_program_id_code"),
    )
    op.create_table(
        "club_memberships",
        sa.Column("id", sa.Integer, primary_key=True),
        _program(),
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id"), nullable=False),
        sa.Column("club", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("joined_by", sa.String(16), nullable=False),
        sa.Column("since", TZ, nullable=False),
        sa.Column("paid_until", TZ),
        sa.Column("ends_at", TZ),
        sa.Column("auto_renew", sa.Boolean, nullable=False),
        sa.Column("invite_id", sa.Integer, sa.ForeignKey("club_invites.id")),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.UniqueConstraint("member_id", "club", name="uq_club_memberships_member_id_club"),
    )
    op.create_index("ix_club_memberships_program_club", "club_memberships",
                    ["program_id", "club", "status"])  # fmt: skip
    op.create_table(
        "club_events",
        sa.Column("id", sa.Integer, primary_key=True),
        _program(),
        sa.Column(
            "membership_id", sa.Integer, sa.ForeignKey("club_memberships.id"), nullable=False
        ),
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id"), nullable=False),
        sa.Column("club", sa.String(64), nullable=False),
        sa.Column("action", sa.String(24), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("paid_until", TZ),
        sa.Column("amount", sa.BigInteger),
        sa.Column("points", sa.BigInteger),
        sa.Column("payment_ref", sa.String(100)),
        sa.Column("invite_id", sa.Integer, sa.ForeignKey("club_invites.id")),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("at", TZ, nullable=False),
        sa.UniqueConstraint(
            "program_id", "payment_ref", name="uq_club_events_program_id_payment_ref"
        ),
    )
    op.create_index("ix_club_events_membership", "club_events", ["membership_id", "id"])
    op.create_index("ix_club_events_program_club", "club_events", ["program_id", "club", "action"])
    op.create_table(
        "club_renewals",
        sa.Column("id", sa.Integer, primary_key=True),
        _program(),
        sa.Column(
            "membership_id", sa.Integer, sa.ForeignKey("club_memberships.id"), nullable=False
        ),
        sa.Column("due_at", TZ, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("settled_at", TZ),
        sa.UniqueConstraint(
            "membership_id", "due_at", name="uq_club_renewals_membership_id_due_at"
        ),
    )
    op.create_index("ix_club_renewals_program_status", "club_renewals", ["program_id", "status"])


def downgrade() -> None:
    op.drop_table("club_renewals")
    op.drop_table("club_events")
    op.drop_table("club_memberships")
    op.drop_table("club_invites")
