"""Proving the ledger from its rows alone (`kopilka verify`).

Set-based checks, each a query over the whole ledger:
- every transfer moves a positive amount between two accounts of its own program;
- every member account's cached totals equal the sums of its transfers;
- the program's own accounts keep no cached totals (their balances are sums);
- the points a purchase's records say it accrued and redeemed are exactly the points its
  transfers moved, and its lines and awards add up to them; refunds move back no more
  than their purchase moved;
- the lots of each member add up to the balance they index (available, pending);
- the held points equal the open holds, and no hold was both paid and given back;
- each member's kept standing (`member_totals`, and `member_days` added up) equals what
  their purchases, refunds and transfers say, and their expiring points kept per day
  (`member_expiring`) what their lots say.
Cashback (money, in the same ledger) is proven by the same checks, widened: its member
accounts' totals are member accounts' totals; a purchase's cashback awards are what
its cashback transfers gave; refunds claw back no more cashback than the purchase gave; and
the rows indexing cashback add up to its balances as lots do to points' — the accruals
still pending to the pending cashback, the open payouts to the requested, the paid payouts
to the program's paid out, each accrual's campaign awards and transfers to its amount, and
each budgeted campaign's spend to its awards.
Debits equal credits by construction — a transfer row is one debit and one credit of
the same amount — so the books balance exactly when every transfer is sound.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, Engine, ScalarSelect, case, func, select, text

from kopilka.checkout.mechanic import mechanics
from kopilka.kernel.ledger import Reason
from kopilka.platform.tables import (
    purchase_awards,
    purchase_lines,
    purchases,
    refunds,
    transfers,
)

# What indexes cashback's balances (see the module's docstring), as lots index points'.
CASHBACK_INDEXES = """
           select a.member_id, 'member ' || a.member_id || ': cashback pending '
                || (a.credits_posted - a.debits_posted) || ', accruals pending '
                || coalesce(c.total, 0)
           from accounts a
           left join (select member_id, sum(pending) total from cashback_accruals
                      where status = 'pending' group by member_id) c
             on c.member_id = a.member_id
           where a.code = 'cashback.pending'
             and a.credits_posted - a.debits_posted <> coalesce(c.total, 0)
           union all
           select id, 'cashback accrual ' || id || ' is ' || status || ' with '
                || pending || ' pending'
           from cashback_accruals where status <> 'pending' and pending <> 0
           union all
           select a.member_id, 'member ' || a.member_id || ': cashback requested '
                || (a.credits_posted - a.debits_posted) || ', open payouts '
                || coalesce(p.total, 0)
           from accounts a
           left join (select member_id, sum(amount) total from cashback_payouts
                      where status in ('requested', 'approved') group by member_id) p
             on p.member_id = a.member_id
           where a.code = 'cashback.requested'
             and a.credits_posted - a.debits_posted <> coalesce(p.total, 0)
           union all
           select a.program_id, 'program ' || a.program_id || ': cashback paid out '
                || (coalesce(c.total, 0) - coalesce(d.total, 0)) || ', paid payouts '
                || coalesce(p.total, 0)
           from accounts a
           left join (select t.debit_account_id id, sum(t.amount) total from transfers t
                      join accounts x on x.id = t.debit_account_id
                                     and x.code = 'cashback.paid_out'
                      group by t.debit_account_id) d on d.id = a.id
           left join (select t.credit_account_id id, sum(t.amount) total from transfers t
                      join accounts x on x.id = t.credit_account_id
                                     and x.code = 'cashback.paid_out'
                      group by t.credit_account_id) c on c.id = a.id
           left join (select program_id, sum(amount) total from cashback_payouts
                      where status = 'paid' group by program_id) p
             on p.program_id = a.program_id
           where a.code = 'cashback.paid_out'
             and coalesce(c.total, 0) - coalesce(d.total, 0) <> coalesce(p.total, 0)
           union all
           select c.purchase_id, 'purchase ' || c.purchase_id || ': cashback '
                || c.amount || ' given, ' || c.clawed_back || ' clawed back; awards '
                || coalesce(w.total, 0) || ', transfers ' || coalesce(t.given, 0) || ' given, '
                || coalesce(t.taken, 0) || ' clawed back'
           from cashback_accruals c
           left join (select accrual_id, sum(amount) total from cashback_awards
                      group by accrual_id) w on w.accrual_id = c.id
           left join (select purchase_id,
                             sum(case when reason = 'cashback.accrual' then amount
                                      else 0 end) given,
                             sum(case when reason in ('cashback.clawback', 'cashback.debt')
                                      then amount else 0 end) taken
                      from transfers where purchase_id is not null
                      group by purchase_id) t on t.purchase_id = c.purchase_id
           where coalesce(w.total, 0) <> c.amount or coalesce(t.given, 0) <> c.amount
              or coalesce(t.taken, 0) <> c.clawed_back
           union all
           select t.purchase_id, 'purchase ' || t.purchase_id || ': cashback '
                || sum(t.amount) || ' given with no accrual row'
           from transfers t
           where t.reason = 'cashback.accrual' and not exists (
                 select 1 from cashback_accruals c where c.purchase_id = t.purchase_id)
           group by t.purchase_id
           union all
           select b.program_id, 'campaign ' || b.campaign || ' (program ' || b.program_id
                || '): budget spent ' || b.spent || ', awards ' || coalesce(w.total, 0)
           from cashback_budgets b
           left join (select program_id, campaign, sum(amount) total from cashback_awards
                      group by program_id, campaign) w
             on w.program_id = b.program_id and w.campaign = b.campaign
           where b.spent <> coalesce(w.total, 0)"""

# The available lots' points by the last day they can be spent (what `member_expiring`
# keeps).
_EXPIRING_LOTS = """select member_id, expiry_day as day, sum(remaining) as points from lots
                    where status = 'available' and expiry_day is not null and remaining > 0
                    group by member_id, expiry_day"""

CHECKS: list[tuple[str, str]] = [
    (
        "transfers stay within their program and move positive amounts",
        """select t.id, 'transfer ' || t.id || ': amount ' || t.amount
                || ', debit account ' || t.debit_account_id || ' (program ' || d.program_id || ')'
                || ', credit account ' || t.credit_account_id || ' (program ' || c.program_id || ')'
           from transfers t join accounts d on d.id = t.debit_account_id
                            join accounts c on c.id = t.credit_account_id
           where t.amount <= 0 or d.program_id <> t.program_id or c.program_id <> t.program_id""",
    ),
    (
        "member accounts' cached totals equal their transfers",
        """select a.id, 'account ' || a.id || ' (' || a.owner || ' ' || a.code || '): cached '
                || a.debits_posted || '/' || a.credits_posted || ', transfers '
                || coalesce(d.total, 0) || '/' || coalesce(c.total, 0)
           from accounts a
           left join (select debit_account_id id, sum(amount) total from transfers
                      group by debit_account_id) d on d.id = a.id
           left join (select credit_account_id id, sum(amount) total from transfers
                      group by credit_account_id) c on c.id = a.id
           where a.member_id is not null
             and (a.debits_posted <> coalesce(d.total, 0)
                  or a.credits_posted <> coalesce(c.total, 0))""",
    ),
    (
        "program accounts cache no totals",
        """select id, 'account ' || id || ' (' || owner || ' ' || code || ') caches '
                || debits_posted || '/' || credits_posted
           from accounts where member_id is null and (debits_posted <> 0 or credits_posted <> 0)""",
    ),
    (
        "purchases move points only as accrual and redemption, only for members",
        """select p.id, 'purchase ' || p.id || ' (receipt ' || p.receipt_id || '): '
                || coalesce(t.reason, '?') || ' moved ' || coalesce(t.total, 0)
           from purchases p
           join (select purchase_id, reason, sum(amount) total from transfers
                 where refund_id is null and purchase_id is not null
                 group by purchase_id, reason) t on t.purchase_id = p.id
           where p.member_id is null
              or t.reason not in ('purchase.accrual', 'purchase.redemption', 'debt.repayment',
                                  'coupon', 'mechanic.award', 'expiry',
                                  'hold.reserve', 'hold.cancel', 'hold.timeout',
                                  'cashback.accrual', 'cashback.activation',
                                  'cashback.debt_repayment', 'cashback.clawback',
                                  'cashback.debt', 'charity.round_up')""",
    ),
    (
        "refunds move back no more than their purchase moved",
        """select r.purchase_id, 'purchase ' || r.purchase_id || ': refunds moved '
                || r.total || ' of ' || r.reason || ', the purchase ' || coalesce(p.total, 0)
           from (select purchase_id,
                        case when reason = 'refund.redemption' then 'purchase.redemption'
                             when reason like 'cashback.%' then 'cashback.accrual'
                             else 'purchase.accrual' end reason,
                        sum(amount) total
                 from transfers
                 where (refund_id is not null
                        and reason in ('refund.redemption', 'refund.accrual', 'refund.debt'))
                    or (purchase_id is not null
                        and reason in ('cashback.clawback', 'cashback.debt'))
                 group by purchase_id,
                          case when reason = 'refund.redemption' then 'purchase.redemption'
                               when reason like 'cashback.%' then 'cashback.accrual'
                               else 'purchase.accrual' end) r
           left join (select purchase_id,
                             case when reason in ('coupon', 'mechanic.award')
                                  then 'purchase.accrual' else reason end reason,
                             sum(amount) total
                      from transfers where refund_id is null
                      group by purchase_id,
                               case when reason in ('coupon', 'mechanic.award')
                                    then 'purchase.accrual' else reason end) p
             on p.purchase_id = r.purchase_id and p.reason = r.reason
           where r.total > coalesce(p.total, 0)""",
    ),
    (
        # an expiry transfer refers to the purchase that earned the lot it burns
        "a purchase's points leave the member once: burnt or taken back",
        """select purchase_id, 'purchase ' || purchase_id || ': earned ' || earned
                || ', burnt ' || burnt || ', taken back by refunds ' || taken
           from (select purchase_id,
                        sum(case when refund_id is null
                                  and reason in ('purchase.accrual', 'coupon', 'mechanic.award')
                                 then amount else 0 end) earned,
                        sum(case when reason = 'expiry' then amount else 0 end) burnt,
                        sum(case when refund_id is not null
                                  and reason in ('refund.accrual', 'refund.debt')
                                 then amount else 0 end) taken
                 from transfers where purchase_id is not null
                 group by purchase_id) t
           where burnt > 0 and burnt + taken > earned""",
    ),
    (
        "lots add up to the balances they index",
        """select a.member_id, 'member ' || a.member_id || ' ' || a.code || ': balance '
                || (a.credits_posted - a.debits_posted) || ', lots ' || coalesce(l.total, 0)
           from accounts a
           left join (select member_id, status, sum(remaining) total from lots
                      group by member_id, status) l
             on l.member_id = a.member_id and l.status = a.code
           where a.code in ('available', 'pending')
             and coalesce(l.total, 0) <> case when a.credits_posted > a.debits_posted
                                              then a.credits_posted - a.debits_posted
                                              else 0 end
           union all """
        + CASHBACK_INDEXES,
    ),
    (
        "held points equal the open holds",
        """select a.member_id, 'member ' || a.member_id || ': held '
                || (a.credits_posted - a.debits_posted) || ', open holds ' || coalesce(h.total, 0)
           from accounts a
           left join (select member_id, sum(amount) total from holds where status = 'held'
                      group by member_id) h on h.member_id = a.member_id
           where a.code = 'held' and a.credits_posted - a.debits_posted <> coalesce(h.total, 0)""",
    ),
    (
        "no hold is both paid and given back",
        """select t.purchase_id, 'purchase ' || t.purchase_id || ': its hold was both paid and '
                || 'given back'
           from transfers t join accounts a on a.id = t.debit_account_id and a.code = 'held'
           where t.refund_id is null
           group by t.purchase_id
           having sum(case when t.reason = 'purchase.redemption' then 1 else 0 end) > 0
              and sum(case when t.reason in ('hold.cancel', 'hold.timeout')
                           then 1 else 0 end) > 0""",
    ),
    (
        "members' kept standing equals their purchases, refunds and transfers",
        """select m.id, 'member ' || m.id || ': kept spend ' || coalesce(k.spend, 0)
                || ', purchases ' || coalesce(k.purchases, 0)
                || ', points accrued ' || coalesce(k.points_accrued, 0)
                || ', redeemed ' || coalesce(k.points_redeemed, 0)
                || '; by day ' || coalesce(d.spend, 0) || ', ' || coalesce(d.n, 0)
                || '; the rows say ' || coalesce(p.spend, 0) || ', ' || coalesce(p.n, 0)
                || ', ' || coalesce(x.accrued, 0) || ', ' || coalesce(x.redeemed, 0)
           from members m
           left join member_totals k on k.member_id = m.id
           left join (select member_id, sum(spend) spend, sum(purchases) n from member_days
                      group by member_id) d on d.member_id = m.id
           left join (select p.member_id,
                             sum(coalesce(p.spend, 0) - coalesce(r.back, 0)) spend,
                             sum(case when p.status = 'refunded' then 0 else 1 end) n
                      from purchases p
                      left join (select purchase_id, sum(spend) back from refunds
                                 group by purchase_id) r on r.purchase_id = p.id
                      where p.member_id is not null
                        and p.status in ('completed', 'partially_refunded', 'refunded')
                      group by p.member_id) p on p.member_id = m.id
           left join (select a.member_id,
                             sum(case when t.reason = 'purchase.accrual'
                                      then t.amount else 0 end) accrued,
                             sum(case when t.reason = 'purchase.redemption'
                                      then t.amount else 0 end) redeemed
                      from transfers t
                      join accounts a on a.id = t.credit_account_id or a.id = t.debit_account_id
                      where a.member_id is not null
                        and t.reason in ('purchase.accrual', 'purchase.redemption')
                      group by a.member_id) x on x.member_id = m.id
           where coalesce(k.spend, 0) <> coalesce(p.spend, 0)
              or coalesce(k.purchases, 0) <> coalesce(p.n, 0)
              or coalesce(d.spend, 0) <> coalesce(p.spend, 0)
              or coalesce(d.n, 0) <> coalesce(p.n, 0)
              or coalesce(k.points_accrued, 0) <> coalesce(x.accrued, 0)
              or coalesce(k.points_redeemed, 0) <> coalesce(x.redeemed, 0)""",
    ),
    (
        "members' expiring points equal their lots",
        f"""select k.member_id, 'member ' || k.member_id || ' on ' || k.day || ': kept '
                || k.points || ' expiring, lots ' || coalesce(l.points, 0)
           from member_expiring k
           left join ({_EXPIRING_LOTS}) l on l.member_id = k.member_id and l.day = k.day
           where k.points <> coalesce(l.points, 0)
           union all
           select l.member_id, 'member ' || l.member_id || ' on ' || l.day || ': lots '
                || l.points || ' expiring, none kept'
           from ({_EXPIRING_LOTS}) l
           left join member_expiring k on k.member_id = l.member_id and k.day = l.day
           where k.member_id is null""",
    ),
]


@dataclass(frozen=True)
class Discrepancy:
    check: str
    detail: str


def verify(engine: Engine) -> tuple[list[str], list[Discrepancy]]:
    """The checks run, and every discrepancy found (none: the books are sound)."""
    found: list[Discrepancy] = []
    checks = CHECKS + [check for mechanic in mechanics() for check in mechanic.checks]
    with engine.connect() as connection:
        for name, query in checks:
            for row in connection.execute(text(query)):
                found.append(Discrepancy(name, row[1]))
        found += _answers_against_transfers(connection)
        found += _refunds_against_transfers(connection)
        found += _lines_against_purchases(connection)
    return [name for name, _ in checks] + [ANSWERS_CHECK, REFUNDS_CHECK, LINES_CHECK], found


ANSWERS_CHECK = "purchase records equal their transfers"
REFUNDS_CHECK = "refund records equal their transfers"
LINES_CHECK = "purchase lines and awards add up to their purchase"


def _moved(purchase_id: ColumnElement[int], reason: Reason) -> ScalarSelect[int]:
    return (
        select(func.coalesce(func.sum(transfers.c.amount), 0))
        .where(
            transfers.c.purchase_id == purchase_id,
            transfers.c.refund_id.is_(None),
            transfers.c.reason == reason.value,
        )
        .scalar_subquery()
    )


def _awarded(purchase_id: ColumnElement[int], mechanic: str, kind: str) -> ScalarSelect[int]:
    return (
        select(func.coalesce(func.sum(purchase_awards.c.amount), 0))
        .where(purchase_awards.c.purchase_id == purchase_id,
               purchase_awards.c.mechanic == mechanic, purchase_awards.c.kind == kind)
        .scalar_subquery()
    )  # fmt: skip


def _answers_against_transfers(connection: Connection) -> list[Discrepancy]:
    """Each purchase's recorded `accrued` and `redeemed`, and its cashback awards, against
    the transfers it made."""
    query = select(
        purchases.c.id,
        purchases.c.accrued,
        purchases.c.redeemed,
        _moved(purchases.c.id, Reason.PURCHASE_ACCRUAL),
        _moved(purchases.c.id, Reason.PURCHASE_REDEMPTION),
        _awarded(purchases.c.id, "cashback", "cashback"),
        _moved(purchases.c.id, Reason.CASHBACK_ACCRUAL),
    ).where(
        purchases.c.member_id.is_not(None),
        purchases.c.status.not_in(("held", "cancelled", "expired")),
    )
    found = []
    for purchase_id, *said_moved in connection.execute(query):
        accrued, redeemed, moved_in, moved_out, cashback, cashback_moved = map(int, said_moved)
        if (accrued, redeemed) != (moved_in, moved_out):
            detail = (f"purchase {purchase_id}: records say {(accrued, redeemed)}, "
                      f"transfers moved {(moved_in, moved_out)}")  # fmt: skip
            found.append(Discrepancy(ANSWERS_CHECK, detail))
        if cashback != cashback_moved:
            detail = (f"purchase {purchase_id}: records say cashback {cashback}, "
                      f"transfers gave {cashback_moved}")  # fmt: skip
            found.append(Discrepancy(ANSWERS_CHECK, detail))
    return found


def _lines_against_purchases(connection: Connection) -> list[Discrepancy]:
    """Each purchase's lines add up to its figures, and its points awards to its lines."""
    lines = (
        select(purchase_lines.c.purchase_id,
               func.sum(purchase_lines.c.amount).label("amount"),
               func.sum(purchase_lines.c.accrued).label("accrued"),
               func.sum(purchase_lines.c.redeemed).label("redeemed"))
        .group_by(purchase_lines.c.purchase_id)
        .subquery()
    )  # fmt: skip
    query = select(
        purchases.c.id,
        purchases.c.spend,
        purchases.c.accrued,
        purchases.c.redeemed,
        func.coalesce(lines.c.amount, 0),
        func.coalesce(lines.c.accrued, 0),
        func.coalesce(lines.c.redeemed, 0),
        _awarded(purchases.c.id, "points", "accrual"),
        _awarded(purchases.c.id, "points", "redemption"),
    ).outerjoin(lines, lines.c.purchase_id == purchases.c.id)
    found = []
    for purchase_id, *figures in connection.execute(query):
        spend, accrued, redeemed, *summed = (int(figure or 0) for figure in figures)
        if [spend, accrued, redeemed, accrued, redeemed] != summed:
            recorded = (spend, accrued, redeemed)
            detail = (f"purchase {purchase_id}: spend, accrued, redeemed {recorded}; "
                      f"lines and awards {tuple(summed)}")  # fmt: skip
            found.append(Discrepancy(LINES_CHECK, detail))
    return found


def _refunds_against_transfers(connection: Connection) -> list[Discrepancy]:
    """Each refund's points back against its transfers: `redeemed_back` returned, and
    `accrued_back` less `accrued_burnt` (what had burnt already) taken."""
    moved = (
        select(
            transfers.c.refund_id,
            func.sum(case((transfers.c.reason == Reason.REFUND_REDEMPTION.value,
                           transfers.c.amount), else_=0)).label("returned"),
            func.sum(case((transfers.c.reason.in_((Reason.REFUND_ACCRUAL.value,
                                                    Reason.DEBT.value)),
                           transfers.c.amount), else_=0)).label("taken"),
        )
        .where(transfers.c.refund_id.is_not(None))
        .group_by(transfers.c.refund_id)
        .subquery()
    )  # fmt: skip
    query = (
        select(refunds.c.id, refunds.c.redeemed_back, refunds.c.accrued_back,
               refunds.c.accrued_burnt, moved.c.returned, moved.c.taken)
        .join(purchases, purchases.c.id == refunds.c.purchase_id)
        .outerjoin(moved, moved.c.refund_id == refunds.c.id)
        .where(purchases.c.member_id.is_not(None))
    )  # fmt: skip
    found = []
    for refund_id, redeemed_back, accrued_back, burnt, returned, taken in connection.execute(query):
        said = (int(redeemed_back), int(accrued_back) - int(burnt))
        did = (int(returned or 0), int(taken or 0))
        if said != did:
            detail = f"refund {refund_id}: records say {said} back and taken, transfers {did}"
            found.append(Discrepancy(REFUNDS_CHECK, detail))
    return found
