"""PNG chart of survey results: the score distribution, promoters / passives / detractors coloured."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from clm.core.fonts import chart_fonts
from clm.feedback.results import Results


def _colour(kind: str, score: int) -> str:
    if kind == "nps":
        return "#2e7d32" if score >= 9 else "#9e9e9e" if score >= 7 else "#c62828"
    return "#2e7d32" if score >= 4 else "#9e9e9e" if score == 3 else "#c62828"


def distribution_chart(results: Results, path: Path) -> Path:
    scores = sorted(results.overall.distribution)
    counts = [results.overall.distribution[s] for s in scores]
    with plt.rc_context({"font.family": chart_fonts()}):  # survey names are often Chinese
        return _draw(results, scores, counts, path)


def _draw(results: Results, scores: list[int], counts: list[int], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar([str(s) for s in scores], counts, color=[_colour(results.kind, s) for s in scores])
    o = results.overall
    headline = (
        f"NPS {o.nps:+.1f}" if results.kind == "nps" and o.nps is not None
        else f"CSAT {o.csat:.1f}%" if o.csat is not None
        else "no answers"
    )  # fmt: skip
    name = results.survey or f"all {results.kind.upper()} answers"
    ax.set_title(f"{name}: {headline} ({o.responses:,} answers)")
    ax.set_xlabel("score")
    ax.set_ylabel("answers")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
