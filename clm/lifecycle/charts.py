"""PNG charts of lifecycle reports (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from clm.lifecycle.cohorts import CohortReport
from clm.lifecycle.funnel import FunnelReport


def cohort_heatmap(report: CohortReport, path: Path) -> Path:
    """Two heat maps side by side: share active and share purchasing, cohort × month."""
    rows = report.cohorts
    fig, axes = plt.subplots(1, 2, figsize=(14, 0.42 * max(len(rows), 4) + 1.8), constrained_layout=True)
    for ax, attr, title in ((axes[0], "active", "share active"), (axes[1], "purchasing", "share purchasing")):
        grid = np.array([[np.nan if v is None else v for v in getattr(c, attr)] for c in rows] or [[np.nan]])
        image = ax.imshow(
            grid, aspect="auto", cmap="YlGnBu", vmin=0, vmax=max(0.05, float(np.nanmax(grid)) if rows else 1)
        )
        ax.set_title(f"{title} by months since acquisition")
        ax.set_xlabel("months since acquisition")
        ax.set_ylabel("cohort (first seen)")
        ax.set_xticks(range(report.months))
        ax.set_yticks(range(len(rows)), [f"{c.cohort} ({c.customers:,})" for c in rows])
        for i in range(grid.shape[0]):
            for j in range(grid.shape[1]):
                if not np.isnan(grid[i, j]) and rows:
                    ax.text(j, i, f"{grid[i, j]:.0%}", ha="center", va="center", fontsize=7)
        fig.colorbar(image, ax=ax, format=lambda x, _: f"{x:.0%}")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def funnel_chart(report: FunnelReport, path: Path) -> Path:
    """Horizontal bars of customers reaching each funnel stage, conversions between them."""
    names = [report.steps[0].from_stage] + [s.to_stage for s in report.steps] if report.steps else []
    reached = [report.steps[0].reached] + [s.converted for s in report.steps] if report.steps else []
    fig, ax = plt.subplots(figsize=(8, 0.7 * max(len(names), 2) + 1), constrained_layout=True)
    ax.barh(range(len(names)), reached, color="#2b8cbe")
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    for i, step in enumerate(report.steps):
        weak = report.weakest_link is not None and step.from_stage == report.weakest_link.from_stage
        label = f"{step.conversion:.0%}" if step.conversion is not None else "n/a"
        ax.annotate(
            label + ("  ← weakest link" if weak else ""),
            (reached[i + 1], i + 1),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            color="#b30000" if weak else "black",
        )
    ax.set_title(f"{report.model} funnel (within {report.window_days} days)")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
