"""Text encodings of files coming in and going out.

Coming in (`clm.core.files` applies the rule): a byte-order mark says UTF-8 or UTF-16; without
one, the first line that is not plain ASCII decides: UTF-8 if it is valid UTF-8, else GB18030
(a superset of GBK and GB2312). Going out: UTF-8 with a byte-order mark, so Excel shows Chinese,
or GB18030 on request.
"""

from __future__ import annotations

import codecs

from clm.core.errors import UnusableInput


def check_encoding(name: str | None) -> str | None:
    """A codec name as given to --encoding, checked; GBK and GB2312 are read as GB18030, which
    contains both."""
    if not name:
        return None
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        raise UnusableInput(f"unknown encoding {name!r}; e.g. utf-8, gb18030, utf-16")
    return "gb18030" if codec in ("gbk", "gb2312") else codec


def bom_encoding(sample: bytes) -> str | None:
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return None


# bytes that do not occur in text: C0 controls but tab, line feed, form feed, carriage return
_CONTROL = bytes(c for c in range(32) if c not in (9, 10, 12, 13))


def looks_binary(sample: bytes) -> bool:
    """More than 1% of the sample (and at least 4 bytes) are control bytes or NULs: a workbook,
    an archive or an image, not text. A stray NUL in a text file is left to the row checks."""
    controls = len(sample) - len(sample.translate(None, _CONTROL))
    return controls >= 4 and controls * 100 > len(sample)


def ascii_based(encoding: str) -> bool:
    """Whether ASCII text reads the same in `encoding` (so lines can be split as bytes)."""
    return not codecs.lookup(encoding).name.startswith(("utf-16", "utf-32"))


def is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def first_guess(raw: bytes) -> str:
    """The encoding the first line that is not plain ASCII says: UTF-8 if it is valid UTF-8,
    else GB18030 (GBK text is almost never valid UTF-8; the reverse does not hold)."""
    return "utf-8" if is_utf8(raw) else "gb18030"
