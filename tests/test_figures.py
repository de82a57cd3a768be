"""The Results page's charts: every win-rate bar labelled with its n (a 0% bar too), "no CI" where a group
has no interval, counts on integer bins, percentages binned over exactly 0-100% (components.html_charts),
and the plotly figure of the win rate against N (components.figures)."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from components.figures import win_rate_vs_n_figure
from components.html_charts import histogram_bins, histogram_html, win_rate_bars_html, win_rate_label


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):  # noqa: ANN001
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):  # noqa: ANN001
        self.text.append(data)


def parse(doc: str) -> Tags:
    t = Tags()
    t.feed(doc)
    return t


def test_every_win_rate_bar_has_a_label_with_n_even_at_zero() -> None:
    groups = [
        {"label": "scenario:first-marathon", "win_rate": 0.62, "ci_low": 0.5, "ci_high": 0.74, "n": 40, "runs": 20},
        {"label": "scenario:lighthouse-story", "win_rate": 0.0, "n": 2, "runs": 1},
        {"label": "<b>dee</b>", "win_rate": 1.0, "n": 1, "runs": 1},
        {"label": "only both bad", "win_rate": None, "n": 3},  # no rate: no bar (the table says why)
    ]
    t = parse(win_rate_bars_html(groups, title="Win rate by model"))
    rows = [a for tag, a in t.tags if "fx-rate-row" in (a.get("class") or "")]
    assert [r["data-label"] for r in rows] == ["scenario:first-marathon", "scenario:lighthouse-story", "<b>dee</b>"]
    assert [float(r["data-rate"]) for r in rows] == [0.62, 0.0, 1.0]
    texts = [x for x in t.text if "(n=" in x]
    assert texts == ["62% (n=40)", "0% (n=2, no CI)", "100% (n=1, no CI)"]
    # A whisker only where there is an interval; the label is text, never markup.
    assert sum("fx-ci" in (a.get("class") or "") for _, a in t.tags) == 1
    assert "b" not in {tag for tag, _ in t.tags}
    assert win_rate_bars_html([{"label": "x", "win_rate": None}], title="t") == ""


def test_win_rate_label() -> None:
    assert win_rate_label(0.5, 12, True) == "50% (n=12)"
    assert win_rate_label(0.25, 3, False) == "25% (n=3, no CI)"
    assert win_rate_label(1.0, None, True) == "100%"


def test_integer_histogram_has_one_bin_per_count() -> None:
    bins = histogram_bins([1, 2, 2, 3, 3, 3, 5, None], integer=True)
    # Bins [0.5, 1.5), [1.5, 2.5) ... one per whole number from 1 to 5; 4 has no run.
    assert bins.labels == ["1", "2", "3", "4", "5"] and bins.counts == [1, 2, 3, 0, 1]
    t = parse(histogram_html(bins, title="Candidates contributing", xlabel="candidates", integer=True))
    assert [a["data-bin"] for _, a in t.tags if "fx-hist-bin" in (a.get("class") or "")] == bins.labels
    assert not any("." in x for x in t.text if x.strip().replace(".", "").isdigit())  # no "3.5" tick


def test_percent_histogram_spans_exactly_0_to_100_and_counts_the_top_edge() -> None:
    bins = histogram_bins([0.0, 12.0, 99.0, 100.0, 100.0, float("nan")], value_range=(0, 100), nbins=20)
    assert len(bins.counts) == 20 and bins.edges[0] == 0 and bins.edges[-1] == 100
    # 100 falls in the last, closed bin [95, 100] with 99; 0 in the first; 12 in [10, 15).
    assert bins.counts[-1] == 3 and bins.counts[0] == 1 and bins.counts[2] == 1 and sum(bins.counts) == 5
    assert bins.labels[0] == "0 to 5"


def test_win_rate_against_n_labels_points_with_their_votes() -> None:
    fig = win_rate_vs_n_figure([{"n": 2, "win_rate": 0.5, "count": 6}, {"n": 8, "win_rate": 0.7, "count": 17}])
    assert list(fig.data[0].text) == ["6 votes", "17 votes"]
    assert list(fig.layout.xaxis.range) == [1.5, 8.5]
