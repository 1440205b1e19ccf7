"""Program file (already parsed from YAML/JSON) → an immutable, validated `Program`.

One pass collects every problem with its place; if there is any, `InvalidInput`
carries them all. The names and meanings of the keys are fixed by shared/API.md.
"""

from __future__ import annotations

import importlib
import re
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType
from typing import Protocol, TypeVar, runtime_checkable

from kopilka.kernel.errors import InvalidInput, Problem
from kopilka.kernel.money import Rounding, currency_digits
from kopilka.kernel.program import (
    WEEKDAYS,
    AccrualEffect,
    AccrualMode,
    AccrualSettings,
    AccrueOn,
    AmountRange,
    Category,
    Conditions,
    DateRange,
    ExpiryPeriod,
    ExpirySettings,
    Location,
    Partner,
    PointsSettings,
    Product,
    Program,
    RedemptionSettings,
    RefundSettings,
    Rule,
    RuleKind,
    SpentPoints,
    TimeWindow,
)
from kopilka.kernel.reading import Reader, parse_date, show
from kopilka.mechanics.discounts.model import DiscountSettings
from kopilka.mechanics.discounts.section import DiscountContext, parse_discount_settings
from kopilka.mechanics.tiers.section import parse_tiers

PROGRAM_KEYS = (
    "code",
    "name",
    "currency",
    "timezone",
    "points",
    "accrual",
    "redemption",
    "refunds",
    "expiry",
    "partners",
    "catalog",
    "rules",
    "tiers",
    "discounts",
    "discount_limits",
    "discount_cards",
)
ACCRUAL_KEYS = ("base_percent", "on", "pending_days", "max_percent", "max_points_per_receipt")
RULE_KEYS = ("code", "name", "kind", "when", "then", "priority")
WHEN_KEYS = (
    "weekdays",
    "time",
    "dates",
    "between",
    "receipt_total",
    "partners",
    "locations",
    "categories",
    "skus",
    "tiers",
    "segments",
    "members",
    "clubs",
)
THEN_KEYS = ("multiplier", "percent", "points_per_unit", "accrue", "max_points", "redeem_percent")
ACCRUAL_EFFECT_KEYS = ("multiplier", "percent", "points_per_unit", "accrue")

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
CURRENCY = re.compile(r"^[A-Z]{3}$")
_TIME = re.compile(r"^([0-9]{1,2}):([0-9]{2})$")  # ASCII digits: "١٦:٠٠" is no time
_MONTH_DAY = re.compile(r"^([0-9]{2})-([0-9]{2})$")
T = TypeVar("T")


@dataclass(frozen=True)
class SectionContext:
    """What a mechanic's section may check its values against."""

    money_digits: int
    point_digits: int
    locations: frozenset[str]
    skus: frozenset[str]
    categories: frozenset[str]
    partners: frozenset[str] = frozenset()


@runtime_checkable
class AddsRules(Protocol):
    """A section's settings that add rules of their own to the program's (a coalition
    partner's exit: no earning there after its last day), so the calculator applies them
    and explains them like any rule."""

    def program_rules(self) -> tuple[Rule, ...]: ...


def _added_rules(sections: Mapping[str, object]) -> tuple[Rule, ...]:
    return tuple(rule for settings in sections.values() if isinstance(settings, AddsRules)
                 for rule in settings.program_rules())  # fmt: skip


# A mechanic's section reads its mapping (its problems reported on the reader) and
# returns its settings, found at `Program.sections[key]`.
SectionParser = Callable[[Reader, SectionContext], object]
_SECTIONS: dict[str, SectionParser] = {}


# The product's mechanics register their sections in this module, loaded by name before
# the first program is read (so the kernel imports no mechanic, and a program file read
# anywhere — the server, the command line, a test — knows every section of the product).
PRODUCT_SECTIONS = "kopilka.sections"
_product_sections_loaded = False


def _load_product_sections() -> None:
    global _product_sections_loaded
    if not _product_sections_loaded:
        _product_sections_loaded = True
        importlib.import_module(PRODUCT_SECTIONS)


def program_keys() -> tuple[str, ...]:
    """Every top-level key a program file may have: the core's, then each registered
    section's in the order registered."""
    _load_product_sections()
    return (*PROGRAM_KEYS, *_SECTIONS)


def register_section(key: str, parse: SectionParser) -> None:
    """Read `key` of every program file with `parse` from now on (a mechanic's section).
    The product's sections come first, whoever registers first: the order of the keys
    (in the problems that list them) is the same in every process."""
    _load_product_sections()
    if key in PROGRAM_KEYS or key in _SECTIONS:
        raise ValueError(f"the program file's key {key!r} is taken")
    _SECTIONS[key] = parse


def unregister_section(key: str) -> None:
    _SECTIONS.pop(key, None)


def _sections(top: Reader, context: SectionContext) -> Mapping[str, object]:
    return MappingProxyType(
        {key: parse(top, context) for key, parse in _SECTIONS.items() if top.has(key)}
    )


def parse_program(data: object) -> Program:
    """Validate a program document; raise `InvalidInput` naming every problem found."""
    problems: list[Problem] = []
    top = Reader(data, "", problems, program_keys())
    code = top.text(
        "code", required=True, pattern=SLUG, what="a slug (lower-case letters, digits, '-')"
    )
    currency = top.text(
        "currency", required=True, pattern=CURRENCY, what="an ISO 4217 currency code such as RUB"
    )
    money_digits = currency_digits(currency or "")
    timezone = _timezone(top, "timezone") or "UTC"
    points = _points(top)
    accrual = _accrual(top, points.precision)
    partners, locations = _partners(top, timezone)
    categories, products = _catalog(top, money_digits)
    tiers = parse_tiers(top, money_digits)
    tier_codes = frozenset(level.code for level in tiers.levels) if tiers else None
    context = _RuleContext(
        base_percent=accrual.base_percent,
        money_digits=money_digits,
        point_digits=points.precision,
        partners=frozenset(p.code for p in partners),
        locations=frozenset(locations),
        categories=frozenset(categories),
        skus=frozenset(products),
        tiers=tier_codes,
        clubs=_declared_codes(top, "clubs"),
    )
    rules = _rules(top, context)
    sections = _sections(
        top,
        SectionContext(
            money_digits,
            points.precision,
            frozenset(locations),
            frozenset(products),
            frozenset(categories),
            context.known["partners"],
        ),
    )
    program = Program(
        code=code or "",
        name=top.text("name") or code or "",
        currency=currency or "",
        money_digits=money_digits,
        timezone=timezone,
        points=points,
        accrual=accrual,
        redemption=_redemption(top, money_digits),
        refunds=_refunds(top),
        expiry=_expiry(top),
        partners=partners,
        locations=MappingProxyType(locations),
        categories=MappingProxyType(categories),
        products=MappingProxyType(products),
        rules=(*rules, *_added_rules(sections)),
        tiers=tiers,
        discounts=_discounts(top, context),
        sections=sections,
    )  # fmt: skip
    if problems:
        raise InvalidInput(problems)
    return program


def _declared_codes(top: Reader, key: str) -> frozenset[str]:
    """The codes the items of a mechanic's section declare, as written (`clubs`): what a
    rule's `when` may name. The section's own parser checks the items themselves."""
    items = top.raw(key)
    if not isinstance(items, list):
        return frozenset()
    codes = (item.get("code") for item in items if isinstance(item, Mapping))
    return frozenset(code for code in codes if isinstance(code, str))


def _discounts(top: Reader, context: _RuleContext) -> DiscountSettings | None:
    if not any(top.has(key) for key in ("discounts", "discount_limits", "discount_cards")):
        return None
    known = context.known
    discount_context = DiscountContext(
        money_digits=context.money_digits, when_keys=WHEN_KEYS,
        conditions=lambda when: _conditions(when, context),
        partners=known["partners"], skus=known["skus"],
    )  # fmt: skip
    return parse_discount_settings(top, discount_context)


def _timezone(reader: Reader, key: str) -> str | None:
    name = reader.text(key)
    if name is None:
        return None
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Europe" is a folder
        reader.report(reader.at(key), f"{show(name)} is not a time zone (e.g. Europe/Moscow)")
        return None
    return name


def _points(top: Reader) -> PointsSettings:
    section = top.mapping("points", ("precision", "rounding", "value"))
    if section is None:
        return PointsSettings()
    default = PointsSettings()
    return PointsSettings(
        precision=_or(section.integer("precision", minimum=0, maximum=6), default.precision),
        rounding=_or(section.choice("rounding", Rounding), default.rounding),
        value=_or(_positive(section, "value"), default.value),
    )


def _positive(section: Reader, key: str, maximum: Decimal | None = None) -> Decimal | None:
    value = section.decimal(key, minimum=Decimal(0), maximum=maximum)
    if value is not None and value == 0:
        section.report(section.at(key), "must be more than 0")
        return None
    return value


def _accrual(top: Reader, point_digits: int) -> AccrualSettings:
    section = top.mapping("accrual", ACCRUAL_KEYS)
    default = AccrualSettings()
    if section is None:
        return default
    return AccrualSettings(
        base_percent=_or(section.decimal("base_percent", minimum=Decimal(0)), default.base_percent),
        on=_or(section.choice("on", AccrueOn), default.on),
        pending_days=_or(section.integer("pending_days", minimum=0), default.pending_days),
        max_percent=_positive(section, "max_percent", maximum=Decimal(100)),
        max_points_per_receipt=section.minor("max_points_per_receipt", point_digits,
                                             unit="points"),
    )  # fmt: skip


def _redemption(top: Reader, money_digits: int) -> RedemptionSettings:
    section = top.mapping("redemption", ("base_percent", "min_payable", "hold_minutes"))
    default = RedemptionSettings()
    if section is None:
        return default
    base = section.decimal("base_percent", minimum=Decimal(0), maximum=Decimal(100))
    min_payable = section.minor("min_payable", money_digits, unit="money")
    hold_minutes = section.integer("hold_minutes", minimum=1)
    return RedemptionSettings(
        base_percent=_or(base, default.base_percent),
        min_payable=_or(min_payable, 0),
        hold_minutes=_or(hold_minutes, default.hold_minutes),
    )


def _refunds(top: Reader) -> RefundSettings:
    section = top.mapping("refunds", ("spent_points",))
    default = RefundSettings()
    if section is None:
        return default
    return RefundSettings(_or(section.choice("spent_points", SpentPoints), default.spent_points))


def _expiry(top: Reader) -> ExpirySettings | None:
    section = top.mapping("expiry", ("after_days", "period", "warn_days"))
    if section is None:
        return None
    after_days = section.integer("after_days", minimum=1)
    period = section.choice("period", ExpiryPeriod)
    if section.has("after_days") == section.has("period"):
        section.report(section.loc, "give exactly one of after_days or period (or null: never)")
    return ExpirySettings(after_days, period, section.integer("warn_days", minimum=1))


def _partners(
    top: Reader, program_timezone: str
) -> tuple[tuple[Partner, ...], dict[str, Location]]:
    partners: list[Partner] = []
    locations: dict[str, Location] = {}
    seen = _Unique(top, "partner")
    for item in top.records("partners", ("code", "name", "locations")):
        code = item.code("code")
        seen.check(item, code)
        codes: list[str] = []
        location_keys = ("code", "name", "timezone", "lat", "lon", "address")
        for place in item.records("locations", location_keys):
            location = _location(place, code or "", program_timezone)
            if location is None:
                continue
            if location.code in locations:
                place.report(place.at("code"), f"duplicate location code {show(location.code)}")
                continue
            locations[location.code] = location
            codes.append(location.code)
        if code is not None:
            partners.append(Partner(code, item.text("name") or code, tuple(codes)))
    return tuple(partners), locations


def _location(place: Reader, partner: str, program_timezone: str) -> Location | None:
    code = place.code("code")
    timezone = _timezone(place, "timezone") or program_timezone
    lat = place.decimal("lat", minimum=Decimal(-90), maximum=Decimal(90))
    lon = place.decimal("lon", minimum=Decimal(-180), maximum=Decimal(180))
    place.text("address")
    if code is None:
        return None
    return Location(code, place.text("name") or code, partner, timezone, lat, lon)


def _catalog(top: Reader, money_digits: int) -> tuple[dict[str, Category], dict[str, Product]]:
    section = top.mapping("catalog", ("categories", "products"))
    categories: dict[str, Category] = {}
    products: dict[str, Product] = {}
    if section is None:
        return categories, products
    parents: dict[str, tuple[Reader, str]] = {}
    for item in section.records("categories", ("code", "name", "parent")):
        code = item.code("code")
        parent = item.code("parent", required=False)
        if code is None:
            continue
        if code in categories:
            item.report(item.at("code"), f"duplicate category code {show(code)}")
            continue
        categories[code] = Category(code, item.text("name") or code, parent)
        if parent is not None:
            parents[code] = (item, parent)
    for item, parent in parents.values():
        if parent not in categories:
            item.report(item.at("parent"), f"unknown category {show(parent)}")
    _reject_category_cycles(section, categories)
    for item in section.records("products", ("sku", "name", "category", "price"), code_key="sku"):
        sku = item.code("sku")
        category = item.code("category", required=False)
        if category is not None and category not in categories:
            item.report(item.at("category"), f"unknown category {show(category)}")
        price = item.minor("price", money_digits, unit="money")
        if sku is None:
            continue
        if sku in products:
            item.report(item.at("sku"), f"duplicate sku {show(sku)}")
            continue
        products[sku] = Product(sku, item.text("name") or sku, category, price)
    return categories, products


def _reject_category_cycles(section: Reader, categories: Mapping[str, Category]) -> None:
    reported: set[str] = set()
    for start in categories:
        path = [start]
        parent = categories[start].parent
        while parent is not None and parent in categories and parent not in path:
            path.append(parent)
            parent = categories[parent].parent
        if parent is None or parent not in path:
            continue
        cycle = path[path.index(parent) :]
        if reported.isdisjoint(cycle):
            reported.update(cycle)
            chain = " → ".join([*cycle, parent])
            section.report(section.at("categories"), f"the category tree has a cycle: {chain}")


class _RuleContext:
    """What rules may refer to, and the units their amounts are in."""

    def __init__(
        self,
        *,
        base_percent: Decimal,
        money_digits: int,
        point_digits: int,
        partners: frozenset[str],
        locations: frozenset[str],
        categories: frozenset[str],
        skus: frozenset[str],
        tiers: frozenset[str] | None,
        clubs: frozenset[str] = frozenset(),
    ) -> None:
        self.base_percent = base_percent
        self.money_digits = money_digits
        self.point_digits = point_digits
        self.known = {
            "partners": partners,
            "locations": locations,
            "categories": categories,
            "skus": skus,
            "clubs": clubs,  # a rule's club must be in the `clubs` section
        }
        if tiers is not None:
            self.known["tiers"] = tiers


_KNOWN_AS = {
    "partners": "partner",
    "locations": "location",
    "categories": "category",
    "skus": "sku",
    "tiers": "tier",
    "clubs": "club",
}


def _rules(top: Reader, context: _RuleContext) -> tuple[Rule, ...]:
    rules: list[Rule] = []
    seen = _Unique(top, "rule")
    for item in top.records("rules", RULE_KEYS):
        code = item.code("code")
        seen.check(item, code)
        kind = item.choice("kind", RuleKind, required=True)
        when = _conditions(item.mapping("when", WHEN_KEYS), context)
        then = item.mapping("then", THEN_KEYS, required=True)
        accrual, max_points, redeem_percent = _effects(then, context) if then else (None,) * 3
        priority = item.integer("priority")
        if code is not None and kind is not None:
            rules.append(
                Rule(
                    code,
                    kind,
                    when,
                    accrual,
                    max_points,
                    redeem_percent,
                    priority or 0,
                    item.text("name"),
                )
            )
    return tuple(rules)


def _effects(
    then: Reader, context: _RuleContext
) -> tuple[AccrualEffect | None, int | None, Decimal | None]:
    given = [key for key in ACCRUAL_EFFECT_KEYS if then.has(key)]
    max_points = then.minor("max_points", context.point_digits, unit="points")
    redeem_percent = then.decimal("redeem_percent", minimum=Decimal(0), maximum=Decimal(100))
    if len(given) > 1:
        then.report(
            then.loc,
            f"two accrual effects in one rule ({' and '.join(given)}); give one, or split the rule",
        )
        return None, max_points, redeem_percent
    if not given and not then.has("redeem_percent"):
        what = (
            "max_points caps an accrual effect, so it needs one; " if then.has("max_points") else ""
        )
        then.report(
            then.loc,
            f"{what}the rule has neither an accrual effect (multiplier, percent, "
            "points_per_unit, accrue: false) nor a redemption limit "
            "(redeem_percent)",
        )
        return None, max_points, redeem_percent
    if not given:
        if then.has("max_points"):
            then.report(then.at("max_points"), "caps an accrual effect; the rule has none")
        return None, max_points, redeem_percent
    return _accrual_effect(then, given[0], context), max_points, redeem_percent


def _accrual_effect(then: Reader, key: str, context: _RuleContext) -> AccrualEffect | None:
    if key == "accrue":
        flag = then.boolean("accrue")
        if flag is True:
            then.report(then.at("accrue"), "only 'accrue: false' is an effect; remove it otherwise")
        if flag is not False:
            return None
        return AccrualEffect(AccrualMode.COEFFICIENT, Fraction(0), 0, key, False)
    if key == "points_per_unit":
        points = then.minor(key, context.point_digits, unit="points")
        if points is None:
            return None
        stated = then.decimal(key) or Decimal(0)
        return AccrualEffect(AccrualMode.POINTS_PER_UNIT, Fraction(0), points, key, stated)
    value = then.decimal(key, minimum=Decimal(0))
    if value is None:
        return None
    if key == "multiplier":
        return AccrualEffect(AccrualMode.COEFFICIENT, Fraction(value), 0, key, value)
    if context.base_percent == 0:
        then.report(then.at(key), "a percent is read against accrual.base_percent, which is 0")
        return None
    coefficient = Fraction(value) / Fraction(context.base_percent)
    return AccrualEffect(AccrualMode.COEFFICIENT, coefficient, 0, key, value)


def _conditions(when: Reader | None, context: _RuleContext) -> Conditions:
    if when is None:
        return Conditions()
    references = {
        key: _references(when, key, context)
        for key in ("partners", "locations", "categories", "skus", "tiers", "clubs")
    }
    month_days, full_dates = _dates(when)
    return Conditions(
        weekdays=_weekdays(when),
        time=_time_window(when),
        month_days=month_days,
        full_dates=full_dates,
        between=_between(when),
        receipt_total=_receipt_total(when, context),
        segments=when.codes("segments"),
        members=when.codes("members"),
        **references,
    )


def _references(when: Reader, key: str, context: _RuleContext) -> frozenset[str] | None:
    codes = when.codes(key)
    known = context.known.get(key)
    if codes is None or known is None:
        return codes
    for unknown in sorted(codes - known):
        when.report(when.at(key), f"unknown {_KNOWN_AS[key]} {show(unknown)}")
    return codes


def _weekdays(when: Reader) -> frozenset[int] | None:
    items = when.list("weekdays")
    if items is None:
        return None
    days: set[int] = set()
    for loc, value in items:
        name = value.lower() if isinstance(value, str) else None
        if name in WEEKDAYS:
            days.add(WEEKDAYS.index(name))
        else:
            when.report(loc, f"{show(value)} is not a weekday ({', '.join(WEEKDAYS)})")
    if not items:
        when.report(when.at("weekdays"), "is empty; leave it out to match every day")
    return frozenset(days)


def _time_window(when: Reader) -> TimeWindow | None:
    window = when.mapping("time", ("from", "to"))
    if window is None:
        return None
    start = _minute_of_day(window, "from", allow_end_of_day=False)
    end = _minute_of_day(window, "to", allow_end_of_day=True)
    if start is None or end is None:
        return None
    if start == end:
        window.report(window.loc, "from and to are the same time: the window is empty")
        return None
    return TimeWindow(start, end)


def _minute_of_day(window: Reader, key: str, *, allow_end_of_day: bool) -> int | None:
    value = window.raw(key, required=True)
    if value is None:
        return None
    match = _TIME.match(value) if isinstance(value, str) else None
    hours, minutes = (int(match[1]), int(match[2])) if match else (-1, -1)
    end_of_day = allow_end_of_day and (hours, minutes) == (24, 0)
    if not end_of_day and not (0 <= hours <= 23 and 0 <= minutes <= 59):
        window.report(window.at(key), f"{show(value)} is not a time (HH:MM, 00:00–23:59)")
        return None
    return hours * 60 + minutes


def _dates(when: Reader) -> tuple[frozenset[tuple[int, int]] | None, frozenset[date] | None]:
    items = when.list("dates")
    if items is None:
        return None, None
    month_days: set[tuple[int, int]] = set()
    full_dates: set[date] = set()
    for loc, value in items:
        match = _MONTH_DAY.match(value) if isinstance(value, str) else None
        if match and _is_month_day(int(match[1]), int(match[2])):
            month_days.add((int(match[1]), int(match[2])))
        elif (full := parse_date(value)) is not None:
            full_dates.add(full)
        else:
            when.report(loc, f"{show(value)} is not a date (MM-DD every year, or YYYY-MM-DD)")
    if not items:
        when.report(when.at("dates"), "is empty; leave it out to match every date")
    return (frozenset(month_days) or None, frozenset(full_dates) or None) if items else (None, None)


def _is_month_day(month: int, day: int) -> bool:
    days_in_month = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
    return 1 <= month <= 12 and 1 <= day <= days_in_month[month - 1]


def _between(when: Reader) -> DateRange | None:
    section = when.mapping("between", ("from", "to"))
    if section is None:
        return None
    start, end = section.day("from"), section.day("to")
    if not section.has("from") and not section.has("to"):
        section.report(section.loc, "give from, to, or both")
    if start is not None and end is not None and start > end:
        section.report(section.loc, f"from {start} is after to {end}")
    return DateRange(start, end)


def _receipt_total(when: Reader, context: _RuleContext) -> AmountRange | None:
    section = when.mapping("receipt_total", ("min", "max"))
    if section is None:
        return None
    low = section.minor("min", context.money_digits, unit="money")
    high = section.minor("max", context.money_digits, unit="money")
    if not section.has("min") and not section.has("max"):
        section.report(section.loc, "give min, max, or both")
    if low is not None and high is not None and low >= high:
        section.report(section.loc, "min must be less than max (max is exclusive)")
    return AmountRange(low, high)


class _Unique:
    """Reports a code seen twice in one list."""

    def __init__(self, parent: Reader, what: str) -> None:
        self.parent = parent
        self.what = what
        self.seen: set[str] = set()

    def check(self, item: Reader, code: str | None) -> None:
        if code is None:
            return
        if code in self.seen:
            item.report(item.at("code"), f"duplicate {self.what} code {show(code)}")
        self.seen.add(code)


def _or(value: T | None, default: T) -> T:
    return default if value is None else value
