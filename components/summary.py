"""A row of headline figures that wraps instead of cutting its values.

``st.metric`` truncates a long value with an ellipsis ("Best-of-N pick: Can...", "Copied fro..." at 800 px);
these boxes flow onto the next line instead, so every figure stays readable at any width.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from components.attribution_view import esc


@dataclass(frozen=True)
class Figure:
    label: str
    value: str
    help: str | None = None  # shown as the box's tooltip
    key: str | None = None  # data-key, for tests and styling


def summary_html(figures: Sequence[Figure]) -> str:
    boxes = []
    for f in figures:
        tip = f' title="{esc(f.help)}"' if f.help else ""
        key = f' data-key="{esc(f.key)}"' if f.key else ""
        boxes.append(
            f'<div class="fx-figure"{key}{tip} style="flex:1 1 10rem;min-width:0;padding:0.45rem 0.75rem;'
            'border:1px solid rgba(128,128,128,0.3);border-radius:8px;">'
            f'<div style="font-size:0.8rem;opacity:0.75;">{esc(f.label)}</div>'
            f'<div class="fx-figure-value" style="font-size:1.15rem;font-weight:600;overflow-wrap:anywhere;">'
            f"{esc(f.value)}</div></div>"
        )
    return (
        '<div class="fx-summary" style="display:flex;flex-wrap:wrap;gap:0.5rem;margin:0.25rem 0 0.75rem 0;">'
        + "".join(boxes)
        + "</div>"
    )
