"""`kopilka demo`: the seed-002 café chain with members and three months of receipts.

Everything is generated from a fixed seed, so two demos are alike; the receipts go
through the same purchase service as real ones (in time order, each at its own moment),
so balances, lots and the ledger are what a real quarter would leave. The figures are a
café's: the program caps what a line and a receipt may earn (`CAFE_CAPS`), and
guests come as often as guests do — most now and then, a few regulars most days (the
five who come most are VIPs for a season) — so the points issued are a few percent of
the turnover. A second run finds the demo in place and only adds fresh keys.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from itertools import accumulate
from typing import Any

from sqlalchemy import Engine, func, select

from kopilka.checkout.purchases import process_purchase
from kopilka.kernel.errors import Duplicate, KopilkaError
from kopilka.kernel.ledger import luhn_check_digit
from kopilka.mechanics.tiers.handlers import set_tier
from kopilka.members.balances import adjust
from kopilka.members.handlers import register_member
from kopilka.operators.handlers import create_operator
from kopilka.operators.keys import create_key
from kopilka.platform.files import parse_text
from kopilka.platform.tables import members, programs, purchases
from kopilka.programs.handlers import apply_program

PROGRAM = "zerno"
# first names by gender, and surnames in their male form (the female one is derived)
MALE_NAMES = ["Иван", "Пётр", "Алексей", "Дмитрий", "Сергей", "Михаил", "Андрей", "Николай",
              "Артём", "Максим"]  # fmt: skip
FEMALE_NAMES = ["Анна", "Мария", "Елена", "Ольга", "Дарья", "Наталья", "Юлия", "Ксения",
                "Татьяна", "Екатерина"]  # fmt: skip
SURNAMES = ["Иванов", "Смирнов", "Кузнецов", "Попов", "Соколов", "Лебедев", "Козлов",
            "Новиков", "Морозов", "Волков", "Ильин", "Никитин", "Вишневский",
            "Савицкий"]  # fmt: skip
# what a café sells together: (how often, [(sku, qty), …]); now and then an office's lunch
BASKETS = [
    (6, [("CAP-300", 1)]), (5, [("CAP-300", 1), ("CRS-1", 1)]), (4, [("ESP-60", 1)]),
    (3, [("TEA-400", 1)]), (4, [("LUNCH-1", 1)]), (4, [("LUNCH-1", 1), ("SOUP-1", 1)]),
    (2, [("CAP-300", 2), ("CRS-1", 2)]), (3, [("TEA-400", 1), ("CRS-1", 1)]),
    (2, [("CIG-1", 1), ("ESP-60", 1)]), (2, [("SOUP-1", 1)]),
    (1, [("LUNCH-1", 3), ("SOUP-1", 3), ("CAP-300", 3)]),
]  # fmt: skip
LOCATIONS = ["rest-a", "rest-b", "kiosk", "kiosk"]
# The seed's examples each at their own figure (card 15 %, VIP 50 %, Monday 20 % …) multiply
# — a VIP's Monday lunch would earn 5,000 % of its price — so the demo café, as real ones
# do, bounds them: a line earns at most 10 % of what was paid for it, a receipt at most
# 150 points. (examples/zerno keeps the seed's figures, uncapped, to show each rule.)
CAFE_CAPS = {"max_percent": 10, "max_points_per_receipt": "150"}
# seeds 002–004's game mechanics (issue 18), so the demo's members have cards, challenges
# and badges to show on their pages and in the console
DEMO_STAMP_CARDS = [
    {"code": "coffee", "name": "Кофейная карта", "stamps": 6, "per": "unit",
     "categories": ["coffee"], "max_per_receipt": 3,
     "reward": {"points": "150", "note": "кофе в подарок"}},
    {"code": "lunch", "name": "Ланч-карта", "stamps": 5, "per": "receipt",
     "categories": ["lunch"], "min_spend": "400.00",
     "reward": {"points": "300", "note": "ланч в подарок"}},
]  # fmt: skip
DEMO_CHALLENGES = [
    {"code": "three-visits", "name": "3 визита в месяц", "goal": {"visits": 3},
     "period": "month", "reward": {"points": "50", "badge": "regular"}},
    {"code": "new-tastes", "name": "Попробуйте 3 новые категории",
     "goal": {"new_categories": 3}, "reward": {"badge": "explorer"}},
]  # fmt: skip
DEMO_BADGES = [
    {"code": "regular", "name": "Завсегдатай", "description": "3 визита за месяц"},
    {"code": "explorer", "name": "Гурман", "description": "Попробовал 3 новые категории"},
]
VIP_MEMBERS = 5  # the seed's temporary VIP status, given by hand to a few members
MOST_VISITS = 8  # the cap of a member's visit weight: ~5 × the mean, some 90 visits in 90 days
DEMO_OPERATOR = "admin@zerno.example"


@dataclass(frozen=True)
class Demo:
    created: bool  # False: the demo was there already
    members: int
    receipts: int
    admin_key: str
    pos_key: str  # bound to the kiosk
    sample_member: str  # a member to try the API with
    operator: tuple[str, str] | None = None  # the console's sign-in, made with the demo


def program_document() -> Any:
    """The seed's café (zerno.yaml, which examples/zerno/program.yaml is) with `CAFE_CAPS`,
    stamp cards, challenges and badges."""
    text = resources.files("kopilka.demo").joinpath("zerno.yaml").read_text(encoding="utf-8")
    document = parse_text(text, name="zerno.yaml", as_json=False)
    assert isinstance(document, dict)  # the package's own file
    return {**document, "accrual": {**document["accrual"], **CAFE_CAPS},
            "stamp_cards": DEMO_STAMP_CARDS, "challenges": DEMO_CHALLENGES,
            "badges": DEMO_BADGES}  # fmt: skip


def build_demo(
    engine: Engine, *, now: datetime, members_count: int = 1000, receipts_count: int = 20000,
    days: int = 90, seed: int = 2, progress: Callable[[int, int], None] | None = None,
) -> Demo:  # fmt: skip
    """Create the demo unless it exists; fresh admin and pos keys either way."""
    created = not _exists(engine)
    operator = None
    if created:
        apply_program(engine, program_document(), actor="demo", now=now - timedelta(days=days))
        rng = random.Random(seed)
        start = now - timedelta(days=days)
        refs = _members(engine, rng, members_count, start)
        visits = _visit_weights(rng, len(refs))
        _vips(engine, refs, visits, start, now)
        _receipts(engine, rng, refs, visits, receipts_count, start, now, progress)
        password = secrets.token_urlsafe(12)  # shown once, like a key
        create_operator(engine, PROGRAM, DEMO_OPERATOR, password, "admin", now)
        operator = (DEMO_OPERATOR, password)
    counts = _counts(engine)
    admin, _ = create_key(engine, PROGRAM, "admin", label="demo admin", now=now)
    pos, _ = create_key(engine, PROGRAM, "pos", location="kiosk", label="demo kiosk", now=now)
    return Demo(created, counts[0], counts[1], admin, pos, _busiest_member(engine), operator)


def _exists(engine: Engine) -> bool:
    with engine.connect() as connection:
        return (
            connection.execute(select(programs.c.id).where(programs.c.code == PROGRAM)).first()
            is not None
        )


def _counts(engine: Engine) -> tuple[int, int]:
    with engine.connect() as connection:
        program_id = select(programs.c.id).where(programs.c.code == PROGRAM).scalar_subquery()
        people = connection.execute(
            select(func.count()).select_from(members).where(members.c.program_id == program_id)
        ).scalar_one()
        bought = connection.execute(
            select(func.count()).select_from(purchases).where(purchases.c.program_id == program_id)
        ).scalar_one()
    return int(people), int(bought)


def _busiest_member(engine: Engine) -> str:
    """The card of the member with the most purchases: the most to look at."""
    with engine.connect() as connection:
        card = connection.execute(
            select(members.c.card)
            .join(purchases, purchases.c.member_id == members.c.id)
            .group_by(members.c.id, members.c.card)
            .order_by(func.count().desc(), members.c.id)
            .limit(1)
        ).scalar()
    return f"card:{card}" if card else "card:none"


def _members(engine: Engine, rng: random.Random, count: int, start: datetime) -> list[str]:
    refs = []
    for n in range(count):
        body = f"7{n:010d}"
        data: dict[str, Any] = {
            "card": body + luhn_check_digit(body),
            "name": _name(rng),
            "phone": f"+7916{rng.randrange(10**7):07d}",
            "birthday": f"{rng.randrange(1960, 2006)}-{rng.randrange(1, 13):02d}-"
            f"{rng.randrange(1, 29):02d}",
        }
        if rng.random() < 0.6:
            data["email"] = f"member{n}@example.ru"
        try:
            member = register_member(engine, PROGRAM, data, now=start)
        except Duplicate:  # a phone drawn twice: register without it
            del data["phone"]
            member = register_member(engine, PROGRAM, data, now=start)
        refs.append(f"card:{member['card']}")
        if n % 10 == 0:  # some members start with a welcome gift
            adjust(engine, PROGRAM, refs[-1], {"points": "100", "reason": "welcome gift"},
                   actor="demo", now=start)  # fmt: skip
    return refs


def _name(rng: random.Random) -> str:
    """A first name and a surname of one gender: Андрей Иванов, Анна Иванова."""
    surname = rng.choice(SURNAMES)
    if rng.random() < 0.5:
        return f"{rng.choice(MALE_NAMES)} {surname}"
    return f"{rng.choice(FEMALE_NAMES)} {female_surname(surname)}"


def female_surname(male: str) -> str:
    """Вишневский → Вишневская, Савицкий → Савицкая; Иванов → Иванова, Ильин → Ильина."""
    if male.endswith("кий"):
        return male[:-2] + "ая"
    return male + "а"


def _vips(
    engine: Engine, refs: list[str], visits: list[float], start: datetime, now: datetime
) -> None:
    """The seed's temporary VIP status (50 % until a date), set by hand for the regulars
    who come most."""
    until = (now + timedelta(days=30)).date().isoformat()
    regulars = sorted(range(len(refs)), key=visits.__getitem__, reverse=True)[:VIP_MEMBERS]
    for n in regulars:
        set_tier(engine, PROGRAM, refs[n], {"tier": "vip", "until": until,
                                            "reason": "VIP for a season: a regular"},
                 actor="demo", now=start)  # fmt: skip


def _receipts(
    engine: Engine, rng: random.Random, refs: list[str], visits: list[float], count: int,
    start: datetime, now: datetime, progress: Callable[[int, int], None] | None,
) -> None:  # fmt: skip
    span = (now - start).total_seconds()
    moments = sorted(start + timedelta(seconds=rng.random() * span) for _ in range(count))
    members_weights = list(accumulate(visits))
    basket_weights = list(accumulate(weight for weight, _ in BASKETS))
    for n, moment in enumerate(moments):
        opening = moment.replace(hour=5 + rng.randrange(15), minute=rng.randrange(60))  # UTC
        at = min(max(opening, start), now)
        _, basket = rng.choices(BASKETS, cum_weights=basket_weights)[0]
        body: dict[str, Any] = {
            "receipt_id": f"DEMO-{n:06d}",
            "location": rng.choice(LOCATIONS),
            "at": at.isoformat(),
            "lines": [{"sku": sku, "qty": qty} for sku, qty in basket],
        }
        if rng.random() < 0.85:  # most guests show their card
            body["member"] = rng.choices(refs, cum_weights=members_weights)[0]
            if rng.random() < 0.12:
                body["redeem"] = "max"
        with suppress(KopilkaError):  # a receipt the rules refuse: a demo can do without it
            process_purchase(engine, PROGRAM, body, now=at, actor="demo")
        if progress is not None and (n % 200 == 0 or n == count - 1):
            progress(n + 1, count)


def _visit_weights(rng: random.Random, count: int) -> list[float]:
    """How often each member comes, relatively: most now and then, a few most days (a
    log-normal spread, as visits are; capped, so nobody is at the till all day)."""
    return [min(rng.lognormvariate(0, 1), MOST_VISITS) for _ in range(count)]
