"""The lifecycle charts say what their numbers say: funnel bars match their labels, the running
month of a cohort is marked as partial (in the data and in the heat map), Chinese text renders."""

import re
import warnings
from datetime import UTC, date, datetime, timedelta

import matplotlib.pyplot as plt
import numpy as np
import pytest

from clm.core.fonts import cjk_font
from clm.core.timeutil import store_day
from clm.lifecycle.charts import (
    CONVERTED,
    PARTIAL,
    REACHED,
    cohort_figure,
    cohort_heatmap,
    funnel_chart,
    funnel_figure,
)
from clm.lifecycle.cohorts import Cohort, CohortReport, cohorts
from clm.lifecycle.funnel import FunnelReport, FunnelStep, StageStat


def _step(a: str, b: str, reached: int, converted: int) -> FunnelStep:
    return FunnelStep(
        from_stage=a,
        to_stage=b,
        reached=reached,
        converted=converted,
        conversion=converted / reached if reached else None,
        median_days_to_convert=None,
    )


def _funnel() -> FunnelReport:
    # who reached a stage with a full window differs from who converted into it one step before
    # (100 converted into activation, only 80 of them have had a full window since): the old chart
    # drew bars 200, 100, 20 and labelled the third "25%" although 20 is a fifth of 100
    steps = [_step("acquisition", "activation", 200, 100), _step("activation", "retention", 80, 20)]
    stages = [
        StageStat(stage=k, name_en=k, name_zh=zh, customers_now=0, entries=0, median_days_in_stage=None)
        for k, zh in (("acquisition", "获取"), ("activation", "激活"), ("retention", "留存"))
    ]
    return FunnelReport(model="clm5", window_days=180, stages=stages, steps=steps, weakest_link=steps[1])


def _bars(ax, gid):
    return [p for p in ax.patches if p.get_gid() == gid]


def test_funnel_bars_are_as_long_as_their_labels_say():
    report = _funnel()
    fig = funnel_figure(report)
    ax = fig.axes[0]
    reached, converted = _bars(ax, REACHED), _bars(ax, CONVERTED)
    assert [b.get_width() for b in reached] == [200, 80]
    assert [b.get_width() for b in converted] == [100, 20]
    labels = [t.get_text() for t in ax.texts]
    assert labels[0] == "100 / 200 = 50%" and labels[1].startswith("20 / 80 = 25%")
    for bar_r, bar_c, label in zip(reached, converted, labels, strict=True):
        share = int(re.search(r"= (\d+)%", label).group(1)) / 100
        assert bar_c.get_width() / bar_r.get_width() == pytest.approx(share)
        assert bar_c.get_y() == bar_r.get_y()  # the pair sits on one row
    assert "最薄弱环节" in labels[1]
    plt.close(fig)


def _month_start(months_back: int) -> datetime:
    now = datetime.now(UTC)
    number = now.year * 12 + now.month - 1 - months_back
    return datetime(number // 12, number % 12 + 1, 1, 12, tzinfo=UTC)


def test_the_running_month_is_partial_in_the_data_and_hatched_in_the_heat_map(
    shop, engine, tmp_path, db_url, capsys
):
    two_ago, last, this = _month_start(2), _month_start(1), _month_start(0)
    shop.customer("a", two_ago.date().isoformat())
    shop.order("a", (two_ago + timedelta(days=3)).date().isoformat(), 10)
    shop.event("a", "page_view", (last + timedelta(days=2)).date().isoformat())
    shop.customer("b", last.date().isoformat())
    shop.customer("c", this.date().isoformat())
    report = cohorts(engine, months=4, since=two_ago.date())
    assert [(c.cohort, c.partial) for c in report.cohorts] == [
        (f"{two_ago:%Y-%m}", 2),
        (f"{last:%Y-%m}", 1),
        (f"{this:%Y-%m}", 0),
    ]
    assert report.cohorts[0].active == [1.0, 1.0, 0.0, None]  # the 0.0 is the month so far
    assert report.as_of == store_day(datetime.now(UTC))  # the store's day (Asia/Shanghai)
    old = Cohort(cohort="2020-01", customers=5, active=[1.0, 0.4], purchasing=[0.2, 0.0])
    assert old.partial is None  # a report made before the field existed still reads

    fig = cohort_figure(report)
    for ax in fig.axes[:2]:
        hatched = sorted(
            (round(p.get_y() + 0.5), round(p.get_x() + 0.5)) for p in ax.patches if p.get_gid() == PARTIAL
        )
        assert hatched == [(0, 2), (1, 1), (2, 0)]
        colours = ax.images[0].get_array()
        for row, col in hatched:  # not coloured as if it were a full month
            assert np.ma.is_masked(colours[row, col])
        assert not np.ma.is_masked(colours[0, 1])
        starred = {t.get_text() for t in ax.texts if t.get_text().endswith("*")}
        assert starred and all(re.fullmatch(r"\d+%\*", s) for s in starred)
    assert "month still running" in fig.get_supxlabel()
    plt.close(fig)
    png = cohort_heatmap(report, tmp_path / "c.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    from clm.cli import main

    since = two_ago.date().isoformat()
    assert main(["--db", db_url, "cohorts", "--months", "4", "--since", since, "--json"]) == 0
    assert [c["partial"] for c in __import__("json").loads(capsys.readouterr().out)["cohorts"]] == [2, 1, 0]
    assert main(["--db", db_url, "cohorts", "--months", "4", "--since", since]) == 0
    out = capsys.readouterr().out
    assert "0% (0%)*" in out and "month still running" in out


def _glyph_warnings(draw) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        draw()
    return [str(w.message) for w in caught if "missing from" in str(w.message) or "Glyph" in str(w.message)]


def test_chinese_labels_render_without_missing_glyphs(tmp_path):
    assert cjk_font() is not None, "install fonts-noto-cjk (.ci/run does)"
    report = _funnel()
    assert _glyph_warnings(lambda: funnel_chart(report, tmp_path / "f.png")) == []
    assert (
        _glyph_warnings(
            lambda: cohort_heatmap(
                CohortReport(
                    months=2,
                    cohorts=[
                        Cohort(
                            cohort="2026-01", customers=3, active=[1.0, 0.5], purchasing=[0.3, 0.1], partial=1
                        )
                    ],
                    as_of=date(2026, 2, 10),
                ),
                tmp_path / "c.png",
            )
        )
        == []
    )

    from clm.feedback.charts import distribution_chart
    from clm.feedback.results import Results, Scores

    answers = Scores(label="all", responses=3, distribution={3: 1, 9: 2}, promoters=2, nps=66.7)
    survey = Results(
        kind="nps", survey="购买后满意度", start=None, end=None, by=None, overall=answers, groups=[]
    )
    assert _glyph_warnings(lambda: distribution_chart(survey, tmp_path / "s.png")) == []

    # the check can fail: the same label in matplotlib's default font lacks the glyphs
    def plain() -> None:
        with plt.rc_context({"font.family": ["DejaVu Sans"]}):
            fig, ax = plt.subplots()
            ax.set_title("获取 → 激活")
            fig.savefig(tmp_path / "plain.png")
            plt.close(fig)

    assert _glyph_warnings(plain)


def test_without_a_cjk_font_charts_warn_and_still_draw():
    with pytest.warns(UserWarning, match="fonts-noto-cjk"):
        assert cjk_font(("No Such Font For CLM",)) is None
