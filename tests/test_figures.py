"""components.figures for the Results page: every bar labelled with its n (a 0% bar too), "no CI" where a
group has no interval, counts on integer bins, percentages binned over exactly 0-100%."""

from __future__ import annotations

import pytest

from components.figures import (
    histogram_figure,
    position_bias_figure,
    win_rate_figure,
    win_rate_label,
    win_rate_vs_n_figure,
)


def test_every_win_rate_bar_has_a_label_with_n_even_at_zero() -> None:
    groups = [
        {"label": "scenario:first-marathon", "win_rate": 0.62, "ci_low": 0.5, "ci_high": 0.74, "n": 40, "runs": 20},
        {"label": "scenario:lighthouse-story", "win_rate": 0.0, "n": 2, "runs": 1},
        {"label": "dee", "win_rate": 1.0, "n": 1, "runs": 1},
    ]
    fig = win_rate_figure(groups)
    bars, column = fig.data
    assert list(bars.x) == [0.62, 0.0, 1.0]
    # The label column: one text per bar, right of the plot, whatever the bar's width.
    assert list(column.y) == list(bars.y) and list(column.x) == [1.0, 1.0, 1.0]
    assert [t.strip("\u00a0") for t in column.text] == ["62% (n=40)", "0% (n=2, no CI)", "100% (n=1, no CI)"]
    assert column.mode == "text" and column.cliponaxis is False
    # Error bars only where there is an interval.
    assert list(bars.error_x.array) == pytest.approx([0.12, 0.0, 0.0])
    assert "no interval" in bars.customdata[1][0] and bars.customdata[0][0] == "50% to 74%"


def test_win_rate_label() -> None:
    assert win_rate_label(0.5, 12, True) == "50% (n=12)"
    assert win_rate_label(0.25, 3, False) == "25% (n=3, no CI)"
    assert win_rate_label(1.0, None, True) == "100%"


def test_integer_histogram_has_one_centred_bar_per_count() -> None:
    fig = histogram_figure([1, 2, 2, 3, 3, 3, 5, None], "Candidates contributing", "candidates", integer=True)
    bar = fig.data[0]
    # Bins [0.5, 1.5), [1.5, 2.5) ... centred on 1 to 5; 4 has no run.
    assert list(bar.x) == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert list(bar.y) == [1, 2, 3, 0, 1]
    assert list(bar.width) == [1.0] * 5
    assert fig.layout.xaxis.dtick == 1 and fig.layout.xaxis.tickformat == "d"


def test_percent_histogram_spans_exactly_0_to_100_and_counts_the_top_edge() -> None:
    fig = histogram_figure([0.0, 12.0, 99.0, 100.0, 100.0], "Copied", "copied (%)", value_range=(0, 100), nbins=20)
    bar = fig.data[0]
    assert len(bar.x) == 20 and bar.x[0] == pytest.approx(2.5) and bar.x[-1] == pytest.approx(97.5)
    # 100 falls in the last, closed bin [95, 100] with 99; 0 in the first; 12 in [10, 15).
    assert bar.y[-1] == 3 and bar.y[0] == 1 and bar.y[2] == 1 and sum(bar.y) == 5
    assert list(fig.layout.xaxis.range) == [0, 100]
    assert bar.customdata[0][0] == "0 to 5"


def test_position_bias_labels_short_bars_above_them() -> None:
    fig = position_bias_figure(
        [{"position": "A", "value": 0.95, "n": 19}, {"position": "B", "value": 0.05, "n": 1}], reference=0.5
    )
    bar = fig.data[0]
    assert list(bar.text) == ["95% (n=19)", "5% (n=1)"]
    assert list(bar.textposition) == ["inside", "outside"]


def test_win_rate_against_n_labels_points_with_their_votes() -> None:
    fig = win_rate_vs_n_figure([{"n": 2, "win_rate": 0.5, "count": 6}, {"n": 8, "win_rate": 0.7, "count": 17}])
    assert list(fig.data[0].text) == ["n=6", "n=17"]
    assert list(fig.layout.xaxis.range) == [1.5, 8.5]
