"""Fonts for chart text: a CJK font first, so Chinese stage, segment and survey names render."""

from __future__ import annotations

import functools
import warnings

# Looked up in this order among the fonts matplotlib knows (Debian: fonts-noto-cjk).
CJK_FONTS = (
    "Noto Sans CJK SC",
    "Noto Sans CJK JP",
    "Noto Sans CJK TC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Microsoft YaHei",
    "SimHei",
    "PingFang SC",
)
LATIN_FONT = "DejaVu Sans"  # matplotlib's own; used for glyphs the first font lacks


@functools.cache
def cjk_font(candidates: tuple[str, ...] = CJK_FONTS) -> str | None:
    """The first installed font of `candidates`; None, with one warning, when none is installed
    (charts are still drawn, with Chinese characters as empty boxes)."""
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    for name in candidates:
        if name in installed:
            return name
    warnings.warn(
        "no CJK font found for charts (install fonts-noto-cjk): Chinese text will show as empty boxes",
        stacklevel=2,
    )
    return None


def chart_fonts() -> list[str]:
    """The `font.family` list for charts: the CJK font when there is one, then DejaVu Sans."""
    name = cjk_font()
    return [name, LATIN_FONT] if name else [LATIN_FONT]
