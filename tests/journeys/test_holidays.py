"""China's festivals, days off and make-up working days, and lunar birthdays, against the
published 2025/2026 calendars (State Council notices; lunar dates as printed calendars give them)."""

from datetime import date

import pytest

from clm.core.errors import InvalidInput
from clm.journeys.holidays import (
    celebrates_lunar_birthday_on,
    holiday_date,
    holidays_on,
    is_day_off,
    is_makeup_workday,
    lunar_birthday,
    lunar_birthday_in,
    official_holiday,
    schedule_known,
)

KNOWN = [
    ("春节", 2026, date(2026, 2, 17)),
    ("除夕", 2026, date(2026, 2, 16)),
    ("元宵", 2026, date(2026, 3, 3)),
    ("清明", 2026, date(2026, 4, 5)),
    ("端午", 2026, date(2026, 6, 19)),
    ("七夕", 2026, date(2026, 8, 19)),
    ("中秋", 2026, date(2026, 9, 25)),
    ("重阳", 2026, date(2026, 10, 18)),
    ("国庆", 2026, date(2026, 10, 1)),
    ("春节", 2025, date(2025, 1, 29)),
    ("中秋", 2025, date(2025, 10, 6)),
    ("端午", 2025, date(2025, 5, 31)),
]


@pytest.mark.parametrize(("name", "year", "day"), KNOWN)
def test_festivals_fall_on_their_published_days(name, year, day):
    assert holiday_date(name, year) == day
    assert name in holidays_on(day)


def test_english_keys_and_festival_spellings_name_the_same_day():
    assert holiday_date("spring_festival", 2026) == holiday_date("春节", 2026)
    assert holiday_date("中秋节", 2026) == holiday_date("mid_autumn", 2026) == date(2026, 9, 25)
    with pytest.raises(InvalidInput, match="not a known festival"):
        holiday_date("月亮节", 2026)


def test_the_2026_spring_festival_break_and_its_make_up_working_days():
    # 2026: 15-23 February off; Saturday 14 and Saturday 28 February are working days
    assert all(is_day_off(date(2026, 2, d)) for d in range(15, 24))
    assert official_holiday(date(2026, 2, 20)) == "春节"
    for saturday in (date(2026, 2, 14), date(2026, 2, 28)):
        assert is_makeup_workday(saturday) and not is_day_off(saturday)
    assert not is_makeup_workday(date(2026, 3, 7))  # an ordinary Saturday
    assert is_day_off(date(2026, 3, 7)) and official_holiday(date(2026, 3, 7)) is None
    assert official_holiday(date(2026, 10, 1)) == "国庆"


def test_a_year_without_a_published_schedule_counts_weekends_only():
    day = date(2099, 1, 3)  # a Saturday
    assert not schedule_known(day)
    assert is_day_off(day) and not is_makeup_workday(day) and official_holiday(day) is None
    assert holiday_date("春节", 2099) == date(2099, 1, 21)  # lunar festivals are still known


def test_lunar_birthdays_by_hand():
    # born 1990-05-12 = lunar 四月十八 (1990); in 2026 lunar 4/18 is 2026-06-03
    assert lunar_birthday(date(1990, 5, 12)) == (4, 18)
    assert lunar_birthday_in(date(1990, 5, 12), 2026) == date(2026, 6, 3)
    assert celebrates_lunar_birthday_on(date(1990, 5, 12), date(2026, 6, 3))
    assert not celebrates_lunar_birthday_on(date(1990, 5, 12), date(2026, 5, 12))
    # born on 春节 2000 (2000-02-05, lunar 1/1): celebrated on 春节 2026
    assert celebrates_lunar_birthday_on(date(2000, 2, 5), date(2026, 2, 17))
    # lunar 腊月 (12th month) of lunar year 2025 falls in January 2026: still found
    born = date(1995, 1, 20)  # lunar 1994-12-20
    assert lunar_birthday(born) == (12, 20)
    assert celebrates_lunar_birthday_on(born, lunar_birthday_in(born, 2025))
    assert lunar_birthday_in(born, 2025).year == 2026
