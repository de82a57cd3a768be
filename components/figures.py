"""Plotly figures for the run page (attribution shares) and the results page (win rates, distributions).

Render-only: every number arrives computed; these functions only draw. Plotly renders a subset of HTML in
titles, tick labels, text and hover labels (``<b>``, ``<br>``, ``<a href>``), so every string that reaches a
figure goes through ``html.escape`` first (plotly decodes the entities back when it draws them). Hover
templates refer to values by ``%{...}`` and never embed given text directly.

Data shapes for the results page (plain dicts, so any query layer can feed them):

* ``win_rate_figure(groups)``: ``{"label": str, "win_rate": float, "ci_low": float?, "ci_high": float?,
  "n": int?, "runs": int?}``; rates are fractions 0..1. A group without ``ci_low``/``ci_high`` is drawn
  without an error bar and labelled "no CI".
* ``win_rate_vs_n_figure(points)``: ``{"n": int, "win_rate": float, "ci_low"?, "ci_high"?, "count"?,
  "series": str?}``; one line per series.
* ``position_bias_figure(rows)``: ``{"position": int | str, "value": float, "ci_low"?, "ci_high"?, "n"?}``;
  int positions are 0-based (as ``FusedOutput.order``) and shown 1-based.
"""

from __future__ import annotations

import html
import math
from typing import Any, Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from components import palette
from fusion.types import Attribution

FONT = dict(size=13)
REFERENCE_COLOR = "#6b7280"
SERIES_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")  # Okabe-Ito
BAR_COLOR = "#0072B2"
# Win-rate labels sit at x = 100%, pushed right of an error bar's cap there by two no-break spaces (SVG
# keeps them; a point placed beyond the fixed 0-100% range would not be drawn at all).
LABEL_PAD = "\u00a0\u00a0"


def _e(text: object) -> str:
    """Escape text for plotly's pseudo-HTML; newlines become spaces (a label is one line)."""
    return html.escape(" ".join(str(text).split()), quote=True)


def _label(labels: Sequence[str], i: int) -> str:
    if 0 <= i < len(labels) and str(labels[i]).strip():
        return str(labels[i])
    return f"Candidate {i + 1}"


def _unique_labels(labels: Sequence[str]) -> list[str]:
    """Escaped labels, made unique: a category axis would merge two bars with the same name."""
    seen: dict[str, int] = {}
    out: list[str] = []
    for i in range(len(labels)):
        lab = _e(_label(labels, i))
        if lab in seen:
            lab = f"{lab} (#{i + 1})"
        seen[lab] = i
        out.append(lab)
    return out


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


def _base_layout(fig: go.Figure, title: str | None, *, height: int) -> None:
    fig.update_layout(
        title=dict(text=_e(title)) if title else None,
        height=height,
        margin=dict(l=10, r=20, t=50 if title else 20, b=40),
        font=FONT,
        showlegend=False,
    )


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


def shares_figure(attribution: Attribution, labels: Sequence[str]) -> go.Figure:
    """Share of the fused text each candidate supplies, and how much of it is copied versus new.

    Trace 0: one horizontal bar per candidate (its colour). Traces 1 and 2: one stacked bar, copied from
    some candidate and new text. Shares can sum above 100% because shared text counts for each source.
    """
    n = max(len(labels), len(attribution.shares))
    names = _unique_labels([_label(labels, i) for i in range(n)])
    shares = [float(attribution.shares[i]) if i < len(attribution.shares) else 0.0 for i in range(n)]
    copied = min(1.0, max(0.0, float(attribution.copied_fraction)))

    height = 170 + 30 * max(n, 1)
    fig = make_subplots(
        rows=2,
        cols=1,
        row_heights=[max(n, 1), 1.3],
        # A fixed ~80 px gap: the second subplot's title must clear the first one's tick labels.
        vertical_spacing=80 / (height - 80),
        subplot_titles=("Share of the fused text by candidate", "Copied from candidates vs new text"),
    )
    fig.add_trace(
        go.Bar(
            x=shares,
            y=names,
            orientation="h",
            name="share",
            marker=dict(
                color=[palette.candidate_color(i) for i in range(n)],
                line=dict(color=[palette.candidate_border(i) for i in range(n)], width=1.5),
            ),
            text=[f"{s:.0%}" for s in shares],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{y}: %{x:.1%} of the fused text<extra></extra>",
        ),
        row=1,
        col=1,
    )
    for name, value, color in (
        ("copied from candidates", copied, palette.COPIED_FILL),
        ("new text", 1.0 - copied, palette.NOVEL_FILL),
    ):
        fig.add_trace(
            go.Bar(
                x=[value],
                y=["fused text"],
                orientation="h",
                name=name,
                marker=dict(color=color, line=dict(color=palette.NOVEL_BORDER, width=1)),
                text=[f"{name}: {value:.0%}"],
                textposition="inside",
                insidetextanchor="middle",
                textfont=dict(color=palette.TEXT_ON_COLOR),
                hovertemplate=f"{name}: %{{x:.1%}}<extra></extra>",
            ),
            row=2,
            col=1,
        )
    top = max([1.0] + shares)
    fig.update_xaxes(range=[0, top * 1.12], tickformat=".0%", row=1, col=1)
    fig.update_xaxes(range=[0, 1], tickformat=".0%", row=2, col=1)
    fig.update_yaxes(autorange="reversed", row=1, col=1)
    fig.update_layout(barmode="stack", bargap=0.25)
    _base_layout(fig, None, height=height)
    fig.update_layout(margin=dict(t=40))
    return fig


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return int(value)


def _has_ci(row: Mapping[str, Any]) -> bool:
    return _opt(row, "ci_low") is not None and _opt(row, "ci_high") is not None


def win_rate_label(rate: float, n: int | None, has_ci: bool) -> str:
    """The text beside a win-rate bar: the rate, the number of votes, and "no CI" when there is none."""
    notes = ([f"n={n}"] if n is not None else []) + ([] if has_ci else ["no CI"])
    return f"{rate:.0%}" + (f" ({', '.join(notes)})" if notes else "")


def win_rate_figure(groups: list[dict], *, title: str = "Fusion-of-N win rate against Best-of-N") -> go.Figure:
    """Win rate per group as horizontal bars with 95% CI error bars and a dashed 50% line.

    Every bar is labelled in a column right of the plot (rate, n, "no CI" where a group has no interval),
    so a 0% bar, which has no width to hold a label, is labelled too.
    """
    labels = _unique_labels([str(g.get("label", g.get("group", ""))) or f"group {k + 1}" for k, g in enumerate(groups)])
    rates = [_num(g.get("win_rate"), f"win_rate of {labels[k]}") for k, g in enumerate(groups)]
    ns = [_count(g.get("n")) for g in groups]
    runs = [_count(g.get("runs")) for g in groups]
    text = [win_rate_label(r, n, _has_ci(g)) for r, n, g in zip(rates, ns, groups)]
    ci = [
        f"{_opt(g, 'ci_low'):.0%} to {_opt(g, 'ci_high'):.0%}" if _has_ci(g) else "no interval (too few runs or no spread)"
        for g in groups
    ]
    height = 140 + 40 * max(len(groups), 1)
    bars = go.Bar(
        x=rates,
        y=labels,
        orientation="h",
        marker=dict(color=BAR_COLOR),
        error_x=_errors(groups, rates),
        text=text,
        textposition="none",  # drawn by the label column (trace 1), outside the bars
        customdata=[[c, "" if n is None else n, "" if r is None else r] for c, n, r in zip(ci, ns, runs)],
        name="win rate",
        hovertemplate="%{y}: %{x:.1%}<br>95% CI: %{customdata[0]}<br>votes: %{customdata[1]}, "
        "runs: %{customdata[2]}<extra></extra>",
    )
    # One text trace at the right edge rather than an annotation per bar: plotly validates every
    # annotation separately, which made a 17-group figure take ~150 ms to build.
    column = go.Scatter(
        x=[1.0] * len(labels),
        y=labels,
        mode="text",
        text=[LABEL_PAD + t for t in text],
        textposition="middle right",
        textfont=dict(size=12),
        cliponaxis=False,
        hoverinfo="skip",
        name="labels",
    )
    layout = _layout(
        title,
        height=height,
        margin=dict(l=10, r=150, t=50 if title else 20, b=40),
        shapes=[_reference_line("x", 0.5)],
        annotations=[
            dict(x=0.5, y=1.0, xref="x", yref="paper", yanchor="bottom", text="50%: no difference",
                 showarrow=False, font=dict(size=11, color=REFERENCE_COLOR))
        ],
        xaxis=dict(range=[0, 1], tickformat=".0%", title=dict(text="win rate (95% CI where there are enough runs)")),
        yaxis=dict(autorange="reversed"),
    )  # fmt: skip
    return go.Figure(data=[bars, column], layout=layout)


def histogram_figure(
    values: Sequence[float],
    title: str,
    xlabel: str,
    *,
    nbins: int | None = None,
    integer: bool = False,
    value_range: tuple[float, float] | None = None,
) -> go.Figure:
    """A histogram of ``values`` (None and non-finite values are left out).

    ``integer``: the values are counts; every integer gets its own bar, centred on its tick, and the axis
    shows integer ticks only (plotly's automatic bins would put ticks such as 3.5 under a count).
    ``value_range``: values are known to lie in it (percentages: 0 to 100); ``nbins`` equal bins span it
    exactly, the last one closed, so a value at the top edge is counted and drawn inside the axis.
    Otherwise plotly chooses the bins. Hover shows each bar's range and count.
    """
    raw = np.asarray([np.nan if v is None else float(v) for v in values], dtype=float)
    clean = raw[np.isfinite(raw)]
    xaxis: dict[str, Any] = dict(title=dict(text=_e(xlabel)))
    marker = dict(color=BAR_COLOR, line=dict(color="#ffffff", width=1))
    if integer or value_range is not None:
        # Bins computed here (numpy), drawn as bars: exact edges, and one small typed array to send.
        if integer:
            lo = math.floor(clean.min()) if len(clean) else 0
            hi = math.ceil(clean.max()) if len(clean) else 1
            edges = np.arange(lo - 0.5, hi + 1.0, 1.0)
            xaxis |= dict(dtick=1, tick0=0, tickformat="d")
        else:
            lo, hi = (float(value_range[0]), float(value_range[1])) if value_range else (0.0, 1.0)
            edges = np.linspace(lo, hi, int(nbins or 20) + 1)
            xaxis |= dict(range=[lo, hi])
        counts, _ = np.histogram(np.clip(clean, edges[0], edges[-1]), bins=edges)
        centres = (edges[:-1] + edges[1:]) / 2
        fmt = (lambda a, b: f"{(a + b) / 2:.0f}") if integer else (lambda a, b: f"{a:g} to {b:g}")
        trace: go.Bar | go.Histogram = go.Bar(
            x=centres,
            y=counts,
            width=np.diff(edges),
            marker=marker,
            name=_e(xlabel),
            customdata=[[fmt(a, b)] for a, b in zip(edges[:-1], edges[1:])],
            hovertemplate="%{customdata[0]}: %{y}<extra></extra>",
        )
    else:
        # A numpy array, not a list: plotly sends it as one typed array instead of checking every element.
        trace = go.Histogram(
            x=clean,
            nbinsx=nbins,
            marker=marker,
            name=_e(xlabel),
            hovertemplate="%{x}: %{y}<extra></extra>",
        )
    layout = _layout(title, height=320, xaxis=xaxis, yaxis=dict(title=dict(text="count")), bargap=0)
    return go.Figure(data=[trace], layout=layout)


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
                text=[f"n={c}" if c is not None else "" for c in counts],
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


def position_bias_figure(
    rows: list[dict],
    *,
    title: str = "Share of the fused text by position shown to the fusor",
    xlabel: str = "position in the fusor's input",
    ylabel: str = "mean share of the fused text",
    reference: float | None = None,
) -> go.Figure:
    """A value per position (bars with optional CI) and an optional dashed reference line.

    For the fusor: mean attribution share of the candidate shown at each position, with ``reference`` =
    1/N (no bias). For the A/B vote: rows "Response A"/"Response B" with the rate each side won, reference
    0.5. Every bar is labelled with its value and n; a short bar's label goes above it.
    """
    xs = [f"position {r['position'] + 1}" if isinstance(r.get("position"), int) else _e(r.get("position")) for r in rows]
    ys = [_num(r.get("value"), f"value at {x}") for r, x in zip(rows, xs)]
    ns = [_count(r.get("n")) for r in rows]
    top = max([0.0] + ys)
    inside = [bool(top) and y >= 0.15 * top for y in ys]
    bars = go.Bar(
        x=xs,
        y=ys,
        marker=dict(color=BAR_COLOR),
        error_y=_errors(rows, ys),
        text=[f"{y:.0%}" + (f" (n={n})" if n is not None else "") for y, n in zip(ys, ns)],
        textposition=["inside" if i else "outside" for i in inside],
        insidetextanchor="start",  # at the foot of the bar, clear of the error bar at its top
        textfont=dict(color=["#ffffff" if i else "#111827" for i in inside]),
        cliponaxis=False,
        customdata=[[n if n is not None else ""] for n in ns],
        name="value",
        hovertemplate="%{x}: %{y:.1%} (n=%{customdata[0]})<extra></extra>",
    )
    shapes: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    if reference is not None:
        ref = _num(reference, "reference")
        shapes.append(_reference_line("y", ref))
        annotations.append(
            dict(x=1.0, xref="paper", xanchor="right", y=ref, yref="y", yanchor="bottom", showarrow=False,
                 text=f"no bias: {ref:.0%}", font=dict(size=11, color=REFERENCE_COLOR))
        )  # fmt: skip
    layout = _layout(
        title,
        height=340,
        shapes=shapes,
        annotations=annotations,
        yaxis=dict(tickformat=".0%", title=dict(text=_e(ylabel)), rangemode="tozero"),
        xaxis=dict(title=dict(text=_e(xlabel)), type="category"),
    )
    return go.Figure(data=[bars], layout=layout)
