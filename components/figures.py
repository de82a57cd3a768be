"""Plotly figures for the run page (attribution shares) and the results page (win rates, distributions).

Render-only: every number arrives computed; these functions only draw. Plotly renders a subset of HTML in
titles, tick labels, text and hover labels (``<b>``, ``<br>``, ``<a href>``), so every string that reaches a
figure goes through ``html.escape`` first (plotly decodes the entities back when it draws them). Hover
templates refer to values by ``%{...}`` and never embed given text directly.

Data shapes for the results page (plain dicts, so any query layer can feed them):

* ``win_rate_figure(groups)``: ``{"label": str, "win_rate": float, "ci_low": float?, "ci_high": float?,
  "n": int?}``; rates are fractions 0..1.
* ``win_rate_vs_n_figure(points)``: ``{"n": int, "win_rate": float, "ci_low"?, "ci_high"?, "count"?,
  "series": str?}``; one line per series.
* ``position_bias_figure(rows)``: ``{"position": int | str, "value": float, "ci_low"?, "ci_high"?, "n"?}``;
  int positions are 0-based (as ``FusedOutput.order``) and shown 1-based.
"""

from __future__ import annotations

import html
import math
from typing import Any, Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from components import palette
from fusion.types import Attribution

FONT = dict(size=13)
REFERENCE_COLOR = "#6b7280"
SERIES_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")  # Okabe-Ito
BAR_COLOR = "#0072B2"


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


def win_rate_figure(groups: list[dict], *, title: str = "Fusion-of-N win rate against Best-of-N") -> go.Figure:
    """Win rate per group as horizontal bars with 95% CI error bars and a dashed 50% line."""
    labels = _unique_labels([str(g.get("label", g.get("group", ""))) or f"group {k + 1}" for k, g in enumerate(groups)])
    rates = [_num(g.get("win_rate"), f"win_rate of {labels[k]}") for k, g in enumerate(groups)]
    ns = [g.get("n") for g in groups]
    text = [f"{r:.0%}" + (f" (n={int(n)})" if isinstance(n, (int, float)) and not isinstance(n, bool) else "") for r, n in zip(rates, ns)]
    fig = go.Figure(
        go.Bar(
            x=rates,
            y=labels,
            orientation="h",
            marker=dict(color=BAR_COLOR),
            error_x=_errors(groups, rates),
            text=text,
            textposition="inside",
            insidetextanchor="start",
            textfont=dict(color="#ffffff"),
            name="win rate",
            hovertemplate="%{y}: %{x:.1%}<extra></extra>",
        )
    )
    fig.add_vline(x=0.5, line=dict(color=REFERENCE_COLOR, dash="dash", width=1.5))
    fig.add_annotation(x=0.5, y=1.0, yref="paper", yanchor="bottom", text="50%: no difference", showarrow=False,
                       font=dict(size=11, color=REFERENCE_COLOR))
    fig.update_xaxes(range=[0, 1], tickformat=".0%", title_text="win rate (95% CI)")
    fig.update_yaxes(autorange="reversed")
    _base_layout(fig, title, height=140 + 40 * max(len(groups), 1))
    return fig


def histogram_figure(values: Sequence[float], title: str, xlabel: str, *, nbins: int | None = None) -> go.Figure:
    """A plain histogram of ``values`` (None and non-finite values are left out)."""
    clean = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    fig = go.Figure(
        go.Histogram(
            x=clean,
            nbinsx=nbins,
            marker=dict(color=BAR_COLOR, line=dict(color="#ffffff", width=1)),
            name=_e(xlabel),
            hovertemplate="%{x}: %{y}<extra></extra>",
        )
    )
    fig.update_xaxes(title_text=_e(xlabel))
    fig.update_yaxes(title_text="count")
    _base_layout(fig, title, height=320)
    return fig


def win_rate_vs_n_figure(points: list[dict], *, title: str = "Win rate by number of candidates N") -> go.Figure:
    """Win rate against N with CI error bars, one line per ``series``, and the 50% reference line."""
    by_series: dict[str, list[dict]] = {}
    for p in points:
        by_series.setdefault(str(p.get("series") or "Fusion-of-N vs Best-of-N"), []).append(p)
    fig = go.Figure()
    for k, (series, rows) in enumerate(by_series.items()):
        rows = sorted(rows, key=lambda r: _num(r.get("n"), "n"))
        xs = [int(_num(r.get("n"), "n")) for r in rows]
        ys = [_num(r.get("win_rate"), f"win_rate at N={r.get('n')}") for r in rows]
        counts = [r.get("count") for r in rows]
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines+markers",
                name=_e(series),
                line=dict(color=SERIES_COLORS[k % len(SERIES_COLORS)], width=2),
                marker=dict(size=8),
                error_y=_errors(rows, ys),
                customdata=[[c if c is not None else ""] for c in counts],
                hovertemplate="N=%{x}: %{y:.1%} (votes: %{customdata[0]})<extra>" + _e(series) + "</extra>",
            )
        )
    fig.add_hline(y=0.5, line=dict(color=REFERENCE_COLOR, dash="dash", width=1.5))
    fig.update_yaxes(range=[0, 1], tickformat=".0%", title_text="win rate (95% CI)")
    fig.update_xaxes(title_text="N (candidates)", dtick=1)
    _base_layout(fig, title, height=380)
    fig.update_layout(showlegend=len(by_series) > 1)
    return fig


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
    0.5.
    """
    xs = [f"position {r['position'] + 1}" if isinstance(r.get("position"), int) else _e(r.get("position")) for r in rows]
    ys = [_num(r.get("value"), f"value at {x}") for r, x in zip(rows, xs)]
    ns = [r.get("n") for r in rows]
    fig = go.Figure(
        go.Bar(
            x=xs,
            y=ys,
            marker=dict(color=BAR_COLOR),
            error_y=_errors(rows, ys),
            text=[f"{y:.0%}" for y in ys],
            textposition="inside",
            textfont=dict(color="#ffffff"),
            customdata=[[n if n is not None else ""] for n in ns],
            name="value",
            hovertemplate="%{x}: %{y:.1%} (n=%{customdata[0]})<extra></extra>",
        )
    )
    if reference is not None:
        ref = _num(reference, "reference")
        fig.add_hline(y=ref, line=dict(color=REFERENCE_COLOR, dash="dash", width=1.5))
        fig.add_annotation(x=1.0, xref="paper", xanchor="right", y=ref, yanchor="bottom", showarrow=False,
                           text=f"no bias: {ref:.0%}", font=dict(size=11, color=REFERENCE_COLOR))
    fig.update_yaxes(tickformat=".0%", title_text=_e(ylabel), rangemode="tozero")
    fig.update_xaxes(title_text=_e(xlabel), type="category")
    _base_layout(fig, title, height=340)
    return fig
