"""Bar charts drawn as plain HTML for the Results page: win rates with their intervals, and histograms.

Why not plotly here: plotly.js takes the browser about 1.3 s to load and compile in a new tab on these
machines, which alone breaks the Results page's 1.5 s budget (bench/results/browser_speed.md), and these
charts are plain bars: a row of ``<div>``s sized by their value draws them exactly, at once, and scales with
the page. The interactive plotly figure stays where it earns its cost (the win rate against N, in its tab).

Render-only: every number arrives computed (the bins with numpy). Every label is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from components.attribution_view import esc

BAR_COLOR = "#0072B2"
REFERENCE_COLOR = "#6b7280"


def win_rate_label(rate: float, n: int | None, has_ci: bool) -> str:
    """The text beside a win-rate bar: the rate, the number of votes, and "no CI" when there is none."""
    notes = ([f"n={n}"] if n is not None else []) + ([] if has_ci else ["no CI"])
    return f"{rate:.0%}" + (f" ({', '.join(notes)})" if notes else "")


def _opt(row: Mapping[str, Any], key: str) -> float | None:
    value = row.get(key)
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return int(value)


def win_rate_bars_html(groups: Sequence[Mapping[str, Any]], *, title: str) -> str:
    """One row per group: its label, a bar for the win rate (0 to 100%, a dashed line at 50%), a whisker
    for the 95% interval where there is one, and a label with the rate and n ("no CI" where there is none),
    so a 0% bar is labelled too. Groups: ``{"label", "win_rate", "ci_low"?, "ci_high"?, "n"?, "runs"?}``."""
    rows: list[str] = []
    for k, g in enumerate(groups):
        label = str(g.get("label", "")) or f"group {k + 1}"
        rate = _opt(g, "win_rate")
        if rate is None:
            continue
        low, high = _opt(g, "ci_low"), _opt(g, "ci_high")
        has_ci = low is not None and high is not None
        n, runs = _count(g.get("n")), _count(g.get("runs"))
        text = win_rate_label(rate, n, has_ci)
        tip = f"{label}: {rate:.1%}" + (f", 95% CI {low:.0%} to {high:.0%}" if has_ci else ", no interval")
        if n is not None:
            tip += f"; {n} votes in the rate" + (f" on {runs} runs" if runs is not None else "")
        whisker = (
            f'<div class="fx-ci" style="position:absolute;left:{100 * low:.2f}%;width:{100 * (high - low):.2f}%;'
            f"top:45%;height:0;border-top:2px solid #111827;\"></div>"
            f'<div style="position:absolute;left:{100 * low:.2f}%;top:25%;height:50%;border-left:2px solid #111827;"></div>'
            f'<div style="position:absolute;left:{100 * high:.2f}%;top:25%;height:50%;border-left:2px solid #111827;"></div>'
            if has_ci
            else ""
        )
        # display:contents: the row's three cells sit in the chart's one grid, so every bar starts at the
        # same place whatever the length of its label.
        rows.append(
            f'<div class="fx-rate-row" data-label="{esc(label)}" data-rate="{rate:.4f}" style="display:contents;">'
            f'<div style="overflow-wrap:anywhere;text-align:right;">{esc(label)}</div>'
            f'<div title="{esc(tip)}" style="position:relative;height:1.4rem;background:rgba(128,128,128,0.08);'
            'border-radius:3px;">'
            f'<div style="position:absolute;left:0;top:0;bottom:0;width:{100 * rate:.2f}%;background:{BAR_COLOR};'
            'border-radius:3px;"></div>'
            f'<div style="position:absolute;left:50%;top:-2px;bottom:-2px;border-left:1.5px dashed {REFERENCE_COLOR};">'
            f"</div>{whisker}</div>"
            f'<div class="fx-rate-text" style="white-space:nowrap;">{esc(text)}</div></div>'
        )
    if not rows:
        return ""
    return (
        f'<div class="fx-rate-chart" role="img" aria-label="{esc(title)}" style="margin:0.3rem 0 0.8rem 0;">'
        f'<div style="font-weight:600;margin-bottom:0.3rem;">{esc(title)}</div>'
        '<div style="display:grid;grid-template-columns:minmax(3rem,max-content) minmax(5rem,1fr) max-content;'
        'gap:0.3rem 0.5rem;align-items:center;font-size:0.85rem;">' + "".join(rows) + "</div>"
        + '<div style="font-size:0.75rem;opacity:0.7;margin-top:0.2rem;">Bars: the win rate, from 0 to 100%; '
        "dashed line: 50%, no difference; black lines: the 95% interval.</div></div>"
    )


@dataclass(frozen=True)
class Bins:
    edges: list[float]
    counts: list[int]
    labels: list[str]  # what each bin holds, e.g. "3" or "10 to 15"


def histogram_bins(
    values: Sequence[float | int | None],
    *,
    integer: bool = False,
    value_range: tuple[float, float] | None = None,
    nbins: int = 20,
) -> Bins:
    """Counts of ``values`` (None and non-finite left out). ``integer``: one bin per whole number, centred
    on it (no "3.5" between counts). Otherwise ``nbins`` equal bins over ``value_range`` (or the data's
    range), the last one closed, so a value at the top edge (100%) is counted."""
    raw = np.asarray([np.nan if v is None else float(v) for v in values], dtype=float)
    clean = raw[np.isfinite(raw)]
    if integer:
        lo = math.floor(clean.min()) if len(clean) else 0
        hi = math.ceil(clean.max()) if len(clean) else 1
        edges = np.arange(lo - 0.5, hi + 1.0, 1.0)
        labels = [f"{(a + b) / 2:.0f}" for a, b in zip(edges[:-1], edges[1:])]
    else:
        if value_range is not None:
            lo, hi = float(value_range[0]), float(value_range[1])
        else:
            lo, hi = (float(clean.min()), float(clean.max())) if len(clean) else (0.0, 1.0)
            hi = hi if hi > lo else lo + 1.0
        edges = np.linspace(lo, hi, int(nbins) + 1)
        labels = [f"{a:g} to {b:g}" for a, b in zip(edges[:-1], edges[1:])]
    counts, _ = np.histogram(np.clip(clean, edges[0], edges[-1]), bins=edges)
    return Bins(edges=[float(e) for e in edges], counts=[int(c) for c in counts], labels=labels)


def histogram_html(bins: Bins, *, title: str, xlabel: str, integer: bool = False) -> str:
    """Vertical bars, one per bin, sized by their count, with the count above and the bin below."""
    top = max(bins.counts) if bins.counts else 0
    cols: list[str] = []
    every = 1 if integer or len(bins.counts) <= 10 else max(1, len(bins.counts) // 5)
    for i, (count, label) in enumerate(zip(bins.counts, bins.labels)):
        ratio = count / top if top else 0.0
        tick = esc(label if integer else label.split(" to ")[0]) if i % every == 0 else ""
        cols.append(
            f'<div class="fx-hist-bin" data-count="{count}" data-bin="{esc(label)}" title="{esc(label)}: {count}" '
            'style="flex:1 1 0;display:flex;flex-direction:column;justify-content:flex-end;align-items:center;'
            'min-width:0;height:100%;">'
            f'<div style="font-size:0.7rem;opacity:0.8;">{count if count else ""}</div>'
            # The count above and the bin below take 2.4em of the column; the bar scales in the rest.
            f'<div style="width:92%;height:calc((100% - 2.4em) * {ratio:.4f});background:{BAR_COLOR};'
            'border-radius:2px 2px 0 0;"></div>'
            f'<div style="font-size:0.7rem;opacity:0.75;height:1.1em;white-space:nowrap;">{tick}</div></div>'
        )
    return (
        f'<div class="fx-hist" role="img" aria-label="{esc(title)}" style="margin:0.3rem 0 0.8rem 0;">'
        f'<div style="font-weight:600;margin-bottom:0.3rem;">{esc(title)}</div>'
        '<div style="display:flex;align-items:stretch;gap:1px;height:11rem;border-bottom:1px solid '
        f'rgba(128,128,128,0.5);">{"".join(cols)}</div>'
        f'<div style="font-size:0.75rem;opacity:0.75;text-align:center;margin-top:0.2rem;">{esc(xlabel)}; bars: '
        "number of runs</div></div>"
    )
