"""Timestamps: everything is stored and compared in UTC. Input without a zone (API, files) is
read in the store's time zone (`CLM_DEFAULT_TIMEZONE`, Asia/Shanghai by default); a timestamp
already stored (naive UTC text on SQLite) is read back with `as_utc`."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from clm.core.errors import InvalidInput
from clm.core.settings import store_timezone_name

_EPOCH_MS_THRESHOLD = 1e11  # numbers above this are milliseconds, not seconds
EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)  # customer activity before this is a typo
MAX_FUTURE = timedelta(days=1)  # allows for clock skew, not for scheduling


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Aware UTC datetime; naive values are taken to be UTC already (as stored ones are)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


@lru_cache(maxsize=16)
def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"{name!r} is not a time zone name (such as Asia/Shanghai)", "CLM_DEFAULT_TIMEZONE"
        )


def store_zone() -> ZoneInfo:
    """The store's time zone (`CLM_DEFAULT_TIMEZONE`): where days and months begin, and the zone
    of a timestamp given without one."""
    return zone(store_timezone_name())


def from_store_time(value: datetime) -> datetime:
    """Aware UTC datetime of an input time; one without a zone is a wall-clock time in the
    store's time zone (a Beijing shop's "2026-11-01 00:30" is 2026-10-31 16:30 UTC)."""
    try:
        if value.tzinfo is None:
            return value.replace(tzinfo=store_zone()).astimezone(UTC)
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01 east of UTC, 9999-12-31 west of it
        raise ValueError(f"{value.isoformat()} is outside the years 1 to 9999 in UTC") from None


def store_midnight(day: date) -> datetime:
    """The UTC moment the store's calendar day `day` begins."""
    return datetime.combine(day, datetime.min.time(), tzinfo=store_zone()).astimezone(UTC)


def store_day(moment: datetime) -> date:
    """The store's calendar day of an aware moment."""
    return as_utc(moment).astimezone(store_zone()).date()


def show_time(moment: datetime | None, *, seconds: bool = False) -> str:
    """A moment as people of the store read it, with the zone named:
    "2026-11-01 00:30 Asia/Shanghai" (the CLI, reports and exports)."""
    if moment is None:
        return ""
    local = as_utc(moment).astimezone(store_zone())
    shown = local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return f"{shown} {store_timezone_name()}"


def local_iso(moment: datetime | None) -> str:
    """ISO 8601 in the store's zone with its offset ("2026-11-01T00:30:00+08:00"), for files."""
    return "" if moment is None else as_utc(moment).astimezone(store_zone()).isoformat()


def parse_timestamp(value: object, field: str = "timestamp") -> datetime:
    """Parse ISO 8601 text, a date, or Unix epoch seconds / milliseconds into aware UTC. A time
    or date without a zone is in the store's time zone (as in files: `clm.core.values`)."""
    if isinstance(value, datetime):
        return from_store_time(value)
    if isinstance(value, date):
        return store_midnight(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _from_epoch(float(value), field)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise InvalidInput("is empty", field)
        if text.replace(".", "", 1).isdigit():
            return _from_epoch(float(text), field)
        try:
            return from_store_time(datetime.fromisoformat(text.replace("Z", "+00:00")))
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
