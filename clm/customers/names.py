"""How a person's name is written: family name first and no space in Chinese (张伟), given name
first with a space otherwise (Ann Lee)."""

from __future__ import annotations


def _is_cjk(text: str) -> bool:
    # CJK Unified Ideographs (and extension A), where Chinese, Japanese and Korean Hanja names live
    return any("\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" for ch in text)


def full_name(first_name: str | None, last_name: str | None) -> str:
    """The name as the person writes it; empty when neither part is known."""
    first, last = (first_name or "").strip(), (last_name or "").strip()
    if _is_cjk(first + last):
        return f"{last}{first}"
    return f"{first} {last}".strip()
