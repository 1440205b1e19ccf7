"""The points that burn, kept per member and day: `member_expiring`, and `lots.expiry_day`.

A balance listed what expires when by reading every lot the member held with points left
— one per accrual, so it grew with the member's history. Each lot now knows the last day
its points can be spent (`expiry_day`, in its program's time zone), and triggers on
`lots` keep `member_expiring` equal to the available lots' points by that day, whoever
writes the lots (a purchase's one statement, a refund, the expiry worker's set-based
burn). Back-filled from the lots; it reads the tables directly (with
`kopilka.platform.migrations.stored`) and imports nothing else of the application.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03
"""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

from kopilka.platform.migrations.stored import moment, program_zones

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

BATCH = 5000
COUNTS = "NEW.status = 'available' AND NEW.expiry_day IS NOT NULL AND NEW.remaining > 0"
COUNTED = COUNTS.replace("NEW.", "OLD.")
ADD = """INSERT INTO member_expiring (member_id, day, points)
         VALUES ({row}.member_id, {row}.expiry_day, {sign}{row}.remaining)
         ON CONFLICT (member_id, day) DO UPDATE SET points = member_expiring.points
                                                             + excluded.points"""

POSTGRESQL = f"""
CREATE FUNCTION kopilka_keep_expiring() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND {COUNTED} THEN
        {ADD.format(row="OLD", sign="-")};
    END IF;
    IF {COUNTS} THEN
        {ADD.format(row="NEW", sign="")};
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER lots_keep_expiring AFTER INSERT OR UPDATE OF remaining, status ON lots
    FOR EACH ROW EXECUTE FUNCTION kopilka_keep_expiring();
"""

SQLITE = (
    f"""CREATE TRIGGER lots_expiring_inserted AFTER INSERT ON lots WHEN {COUNTS}
        BEGIN {ADD.format(row="NEW", sign="")}; END""",
    f"""CREATE TRIGGER lots_expiring_left AFTER UPDATE OF remaining, status ON lots
        WHEN {COUNTED} BEGIN {ADD.format(row="OLD", sign="-")}; END""",
    f"""CREATE TRIGGER lots_expiring_came AFTER UPDATE OF remaining, status ON lots
        WHEN {COUNTS} BEGIN {ADD.format(row="NEW", sign="")}; END""",
)


def upgrade() -> None:
    with op.batch_alter_table("lots") as batch:
        batch.add_column(sa.Column("expiry_day", sa.Date(), nullable=True))
    op.create_table(
        "member_expiring",
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("member_id", "day", name="pk_member_expiring"),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"],
                                name="fk_member_expiring_member_id_members"),
    )  # fmt: skip
    _fill_days()
    op.execute(
        "INSERT INTO member_expiring (member_id, day, points) "
        "SELECT member_id, expiry_day, sum(remaining) FROM lots "
        "WHERE status = 'available' AND expiry_day IS NOT NULL AND remaining > 0 "
        "GROUP BY member_id, expiry_day"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRESQL)
    else:
        for statement in SQLITE:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER lots_keep_expiring ON lots")
        op.execute("DROP FUNCTION kopilka_keep_expiring()")
    else:
        for name in ("lots_expiring_inserted", "lots_expiring_left", "lots_expiring_came"):
            op.execute(f"DROP TRIGGER {name}")
    op.drop_table("member_expiring")
    with op.batch_alter_table("lots") as batch:
        batch.drop_column("expiry_day")


def _fill_days() -> None:
    """Each lot's last day, from its `expires_at` in its program's time zone."""
    bind = op.get_bind()
    zones = program_zones(bind)
    query = sa.text(
        "SELECT id, program_id, expires_at FROM lots "
        "WHERE id > :after AND expires_at IS NOT NULL ORDER BY id LIMIT :n"
    )
    after = 0
    while rows := bind.execute(query, {"after": after, "n": BATCH}).all():
        after = rows[-1].id
        days = [
            {"lot": row.id, "day": (moment(row.expires_at) - timedelta(microseconds=1))
             .astimezone(zones.get(row.program_id, ZoneInfo("UTC"))).date()}
            for row in rows
        ]  # fmt: skip
        bind.execute(sa.text("UPDATE lots SET expiry_day = :day WHERE id = :lot"), days)
