"""Stored forms of values for bulk writes that bypass SQLAlchemy's types."""

from datetime import UTC, datetime, timedelta

import numpy as np

from clm.store.schema import to_db_timestamp, to_db_timestamps


def test_a_whole_array_of_times_takes_the_stored_form_of_each_one():
    moments = [
        datetime(2025, 3, 1, 9, 5, 7, 123456, tzinfo=UTC),
        datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC),
    ]
    array = np.array([m.replace(tzinfo=None) for m in moments], dtype="datetime64[us]")
    assert to_db_timestamps(array, "sqlite") == [to_db_timestamp(m, "sqlite") for m in moments]
    assert to_db_timestamps(array, "postgresql") == [
        "2025-03-01 09:05:07.123456+00",
        "1999-12-31 23:59:59.000000+00",
    ]


def test_times_across_centuries_leap_days_and_the_epoch_are_spelled_as_isoformat_spells_them():
    """The digits are computed by calendar arithmetic on whole arrays: checked against
    `datetime.isoformat` on the days where such arithmetic goes wrong (leap days of 1600, 1900
    and 2000, the epoch and the day before it, the last microsecond of a year) and on random
    times over nine centuries."""
    edges = [
        datetime(1000, 1, 1, tzinfo=UTC),
        datetime(1600, 2, 29, 12, 0, tzinfo=UTC),
        datetime(1900, 2, 28, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(1900, 3, 1, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(2000, 2, 29, 7, 8, 9, 10, tzinfo=UTC),
        datetime(2024, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ]
    rng = np.random.default_rng(7)
    start = datetime(1100, 1, 1, tzinfo=UTC)
    moments = edges + [
        start + timedelta(microseconds=int(u)) for u in rng.integers(0, 900 * 365 * 86_400_000_000, 2_000)
    ]
    array = np.array([m.replace(tzinfo=None) for m in moments], dtype="datetime64[us]")
    spelled = [to_db_timestamp(m, "sqlite") for m in moments]
    assert to_db_timestamps(array, "sqlite") == spelled
    assert to_db_timestamps(array, "postgresql") == [s + "+00" for s in spelled]


def test_years_of_fewer_digits_are_padded_as_isoformat_pads_them():
    moments = [datetime(999, 12, 31, 1, 2, 3, tzinfo=UTC), datetime(1, 1, 1, tzinfo=UTC)]
    array = np.array([m.replace(tzinfo=None) for m in moments], dtype="datetime64[us]")
    assert to_db_timestamps(array, "sqlite") == ["0999-12-31 01:02:03.000000", "0001-01-01 00:00:00.000000"]
    assert to_db_timestamps(array, "sqlite") == [to_db_timestamp(m, "sqlite") for m in moments]
