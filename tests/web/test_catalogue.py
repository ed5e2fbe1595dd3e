"""Every string the console shows has its Chinese: the messages Babel extracts from the
templates and code of clm/web are all in the zh_CN catalogue, translated, with the same
placeholders; and the catalogues hold nothing the sources no longer use."""

import re

from clm.web.i18n import LOCALES, translations
from clm.web.messages import extract, read_catalogue

PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _ids(catalog):
    return {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id}


def test_every_extracted_message_has_a_chinese_translation():
    extracted = extract()
    assert len(_ids(extracted)) >= 80
    zh = read_catalogue("zh_CN")
    missing = sorted(_ids(extracted) - _ids(zh))
    assert not missing, f"not in the zh_CN catalogue (run scripts/web-messages): {missing}"
    untranslated = []
    for message in zh:
        if not message.id:
            continue
        strings = [message.string] if isinstance(message.string, str) else list(message.string)
        ids = [message.id] if isinstance(message.id, str) else list(message.id)
        if message.fuzzy or not all(strings):
            untranslated.append(ids[0])
            continue
        for text in strings:
            assert set(PLACEHOLDER.findall(text)) == set(PLACEHOLDER.findall(ids[0])), ids[0]
    assert not untranslated, f"no Chinese for: {untranslated}"


def test_catalogues_have_no_stale_messages_and_load():
    extracted = _ids(extract())
    for locale in LOCALES:
        assert _ids(read_catalogue(locale)) == extracted, locale
    assert translations("zh_CN").gettext("Sign in") == "登录"
    assert translations("en").gettext("Sign in") == "Sign in"
    assert (
        translations("zh_CN").ngettext("%(num)s customer found", "%(num)s customers found", 3)
        == "找到 %(num)s 位客户"
    )
