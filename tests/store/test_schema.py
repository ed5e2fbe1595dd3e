"""Stored forms of values for bulk writes that bypass SQLAlchemy's types."""

from datetime import UTC, datetime

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
