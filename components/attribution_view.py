"""The fused text coloured by where each span came from, as plain HTML for ``st.html`` and the report.

Render-only: the spans come from ``fusion`` (attribution is computed there). Model text is untrusted, so
every piece of it, and every attribute value, goes through ``html.escape(..., quote=True)``. Newlines are
written as ``&#10;`` rather than raw line breaks: ``st.html`` dedents and strips its input
(``textwrap.dedent``), which would otherwise eat the spaces of whitespace-only lines, and a document without
literal blank lines cannot be split by anything that treats blank lines as block ends. ``white-space:
pre-wrap`` then shows the decoded newlines. ``st.html`` does not interpret markdown, so ``**bold**`` or
``# heading`` in model output shows as typed.
"""

from __future__ import annotations

import html
from typing import Sequence

from components import palette
from fusion.attribution import SharePartition, partition
from fusion.types import Attribution, Span

TEXT_CLASS = "fx-attr-text"


def esc(text: object) -> str:
    """Escape untrusted text for an HTML text node or a quoted attribute value; newlines as char refs."""
    return html.escape(str(text), quote=True).replace("\r", "&#13;").replace("\n", "&#10;")


def label_for(labels: Sequence[str], i: int) -> str:
    if 0 <= i < len(labels) and str(labels[i]).strip():
        return str(labels[i])
    return f"Candidate {i + 1}"


def join_names(names: Sequence[str]) -> str:
    if not names:
        return ""
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " and " + names[-1]


def span_tooltip(sources: Sequence[int], labels: Sequence[str]) -> str:
    """``from Candidate 2 and Candidate 5`` or ``new text, in no candidate`` (not yet escaped)."""
    if not sources:
        return "new text, in no candidate"
    return "from " + join_names([label_for(labels, i) for i in sources])


def _unique(seq: Sequence[int]) -> list[int]:
    return list(dict.fromkeys(seq))


def tile(fused: str, spans: Sequence[Span]) -> list[tuple[int, int, list[int]]]:
    """(start, end, candidate indices) pieces that cover ``fused`` exactly once, in order.

    Attribution is meant to tile the text already; this only guards the view against spans that do not
    (gaps become unattributed pieces, overlaps are cut, out-of-range offsets are clamped), so what is shown
    is always exactly the fused text.
    """
    n = len(fused)
    pieces: list[tuple[int, int, list[int]]] = []
    pos = 0
    for sp in sorted(spans, key=lambda s: (s.start, s.end)):
        start, end = max(sp.start, pos, 0), min(sp.end, n)
        if end <= start:
            continue
        if start > pos:
            pieces.append((pos, start, []))
        pieces.append((start, end, _unique(sp.candidates)))
        pos = end
    if pos < n:
        pieces.append((pos, n, []))
    return pieces


def _span_style(sources: list[int], *, dim: bool, strong: bool) -> str:
    parts: list[str] = []
    if not sources:
        parts.append(
            f"text-decoration:{palette.NOVEL_DECORATION};text-underline-offset:{palette.NOVEL_UNDERLINE_OFFSET};"
        )
    elif len(sources) == 1:
        parts.append(palette.candidate_style(sources[0]))
        parts.append(f"box-shadow:inset 0 -2px 0 {palette.candidate_border(sources[0])};")
    else:
        parts.append(f"background:{palette.shared_background(sources)};color:{palette.TEXT_ON_COLOR};")
        parts.append(f"outline:{palette.SHARED_OUTLINE_STYLE};outline-offset:-1px;")
    if sources:
        # Keep padding and decoration on every line fragment of a span that wraps.
        parts.append("border-radius:3px;padding:1px 0;-webkit-box-decoration-break:clone;box-decoration-break:clone;")
    if dim:
        parts.append(f"opacity:{palette.FADED_OPACITY};")
    if strong:
        parts.append("font-weight:700;")
    return "".join(parts)


def attribution_html(
    fused: str,
    attribution: Attribution,
    labels: Sequence[str],
    *,
    highlight: int | None = None,
) -> str:
    """The fused text as one ``<div>`` of ``<span>``s coloured by source candidate.

    Each span carries ``title`` and ``data-tip`` (who it came from), ``data-kind`` (single, shared or
    novel) and ``data-sources`` (0-based candidate indices, comma separated). With ``highlight`` set to a
    candidate index, that candidate's spans (alone or shared) get ``data-hl="1"`` and bold text; all other
    spans fade.
    """
    out: list[str] = []
    for start, end, sources in tile(fused, attribution.spans):
        kind = "novel" if not sources else ("single" if len(sources) == 1 else "shared")
        lit = highlight is not None and highlight in sources
        dim = highlight is not None and not lit
        tip = esc(span_tooltip(sources, labels))
        attrs = (
            f'class="fx-span fx-{kind}" data-kind="{kind}" data-sources="{",".join(map(str, sources))}" '
            f'title="{tip}" data-tip="{tip}"'
        )
        if lit:
            attrs += ' data-hl="1"'
        out.append(f'<span {attrs} style="{_span_style(sources, dim=dim, strong=lit)}">{esc(fused[start:end])}</span>')
    hl_attr = f' data-highlight="{int(highlight)}"' if highlight is not None else ""
    return (
        f'<div class="fx-attr"{hl_attr} style="line-height:1.75;font-size:0.95rem;">'
        f'<div class="{TEXT_CLASS}" dir="auto" style="white-space:pre-wrap;overflow-wrap:anywhere;word-break:normal;">'
        + "".join(out)
        + "</div></div>"
    )


def _swatch(style: str) -> str:
    return (
        f'<span aria-hidden="true" style="display:inline-block;width:1.1em;height:1.1em;vertical-align:-0.2em;'
        f'border-radius:3px;margin-right:0.35em;{style}"></span>'
    )


def legend_html(
    labels: Sequence[str],
    parts: SharePartition,
    *,
    shares: Sequence[float] | None = None,
    highlight: int | None = None,
) -> str:
    """One swatch per candidate, then "shared" and "new": each with its part of the fused text.

    The parts come from :func:`fusion.attribution.partition`, so every character counts once and they add
    up to 100%. ``shares`` (the overlapping per-candidate shares, shared passages counted for each source)
    go in each candidate's tooltip, where they are labelled as overlapping.
    """
    items: list[str] = []
    shown = _shown_percents(labels, parts)
    for i in range(len(labels)):
        only = float(parts.only[i]) if i < len(parts.only) else 0.0
        total = float(shares[i]) if shares is not None and i < len(shares) else None
        lit = highlight is not None and i == highlight
        dim = highlight is not None and not lit
        style = "white-space:nowrap;"
        if dim:
            style += f"opacity:{palette.FADED_OPACITY + 0.25};"
        if lit:
            style += "font-weight:700;"
        tip = f"{only:.0%} of the fused text is found in {label_for(labels, i)} only"
        if total is not None:
            tip += f"; {total:.0%} including passages it shares with other candidates"
        sw = _swatch(f"background:{palette.candidate_color(i)};border:1px solid {palette.candidate_border(i)};")
        items.append(
            f'<span class="fx-legend-item" data-candidate="{i}" data-share="{only:.4f}" title="{esc(tip)}" '
            f'style="{style}">{sw}{esc(label_for(labels, i))} <b>{shown[i]}%</b></span>'
        )
    shared_bg = palette.shared_background([0, 1, 2] if len(labels) >= 3 else list(range(max(2, len(labels)))))
    items.append(
        f'<span class="fx-legend-item" data-kind="shared" data-share="{parts.shared:.4f}" '
        'title="found in several candidates" style="white-space:nowrap;">'
        + _swatch(f"background:{shared_bg};outline:{palette.SHARED_OUTLINE_STYLE};outline-offset:-1px;")
        + f"shared by several <b>{shown[-2]}%</b></span>"
    )
    items.append(
        f'<span class="fx-legend-item" data-kind="novel" data-share="{parts.novel:.4f}" '
        'title="in no candidate: written by the fusor" style="white-space:nowrap;">'
        + _swatch(f"border:1px dotted {palette.NOVEL_BORDER};")
        + f'<span style="text-decoration:{palette.NOVEL_DECORATION};text-underline-offset:'
        f'{palette.NOVEL_UNDERLINE_OFFSET};">new text</span> <b>{shown[-1]}%</b></span>'
    )
    return (
        '<div class="fx-legend" style="display:flex;flex-wrap:wrap;gap:0.35em 1.1em;font-size:0.85rem;'
        'margin:0.25em 0 0.2em 0;">' + "".join(items) + "</div>"
        '<div class="fx-legend-note" style="font-size:0.75rem;opacity:0.75;margin-bottom:0.6em;">'
        "Each character of the fused text counts once: in one candidate only, shared by several, or new "
        "(the parts add up to 100%).</div>"
    )


def _shown_percents(labels: Sequence[str], parts: SharePartition) -> list[int]:
    """Whole percents of each label's part, then shared, then new, adding up to 100 as the note says."""
    only = [float(parts.only[i]) if i < len(parts.only) else 0.0 for i in range(len(labels))]
    return SharePartition(only=only, shared=float(parts.shared), novel=float(parts.novel)).whole_percents()


def partition_bar_html(labels: Sequence[str], parts: SharePartition) -> str:
    """The fused text as one bar cut into where its characters came from (one candidate only, shared, new),
    segments sized by their part, so the parts visibly add up to the whole.

    Plain HTML rather than a plotly chart: it is drawn with the run view on every vote and highlight click,
    and a plotly chart costs the browser about 0.25 s to draw here (see bench/results/browser_speed.md).
    """
    segments: list[tuple[str, float, str, str]] = []
    shown = _shown_percents(labels, parts)
    for i in range(len(labels)):
        only = float(parts.only[i]) if i < len(parts.only) else 0.0
        segments.append((label_for(labels, i), only, f"background:{palette.candidate_color(i)};", f"{i}"))
    shared_bg = palette.shared_background([0, 1, 2] if len(labels) >= 3 else list(range(max(2, len(labels)))))
    segments.append(("shared by several", float(parts.shared), f"background:{shared_bg};", "shared"))
    segments.append(("new text", float(parts.novel), f"background:#ffffff;border:1px dotted {palette.NOVEL_BORDER};", "novel"))
    cells = []
    for (name, value, style, tag), percent in zip(segments, shown):
        if value <= 0:
            continue
        text = f"{percent}%" if value >= 0.06 else ""
        cells.append(
            f'<div class="fx-bar-part" data-part="{tag}" data-share="{value:.4f}" title="{esc(name)}: {value:.1%}" '
            f'style="flex:{value:.6f} 1 0;min-width:2px;{style}color:{palette.TEXT_ON_COLOR};font-size:0.75rem;'
            f'text-align:center;line-height:1.6rem;overflow:hidden;white-space:nowrap;">{text}</div>'
        )
    return (
        '<div class="fx-bar" role="img" aria-label="Where the fused text comes from" style="display:flex;'
        'width:100%;height:1.6rem;border-radius:4px;overflow:hidden;border:1px solid rgba(128,128,128,0.4);'
        'margin:0.2em 0 0.8em 0;">' + "".join(cells) + "</div>"
    )


def render_attribution(
    fused: str,
    attribution: Attribution,
    labels: Sequence[str],
    *,
    highlight: int | None = None,
    legend: bool = True,
    key: str | None = None,
) -> int | None:
    """Show the legend and the coloured fused text with ``st.html``.

    With ``key`` set, a segmented control above the text lets the reader pick the candidate to highlight
    (its value lives in session state under ``key``); ``highlight`` is then its default. Returns the
    candidate index being highlighted, or None.
    """
    import streamlit as st

    if key is not None and labels:
        options = ["all"] + [str(i) for i in range(len(labels))]
        names = {"all": "All"} | {str(i): label_for(labels, i) for i in range(len(labels))}
        default = str(highlight) if highlight is not None and 0 <= highlight < len(labels) else "all"
        picked = st.segmented_control(
            "Highlight a candidate",
            options,
            default=default,
            format_func=lambda o: names[o],
            key=key,
        )
        highlight = None if picked in (None, "all") else int(picked)
    if legend:
        parts = partition(fused, attribution, len(labels))
        st.html(legend_html(labels, parts, shares=attribution.shares, highlight=highlight))
    st.html(attribution_html(fused, attribution, labels, highlight=highlight))
    return highlight
