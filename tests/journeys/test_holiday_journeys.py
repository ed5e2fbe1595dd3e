"""The holiday trigger enrols on the festivals' days (lunar ones included), once a year each; a
birthday kept by the lunar calendar is celebrated on its lunar day; days are Shanghai's."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from clm.core.errors import InvalidInput
from clm.customers.schemas import CustomerIn
from clm.customers.service import upsert_customer
from clm.journeys.definition import definition_from_dict
from clm.journeys.service import tick
from tests.journeys.test_reentry_and_crash import entries, journey


def beijing(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC) - timedelta(hours=8)


def test_a_holiday_journey_enrols_on_mid_autumn_and_spring_festival_once_each(engine, smtp):
    upsert_customer(engine, CustomerIn(external_id="a"), actor="t")
    upsert_customer(engine, CustomerIn(external_id="b", city="上海"), actor="t")
    journey(engine, "festivals", "always", {"holiday": ["中秋", "spring_festival"]})
    journey(engine, "shanghai-festivals", "always", {"holiday": "中秋节", "condition": 'city = "上海"'})
    journey(engine, "mid-autumn-eve", "always", {"holiday": "中秋", "offset_days": 1})
    tick(engine, beijing(date(2026, 9, 24), 9))  # the day before 中秋 (2026-09-25)
    assert entries(engine, "festivals") == 0 and entries(engine, "mid-autumn-eve") == 2
    tick(engine, beijing(date(2026, 9, 25), 0) + timedelta(minutes=30))  # 00:30 in Beijing: 中秋
    tick(engine, beijing(date(2026, 9, 25), 20))  # later that day: nobody twice
    assert entries(engine, "festivals") == 2 and entries(engine, "shanghai-festivals") == 1
    tick(engine, beijing(date(2026, 2, 17), 9) + timedelta(days=365))  # not 春节 in 2027
    assert entries(engine, "festivals") == 2


def test_a_holiday_trigger_names_known_festivals():
    with pytest.raises(InvalidInput, match="not a known festival"):
        definition_from_dict(
            {
                "name": "x",
                "trigger": {"holiday": "月亮节"},
                "steps": [{"update": {"attribute": "a", "value": 1}}],
            },
        )


def test_a_lunar_birthday_is_celebrated_on_its_lunar_day(engine, smtp):
    born = date(1990, 5, 12)  # lunar 四月十八: in 2026 that is 3 June
    upsert_customer(engine, CustomerIn(external_id="solar", birthday=born), actor="t")
    upsert_customer(
        engine,
        CustomerIn(external_id="lunar", birthday=born, attributes={"birthday_calendar": "农历"}),
        actor="t",
    )
    journey(engine, "birthdays", "always", {"date": "birthday"})
    tick(engine, beijing(date(2026, 5, 12), 9))
    assert entries(engine, "birthdays") == 1  # the solar one only
    tick(engine, beijing(date(2026, 6, 3), 0) + timedelta(minutes=10))  # 00:10 in Beijing
    assert entries(engine, "birthdays") == 2  # now the lunar one
