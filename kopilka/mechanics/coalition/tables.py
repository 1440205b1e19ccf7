"""The coalition's tables, on the one schema `metadata` of `kopilka.platform.tables`.

- `purchase_partners`: the partner each purchase was made at (written with the purchase,
  so a location later moved to another partner does not rewrite history); settlement
  joins the ledger's transfers to it.
- `partner_blocks` and `partner_prepaid`: a prepaid partner's blocks of points bought,
  and its running state — points bought and drawn by its purchases' earning — kept in
  the purchase's own write; the database refuses a draw beyond what was bought, so two
  purchases racing for a block's last points cannot both have them.
- `partner_statements` and `statement_lines`: a partner's closed statements per period,
  never changed once written (corrections are lines of the next one), and their lines.
- `partner_corrections`: amounts an operator records for a partner, carried into its
  next statement.
- `liability_transfers`: a partner's outstanding points moved to the program or to
  another partner at its exit, with their value.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from kopilka.platform.statements import RunningTotal
from kopilka.platform.tables import Timestamp, metadata

purchase_partners = Table(
    "purchase_partners",
    metadata,
    Column("purchase_id", Integer, ForeignKey("purchases.id"), primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("partner", String(64), nullable=False),
    # points the purchase drew from its prepaid partner's blocks, and gave back by refunds
    # and a cancel: `partner_prepaid.drawn` is their sum (a `verify` check)
    Column("drawn", BigInteger, nullable=False),
    Column("drawn_back", BigInteger, nullable=False),
    Index("ix_purchase_partners_program_id_partner", "program_id", "partner"),
)
PURCHASE_PARTNER_COLUMNS = ("program_id", "partner", "drawn", "drawn_back")

partner_blocks = Table(
    "partner_blocks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("partner", String(64), nullable=False),
    Column("points", BigInteger, nullable=False),  # point minor units bought
    Column("starts_at_point", BigInteger, nullable=False),  # the points bought before it
    Column("price", BigInteger, nullable=False),  # money minor units paid for it
    Column("reference", String(200), nullable=False),  # the partner's payment, unique
    Column("actor", String(200), nullable=False),
    Column("bought_at", Timestamp(), nullable=False),
    CheckConstraint("points > 0", name="points_positive"),
    UniqueConstraint("program_id", "partner", "reference"),
)

partner_prepaid = Table(
    "partner_prepaid",
    metadata,
    Column("program_id", Integer, ForeignKey("programs.id"), primary_key=True),
    Column("partner", String(64), primary_key=True),
    Column("bought", BigInteger, nullable=False),
    Column("drawn", BigInteger, nullable=False),  # earned by its purchases, net of refunds
    # `bought = 0`: the row an upsert proposes before it meets the partner's own (a draw
    # alone); a partner that never bought a block has no row, and its purchases draw none
    CheckConstraint("bought = 0 or drawn <= bought", name="within_bought"),
)
PREPAID = RunningTotal(partner_prepaid, ("program_id", "partner"), ("bought", "drawn"))

partner_statements = Table(
    "partner_statements",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("partner", String(64), nullable=False),
    Column("first_day", Date, nullable=False),  # the period, in the program's time zone
    Column("last_day", Date, nullable=False),
    Column("starts_at", Timestamp(), nullable=False),  # … as instants: [starts_at, ends_at)
    Column("ends_at", Timestamp(), nullable=False),
    Column("issued", BigInteger, nullable=False),  # points, from the ledger
    Column("redeemed", BigInteger, nullable=False),
    Column("earned_here_spent_elsewhere", BigInteger, nullable=False),
    Column("earned_elsewhere_spent_here", BigInteger, nullable=False),
    Column("opening", BigInteger, nullable=False),  # money minor units: + the partner owes
    Column("closing", BigInteger, nullable=False),
    Column("terms", JSON, nullable=False),  # the terms it was settled at
    Column("actor", String(200), nullable=False),
    Column("closed_at", Timestamp(), nullable=False),
    UniqueConstraint("program_id", "partner", "first_day"),
)

statement_lines = Table(
    "statement_lines",
    metadata,
    Column("statement_id", Integer, ForeignKey("partner_statements.id"), primary_key=True),
    Column("n", Integer, primary_key=True),
    Column("what", String(200), nullable=False),
    Column("amount", BigInteger, nullable=False),  # money minor units
)

partner_corrections = Table(
    "partner_corrections",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("partner", String(64), nullable=False),
    Column("amount", BigInteger, nullable=False),  # money: + the partner owes
    Column("note", Text, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("created_at", Timestamp(), nullable=False),
    Column("statement_id", Integer, ForeignKey("partner_statements.id")),  # where it landed
    CheckConstraint("amount <> 0", name="amount_not_zero"),
)

liability_transfers = Table(
    "liability_transfers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("program_id", Integer, ForeignKey("programs.id"), nullable=False),
    Column("from_partner", String(64), nullable=False),
    Column("to_partner", String(64)),  # None: the program takes them
    Column("points", BigInteger, nullable=False),  # outstanding points moved
    Column("value", BigInteger, nullable=False),  # money: what the leaver pays for them
    Column("lots", JSON, nullable=False),  # [[lot_id, remaining], …] as moved
    Column("note", Text),
    Column("actor", String(200), nullable=False),
    Column("moved_at", Timestamp(), nullable=False),
    UniqueConstraint("program_id", "from_partner"),
)

__all__ = [
    "PREPAID", "PURCHASE_PARTNER_COLUMNS", "liability_transfers", "partner_blocks",
    "partner_corrections", "partner_prepaid", "partner_statements", "purchase_partners",
    "statement_lines",
]  # fmt: skip


# what `kopilka verify` checks: a prepaid partner's draw is the sum of what its purchases
# drew and gave back; a closed statement's closing is its opening and its lines, and its
# opening the closing of the one before
CHECKS = (
    (
        "prepaid partners' draw equals their purchases'",
        """
    select 0, 'partner ' || partner || ': drawn ' || sum(kept) || ', purchases ' || sum(drew)
    from (select program_id, partner, drawn kept, 0 drew from partner_prepaid
          union all
          select program_id, partner, 0, sum(drawn - drawn_back) from purchase_partners
          group by program_id, partner) both_sides
    group by program_id, partner
    having sum(kept) <> sum(drew)""",
    ),
    (
        "a statement's closing is its opening and its lines",
        """
    select s.id, 'statement ' || s.id || ': closing ' || s.closing || ', opening '
           || s.opening || ' and lines ' || coalesce(l.total, 0)
    from partner_statements s
    left join (select statement_id, sum(amount) total from statement_lines
               group by statement_id) l on l.statement_id = s.id
    where s.closing <> s.opening + coalesce(l.total, 0)""",
    ),
    (
        "a statement opens where the one before it closed",
        """
    select s.id, 'statement ' || s.id || ': opening ' || s.opening || ', the one before closed '
           || coalesce(p.closing, 0)
    from partner_statements s
    left join partner_statements p on p.program_id = s.program_id and p.partner = s.partner
         and p.first_day = (select max(first_day) from partner_statements q
                            where q.program_id = s.program_id and q.partner = s.partner
                              and q.first_day < s.first_day)
    where s.opening <> coalesce(p.closing, 0)""",
    ),
    (
        "a statement's points are the ledger's",
        """
    select s.id, 'statement ' || s.id || ': issued ' || s.issued || ', ledger '
           || coalesce(sum(case when t.reason in ('purchase.accrual', 'coupon', 'mechanic.award')
                                then t.amount
                                when t.reason in ('refund.accrual', 'refund.debt')
                                then -t.amount else 0 end), 0)
           || '; redeemed ' || s.redeemed || ', ledger '
           || coalesce(sum(case when t.reason = 'purchase.redemption' then t.amount
                                when t.reason = 'refund.redemption' then -t.amount
                                else 0 end), 0)
    from partner_statements s
    left join purchase_partners pp on pp.program_id = s.program_id and pp.partner = s.partner
    left join transfers t on t.purchase_id = pp.purchase_id and t.created_at >= s.starts_at
         and t.created_at < s.ends_at
    group by s.id, s.issued, s.redeemed
    having s.issued <> coalesce(sum(case when t.reason in ('purchase.accrual', 'coupon',
                                                          'mechanic.award') then t.amount
                                         when t.reason in ('refund.accrual', 'refund.debt')
                                         then -t.amount else 0 end), 0)
        or s.redeemed <> coalesce(sum(case when t.reason = 'purchase.redemption' then t.amount
                                           when t.reason = 'refund.redemption' then -t.amount
                                           else 0 end), 0)""",
    ),
)
