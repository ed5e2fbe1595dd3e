"""Cell values as people write them: dates, times in the store's zone, yes/no, money."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from clm.core.errors import InvalidInput
from clm.core.values import parse_local_date, parse_local_datetime, parse_money, parse_yes_no

BEIJING = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2026/11/1 10:05", datetime(2026, 11, 1, 2, 5)),
        ("2026-11-01 10:05:30", datetime(2026, 11, 1, 2, 5, 30)),
        ("2026.11.1", datetime(2026, 10, 31, 16, 0)),
        ("2026年11月1日", datetime(2026, 10, 31, 16, 0)),
        ("2026年11月1日 10:05", datetime(2026, 11, 1, 2, 5)),
        ("2026年11月1日10时05分30秒", datetime(2026, 11, 1, 2, 5, 30)),
        ("２０２６／１１／１ １０：０５", datetime(2026, 11, 1, 2, 5)),  # full-width
        ("2026/11/1 00:30", datetime(2026, 10, 31, 16, 30)),  # after midnight in Beijing
        ("2026-11-01T10:05:00+08:00", datetime(2026, 11, 1, 2, 5)),
        ("2026-11-01 10:05Z", datetime(2026, 11, 1, 10, 5)),  # a zone given is kept
        ("46327.42013888889", datetime(2026, 11, 1, 2, 5)),  # Excel serial: 10:05 local
        ("46327", datetime(2026, 10, 31, 16, 0)),
        ("1735689600", datetime(2025, 1, 1)),  # Unix seconds are UTC
        ("1735689600000", datetime(2025, 1, 1)),
    ],
)
def test_times_without_a_zone_are_in_the_stores_zone(text, utc):
    assert parse_local_datetime(text, BEIJING, "at") == utc.replace(tzinfo=UTC)


def test_naive_datetime_objects_too():
    assert parse_local_datetime(datetime(2026, 11, 1, 10, 5), BEIJING, "at") == datetime(
        2026, 11, 1, 2, 5, tzinfo=UTC
    )
    assert parse_local_datetime(date(2026, 11, 1), BEIJING, "at") == datetime(2026, 10, 31, 16, tzinfo=UTC)


@pytest.mark.parametrize(
    "text", ["1/11/2026", "2026/2/30", "2026/11/1 24:00", "2026/11/1 10:61", "soon", "12345678"]
)
def test_what_is_not_a_time(text):
    with pytest.raises(InvalidInput) as caught:
        parse_local_datetime(text, BEIJING, "ordered_at")
    assert caught.value.field == "ordered_at"


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("1990/5/12", date(1990, 5, 12)),
        ("1990-05-12", date(1990, 5, 12)),
        ("1990年5月12日", date(1990, 5, 12)),
        ("1990-05-12 00:00:00", date(1990, 5, 12)),
        ("32874", date(1990, 1, 1)),  # Excel's serial day
        ("61", date(1900, 3, 1)),  # past Excel's phantom 29 February 1900
    ],
)
def test_dates(text, day):
    assert parse_local_date(text, "birthday") == day


@pytest.mark.parametrize("text", ["31/12/1990", "1990/13/1", "1990年2月30日", "0", "yesterday"])
def test_what_is_not_a_date(text):
    with pytest.raises(InvalidInput):
        parse_local_date(text, "birthday")


@pytest.mark.parametrize(
    ("text", "value"),
    [(w, True) for w in ("是", "对", "Y", "yes", "1", "TRUE", "真", "√", "同意")]
    + [(w, False) for w in ("否", "错", "N", "no", "0", "FALSE", "假", "×", "不同意")],
)
def test_yes_and_no(text, value):
    assert parse_yes_no(text, "consent_sms") is value


def test_neither_yes_nor_no():
    with pytest.raises(InvalidInput, match="not yes/no"):
        parse_yes_no("也许", "consent_sms")


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("￥1,299.00", 1299.0),
        ("1,299元", 1299.0),
        ("¥1299", 1299.0),
        ("RMB 1,299.50", 1299.5),
        ("人民币88", 88.0),
        ("１，２９９．００", 1299.0),  # full-width
        ("12,345,678.9", 12345678.9),
        ("-¥12.50", -12.5),
        (49.9, 49.9),
    ],
)
def test_money(text, amount):
    assert parse_money(text, "unit_price") == amount


@pytest.mark.parametrize("text", ["1,29", "12.5.1", "一千", "", "¥"])
def test_what_is_not_money(text):
    with pytest.raises(InvalidInput):
        parse_money(text, "unit_price")


def test_a_time_that_leaves_the_calendar_in_utc_is_refused_not_a_crash():
    """0001-01-01 in Beijing is still year 0 in UTC: a clear error (the API's 422), where the
    conversion used to raise OverflowError (a 500 the API fuzzer found on POST /tasks)."""
    from datetime import datetime, timedelta, timezone

    from clm.core.timeutil import from_store_time

    with pytest.raises(ValueError, match="outside the years 1 to 9999"):
        from_store_time(datetime(1, 1, 1))  # naive: the store's zone, Asia/Shanghai
    with pytest.raises(ValueError, match="outside the years 1 to 9999"):
        from_store_time(datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5))))
    assert from_store_time(datetime(9999, 12, 31, 23)).hour == 15
