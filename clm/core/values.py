"""Cell values as people write them in spreadsheets and Chinese systems' exports, read into
plain values: dates and times, yes/no, money.

- Dates: `2026-11-01`, `2026/11/1`, `2026.11.1`, `2026年11月1日`, and an Excel serial day number
  (days since 1899-12-30, as Excel counts; from 1 to 2958465). Year first only: `1/11/2026`
  means 1 November to some and 11 January to others, so it is refused.
- Times after the date: `10:05`, `10:05:30`, `10:05:30.5`, `10时05分`, `10点05分30秒`; with a
  `T` or a space between. A time without a zone (`Z`, `+08:00`) is in the store's time zone
  (`CLM_DEFAULT_TIMEZONE`, Asia/Shanghai by default); so is an Excel serial number, whose
  fraction is the time of day. A whole number of 9 or more digits is Unix seconds (UTC), of
  12 or more milliseconds.
- Yes/no: 是/否, 对/错, 真/假, 有/无, Y/N, yes/no, true/false, 1/0, √/×, and consent words
  (granted/withdrawn, opt-in/opt-out, 同意/不同意).
- Money: `￥1,299.00`, `¥1299`, `1,299元`, `RMB 1299`, `CNY1,299.5`, `$12.50`: the currency mark
  and thousands separators go; what is left must be a plain decimal number. A comma that
  does not separate thousands (`1,29`) is refused rather than guessed at.

Full-width digits and punctuation (１２３，：／) read as their ASCII forms (Unicode NFKC).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from clm.core.errors import InvalidInput

_EXCEL_EPOCH = datetime(
    1899, 12, 30
)  # Excel's day 0 (its 1900 leap-year bug makes 12-30 right from March 1900)
_EXCEL_MAX = 2_958_465  # 9999-12-31

_DATE = (
    r"(?P<y>\d{4})\s*(?:[-/.]\s*(?P<m>\d{1,2})\s*[-/.]\s*(?P<d>\d{1,2})"
    r"|年\s*(?P<m2>\d{1,2})\s*月\s*(?P<d2>\d{1,2})\s*日?)"
)
_TIME = (
    r"(?:\s*[T\s]\s*|(?<=日))"
    r"(?P<H>\d{1,2})\s*(?::|时|點|点)\s*(?P<M>\d{1,2})\s*分?"
    r"(?:\s*(?::|分)?\s*(?P<S>\d{1,2}(?:\.\d{1,6})?)\s*秒?)?"
)
_ZONE = r"\s*(?P<zone>Z|[+-]\d{2}:?\d{2})?"
_DATETIME = re.compile(rf"{_DATE}(?:{_TIME})?{_ZONE}", re.IGNORECASE)
_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)")

_TRUE = {"1", "true", "yes", "y", "t", "on", "是", "对", "對", "真", "有", "√", "✓", "✔",
         "granted", "opt-in", "optin", "同意", "已同意", "订阅", "已订阅"}  # fmt: skip
_FALSE = {"0", "false", "no", "n", "f", "off", "否", "错", "錯", "假", "无", "無", "×", "✗", "✘", "x",
          "withdrawn", "denied", "opt-out", "optout", "不同意", "拒绝", "退订", "已退订"}  # fmt: skip

_MONEY_MARKS = re.compile(
    r"^(?:RMB|CNY|USD|HKD|EUR|人民币|[¥$€£])\s*|\s*(?:元|圆|块|RMB|CNY|人民币)$", re.IGNORECASE
)
_GROUPED = re.compile(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d*)?")


def _text(value: object) -> str:
    return unicodedata.normalize("NFKC", str(value)).strip()


def parse_local_datetime(value: object, tz: ZoneInfo, field: str) -> datetime:
    """A point in time (aware, UTC) from any of the forms in the module docstring; no zone
    means `tz`."""
    if isinstance(value, datetime):
        local = value if value.tzinfo else value.replace(tzinfo=tz)
        return local.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(0), tz).astimezone(UTC)
    text = _text(value)
    if not text:
        raise InvalidInput("is empty", field)
    if _NUMBER.fullmatch(text) or isinstance(value, int | float):
        return _from_number(float(text), tz, field)
    match = _DATETIME.fullmatch(text)
    if not match:
        raise InvalidInput(
            f"{value!r} is not a date and time (e.g. 2026-11-01 10:05, 2026/11/1 10:05 or 2026年11月1日)",
            field,
        )
    day = _day(match, value, field)
    seconds = float(match["S"] or 0)
    try:
        moment = datetime.combine(day, time(int(match["H"] or 0), int(match["M"] or 0))) + timedelta(
            seconds=seconds
        )
    except ValueError:
        raise InvalidInput(f"{value!r} has no such time of day", field)
    if match["H"] and (int(match["H"]) > 23 or int(match["M"]) > 59 or seconds >= 60):
        raise InvalidInput(f"{value!r} has no such time of day", field)
    zone = match["zone"]
    if zone:
        iso = "+00:00" if zone.upper() == "Z" else f"{zone[:3]}:{zone[-2:]}"
        return moment.replace(tzinfo=datetime.fromisoformat(f"2000-01-01T00:00{iso}").tzinfo).astimezone(UTC)
    return moment.replace(tzinfo=tz).astimezone(UTC)


def parse_local_date(value: object, field: str) -> date:
    """A calendar date from any of the date forms in the module docstring (a time after it is
    ignored)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = _text(value)
    if not text:
        raise InvalidInput("is empty", field)
    if _NUMBER.fullmatch(text):
        number = float(text)
        if number.is_integer() and 1 <= number <= _EXCEL_MAX:
            return (_EXCEL_EPOCH + timedelta(days=number)).date()
        raise InvalidInput(f"{value!r} is not a date (a number here is read as an Excel serial date)", field)
    match = _DATETIME.fullmatch(text)
    if not match:
        raise InvalidInput(f"{value!r} is not a date (e.g. 1990-05-12, 1990/5/12 or 1990年5月12日)", field)
    return _day(match, value, field)


def _day(match: re.Match[str], value: object, field: str) -> date:
    month, day = match["m"] or match["m2"], match["d"] or match["d2"]
    try:
        return date(int(match["y"]), int(month), int(day))
    except ValueError:
        raise InvalidInput(f"{value!r} is not a date: there is no such day", field)


def _from_number(number: float, tz: ZoneInfo, field: str) -> datetime:
    """An Excel serial date-time (local) or Unix seconds / milliseconds (UTC)."""
    if 1 <= number <= _EXCEL_MAX:
        local = _EXCEL_EPOCH + timedelta(days=number)
        # Excel keeps times to the millisecond; a float's noise is rounded away
        local = local.replace(microsecond=0) + timedelta(seconds=round(local.microsecond / 1e6))
        return local.replace(tzinfo=tz).astimezone(UTC)
    if number >= 1e8:
        seconds = number / 1000 if number > 1e11 else number
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            pass
    raise InvalidInput(
        f"{number:g} is neither an Excel serial date (1-{_EXCEL_MAX}) nor Unix seconds or milliseconds",
        field,
    )


def parse_yes_no(value: object, field: str) -> bool:
    """True or False from the words in the module docstring (Excel's TRUE/FALSE too)."""
    if isinstance(value, bool):
        return value
    text = _text(value).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InvalidInput(f"{value!r} is not yes/no (是/否, Y/N, 1/0)", field)


def parse_money(value: object, field: str) -> float:
    """An amount from `￥1,299.00`, `1,299元`, `¥1299` and the like (see the module docstring)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = _text(value).replace(" ", "")
    bare = _MONEY_MARKS.sub("", _MONEY_MARKS.sub("", text)).strip()
    sign = ""
    if bare[:1] in "+-" and bare[:1]:  # -¥12.00
        sign, bare = bare[0], _MONEY_MARKS.sub("", bare[1:]).strip()
    if "," in bare:
        if not _GROUPED.fullmatch(bare):
            raise InvalidInput(f"{value!r} is not an amount: its commas do not separate thousands", field)
        bare = bare.replace(",", "")
    if not _NUMBER.fullmatch(bare):
        raise InvalidInput(f"{value!r} is not an amount (e.g. 1299.00, ¥1,299.00 or 1,299元)", field)
    try:
        return float(Decimal(sign + bare))
    except InvalidOperation:
        raise InvalidInput(f"{value!r} is not an amount", field)
