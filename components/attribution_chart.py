"""The fused text as one bar split into where its characters came from (plotly).

One stacked bar: a segment per candidate for the text found in that candidate only, one for text several
candidates share, one for new text. The segments add up to 100%; the per-candidate share including
shared passages (which overlaps, so it cannot be stacked) is in each segment's hover text.
"""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from components import palette
from components.attribution_view import label_for
from fusion.attribution import SharePartition


def partition_figure(parts: SharePartition, labels: Sequence[str], shares: Sequence[float] | None = None) -> go.Figure:
    fig = go.Figure()
    n = max(len(labels), len(parts.only))
    segments: list[tuple[str, float, str, str, str]] = []
    for i in range(n):
        only = parts.only[i] if i < len(parts.only) else 0.0
        total = shares[i] if shares is not None and i < len(shares) else None
        hover = f"{label_for(labels, i)} only: {only:.1%}"
        if total is not None:
            hover += f"<br>{total:.1%} including shared passages"
        segments.append((label_for(labels, i), only, palette.candidate_color(i), palette.candidate_border(i), hover))
    segments.append(("shared by several", parts.shared, palette.COPIED_FILL, palette.SHARED_OUTLINE, "shared by several: %{x:.1%}"))
    segments.append(("new text", parts.novel, "#ffffff", palette.NOVEL_BORDER, "new text: %{x:.1%}"))
    for name, value, color, border, hover in segments:
        fig.add_trace(
            go.Bar(
                x=[value],
                y=["fused text"],
                orientation="h",
                name=name,
                marker=dict(color=color, line=dict(color=border, width=1.5)),
                text=[f"{value:.0%}" if value >= 0.06 else ""],
                textposition="inside",
                insidetextanchor="middle",
                textfont=dict(color=palette.TEXT_ON_COLOR),
                hovertemplate=hover + "<extra></extra>",
            )
        )
    fig.update_layout(
        barmode="stack",
        height=150,
        margin=dict(l=10, r=10, t=30, b=10),
        title=dict(text="Where the fused text comes from (adds up to 100%)", font=dict(size=14)),
        legend=dict(orientation="h", yanchor="top", y=-0.25, x=0, traceorder="normal"),
        showlegend=True,
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
    )
    fig.update_xaxes(range=[0, 1], tickformat=".0%", showgrid=False)
    fig.update_yaxes(showticklabels=False)
    return fig
