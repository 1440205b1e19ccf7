"""Languages of the console: Babel message catalogs, chosen per request.

The catalogs are the `.po` files in `locale/<lang>/LC_MESSAGES/` (`messages.po` and
`messages-<area>.po`) and each registered mechanic's own (`Mechanic.translations`:
`<folder>/<lang>/LC_MESSAGES/messages.po`), merged; they are compiled in
memory when this module is imported (Babel's own compiler), so no binary `.mo` file is
kept in the repository and none can fall behind its `.po`. The language of the request
being served lives in a context variable: the templates' `_()` and the number and date
filters read it, so one shared Jinja2 environment serves every language at once.
"""

from __future__ import annotations

import gettext
from collections.abc import Callable
from contextvars import ContextVar
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from io import BytesIO
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, FunctionLoader, select_autoescape

from kopilka.checkout.mechanic import mechanics

LANGUAGES = ("ru", "en")
DEFAULT_LANGUAGE = "en"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"

_language: ContextVar[str] = ContextVar("console_language", default=DEFAULT_LANGUAGE)


@cache
def translations(language: str) -> gettext.GNUTranslations:
    """The language's catalog, compiled once per process from its `messages.po` and the
    `messages-<area>.po` files beside it (one per area of the console, so the areas'
    texts are kept apart; a message is translated once, in one of them)."""
    folder = LOCALE_DIR / language / "LC_MESSAGES"
    with (folder / "messages.po").open("rb") as po:
        catalog = read_po(po, locale=language)
    for path in [*sorted(folder.glob("messages-*.po")), *_mechanics_catalogs(language)]:
        with path.open("rb") as po:
            for message in read_po(po, locale=language):
                if message.id:
                    catalog[message.id] = message
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def _mechanics_catalogs(language: str) -> list[Path]:
    """Each registered mechanic's own catalog of the language (its console pages' texts):
    `<its translations folder>/<language>/LC_MESSAGES/messages.po`."""
    found = []
    for mechanic in mechanics():
        if mechanic.translations is not None:
            path = mechanic.translations / language / "LC_MESSAGES" / "messages.po"
            if path.is_file():
                found.append(path)
    return found


def use_language(language: str) -> None:
    """Serve the rest of this request (this task's context) in `language`."""
    _language.set(language if language in LANGUAGES else DEFAULT_LANGUAGE)


def current_language() -> str:
    return _language.get()


def choose_language(asked: str | None, remembered: str | None, accept_language: str) -> str:
    """`?lang=` first, then the session's choice, then the browser's Accept-Language."""
    for choice in (asked, remembered):
        if choice in LANGUAGES:
            return choice
    return negotiate(accept_language)


def negotiate(accept_language: str) -> str:
    """The first of the browser's languages (by its q-weights) the console speaks."""
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                continue
        weighted.append((-weight, position, tag.strip().replace("_", "-").lower()))
    preferred = [tag for _, _, tag in sorted(weighted)]
    found = Locale.negotiate(preferred, list(LANGUAGES), sep="-")
    return str(found) if found is not None else DEFAULT_LANGUAGE


# — what the templates call —


# Jinja2's "newstyle" gettext fills in the `%(name)s` variables itself, escaping them
# (autoescape): these only look the message up.


def gettext_(message: str) -> str:
    return translations(current_language()).gettext(message)


def ngettext_(singular: str, plural: str, n: int) -> str:
    return translations(current_language()).ngettext(singular, plural, n)


def N_(message: str) -> str:  # noqa: N802 - the name `pybabel extract` looks for
    """Marks a message for the catalog; it is translated where it is shown."""
    return message


def _locale() -> Locale:
    try:
        return Locale.parse(current_language())
    except (ValueError, UnknownLocaleError):
        return Locale.parse(DEFAULT_LANGUAGE)


def as_decimal(value: object) -> Decimal | None:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def format_points(value: object) -> str:
    """Points as the API writes them ("14.50") in the locale's digits ("14,50")."""
    number = as_decimal(value)
    if number is None:
        return str(value)
    digits = max(0, -int(number.as_tuple().exponent))
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return format_decimal(number, format=pattern, locale=_locale())


def plural_n(value: object) -> int:
    """The number to choose a plural form by for an amount of points: itself when whole,
    and 2 when it has a fraction — a fraction takes the genitive singular in Russian
    ("21,30 балла"), the same form as 2, and the plural in English, as 2 does."""
    number = as_decimal(value)
    if number is None or not number.is_finite():
        return 2
    whole = int(number)
    return abs(whole) if number == whole else 2


def format_number(value: object) -> str:
    number = as_decimal(value)
    return str(value) if number is None else format_decimal(number, locale=_locale())


def format_money(value: object, currency: str) -> str:
    number = as_decimal(value)
    return str(value) if number is None else format_currency(number, currency, locale=_locale())


def format_moment(value: datetime | str | None, timezone: str) -> str:
    """A moment in the program's time zone, as the locale writes it."""
    if value is None:
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return format_datetime(moment, "short", tzinfo=ZoneInfo(timezone), locale=_locale())


def format_day(value: date | str, style: str = "medium") -> str:
    day = date.fromisoformat(value) if isinstance(value, str) else value
    return format_date(day, style, locale=_locale())


def _mechanic_template(name: str) -> tuple[str, str, Callable[[], bool]] | None:
    """A template of a registered mechanic's own folder (its console pages), found when
    the console's own folder has none by that name."""
    for mechanic in mechanics():
        if mechanic.templates is not None and (path := mechanic.templates / name).is_file():
            return path.read_text(encoding="utf-8"), str(path), lambda: True
    return None


def environment(
    gettext: Callable[[str], str], ngettext: Callable[[str, str, int], str]
) -> Environment:
    """The Jinja2 environment of the web pages (`templates/`, autoescaped), speaking
    through `gettext`/`ngettext` (a catalog of its own: the member page's) and writing
    numbers, money and moments with this module's filters."""
    templates = Environment(
        loader=ChoiceLoader(
            [
                FileSystemLoader(Path(__file__).resolve().parent / "templates"),
                FunctionLoader(_mechanic_template),
            ]
        ),
        autoescape=select_autoescape(["html"], default_for_string=True, default=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    templates.install_gettext_callables(  # type: ignore[attr-defined]  # added by i18n
        gettext=gettext, ngettext=ngettext, newstyle=True
    )
    templates.filters.update(
        points=format_points, number=format_number, money=format_money,
        moment=format_moment, day=format_day, plural_n=plural_n,
    )  # fmt: skip
    templates.globals.update(languages=LANGUAGES)
    return templates
