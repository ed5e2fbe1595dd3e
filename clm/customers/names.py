"""How a person's name is written (family name first and no space in Chinese: 张伟; given name
first with a space otherwise: Ann Lee) and how search compares it (its keys)."""

from __future__ import annotations

import unicodedata


def _is_cjk(text: str) -> bool:
    # CJK Unified Ideographs (and extension A), where Chinese, Japanese and Korean Hanja names live
    return any("\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" for ch in text)


def full_name(first_name: str | None, last_name: str | None) -> str:
    """The name as the person writes it; empty when neither part is known."""
    first, last = (first_name or "").strip(), (last_name or "").strip()
    if _is_cjk(first + last):
        return f"{last}{first}"
    return f"{first} {last}".strip()


# Separators people type or leave out inside a name: spaces and the middle dots of transliterated
# names (阿卜杜·热合曼). Dropping them lets "Ann Lee", "annlee" and "张 伟" find their person.
_DROPPED = str.maketrans("", "", "·・•‧")


def search_key(*parts: str | None) -> str:
    """The form of (parts of) a name that search compares: NFKC (full-width letters become plain
    ones), case folded, without spaces and middle dots."""
    text = unicodedata.normalize("NFKC", "".join(p or "" for p in parts)).casefold()
    return "".join(text.translate(_DROPPED).split())


NAME_KEYS = ("name_key", "given_name_key")


def name_keys(first_name: str | None, last_name: str | None) -> dict[str, str | None]:
    """The two indexed keys of a name: family name first (张伟, leeann) and given name first
    (伟张, annlee), so that the start of either finds the person; None for a nameless profile."""
    family, given = search_key(last_name, first_name), search_key(first_name, last_name)
    return {"name_key": family or None, "given_name_key": given or None}
