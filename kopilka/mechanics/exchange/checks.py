"""What `kopilka verify` proves of the exchange from the rows alone (`Mechanic.checks`):
each saga's state matches its transfers, the held account equals the sagas held, each
credit its transfer, and the members' daily totals their exchanges."""

from __future__ import annotations

# each saga's transfers, by its key (`<ledger_key>:hold|confirm|fee|reverse`)
# (`\\:` is a colon in SQLAlchemy's text(), not a bind parameter)
_SAGA_TRANSFERS = """
select e.id, 'exchange ' || e.transaction_id || ' (' || e.state || '): points ' || e.points
     || ', fee ' || e.fee || '; hold ' || coalesce(h.amount, 0)
     || ', confirm ' || coalesce(c.amount, 0) || ', fee ' || coalesce(f.amount, 0)
     || ', reverse ' || coalesce(r.amount, 0)
from exchanges e
left join transfers h on h.transfer_key = e.ledger_key || '\\:hold'
left join transfers c on c.transfer_key = e.ledger_key || '\\:confirm'
left join transfers f on f.transfer_key = e.ledger_key || '\\:fee'
left join transfers r on r.transfer_key = e.ledger_key || '\\:reverse'
where coalesce(h.amount, 0) <> e.points
   or (e.state = 'held' and (c.id is not null or f.id is not null or r.id is not null))
   or (e.state = 'confirmed' and (coalesce(c.amount, 0) <> e.points - e.fee
                                  or coalesce(f.amount, 0) <> e.fee or r.id is not null))
   or (e.state = 'reversed' and (coalesce(r.amount, 0) <> e.points
                                 or c.id is not null or f.id is not null))
   or e.state not in ('held', 'confirmed', 'reversed')"""

_HELD = """
select a.program_id, 'program ' || a.program_id || ': exchange.held '
     || (coalesce(c.total, 0) - coalesce(d.total, 0)) || ', sagas held ' || coalesce(s.total, 0)
from accounts a
left join (select credit_account_id id, sum(amount) total from transfers
           group by credit_account_id) c on c.id = a.id
left join (select debit_account_id id, sum(amount) total from transfers
           group by debit_account_id) d on d.id = a.id
left join (select program_id, sum(points) total from exchanges where state = 'held'
           group by program_id) s on s.program_id = a.program_id
where a.code = 'exchange.held' and a.owner = 'program'
  and coalesce(c.total, 0) - coalesce(d.total, 0) <> coalesce(s.total, 0)"""

_CREDITS = """
select x.id, 'credit ' || x.transaction_id || ' from ' || x.source || ' (' || x.state
     || '): points ' || x.points || ', transfer ' || coalesce(t.amount, 0)
from exchange_credits x
left join transfers t on t.transfer_key = x.ledger_key
where (x.state = 'credited' and (t.id is null or t.amount <> x.points))
   or (x.state <> 'credited' and (x.points <> 0 or t.id is not null))"""

_DAYS = """
select d.member_id, 'member ' || d.member_id || ' pair ' || d.pair || ' on ' || d.day
     || ': kept ' || d.points || ', exchanges ' || coalesce(s.total, 0)
from exchange_days d
left join (select member_id, pair, day, sum(points) total from exchanges
           where state <> 'reversed' group by member_id, pair, day) s
  on s.member_id = d.member_id and s.pair = d.pair and s.day = d.day
where d.points <> coalesce(s.total, 0)"""

CHECKS: tuple[tuple[str, str], ...] = (
    ("each exchange's state matches its transfers", _SAGA_TRANSFERS),
    ("the points held for exchanges equal the sagas held", _HELD),
    ("each exchange credit matches its transfer", _CREDITS),
    ("members' daily exchange totals equal their exchanges", _DAYS),
)
