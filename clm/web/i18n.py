"""The console's languages: gettext catalogues (Babel) for zh-CN (the default) and English, the
choice from a cookie or the browser's Accept-Language, and numbers, money and times written the
way each language writes them, in the store's currency and time zone.

The catalogues are the `.po` files under `translations/`; they are compiled in memory when the
server starts, so a plain `pip install -e .` needs no build step and no compiled files.
"""

from __future__ import annotations

import io
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal, format_percent, get_currency_symbol
from babel.support import Translations
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from clm.core.settings import settings
from clm.customers.masking import mask_email, mask_phone
from clm.customers.names import full_name

LOCALES = ("zh_CN", "en")
DEFAULT_LOCALE = "zh_CN"
LANGUAGE_COOKIE = "clm_lang"
TRANSLATIONS = Path(__file__).parent / "translations"
# what Babel extracts messages from (scripts/web-messages and the catalogue test use it)
EXTRACT_MAP = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
EXTRACT_KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}


def N_(message: str) -> str:
    """Mark a string in Python code for extraction; it is translated where it is shown."""
    return message


def html_lang(locale: str) -> str:
    return locale.replace("_", "-")


def negotiate(accept_language: str | None) -> str:
    """The supported locale the browser prefers most (by q-value), else Chinese."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((-quality, position, tag.strip().lower()))
    for quality, _, tag in sorted(ranked):
        if quality >= 0:
            continue
        if tag.startswith("zh"):
            return "zh_CN"
        if tag.startswith("en"):
            return "en"
    return DEFAULT_LOCALE


def pick_locale(cookie: str | None, accept_language: str | None) -> str:
    return cookie if cookie in LOCALES else negotiate(accept_language)


@cache
def translations(locale: str) -> Translations:
    with (TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalog = read_po(po, locale=locale)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)  # fuzzy entries are left out, as msgfmt does
    compiled.seek(0)
    return Translations(fp=compiled)


class Formats:
    """Numbers, money and times for one locale, in the store's currency and time zone."""

    def __init__(self, locale: str) -> None:
        conf = settings()
        self.locale = locale
        self.currency = conf.currency
        self.timezone = conf.default_timezone
        self.tz = ZoneInfo(conf.default_timezone)

    @property
    def currency_symbol(self) -> str:
        return get_currency_symbol(self.currency, locale=self.locale)

    def number(self, value: float | int | None, digits: int = 0) -> str:
        if value is None:
            return "–"
        return format_decimal(
            value, format=f"#,##0{'.' + '0' * digits if digits else ''}", locale=self.locale
        )

    def money(self, value: float | None) -> str:
        return "–" if value is None else format_currency(value, self.currency, locale=self.locale)

    def percent(self, value: float | None, digits: int = 1) -> str:
        if value is None:
            return "–"
        return format_percent(value, format=f"#,##0.{'0' * digits}%", locale=self.locale)

    def datetime(self, value: datetime | None) -> str:
        if value is None:
            return "–"
        return format_datetime(value, "medium", tzinfo=self.tz, locale=self.locale)

    def date(self, value: date | None) -> str:
        if isinstance(value, datetime):  # the day it was in the store's time zone, not in UTC
            value = value.astimezone(self.tz).date()
        return "–" if value is None else format_date(value, "medium", locale=self.locale)

    def language_name(self, locale: str) -> str:
        return str(Locale.parse(locale).get_display_name(locale)).split(" (")[0]


@cache
def environment(locale: str) -> Environment:
    """The Jinja2 environment that renders console pages in `locale` (one per language).
    Templates come from clm.web and from each domain's `templates/console/` as it is added."""
    env = Environment(
        loader=PackageLoader("clm.web"),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(locale), newstyle=True)  # type: ignore[attr-defined]
    formats = Formats(locale)
    env.globals.update(fmt=formats, locale=locale, html_lang=html_lang(locale), locales=LOCALES)
    env.filters["person"] = lambda c: full_name(getattr(c, "first_name", None), getattr(c, "last_name", None))
    # a value from the data inside a translated sentence: browsers' translators leave it alone
    env.filters["data"] = lambda value: Markup('<span translate="no">%s</span>') % value
    env.filters["mask_email"] = mask_email
    env.filters["mask_phone"] = mask_phone
    return env


def render(locale: str, template: str, context: dict[str, Any]) -> str:
    return environment(locale).get_template(template).render(context)
