"""How to address a person in a message and show their name, by language: Chinese names family
name first without a space (张伟), greetings that suit Chinese (张先生), and their English forms.

The rules (documented in docs/journeys.md, "Names in messages"):

- The family name is `last_name`. A Chinese full name written in one field (first_name 欧阳娜娜,
  no last_name) is split: a compound surname (欧阳, 司马, 上官, 诸葛 … see COMPOUND_SURNAMES) takes
  two characters, any other one.
- `display_name`: Chinese (in characters) family name first without a space in every language's
  text written in characters (张伟); in English, a Chinese name is written in pinyin, given name
  first (Wei Zhang); a name in Latin letters is given name first (Ann Lee) in both.
- `salutation`: gender known → Chinese 张先生 / 张女士, English Mr Zhang / Ms Zhang; unknown →
  the display name (张伟 / Wei Zhang). Nothing known → empty (a template writes its own fallback:
  `{{ customer.salutation or "您好" }}`).
"""

from __future__ import annotations

from functools import lru_cache

_COMPOUND = (
    "欧阳 司马 上官 诸葛 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 司徒 司空 夏侯 轩辕 令狐 钟离 闻人 澹台 "
    "南宫 西门 独孤 端木 百里 呼延 太史 申屠 拓跋 万俟 第五 单于 公羊 赫连 闾丘 东郭 左丘 梁丘 羊舌"
)
COMPOUND_SURNAMES = frozenset(_COMPOUND.split())
# surnames read differently from the character's everyday reading
_SURNAME_PINYIN = {
    "曾": "Zeng",
    "单": "Shan",
    "仇": "Qiu",
    "解": "Xie",
    "区": "Ou",
    "查": "Zha",
    "朴": "Piao",
    "乐": "Yue",
    "盖": "Ge",
    "缪": "Miao",
    "翟": "Zhai",
    "种": "Chong",
    "覃": "Qin",
    "尉迟": "Yuchi",
    "万俟": "Moqi",
    "单于": "Chanyu",
    "长孙": "Zhangsun",
    "沈": "Shen",
    "燕": "Yan",
    "秘": "Bi",
    "黑": "He",
}
MALE = ("male", "m", "man", "男", "男性", "先生")
FEMALE = ("female", "f", "woman", "女", "女性", "女士")


def is_chinese(text: str) -> bool:
    # CJK Unified Ideographs (and extension A)
    return any("\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" for ch in text)


def split_chinese_name(full: str) -> tuple[str, str]:
    """(family name, given name) of a Chinese name written in one piece: 欧阳娜娜 → (欧阳, 娜娜)."""
    text = "".join(full.split())
    if len(text) >= 3 and text[:2] in COMPOUND_SURNAMES:
        return text[:2], text[2:]
    return text[:1], text[1:]


def split_full_name(full: str) -> tuple[str, str]:
    """(family name, given name) of a name written in one field, as a customers file's 姓名 column
    has it: 欧阳娜娜 → (欧阳, 娜娜), "Ann Lee" → (Lee, Ann), a single word → ("", word)."""
    text = full.strip()
    if is_chinese(text):
        return split_chinese_name(text)
    given, _, family = text.rpartition(" ")
    return (family, given.strip()) if given.strip() else ("", family)


def name_parts(first_name: str | None, last_name: str | None) -> tuple[str, str]:
    """(family, given) as stored, a whole Chinese name in one field split."""
    given, family = (first_name or "").strip(), (last_name or "").strip()
    if not family and is_chinese(given) and len(given) >= 2:
        return split_chinese_name(given)
    if not given and is_chinese(family) and len(family) >= 3:
        return split_chinese_name(family)
    return family, given


@lru_cache(maxsize=8192)
def _pinyin(text: str, surname: bool) -> str:
    from pypinyin import lazy_pinyin  # its dictionaries load on first use only

    if surname and text in _SURNAME_PINYIN:
        return _SURNAME_PINYIN[text]
    if surname and len(text) > 1 and text[0] in _SURNAME_PINYIN:
        return _SURNAME_PINYIN[text[0]] + "".join(lazy_pinyin(text[1:])).lower()
    return "".join(lazy_pinyin(text)).capitalize()


def display_name(first_name: str | None, last_name: str | None, lang: str = "zh") -> str:
    """The name as a message in `lang` writes it: 张伟 (Chinese), Wei Zhang (English), Ann Lee."""
    family, given = name_parts(first_name, last_name)
    if is_chinese(family + given):
        if lang.startswith("zh"):
            return f"{family}{given}"
        return " ".join(p for p in (_pinyin(given, False) if given else "", _pinyin(family, True)) if p)
    return " ".join(p for p in (given, family) if p)


def gender_of(value: str | None) -> str | None:
    text = (value or "").strip().lower()
    return "male" if text in MALE else "female" if text in FEMALE else None


def salutation(first_name: str | None, last_name: str | None, gender: str | None, lang: str = "zh") -> str:
    """How a message greets the person: 张先生 / 张女士 / 张伟, Mr Zhang / Ms Zhang / Wei Zhang."""
    family, _given = name_parts(first_name, last_name)
    known = gender_of(gender)
    if not family or known is None:
        return display_name(first_name, last_name, lang)
    chinese = is_chinese(family)
    if lang.startswith("zh"):
        return f"{family}{'先生' if known == 'male' else '女士'}"
    surname = _pinyin(family, True) if chinese else family
    return f"{'Mr' if known == 'male' else 'Ms'} {surname}"
