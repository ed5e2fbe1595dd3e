"""The console's message catalogue kept in step with its sources: every string marked for
translation in the templates and Python files of clm/web (Babel's extractors), and the `.po`
files updated from it (new messages added untranslated, gone ones dropped)."""

from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from clm.web.i18n import EXTRACT_KEYWORDS, EXTRACT_MAP, LOCALES, TRANSLATIONS

SOURCES = Path(__file__).parent
JINJA_OPTIONS = {"extensions": "jinja2.ext.i18n", "trim_blocks": "true", "lstrip_blocks": "true"}


def extract() -> Catalog:
    """Every message the console's sources mark for translation."""
    template = Catalog(project="clm-console", fuzzy=False)
    options = {pattern: JINJA_OPTIONS for pattern, method in EXTRACT_MAP if method == "jinja2"}
    for filename, lineno, message, comments, context in extract_from_dir(
        str(SOURCES), EXTRACT_MAP, options, EXTRACT_KEYWORDS, strip_comment_tags=True
    ):
        template.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return template


def catalogue_path(locale: str) -> Path:
    return TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po"


def read_catalogue(locale: str) -> Catalog:
    with catalogue_path(locale).open("rb") as po:
        return read_po(po, locale=locale)


def update_catalogues() -> dict[str, int]:
    """Bring every locale's .po in line with the sources; returns untranslated counts (zh only
    matters: English msgids are the English text)."""
    template = extract()
    missing = {}
    for locale in LOCALES:
        path = catalogue_path(locale)
        if path.exists():
            catalog = read_catalogue(locale)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            catalog = Catalog(locale=locale, project="clm-console")
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        catalog.fuzzy = False
        catalog.project, catalog.version, catalog.copyright_holder = "clm-console", "1", "CLM"
        catalog.msgid_bugs_address = catalog.last_translator = catalog.language_team = "CLM"
        with path.open("wb") as po:
            write_po(po, catalog, width=100, include_lineno=False, ignore_obsolete=True)
        missing[locale] = sum(1 for m in catalog if m.id and not m.string)
    return missing
