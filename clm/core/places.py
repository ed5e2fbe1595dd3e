"""Chinese cities and provinces by their Chinese and English names, so that 上海, 上海市, Shanghai
and SHANGHAI are one place in segment conditions and the console's filters.

The table (`data/cn_places.csv`): the 34 provincial-level divisions and the main cities (the
tier-1 and "new tier-1" cities, the provincial capitals and other large cities) with their
Chinese name, English (pinyin) name, province and tier (1, new1, 2, 3). A name that is not in the
table is only ever itself.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DATA = Path(__file__).parent / "data" / "cn_places.csv"
# the official suffix of each provincial-level name ("省" unless listed)
_PROVINCE_SUFFIX = {
    "北京": "市",
    "天津": "市",
    "上海": "市",
    "重庆": "市",
    "香港": "特别行政区",
    "澳门": "特别行政区",
    "内蒙古": "自治区",
    "西藏": "自治区",
    "广西": "壮族自治区",
    "宁夏": "回族自治区",
    "新疆": "维吾尔自治区",
}


@dataclass(frozen=True)
class Place:
    kind: str  # city or province
    zh: str
    en: str
    province: str  # the province's Chinese name ("" for a province)
    tier: str  # 1, new1, 2, 3 or ""

    def names(self) -> tuple[str, ...]:
        """Every spelling matched: 上海, 上海市, Shanghai, shanghai, SHANGHAI, Shanghai Shi."""
        suffix = _PROVINCE_SUFFIX.get(self.zh, "省") if self.kind == "province" else "市"
        spelled = [self.zh, self.zh + suffix]
        for en in (self.en, self.en.replace("'", ""), self.en.replace("'", "’")):
            spelled += [en, en.lower(), en.upper(), f"{en} City" if self.kind == "city" else f"{en} Province"]
        return tuple(dict.fromkeys(spelled))


@lru_cache(maxsize=1)
def places() -> tuple[Place, ...]:
    with DATA.open(encoding="utf-8") as f:
        rows = csv.DictReader(f)
        return tuple(Place(r["kind"], r["zh"], r["en"], r["province_zh"], r["tier"]) for r in rows)


def _key(name: str) -> str:
    return " ".join(name.replace("’", "'").split()).casefold()


@lru_cache(maxsize=1)
def _index() -> dict[str, list[Place]]:
    out: dict[str, list[Place]] = {}
    for place in places():
        for name in place.names():
            out.setdefault(_key(name), []).append(place)
    return out


def find_places(name: str | None) -> list[Place]:
    """The places a name may mean (a city and a province may share it: 北京)."""
    return list(_index().get(_key(name or ""), []))


def place_names(name: str) -> tuple[str, ...]:
    """Every spelling of the place(s) `name` means, `name` itself first; just `name` when unknown."""
    found = find_places(name)
    spelled = [name, *(n for p in found for n in p.names())]
    return tuple(dict.fromkeys(spelled))


def same_place(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    return _key(a) == _key(b) or bool(set(find_places(a)) & set(find_places(b)))


def tier_cities(tier: str) -> tuple[Place, ...]:
    """The cities of a tier (`1`: 北京, 上海, 广州, 深圳)."""
    return tuple(p for p in places() if p.kind == "city" and p.tier == tier)
