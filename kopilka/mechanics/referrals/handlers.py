"""Referrals' use cases (docs/referrals.md): a referral made at registration, judged and
paid by the worker once the friend's first purchase stands, decided by a person when it
is suspicious; a member's code and counts; the program's queue and figures.

Exactly once: a referral is judged and paid in a transaction of its own that first
locks its row (and re-reads its status), then both members' accounts in id order (so
the limits are counted with no other payment of the referrer under way); the rewards
are ledger transfers with keys of their own (`<program>:referral:<id>:referrer|friend`,
unique), so even a second payer that got past the lock could not write them twice.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from kopilka.checkout.mechanic import Joining
from kopilka.kernel.errors import Conflict, InvalidInput, NotFound, Problem
from kopilka.kernel.money import format_minor
from kopilka.kernel.periods import period_start
from kopilka.kernel.reading import MAX_NOTE, Reader, row_id
from kopilka.ledger.wallet import Wallet
from kopilka.mechanics.referrals import status as records
from kopilka.mechanics.referrals.model import (
    FIRST_PURCHASE_REFUNDED,
    REJECTED_BY_REVIEWER,
    Facts,
    ReferralSettings,
    Status,
    Verdict,
    hard_reasons,
    identities,
    judge,
    limit_reasons,
    normalise_code,
)
from kopilka.mechanics.referrals.section import referrals_of
from kopilka.members.handlers import find_member
from kopilka.platform.db import reading
from kopilka.platform.idempotency import AfterWrite, Answer, followed, idempotent, retrying
from kopilka.platform.tables import members, programs
from kopilka.programs.handlers import LoadedProgram, load_program

REFERRER_INACTIVE = "referrer_inactive"
FRIEND_INACTIVE = "friend_inactive"
ACTIONS = ("approve", "reject")


def settings_of(program: LoadedProgram) -> ReferralSettings | None:
    return referrals_of(program.calculator.program)


def _settings(program: LoadedProgram, program_code: str) -> ReferralSettings:
    settings = settings_of(program)
    if settings is None:
        raise NotFound(f"program {program_code!r} runs no referrals (no `referrals` section)")
    return settings


# — registration —


def on_joined(joining: Joining) -> None:
    """A member registers: their own code and fingerprints, and — when they came by a
    code or named a `referrer` — the referral, rejected at once if it is the referrer
    under another name. An unknown code refuses the registration (422 naming
    `referral_code`): a typo would otherwise lose the friend's reward unseen."""
    settings = settings_of(joining.program)
    if settings is None:
        return
    connection, program_id, member_id = (
        joining.connection,
        joining.program.program_id,
        joining.member_id,
    )
    code = joining.extras.get("referral_code")
    referrer_id = _referrer_of(connection, program_id, code, joining.referrer_id)
    device = joining.extras.get("device")
    own = records.profile_identities(connection, member_id) | identities(device=device)
    records.add_fingerprints(connection, program_id, member_id, own)
    records.ensure_code(connection, program_id, member_id, joining.now)
    if referrer_id is not None:
        if joining.referrer_id is None:  # came by a code: the member's referrer is its owner
            connection.execute(
                update(members).where(members.c.id == member_id).values(referrer_id=referrer_id)
            )
        _refer(
            connection,
            program_id,
            referrer_id,
            member_id,
            normalise_code(code) if code else None,
            own,
            joining.now,
        )
    joining.answer["referrals"] = member_part(connection, joining.program, member_id)


def _referrer_of(
    connection: Connection, program_id: int, code: str | None, named: int | None
) -> int | None:
    if code is None:
        return named
    owner = records.owner_of_code(connection, program_id, normalise_code(code))
    if owner is None or owner.status != "active":
        raise InvalidInput(
            [Problem("referral_code", f"{code!r} is no referral code of a member of this program")]
        )
    if named is not None and named != owner.id:
        raise InvalidInput([Problem("referral_code", "names another member than `referrer`")])
    return int(owner.id)


def _refer(
    connection: Connection,
    program_id: int,
    referrer_id: int,
    friend_id: int,
    code: str | None,
    friend: set[Any],
    now: datetime,
) -> None:
    referrer = records.fingerprints_of(connection, [referrer_id])[referrer_id]
    referrer |= records.profile_identities(connection, referrer_id)
    hard = hard_reasons(Facts(frozenset(friend), frozenset(referrer)))
    if records.member_status(connection, referrer_id) != "active":
        hard.append(REFERRER_INACTIVE)
    status = Status.REJECTED if hard else Status.WAITING
    referral_id = records.insert_referral(
        connection,
        {
            "program_id": program_id,
            "referrer_id": referrer_id,
            "friend_id": friend_id,
            "code": code,
            "status": status.value,
            "reasons": hard,
            "created_at": now,
            "decided_at": now if hard else None,
        },
    )
    records.record_decision(
        connection,
        program_id=program_id,
        referral_id=referral_id,
        action="refer",
        status=status,
        reasons=hard,
        actor="registration",
        at=now,
    )


# — a member's code —


def member_part(connection: Connection, program: LoadedProgram, member_id: int) -> dict[str, Any]:
    """The member's code, link and referrals by status (as the member API shows them)."""
    settings = settings_of(program)
    code = records.code_of(connection, member_id)
    counts = records.counts_by_status(connection, referrer_id=member_id)
    earned = records.points_earned_as_referrer(connection, member_id)
    digits = program.calculator.program.points.precision
    return {
        "code": code,
        "link": settings.link_for(code) if settings is not None and code else None,
        "invited": sum(counts.values()),
        "paid": counts[Status.PAID.value],
        "waiting": counts[Status.WAITING.value],
        "in_review": counts[Status.REVIEW.value],
        "rejected": counts[Status.REJECTED.value],
        "earned": format_minor(earned, digits),
    }


def member_referral(
    engine: Engine, program_code: str, member_ref: str, *, now: datetime
) -> dict[str, Any]:
    """The member's referral code (made now for a member who has none yet: members who
    registered before the program had referrals), link and counts."""

    def attempt(connection: Connection) -> dict[str, Any]:
        program = load_program(connection, program_code)
        _settings(program, program_code)
        member = find_member(connection, program.program_id, member_ref)
        if member.status != "active":
            raise Conflict(f"member {member_ref!r} is {member.status}: they refer nobody")
        records.ensure_code(connection, program.program_id, int(member.id), now)
        return member_part(connection, program, int(member.id))

    return retrying(engine, attempt)


# — the worker —


def settle_due(engine: Engine, *, now: datetime, actor: str = "worker") -> dict[str, int]:
    """Judge every waiting referral whose friend's first qualifying purchase has stood
    `waiting_days` (or was refunded); counts of what became of them."""
    with engine.connect() as connection:
        codes = connection.execute(select(programs.c.code)).scalars().all()
    done = {status.value: 0 for status in (Status.PAID, Status.REVIEW, Status.REJECTED)}
    for code in codes:
        with engine.connect() as connection:
            program = load_program(connection, code)
            settings = settings_of(program)
            if settings is None:
                continue
            due = records.due_referrals(
                connection,
                program.program_id,
                _least_paid(settings),
                now - timedelta(days=settings.waiting_days),
            )
        for referral_id in due:
            outcome = retrying(
                engine,
                partial(
                    _settle,
                    program=program,
                    settings=settings,
                    referral_id=referral_id,
                    now=now,
                    actor=actor,
                ),
            )
            if outcome is not None:
                done[outcome.value] += 1
    return {f"referrals_{status}": count for status, count in done.items()}


def _least_paid(settings: ReferralSettings) -> int:
    """A qualifying purchase pays money: a free order completes no referral."""
    return max(settings.min_purchase, 1)


def _settle(
    connection: Connection,
    *,
    program: LoadedProgram,
    settings: ReferralSettings,
    referral_id: int,
    now: datetime,
    actor: str,
) -> Status | None:
    row = records.lock_referral(connection, program.program_id, referral_id)
    if row is None or row.status != Status.WAITING.value:
        return None  # judged meanwhile (another worker)
    first = records.first_purchase(connection, row.friend_id, _least_paid(settings))
    if first is None:
        return None
    if first.status != "completed":
        verdict = Verdict(Status.REJECTED, (FIRST_PURCHASE_REFUNDED,))
        _conclude(connection, program, row, verdict, "judge", actor, now, purchase_id=first.id)
        return verdict.status
    if first.created_at > now - timedelta(days=settings.waiting_days):
        return None
    wallets = _wallets(connection, program, row, now)
    verdict = judge(settings, _facts(connection, program, settings, row, now))
    _conclude(
        connection,
        program,
        row,
        verdict,
        "judge",
        actor,
        now,
        purchase_id=first.id,
        wallets=wallets,
        settings=settings,
    )
    return verdict.status


def _facts(
    connection: Connection,
    program: LoadedProgram,
    settings: ReferralSettings,
    row: Any,
    now: datetime,
) -> Facts:
    chain = records.young_chain(
        connection, row.referrer_id, row.friend_id, row.friend_registered, settings.review
    )
    found = records.fingerprints_of(connection, [*chain, row.referrer_id])
    friend = found[row.friend_id] | records.profile_identities(connection, row.friend_id)
    referrer = found[row.referrer_id] | records.profile_identities(connection, row.referrer_id)
    others = set().union(*(found[m] for m in chain if m not in (row.friend_id, row.referrer_id)))
    period = settings.limits.per_period
    since = (
        period_start(period.period, now, program.calculator.program.timezone)
        if period is not None
        else None
    )
    paid_ever, paid_recently = records.paid_counts(connection, row.referrer_id, since)
    return Facts(
        friend=frozenset(friend),
        referrer=frozenset(referrer),
        chain=frozenset(others),
        chain_length=len(chain),
        earlier_accounts=records.earlier_accounts(connection, program.program_id, row.friend_id),
        paid_by_referrer=paid_ever,
        paid_in_period=paid_recently,
    )


def _inactive(connection: Connection, row: Any) -> list[str]:
    reasons = []
    if records.member_status(connection, row.referrer_id) != "active":
        reasons.append(REFERRER_INACTIVE)
    if records.member_status(connection, row.friend_id) != "active":
        reasons.append(FRIEND_INACTIVE)
    return reasons


def _wallets(
    connection: Connection, program: LoadedProgram, row: Any, now: datetime
) -> dict[int, Wallet]:
    """Both members' wallets, their accounts locked in id order (no deadlock with a
    purchase, which locks one member's)."""
    return {
        member_id: Wallet.open(
            connection, program.program_id, program.calculator.program, member_id, now
        )
        for member_id in sorted((row.referrer_id, row.friend_id))
    }


def _conclude(
    connection: Connection,
    program: LoadedProgram,
    row: Any,
    verdict: Verdict,
    action: str,
    actor: str,
    now: datetime,
    *,
    purchase_id: int | None = None,
    wallets: dict[int, Wallet] | None = None,
    settings: ReferralSettings | None = None,
    note: str | None = None,
) -> None:
    """Write the verdict: pay both sides when it is `paid` (an inactive member turns it
    into a rejection), set the status and reasons, record the decision."""
    values: dict[str, Any] = {"status": verdict.status.value, "reasons": list(verdict.reasons)}
    if row.decided_at is None:
        values["decided_at"] = now
    if purchase_id is not None:
        values["purchase_id"] = purchase_id
    if verdict.status is Status.PAID:
        inactive = _inactive(connection, row)
        if inactive:
            verdict = Verdict(Status.REJECTED, tuple(inactive))
            values.update(status=verdict.status.value, reasons=inactive)
        else:
            assert wallets is not None
            assert settings is not None
            values.update(_pay(program, settings, row, wallets, actor), paid_at=now)
    records.change_referral(connection, row.id, **values)
    records.record_decision(
        connection,
        program_id=program.program_id,
        referral_id=row.id,
        action=action,
        status=verdict.status,
        reasons=verdict.reasons,
        actor=actor,
        at=now,
        note=note,
    )


def _pay(
    program: LoadedProgram,
    settings: ReferralSettings,
    row: Any,
    wallets: dict[int, Wallet],
    actor: str,
) -> dict[str, int]:
    """Credit both sides (a lot of their own each), keyed so that it happens once."""
    code = program.calculator.program.code
    rewards = {
        "referrer": (row.referrer_id, settings.rewards.referrer),
        "friend": (row.friend_id, settings.rewards.friend),
    }
    for side, (member_id, points) in rewards.items():
        if points:
            wallet = wallets[member_id]
            wallet.reward(f"{code}:referral:{row.id}:{side}", points, valid_days=None)
            wallet.flush(actor=actor, note=f"referral {row.id}: the {side}'s reward")
    return {"referrer_points": settings.rewards.referrer, "friend_points": settings.rewards.friend}


# — people's decisions —


def decide(
    engine: Engine,
    program_code: str,
    referral_ref: str,
    action: str,
    body: object,
    *,
    actor: str,
    now: datetime,
    idempotency_key: str | None = None,
    after: AfterWrite | None = None,
) -> Answer:
    """`approve` a referral in review (both sides are paid, once) or `reject` one in
    review or still waiting (it never pays), with an optional `note`; the same decision
    again answers the referral as it stands. Each decision is recorded with its actor."""
    assert action in ACTIONS
    note = _note(body)

    def attempt(connection: Connection) -> Answer:
        program = load_program(connection, program_code)
        settings = _settings(program, program_code)
        referral_id = row_id(referral_ref)
        row = (
            records.lock_referral(connection, program.program_id, referral_id)
            if referral_id
            else None
        )
        if row is None:
            raise NotFound(f"referral {referral_ref!r} does not exist")
        decided = _approve if action == "approve" else _reject
        changed = decided(connection, program, settings, row, actor=actor, now=now, note=note)
        return _read(connection, program, row.id), changed

    request = {"referral": referral_ref, "action": action, "note": note}
    return idempotent(
        engine,
        program_code,
        idempotency_key,
        f"referral.{action}",
        request,
        now,
        followed(attempt, after),
    )


def _note(body: object) -> str | None:
    if body is None:
        return None
    problems: list[Problem] = []
    note = Reader(body, "", problems, ("note",)).text("note", max_length=MAX_NOTE, multiline=True)
    if problems:
        raise InvalidInput(problems)
    return note


def _approve(
    connection: Connection,
    program: LoadedProgram,
    settings: ReferralSettings,
    row: Any,
    *,
    actor: str,
    now: datetime,
    note: str | None,
) -> bool:
    if row.status == Status.PAID.value:
        return False  # approved (or paid) before: nothing more is paid
    if row.status != Status.REVIEW.value:
        raise Conflict(f"referral {row.id} is {row.status}: only a referral in review is approved")
    wallets = _wallets(connection, program, row, now)
    limited = limit_reasons(settings.limits, _facts(connection, program, settings, row, now))
    if limited:
        raise Conflict(
            f"referral {row.id} would pass the referrer's limit "
            f"({', '.join(limited)}): reject it, or wait for the next period"
        )
    _conclude(
        connection,
        program,
        row,
        Verdict(Status.PAID, tuple(row.reasons)),
        "approve",
        actor,
        now,
        wallets=wallets,
        settings=settings,
        note=note,
    )
    return True


def _reject(
    connection: Connection,
    program: LoadedProgram,
    settings: ReferralSettings,
    row: Any,
    *,
    actor: str,
    now: datetime,
    note: str | None,
) -> bool:
    del settings
    if row.status == Status.REJECTED.value:
        return False
    if row.status == Status.PAID.value:
        raise Conflict(f"referral {row.id} was paid: correct the points with an adjustment")
    reasons = (*[r for r in row.reasons if r != REJECTED_BY_REVIEWER], REJECTED_BY_REVIEWER)
    _conclude(
        connection, program, row, Verdict(Status.REJECTED, reasons), "reject", actor, now, note=note
    )
    return True


# — reading —


def referral_json(row: Any, digits: int) -> dict[str, Any]:
    def points(value: int | None) -> str | None:
        return format_minor(int(value), digits) if value is not None else None

    def moment(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": str(row.id),
        "status": row.status,
        "reasons": list(row.reasons),
        "referrer": {"id": str(row.referrer_id), "card": row.referrer_card},
        "friend": {"id": str(row.friend_id), "card": row.friend_card},
        "code": row.code,
        "purchase_id": str(row.purchase_id) if row.purchase_id is not None else None,
        "rewards": {"referrer": points(row.referrer_points), "friend": points(row.friend_points)},
        "created_at": moment(row.created_at),
        "decided_at": moment(row.decided_at),
        "paid_at": moment(row.paid_at),
    }


def _read(connection: Connection, program: LoadedProgram, referral_id: int) -> dict[str, Any]:
    rows = records.referral_rows(
        connection, program.program_id, status=None, before=None, limit=1, referral_id=referral_id
    )
    if not rows:
        raise NotFound(f"referral {referral_id} does not exist")
    document = referral_json(rows[0], program.calculator.program.points.precision)
    document["decisions"] = [
        {
            "action": d.action,
            "status": d.status,
            "reasons": list(d.reasons),
            "note": d.note,
            "actor": d.actor,
            "at": d.at.isoformat(),
        }
        for d in records.decisions_of(connection, referral_id)
    ]
    return document


def _reading(
    engine: Engine, program_code: str, work: Callable[[Connection, LoadedProgram], Any]
) -> Any:
    with reading(engine) as connection:
        program = load_program(connection, program_code)
        _settings(program, program_code)
        return work(connection, program)


def read_referral(engine: Engine, program_code: str, referral_ref: str) -> dict[str, Any]:
    referral_id = row_id(referral_ref)
    if referral_id is None:
        raise NotFound(f"referral {referral_ref!r} does not exist")
    return _reading(engine, program_code, lambda c, p: _read(c, p, referral_id))  # type: ignore[no-any-return]


def list_referrals(
    engine: Engine,
    program_code: str,
    *,
    status: str | None = None,
    before: int | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """Referrals newest first (by `status` when given); `next` is the `before` of the next page."""

    def work(connection: Connection, program: LoadedProgram) -> dict[str, Any]:
        rows = records.referral_rows(
            connection, program.program_id, status=status, before=before, limit=limit
        )
        digits = program.calculator.program.points.precision
        items = [referral_json(row, digits) for row in rows]
        return {"items": items, "next": items[-1]["id"] if len(items) == limit else None}

    return _reading(engine, program_code, work)  # type: ignore[no-any-return]


def figures(engine: Engine, program_code: str) -> dict[str, Any]:
    """Members with a code, referrals by status, rewards paid and what they cost."""

    def work(connection: Connection, program: LoadedProgram) -> dict[str, Any]:
        counts = records.counts_by_status(connection, program_id=program.program_id)
        cost = records.points_paid(connection, program_id=program.program_id)
        return {
            "members_with_code": records.codes_made(connection, program.program_id),
            "referrals": counts,
            "rewards_paid": counts[Status.PAID.value],
            "cost": format_minor(cost, program.calculator.program.points.precision),
        }

    return _reading(engine, program_code, work)  # type: ignore[no-any-return]
