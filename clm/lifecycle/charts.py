"""PNG charts of lifecycle reports (matplotlib, no display needed).

Text is drawn with a CJK font when one is installed (`clm.core.fonts`), since stage names are
Chinese for most users. The current, still running month of a cohort is hatched and starred, not
coloured as if it were a full month; funnel bars are drawn from the same counts as their labels.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from clm.core.fonts import chart_fonts
from clm.lifecycle.cohorts import CohortReport
from clm.lifecycle.funnel import FunnelReport

PARTIAL = "partial"  # gid of the hatching over a month still running
REACHED, CONVERTED = "reached", "converted"  # gids of the funnel's two bars per step


def _save(fig: Figure, path: Path) -> Path:
    with plt.rc_context({"font.family": chart_fonts()}):
        fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def cohort_figure(report: CohortReport) -> Figure:
    """Two heat maps side by side: share active and share purchasing, cohort × month. A cohort's
    month still running is left uncoloured, hatched, and its share so far starred."""
    rows = report.cohorts
    with plt.rc_context({"font.family": chart_fonts()}):
        fig, axes = plt.subplots(1, 2, figsize=(14, 0.42 * max(len(rows), 4) + 2.1), constrained_layout=True)
        panels = (
            (axes[0], "active", "活跃占比 share active"),
            (axes[1], "purchasing", "购买占比 share purchasing"),
        )
        for ax, attr, title in panels:
            grid = np.array(
                [[np.nan if v is None else v for v in getattr(c, attr)] for c in rows] or [[np.nan]]
            )
            partial = np.zeros(grid.shape, dtype=bool)
            for i, c in enumerate(rows):
                if c.partial is not None:
                    partial[i, c.partial] = True
            full = np.ma.masked_array(grid, mask=np.isnan(grid) | partial)
            top = float(full.max()) if full.count() else 1.0
            image = ax.imshow(full, aspect="auto", cmap="YlGnBu", vmin=0, vmax=max(0.05, top))
            ax.set_title(f"{title} (按获客后月数 by months since acquisition)")
            ax.set_xlabel("获客后月数 months since acquisition")
            ax.set_ylabel("获客月份 cohort (first seen)")
            ax.set_xticks(range(report.months))
            ax.set_yticks(range(len(rows)), [f"{c.cohort} ({c.customers:,})" for c in rows])
            for i in range(grid.shape[0] if rows else 0):
                for j in range(grid.shape[1]):
                    if np.isnan(grid[i, j]):
                        continue
                    if partial[i, j]:
                        ax.add_patch(
                            Rectangle(
                                (j - 0.5, i - 0.5),
                                1,
                                1,
                                fill=False,
                                hatch="///",
                                edgecolor="#999999",
                                gid=PARTIAL,
                            )
                        )
                        ax.text(
                            j, i, f"{grid[i, j]:.0%}*", ha="center", va="center", fontsize=7, color="#666666"
                        )
                    else:
                        dark = grid[i, j] > 0.6 * max(0.05, top)  # white text on the dark cells
                        ax.text(
                            j,
                            i,
                            f"{grid[i, j]:.0%}",
                            ha="center",
                            va="center",
                            fontsize=7,
                            color="white" if dark else "black",
                        )
            fig.colorbar(image, ax=ax, format=lambda x, _: f"{x:.0%}")
        if any(c.partial is not None for c in rows):
            day = f"{report.as_of:%Y-%m-%d}" if report.as_of else "today"
            fig.supxlabel(
                f"* 本月尚未结束，仅为截至 {day} 的占比 · month still running: share so far (to {day}), "
                "not a full month",
                fontsize=9,
                color="#666666",
            )
    return fig


def cohort_heatmap(report: CohortReport, path: Path) -> Path:
    """The cohort heat maps written to a PNG file."""
    return _save(cohort_figure(report), path)


def funnel_figure(report: FunnelReport) -> Figure:
    """One row per funnel step: a light bar of the customers who reached the first stage (with a
    full window to move on), a dark bar of those who converted, and the label converted /
    reached = conversion, so each bar pair shows exactly the ratio its label states."""
    zh = {s.stage: s.name_zh for s in report.stages}
    steps = report.steps
    with plt.rc_context({"font.family": chart_fonts()}):
        fig, ax = plt.subplots(figsize=(10, 0.8 * max(len(steps), 2) + 1.2), constrained_layout=True)
        y = np.arange(len(steps))
        ax.barh(y, [s.reached for s in steps], color="#c6dbef", label="到达 reached", gid=REACHED)
        ax.barh(y, [s.converted for s in steps], color="#2b8cbe", label="转化 converted", gid=CONVERTED)
        ax.set_yticks(
            y,
            [
                f"{zh.get(s.from_stage, s.from_stage)} → {zh.get(s.to_stage, s.to_stage)}\n"
                f"{s.from_stage} → {s.to_stage}"
                for s in steps
            ],
        )
        ax.invert_yaxis()
        for i, step in enumerate(steps):
            weak = report.weakest_link is not None and step.from_stage == report.weakest_link.from_stage
            share = f"{step.conversion:.0%}" if step.conversion is not None else "n/a"
            ax.annotate(
                f"{step.converted:,} / {step.reached:,} = {share}"
                + ("  ← 最薄弱环节 weakest link" if weak else ""),
                (step.reached, i),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                color="#b30000" if weak else "black",
            )
        ax.set_xlabel("客户数 customers")
        ax.set_xlim(0, max([s.reached for s in steps], default=1) * 1.45 or 1)
        ax.legend(loc="lower right")
        ax.set_title(
            f"{report.model} 漏斗 funnel ({report.window_days} 天内 within {report.window_days} days)"
        )
    return fig


def funnel_chart(report: FunnelReport, path: Path) -> Path:
    """The funnel written to a PNG file."""
    return _save(funnel_figure(report), path)
