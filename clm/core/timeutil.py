"""Timestamps: everything is stored and compared in UTC; naive input is taken as UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from clm.core.errors import InvalidInput

_EPOCH_MS_THRESHOLD = 1e11  # numbers above this are milliseconds, not seconds
EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)  # customer activity before this is a typo
MAX_FUTURE = timedelta(days=1)  # allows for clock skew, not for scheduling


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Aware UTC datetime; naive values are taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_timestamp(value: object, field: str = "timestamp") -> datetime:
    """Parse ISO 8601 text, a date, or Unix epoch seconds / milliseconds into aware UTC."""
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _from_epoch(float(value), field)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise InvalidInput("is empty", field)
        if text.replace(".", "", 1).isdigit():
            return _from_epoch(float(text), field)
        try:
            return as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
        except ValueError:
            raise InvalidInput(f"{value!r} is not an ISO 8601 timestamp or epoch number", field)
    raise InvalidInput(f"{value!r} is not a timestamp", field)


def _from_epoch(seconds: float, field: str) -> datetime:
    if seconds > _EPOCH_MS_THRESHOLD:
        seconds /= 1000.0
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise InvalidInput(f"{seconds!r} is out of range for a timestamp", field)


def parse_date(value: object, field: str = "date") -> date:
    """Parse a calendar date (YYYY-MM-DD, or the date part of a timestamp)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return date.fromisoformat(text[:10])
        except ValueError:
            pass
    raise InvalidInput(f"{value!r} is not a date (YYYY-MM-DD)", field)


def check_activity_time(value: datetime, field: str = "timestamp", now: datetime | None = None) -> datetime:
    """Refuse times that cannot be real customer activity: before 1990 or in the future."""
    if value > (now or utcnow()) + MAX_FUTURE:
        raise InvalidInput(f"{value.isoformat()} is in the future", field)
    if value < EARLIEST:
        raise InvalidInput(f"{value.isoformat()} is before 1990", field)
    return value


def check_birthday(value: date, field: str = "birthday") -> date:
    if not date(1900, 1, 1) <= value <= utcnow().date():
        raise InvalidInput(f"{value.isoformat()} is not a plausible birthday", field)
    return value
