"""Settling one period of 1,000,000 transfers on PostgreSQL: how long do a period's flows
and every partner's statement take? (issue 19; goal: under 20 s)

Run:  .venv/bin/python bench/settlement_bench.py                     (~5 minutes)
      .venv/bin/python bench/settlement_bench.py --transfers 100000  (a smaller period)
      .venv/bin/python bench/settlement_bench.py --keep              (keep the database)

In a PostgreSQL database of its own (`--database`, created and dropped by the run): the
10-partner program of `bench/coalition_year.py`, applied with `apply_program`, and one
month (March 2026, Moscow) of ledger rows written by set-based SQL (`generate_series`)
shaped as the pipeline writes them: members with their four accounts; 70 % of the
transfers are purchases' accruals (`purchase.accrual`, a lot each, at earning
partners), 25 % redemptions (`purchase.redemption`, taking from two of the member's
lots, recorded in the purchase's `lots_used`, at burning partners — mostly not where the
points were earned), 5 % refunds (half taking accruals back, `refund.accrual`, half
giving redemptions back, `refund.redemption`, with their `refunds` rows); every purchase
has its `purchase_partners` row (the prepaid partner's with its draw); the lots'
`remaining` and the accounts' running totals follow from the transfers. The purchases'
lines and awards, which settlement does not read, are not written.

Timed, medians of `--runs` (3): `handlers.period_flows` for the month, and
`handlers.close_statement` for each of the 10 partners (the statements are deleted
between runs — this database is the bench's own). Checked: each statement's points
against a plain SQL sum over the transfers joined to `purchase_partners`, its
cross-partner flows against the redemptions' lots in SQL, its lines against the terms.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from coalition_year import (  # type: ignore[import-not-found]
    CODE,
    PARTNERS,
    TERMS,
    ZONE,
    expected_lines,
    fresh_database,
    program_document,
)
from sqlalchemy import Engine, text

from kopilka.mechanics.coalition import handlers
from kopilka.programs.handlers import apply_program

STARTS = datetime(2026, 3, 1, tzinfo=ZONE)
ENDS = datetime(2026, 4, 1, tzinfo=ZONE)
CLOSED_AT = datetime(2026, 4, 2, tzinfo=UTC)
EARNERS = [p for p in PARTNERS if TERMS[p]["role"] != "burns"]
BURNERS = [p for p in PARTNERS if TERMS[p]["role"] != "earns"]

# :accruals purchases 1..A earn (a lot each, lot id = purchase id); purchases A+r, r in
# 1..:redemptions, redeem half of lot r and a quarter of lot r + :members (both the same
# member's: member = 1 + id % members); accruals past :redemptions + :members, one in 14,
# are refunded whole, and one redemption in 10 is given back. Times are spread over the
# month (a purchase at least two hours before its end; its refund an hour after it).
FILL = [
    """CREATE TEMP TABLE plan AS
       SELECT i AS id, 'accrual' AS kind, 1 + i % :members AS member,
              (CAST(:earners AS text[]))[(1 + (i * 40503) % :earning)::int] AS partner,
              100 + (i * 7919) % 9901 AS amount, NULL::json AS lots_used,
              :starts + ((i * 104729) % :seconds) * interval '1 second' AS at,
              i > CAST(:redemptions AS bigint) + :members AND i % 14 = 0 AS refunded
       FROM generate_series(1::bigint, :accruals) i""",
    """INSERT INTO plan
       SELECT :accruals + r, 'redemption', 1 + r % :members,
              (CAST(:burners AS text[]))[(1 + (r * 2654435761) % :burning)::int],
              a.amount / 2 + b.amount / 4,
              json_build_array(json_build_array(a.id, a.amount / 2),
                               json_build_array(b.id, b.amount / 4)),
              :starts + ((r * 7919 + 13) % :seconds) * interval '1 second',
              r % 10 = 0
       FROM generate_series(1::bigint, :redemptions) r
       JOIN plan a ON a.id = r JOIN plan b ON b.id = r + :members""",
    """INSERT INTO members (id, program_id, card, status, created_at)
       SELECT m, :program, 'S' || m, 'active', :starts - interval '30 days'
       FROM generate_series(1, :members) m""",
    """INSERT INTO accounts (id, program_id, member_id, owner, code, debits_posted,
                            credits_posted)
       SELECT :base + 4 * (m - 1) + c.n, :program, m, 'member:' || m, c.code, 0, 0
       FROM generate_series(1, :members) m,
            (VALUES (1, 'available'), (2, 'pending'), (3, 'held'), (4, 'debt')) c(n, code)""",
    """INSERT INTO purchases (id, program_id, program_version_id, location, receipt_id,
                             member_id, request_hash, status, answer, created_at, lines,
                             lots_used, spend, total, discount, redeemed, paid, accrued)
       SELECT id, :program, :version, partner || '-1', 'S-' || id, member,
              md5(id::text) || md5(kind), CASE WHEN refunded THEN 'refunded'
                                               ELSE 'completed' END, '{}', at,
              '[{"n": 0, "qty": "1", "sku": "ITEM", "category": "goods"}]', lots_used,
              amount * 20, amount * 20, 0,
              CASE kind WHEN 'redemption' THEN amount ELSE 0 END,
              amount * 20 - CASE kind WHEN 'redemption' THEN amount ELSE 0 END,
              CASE kind WHEN 'accrual' THEN amount ELSE 0 END
       FROM plan""",
    """INSERT INTO purchase_partners (purchase_id, program_id, partner, drawn, drawn_back)
       SELECT id, :program, partner,
              CASE WHEN kind = 'accrual' AND partner = 'books' THEN amount ELSE 0 END,
              CASE WHEN kind = 'accrual' AND partner = 'books' AND refunded THEN amount
                   ELSE 0 END
       FROM plan""",
    """INSERT INTO refunds (id, purchase_id, refund_id, request_hash, lines, answer,
                           created_at, spend, redeemed_back, accrued_back, accrued_burnt)
       SELECT row_number() OVER (ORDER BY id), id, 'R-' || id, md5('R' || id) || md5(kind),
              '[{"n": 0, "qty": "1.000000"}]', '{}', at + interval '1 hour', amount * 20,
              CASE kind WHEN 'redemption' THEN amount ELSE 0 END,
              CASE kind WHEN 'accrual' THEN amount ELSE 0 END, 0
       FROM plan WHERE refunded""",
    # the purchases' own transfers, then the refunds'
    """INSERT INTO transfers (id, program_id, transfer_key, debit_account_id,
                             credit_account_id, amount, reason, actor, purchase_id,
                             created_at)
       SELECT id, :program, :code || ':purchase:' || id || ':'
                            || CASE kind WHEN 'accrual' THEN 'accrue' ELSE 'redeem' END,
              CASE kind WHEN 'accrual' THEN :issuance ELSE :base + 4 * (member - 1) + 1 END,
              CASE kind WHEN 'accrual' THEN :base + 4 * (member - 1) + 1 ELSE :redeemed END,
              amount, 'purchase.' || kind, 'bench', id, at
       FROM plan""",
    """INSERT INTO transfers (id, program_id, transfer_key, debit_account_id,
                             credit_account_id, amount, reason, actor, purchase_id,
                             refund_id, created_at)
       SELECT (SELECT max(id) FROM plan) + f.id, :program,
              :code || ':refund:' || f.id || ':'
                    || CASE p.kind WHEN 'accrual' THEN 'clawback' ELSE 'return' END,
              CASE p.kind WHEN 'accrual' THEN :base + 4 * (p.member - 1) + 1 ELSE :redeemed END,
              CASE p.kind WHEN 'accrual' THEN :issuance ELSE :base + 4 * (p.member - 1) + 1 END,
              p.amount, CASE p.kind WHEN 'accrual' THEN 'refund.accrual'
                                    ELSE 'refund.redemption' END,
              'bench', p.id, f.id, f.created_at
       FROM refunds f JOIN plan p ON p.id = f.purchase_id""",
    # a lot per accrual: what is left of it after the redemptions that stand (a refunded
    # accrual's lot is taken back whole; no redemption takes from those)
    """INSERT INTO lots (id, program_id, member_id, status, amount, remaining, earned_at,
                        available_at, expires_at, purchase_id, reason)
       SELECT a.id, :program, a.member, 'available', a.amount,
              CASE WHEN a.refunded THEN 0 ELSE a.amount - coalesce(taken.points, 0) END,
              a.at, a.at, NULL, a.id, 'purchase.accrual'
       FROM plan a
       LEFT JOIN (SELECT (use->>0)::int AS lot, sum((use->>1)::bigint) AS points
                  FROM plan r, json_array_elements(r.lots_used) use
                  WHERE r.kind = 'redemption' AND NOT r.refunded GROUP BY 1) taken
              ON taken.lot = a.id
       WHERE a.kind = 'accrual'""",
    """UPDATE accounts SET debits_posted = coalesce(d.total, 0),
                          credits_posted = coalesce(c.total, 0)
       FROM accounts a
       LEFT JOIN (SELECT debit_account_id id, sum(amount) total FROM transfers GROUP BY 1) d
              ON d.id = a.id
       LEFT JOIN (SELECT credit_account_id id, sum(amount) total FROM transfers GROUP BY 1) c
              ON c.id = a.id
       WHERE accounts.id = a.id AND a.member_id IS NOT NULL""",
    """INSERT INTO partner_blocks (program_id, partner, points, starts_at_point, price,
                                  reference, actor, bought_at)
       VALUES (:program, 'books', 10000000000, 0, 9500000000, 'PAY-1', 'bench',
               :starts - interval '1 day')""",
    """INSERT INTO partner_prepaid (program_id, partner, bought, drawn)
       SELECT :program, 'books', 10000000000, coalesce(sum(drawn - drawn_back), 0)
       FROM purchase_partners""",
    *(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
      for table in ("members", "accounts", "purchases", "refunds", "transfers", "lots")),
    "DROP TABLE plan",
    "ANALYZE",
]  # fmt: skip

# the month's points per partner, a plain sum over the ledger
POINTS = """
SELECT p.partner,
       sum(CASE WHEN t.reason IN ('purchase.accrual', 'coupon', 'mechanic.award') THEN t.amount
                WHEN t.reason IN ('refund.accrual', 'refund.debt') THEN -t.amount
                ELSE 0 END) AS issued,
       sum(CASE WHEN t.reason = 'purchase.redemption' THEN t.amount
                WHEN t.reason = 'refund.redemption' THEN -t.amount ELSE 0 END) AS redeemed
FROM transfers t JOIN purchase_partners p ON p.purchase_id = t.purchase_id
WHERE t.created_at >= :starts AND t.created_at < :ends
GROUP BY p.partner
"""
# points spent at one partner (its redemptions' lots) that another partner's purchases earned
CROSS = """
SELECT spent.partner AS spender, earned.partner AS earner, sum((used->>1)::bigint) AS points
FROM transfers t
JOIN purchases u ON u.id = t.purchase_id
JOIN purchase_partners spent ON spent.purchase_id = t.purchase_id
CROSS JOIN json_array_elements(u.lots_used) used
JOIN lots l ON l.id = (used->>0)::int
JOIN purchase_partners earned ON earned.purchase_id = l.purchase_id
WHERE t.reason = 'purchase.redemption' AND t.refund_id IS NULL
  AND t.created_at >= :starts AND t.created_at < :ends AND spent.partner <> earned.partner
GROUP BY 1, 2
"""


def fill(engine: Engine, transfers: int) -> dict[str, int]:
    """The month's rows: `transfers` transfers, 70 % accruals, 25 % redemptions, 5 % refunds."""
    accruals, redemptions = transfers * 70 // 100, transfers * 25 // 100
    members = max(1, transfers // 10)
    refunds_wanted = transfers - accruals - redemptions
    assert redemptions + members <= accruals, "a redemption's second lot must be an accrual's"
    apply_program(engine, program_document(), actor="bench", now=STARTS.replace(month=1))
    with engine.begin() as connection:
        program, version = connection.execute(
            text("SELECT p.id, v.id FROM programs p JOIN program_versions v ON v.program_id = p.id")
        ).one()
        query = text("SELECT code, id FROM accounts WHERE member_id IS NULL")
        accounts = dict(connection.execute(query).tuples().all())
        values = {
            "program": program, "version": version, "code": CODE, "members": members,
            "accruals": accruals, "redemptions": redemptions, "earners": EARNERS,
            "burners": BURNERS, "earning": len(EARNERS), "burning": len(BURNERS),
            "starts": STARTS,
            "seconds": int((ENDS - STARTS).total_seconds()) - 7200,
            "base": connection.execute(text("SELECT max(id) FROM accounts")).scalar_one(),
            "issuance": accounts["issuance"], "redeemed": accounts["redeemed"],
        }  # fmt: skip
        for statement in FILL:
            connection.execute(text(statement), values)
        counts = dict(connection.execute(text(
            "SELECT reason, count(*) FROM transfers GROUP BY reason")).tuples().all())  # fmt: skip
    # a refund per one in 14 of the late accruals and one in 10 redemptions: about 5 %
    counts["refunds wanted"] = refunds_wanted
    return {"program_id": program, "members": members, **counts}


def timed(work: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result


def flows_once(engine: Engine, program_id: int) -> Any:
    with engine.connect() as connection:
        return handlers.period_flows(connection, program_id, STARTS, ENDS)


def plain_sql(engine: Engine) -> None:
    """The same figures as two set-based statements (`POINTS`, `CROSS`): what a period's
    flows cost when the cross-partner flows are followed in the database."""
    with engine.connect() as connection:
        for query in (POINTS, CROSS):
            connection.execute(text(query), {"starts": STARTS, "ends": ENDS}).all()


def close_all(engine: Engine) -> dict[str, dict[str, Any]]:
    """Settle the period: every partner's statement closed at once (`close_period`, the
    ledger read once for them all)."""
    body = {"from": STARTS.date().isoformat(), "until": "2026-03-31"}
    closed = handlers.close_period(engine, CODE, body, actor="bench", now=CLOSED_AT)
    return {item["partner"]: item for item in closed["items"]}


def forget_statements(engine: Engine) -> None:
    """The bench's own database: the month's statements go, so that it is closed again."""
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM statement_lines"))
        connection.execute(text("DELETE FROM partner_statements"))


def check(engine: Engine, statements: dict[str, dict[str, Any]]) -> list[str]:
    """Each statement's points and flows against plain SQL, its lines against the terms."""
    bounds = {"starts": STARTS, "ends": ENDS}
    with engine.connect() as connection:
        points = {row.partner: (int(row.issued), int(row.redeemed))
                  for row in connection.execute(text(POINTS), bounds)}  # fmt: skip
        cross: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for spender, earner, spent in connection.execute(text(CROSS), bounds):
            cross[earner][0] += int(spent)
            cross[spender][1] += int(spent)
        for spender, earner, back in _given_back(connection, bounds):
            cross[earner][0] -= back
            cross[spender][1] -= back
    problems = []
    for partner, statement in statements.items():
        issued, redeemed = points.get(partner, (0, 0))
        shown = statement["points"]
        figures = (_minor(shown["issued"]), _minor(shown["redeemed"]),
                   _minor(shown["earned_here_spent_elsewhere"]),
                   _minor(shown["earned_elsewhere_spent_here"]))  # fmt: skip
        wanted = (issued, redeemed, *cross[partner])
        if figures != wanted:
            problems.append(f"{partner}: points {figures}, plain SQL {wanted}")
        lines = [(line["what"], _minor(line["amount"])) for line in statement["lines"]]
        if lines != expected_lines(partner, issued, redeemed):
            problems.append(f"{partner}: lines {lines}, the terms give "
                            f"{expected_lines(partner, issued, redeemed)}")  # fmt: skip
        if _minor(statement["closing"]) != sum(amount for _what, amount in lines):
            problems.append(f"{partner}: closing {statement['closing']} is not its lines' sum")
    return problems


# what the period's refunds gave back of redemptions: the purchase's uses, the points each
# refund returned, and how many its earlier refunds returned before it
GIVEN_BACK = """
SELECT spent.partner, u.lots_used, r.redeemed_back,
       (SELECT coalesce(sum(e.redeemed_back), 0) FROM refunds e
        WHERE e.purchase_id = r.purchase_id AND e.id < r.id) AS before
FROM refunds r
JOIN purchases u ON u.id = r.purchase_id
JOIN purchase_partners spent ON spent.purchase_id = r.purchase_id
WHERE r.redeemed_back > 0 AND r.created_at >= :starts AND r.created_at < :ends
"""
EARNER = """
SELECT l.id, p.partner FROM lots l JOIN purchase_partners p ON p.purchase_id = l.purchase_id
WHERE l.id = ANY(:lots)
"""


def _given_back(connection: Any, bounds: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(spender, earner, points) a refund gave back, lot by lot, across partners: points
    before…before + redeemed_back of the purchase's uses, in the order it took them."""
    back: list[tuple[str, int, int]] = []
    for spender, uses, returned, before in connection.execute(text(GIVEN_BACK), bounds):
        position = 0
        for lot, points in uses or []:
            part = min(before + returned, position + points) - max(before, position)
            position += points
            if part > 0:
                back.append((spender, int(lot), part))
    lots = sorted({lot for _, lot, _ in back})
    earner = dict(connection.execute(text(EARNER), {"lots": lots}).tuples().all())
    return [(spender, earner[lot], part) for spender, lot, part in back
            if lot in earner and earner[lot] != spender]  # fmt: skip


def _minor(shown: str) -> int:
    whole, _dot, cents = shown.partition(".")
    sign = -1 if whole.startswith("-") else 1
    return sign * (abs(int(whole)) * 100 + int(cents or 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--transfers", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--close-runs", type=int, default=3,
                        help="of the runs, those that also close the 10 statements")  # fmt: skip
    parser.add_argument("--database", default="kopilka_bench_settle")
    parser.add_argument("--keep", action="store_true", help="leave the database (EXPLAIN)")
    options = parser.parse_args()
    with fresh_database(options.database, keep=options.keep) as engine:
        fill_s, filled = timed(lambda: fill(engine, options.transfers))
        program_id = filled.pop("program_id")
        flows_s, sql_s, closes_s = [], [], []
        statements: dict[str, dict[str, Any]] = {}
        for run in range(options.runs):
            flows_s.append(timed(lambda: flows_once(engine, program_id))[0])
            sql_s.append(timed(lambda: plain_sql(engine))[0])
            if run < options.close_runs:
                seconds, statements = timed(lambda: close_all(engine))
                closes_s.append(seconds)
            if run < options.close_runs - 1:
                forget_statements(engine)
        problems = check(engine, statements)
    flows, closes = statistics.median(flows_s), statistics.median(closes_s)
    print(json.dumps({
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
                   f"{platform.python_version()}",
        "rows": filled, "fill_s": round(fill_s, 1),
        "period_flows_s": round(flows, 2), "period_flows_runs": [round(s, 2) for s in flows_s],
        "plain_sql_s": round(statistics.median(sql_s), 2),
        "plain_sql_runs": [round(s, 2) for s in sql_s],
        "close_10_statements_s": round(closes, 2),
        "close_runs": [round(s, 2) for s in closes_s],
        "close_per_statement_s": round(closes / len(PARTNERS), 2),
        "goal_20_s": "met" if closes < 20 else "missed",
        "problems": problems,
    }, indent=2, ensure_ascii=False))  # fmt: skip
    if problems:
        raise SystemExit(f"{len(problems)} problems")


if __name__ == "__main__":
    main()
