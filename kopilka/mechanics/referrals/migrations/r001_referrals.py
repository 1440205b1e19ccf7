"""The referrals mechanic's tables: codes, referrals, fingerprints and decisions
(kopilka/mechanics/referrals/tables.py) — a branch of its own, forked from the
platform's revision whose members, purchases and programs it needs.

Revision ID: r001
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r001"
down_revision = "0017"  # the platform's head when referrals came
branch_labels = ("referrals",)
depends_on = None

TZ = sa.DateTime(timezone=True)


def _program() -> sa.Column[int]:
    return sa.Column("program_id", sa.Integer, sa.ForeignKey("programs.id"), nullable=False)


def _member(name: str, **kw: object) -> sa.Column[int]:
    return sa.Column(name, sa.Integer, sa.ForeignKey("members.id"), **kw)  # type: ignore[arg-type]


def upgrade() -> None:
    op.create_table(
        "referral_codes",
        _member("member_id", primary_key=True),
        _program(),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("program_id", "code", name="uq_referral_codes_program_id_code"),
    )
    op.create_table(
        "referrals",
        sa.Column("id", sa.Integer, primary_key=True),
        _program(),
        _member("referrer_id", nullable=False),
        _member("friend_id", nullable=False),
        sa.Column("code", sa.String(32)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("purchase_id", sa.Integer, sa.ForeignKey("purchases.id")),
        sa.Column("referrer_points", sa.BigInteger),
        sa.Column("friend_points", sa.BigInteger),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("decided_at", TZ),
        sa.Column("paid_at", TZ),
        sa.UniqueConstraint("friend_id", name="uq_referrals_friend_id"),
    )
    op.create_index(
        "ix_referrals_program_id_status_id", "referrals", ["program_id", "status", "id"]
    )
    op.create_index("ix_referrals_referrer_id_status", "referrals", ["referrer_id", "status"])
    op.create_table(
        "referral_fingerprints",
        _program(),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", sa.String(64), nullable=False),
        _member("member_id", nullable=False),
        sa.Column("uses", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint(
            "program_id", "kind", "value", "member_id", name="pk_referral_fingerprints"
        ),
    )
    op.create_index("ix_referral_fingerprints_member_id", "referral_fingerprints", ["member_id"])
    op.create_table(
        "referral_decisions",
        sa.Column("id", sa.Integer, primary_key=True),
        _program(),
        sa.Column("referral_id", sa.Integer, sa.ForeignKey("referrals.id"), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("note", sa.String(1000)),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("at", TZ, nullable=False),
    )
    op.create_index(
        "ix_referral_decisions_referral_id_id", "referral_decisions", ["referral_id", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_referral_decisions_referral_id_id", "referral_decisions")
    op.drop_table("referral_decisions")
    op.drop_index("ix_referral_fingerprints_member_id", "referral_fingerprints")
    op.drop_table("referral_fingerprints")
    op.drop_index("ix_referrals_referrer_id_status", "referrals")
    op.drop_index("ix_referrals_program_id_status_id", "referrals")
    op.drop_table("referrals")
    op.drop_table("referral_codes")
