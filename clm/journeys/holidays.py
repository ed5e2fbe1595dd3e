"""China's calendar for journeys: festivals (lunar and solar), the official days off with their
make-up working days (调休), and lunar birthdays.

Sources, both maintained on PyPI: `chinese-calendar` holds the State Council's yearly schedule of
days off and make-up working days (it knows a year once the schedule is published, each
November/December: a year it does not know yet is reported as such, and then only weekends count
as days off); `lunardate` converts lunar dates to Gregorian ones (1900-2099), which gives the
lunar festivals every year: 春节 (1/1), 元宵 (1/15), 端午 (5/5), 七夕 (7/7), 中秋 (8/15),
重阳 (9/9), 腊八 (12/8) and 除夕 (the day before 春节). 清明 is a solar term (from
`chinese-calendar`, else 4 or 5 April).

A lunar birthday is celebrated on the same lunar month and day each year: one born in a leap
month (闰月) celebrates in the ordinary month of that number, and one born on the 30th of a month
that has 29 days in a year celebrates on its 29th.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

import chinese_calendar
from lunardate import LunarDate

from clm.core.errors import InvalidInput

# lunar festivals: (lunar month, day)
LUNAR = {
    "春节": (1, 1),
    "元宵": (1, 15),
    "端午": (5, 5),
    "七夕": (7, 7),
    "中秋": (8, 15),
    "重阳": (9, 9),
    "腊八": (12, 8),
}
# festivals on the Gregorian calendar: (month, day)
SOLAR = {
    "元旦": (1, 1),
    "情人节": (2, 14),
    "妇女节": (3, 8),
    "劳动节": (5, 1),
    "儿童节": (6, 1),
    "国庆": (10, 1),
    "双十一": (11, 11),
    "圣诞": (12, 25),
}
OTHER = ("除夕", "清明")
HOLIDAYS = (*LUNAR, *SOLAR, *OTHER)
# the names a journey may use instead of the Chinese ones
ALIASES = {
    "spring_festival": "春节",
    "chinese_new_year": "春节",
    "new_years_eve": "除夕",
    "lantern": "元宵",
    "dragon_boat": "端午",
    "qixi": "七夕",
    "mid_autumn": "中秋",
    "double_ninth": "重阳",
    "laba": "腊八",
    "new_year": "元旦",
    "valentine": "情人节",
    "womens_day": "妇女节",
    "labour_day": "劳动节",
    "childrens_day": "儿童节",
    "national_day": "国庆",
    "singles_day": "双十一",
    "christmas": "圣诞",
    "qingming": "清明",
    "元宵节": "元宵",
    "端午节": "端午",
    "七夕节": "七夕",
    "中秋节": "中秋",
    "重阳节": "重阳",
    "腊八节": "腊八",
    "国庆节": "国庆",
    "清明节": "清明",
    "春節": "春节",
}
MIN_YEAR, MAX_YEAR = 1901, 2099  # what lunardate converts


def holiday_name(name: str) -> str:
    """The canonical (Chinese) name of a festival given in Chinese or by its English key."""
    text = name.strip()
    canonical = ALIASES.get(text.lower(), ALIASES.get(text, text))
    if canonical not in HOLIDAYS:
        raise InvalidInput(f"{name!r} is not a known festival: {', '.join(HOLIDAYS)}", "holiday")
    return canonical


def lunar_to_solar(year: int, month: int, day: int) -> date:
    """The Gregorian date of a lunar month and day in lunar year `year`; the 30th of a month that
    has 29 days that year is its 29th."""
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise InvalidInput(f"lunar dates are known for {MIN_YEAR}-{MAX_YEAR}", "year")
    for d in (day, 29) if day == 30 else (day,):
        solar = LunarDate(year, month, d).to_solar_date()
        back = LunarDate.from_solar_date(solar.year, solar.month, solar.day)
        # lunardate does not check the day against the month's length: a round trip does
        if (back.month, back.day, back.is_leap_month) == (month, d, False):
            return solar
    raise InvalidInput(f"lunar {month}/{day} does not exist in {year}", "date")


@lru_cache(maxsize=4096)
def holiday_date(name: str, year: int) -> date:
    """The day of a festival in Gregorian year `year` (lunar festivals fall in the lunar year that
    begins in `year`; 除夕 is the eve of that year's 春节)."""
    name = holiday_name(name)
    if name in SOLAR:
        return date(year, *SOLAR[name])
    if name in LUNAR:
        return lunar_to_solar(year, *LUNAR[name])
    if name == "除夕":
        return lunar_to_solar(year, 1, 1) - timedelta(days=1)
    try:  # 清明
        terms = chinese_calendar.get_solar_terms(date(year, 4, 3), date(year, 4, 6))
        return next(d for d, term in terms if term == "清明")
    except (NotImplementedError, StopIteration, KeyError, ValueError):
        return date(year, 4, 5 if year % 4 in (1, 2, 3) else 4)


def holidays_on(day: date) -> list[str]:
    """The festivals that fall on `day` (canonical names, in HOLIDAYS order)."""
    found = []
    for name in HOLIDAYS:
        try:
            if holiday_date(name, day.year) == day:
                found.append(name)
        except InvalidInput:
            continue
    return found


def schedule_known(day: date) -> bool:
    """Whether the official schedule of days off for `day`'s year is published in the installed
    chinese-calendar (upgrade the package once the State Council publishes a new year's)."""
    try:
        chinese_calendar.is_workday(day)
    except NotImplementedError:
        return False
    return True


def is_day_off(day: date) -> bool:
    """An official day off (a public holiday or a weekend that is not a make-up working day); a
    year whose schedule is not published yet counts its weekends only."""
    try:
        return bool(chinese_calendar.is_holiday(day))
    except NotImplementedError:
        return day.weekday() >= 5


def is_makeup_workday(day: date) -> bool:
    """A weekend day that is an official working day (调休上班), e.g. Saturday 14 February 2026."""
    try:
        return day.weekday() >= 5 and bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return False


def official_holiday(day: date) -> str | None:
    """The public holiday whose days off include `day` (春节 for every day of the Spring
    Festival break), or None; make-up working days are not in it."""
    try:
        on, name = chinese_calendar.get_holiday_detail(day)
    except NotImplementedError:
        return None
    if not on or name is None:
        return None
    return _OFFICIAL.get(str(name))


_OFFICIAL = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午",
    "National Day": "国庆",
    "Mid-autumn Festival": "中秋",
}


def lunar_birthday(birthday: date) -> tuple[int, int]:
    """The lunar (month, day) of a Gregorian birthday (a leap month counts as its ordinary one)."""
    lunar = LunarDate.from_solar_date(birthday.year, birthday.month, birthday.day)
    return lunar.month, lunar.day


def lunar_birthday_in(birthday: date, year: int) -> date:
    """The Gregorian day on which a lunar birthday is celebrated in lunar year `year`."""
    return lunar_to_solar(year, *lunar_birthday(birthday))


def celebrates_lunar_birthday_on(birthday: date, day: date) -> bool:
    """Whether someone born on `birthday` who keeps the lunar calendar celebrates on `day` (the
    lunar year that holds `day` may have begun in the Gregorian year before)."""
    return any(lunar_birthday_in(birthday, year) == day for year in (day.year - 1, day.year))
