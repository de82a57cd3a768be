"""The Best-of-N pick against the fused text, sentence by sentence: shared, dropped, added, edited.

Render-only: the rows come from ``fusion.diff`` (offsets into the two texts). Long answers that begin alike
are the usual case (the fusion often starts from the pick), so the shared sentences at the top fold into one
line the reader can open. Each row is one unit of the text (a sentence, a list item, a heading, a code
block), rendered as Markdown on its own (a list item shows as a one-item list) or shown as typed; either way
escaped.
"""

from __future__ import annotations

from components.attribution_view import esc
from fusion.diff import SentenceDiff

_ROW_STYLE = {
    "shared": ("", "", "in both"),
    "dropped": ("background:#fee2e2;", "text-decoration:line-through;", "only in the Best-of-N pick (dropped)"),
    "added": ("background:#dcfce7;", "", "only in the fusion (added)"),
    "edited": ("background:#fef3c7;", "", "changed a little"),
}
_SIGN = {"shared": "=", "dropped": "−", "added": "+", "edited": "~"}


def _piece(text: str, span: tuple[int, int] | None) -> str:
    if span is None:
        return ""
    return text[span[0] : span[1]].strip()


def _body(text: str, markdown: bool) -> str:
    if not markdown:
        return esc(text)
    from components.markdown_view import markdown_html

    return markdown_html(text)


def _row_html(op: str, shown: str, was: str | None = None, *, markdown: bool = False) -> str:
    bg, deco, tip = _ROW_STYLE[op]
    was_html = (
        f'<div class="fx-diff-was" style="font-size:0.8rem;opacity:0.75;text-decoration:line-through;">'
        f"{_body(was, markdown)}</div>"
        if was
        else ""
    )
    wrap = "" if markdown else "white-space:pre-wrap;"
    return (
        f'<div class="fx-diff-row fx-diff-{op}" data-op="{op}" title="{esc(tip)}" '
        f'style="display:flex;gap:0.5em;padding:0.2em 0.5em;border-radius:4px;margin:1px 0;{bg}">'
        f'<span aria-hidden="true" style="font-family:monospace;opacity:0.6;flex:0 0 1em;">{_SIGN[op]}</span>'
        f'<div style="flex:1 1 auto;min-width:0;{wrap}overflow-wrap:anywhere;">'
        f'<div style="{deco}">{_body(shown, markdown)}</div>{was_html}</div></div>'
    )


def diff_html(bon_text: str, fused_text: str, diff: SentenceDiff, *, markdown: bool = False) -> str:
    """The rows as one ``<div class="fx-diff">``, the leading shared rows folded into a ``<details>``."""
    counts = diff.counts
    head = " · ".join(
        f"{counts[op]} {label}"
        for op, label in (("shared", "shared"), ("added", "added"), ("dropped", "dropped"), ("edited", "edited"))
    )
    rows = diff.rows
    lead = diff.leading_shared
    parts: list[str] = [
        f'<div class="fx-diff-counts" style="font-size:0.85rem;margin-bottom:0.4em;">{esc(head)}</div>'
    ]
    if diff.identical:
        parts.append('<div class="fx-diff-note">The fused text and the Best-of-N pick say the same thing.</div>')

    def render(row: object) -> str:
        op = row.op  # type: ignore[attr-defined]
        if op == "dropped":
            return _row_html(op, _piece(bon_text, row.bon), markdown=markdown)  # type: ignore[attr-defined]
        if op == "edited":
            return _row_html(
                op, _piece(fused_text, row.fused), _piece(bon_text, row.bon), markdown=markdown  # type: ignore[attr-defined]
            )
        return _row_html(op, _piece(fused_text, row.fused), markdown=markdown)  # type: ignore[attr-defined]

    if lead >= 2 and lead < len(rows):
        inner = "".join(render(r) for r in rows[:lead])
        parts.append(
            f'<details class="fx-diff-lead"><summary style="cursor:pointer;font-size:0.85rem;opacity:0.8;">'
            f"The first {lead} sentences are the same in both (show them)</summary>{inner}</details>"
        )
        rows = rows[lead:]
    parts.extend(render(r) for r in rows)
    return '<div class="fx-diff" style="font-size:0.92rem;line-height:1.5;">' + "".join(parts) + "</div>"
