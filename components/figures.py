"""The plotly figure of the Results page: the win rate against N, drawn when its tab is opened.

The run view's share bar and the Results page's win-rate bars and histograms are plain HTML
(``components.attribution_view.partition_bar_html``, ``components.html_charts``): plotly.js costs a new tab
about 1.3 s to load here, more than those simple bars are worth (bench/results/browser_speed.md).

Render-only: every number arrives computed; these functions only draw. Plotly renders a subset of HTML in
titles, tick labels, text and hover labels (``<b>``, ``<br>``, ``<a href>``), so every string that reaches a
figure goes through ``html.escape`` first (plotly decodes the entities back when it draws them). Hover
templates refer to values by ``%{...}`` and never embed given text directly.

Data shape (plain dicts, so any query layer can feed it): ``win_rate_vs_n_figure(points)`` takes
``{"n": int, "win_rate": float, "ci_low"?, "ci_high"?, "count"?, "series": str?}``; one line per series.
"""

from __future__ import annotations

import html
import math
from typing import Any, Mapping, Sequence

import plotly.graph_objects as go

from fusion.text import plural


FONT = dict(size=13)
REFERENCE_COLOR = "#6b7280"
SERIES_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")  # Okabe-Ito


def _e(text: object) -> str:
    """Escape text for plotly's pseudo-HTML; newlines become spaces (a label is one line)."""
    return html.escape(" ".join(str(text).split()), quote=True)



def _num(value: Any, what: str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number; got {value!r}") from None
    if not math.isfinite(x):
        raise ValueError(f"{what} must be finite; got {value!r}")
    return x


def _opt(row: Mapping[str, Any], key: str) -> float | None:
    v = row.get(key)
    if v is None:
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _errors(rows: Sequence[Mapping[str, Any]], values: Sequence[float]) -> dict[str, Any] | None:
    """Asymmetric error bars from ``ci_low``/``ci_high`` (None where a row has no interval)."""
    lows = [_opt(r, "ci_low") for r in rows]
    highs = [_opt(r, "ci_high") for r in rows]
    if all(lo is None or hi is None for lo, hi in zip(lows, highs)):
        return None
    plus = [max(0.0, hi - v) if hi is not None and lo is not None else 0.0 for v, lo, hi in zip(values, lows, highs)]
    minus = [max(0.0, v - lo) if hi is not None and lo is not None else 0.0 for v, lo, hi in zip(values, lows, highs)]
    return dict(type="data", symmetric=False, array=plus, arrayminus=minus, color="#6b7280", thickness=1.5, width=5)


def _layout(title: str | None, *, height: int, **extra: Any) -> dict[str, Any]:
    """The common layout as a dict, for one ``go.Figure(data, layout)`` call: each ``update_*`` or
    ``add_hline`` on a built figure re-validates it (tens of milliseconds per call on a results page)."""
    return dict(
        title=dict(text=_e(title)) if title else None,
        height=height,
        margin=dict(l=10, r=20, t=50 if title else 20, b=40),
        font=FONT,
        showlegend=False,
    ) | extra


def _reference_line(axis: str, value: float) -> dict[str, Any]:
    """A dashed line across the plot at ``value`` on ``axis`` ("x" or "y"), as a layout shape."""
    line = dict(color=REFERENCE_COLOR, dash="dash", width=1.5)
    if axis == "x":
        return dict(type="line", xref="x", yref="paper", x0=value, x1=value, y0=0, y1=1, line=line)
    return dict(type="line", xref="paper", yref="y", x0=0, x1=1, y0=value, y1=value, line=line)


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return int(value)


def win_rate_vs_n_figure(points: list[dict], *, title: str = "Win rate by number of candidates N") -> go.Figure:
    """Win rate against N with CI error bars, one line per ``series``, and the 50% reference line.
    Every point is labelled with its number of votes (``count``) when given."""
    by_series: dict[str, list[dict]] = {}
    for p in points:
        by_series.setdefault(str(p.get("series") or "Fusion-of-N vs Best-of-N"), []).append(p)
    traces = []
    for k, (series, rows) in enumerate(by_series.items()):
        rows = sorted(rows, key=lambda r: _num(r.get("n"), "n"))
        xs = [int(_num(r.get("n"), "n")) for r in rows]
        ys = [_num(r.get("win_rate"), f"win_rate at N={r.get('n')}") for r in rows]
        counts = [_count(r.get("count")) for r in rows]
        traces.append(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines+markers+text",
                name=_e(series),
                line=dict(color=SERIES_COLORS[k % len(SERIES_COLORS)], width=2),
                marker=dict(size=8),
                error_y=_errors(rows, ys),
                # n beside every point, so a point resting on a handful of votes reads as such.
                # "5 votes", not "n=5": on an axis of N, "n=5" at N = 3 reads as a mistake.
                text=[plural(c, "vote") if c is not None else "" for c in counts],
                textposition="top right",  # above the line: clear of the dashed 50% line and the error bar
                cliponaxis=False,  # the last point's label may reach into the right margin
                textfont=dict(size=11, color=REFERENCE_COLOR),
                customdata=[[c if c is not None else ""] for c in counts],
                hovertemplate="N=%{x}: %{y:.1%} (votes: %{customdata[0]})<extra>" + _e(series) + "</extra>",
            )
        )
    all_n = [int(_num(p.get("n"), "n")) for p in points]
    layout = _layout(
        title,
        height=380,
        margin=dict(l=10, r=60, t=50 if title else 20, b=40),
        shapes=[_reference_line("y", 0.5)],
        yaxis=dict(range=[0, 1], tickformat=".0%", title=dict(text="win rate (95% CI)")),
        xaxis=dict(
            title=dict(text="N (candidates)"),
            dtick=1,
            range=[min(all_n) - 0.5, max(all_n) + 0.5] if all_n else None,
        ),
        showlegend=len(by_series) > 1,
    )
    return go.Figure(data=traces, layout=layout)
