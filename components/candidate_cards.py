"""Candidate cards: one bordered box per candidate with its status, score, pick badge and text.

Render-only. The card is plain HTML (``candidate_card_html``) so the same markup serves ``st.html``, live
refreshes through an ``st.empty()`` placeholder while candidates stream, and the static HTML report. Model
text and error messages are untrusted and always escaped.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from components import palette
from components.attribution_view import esc
from fusion.types import Candidate

STATUSES = ("waiting", "streaming", "done", "failed", "cached")

_STATUS_LOOK = {
    # status: (label, background, text colour)
    "waiting": ("waiting", "#e5e7eb", "#374151"),
    "streaming": ("streaming…", "#dbeafe", "#1e3a8a"),
    "done": ("done", "#dcfce7", "#14532d"),
    "failed": ("failed", "#fee2e2", "#7f1d1d"),
    "cached": ("cached", "#ede9fe", "#4c1d95"),
}

PICK_BADGE = "Best-of-N pick"


def default_status(candidate: Candidate) -> str:
    """The status a finished candidate shows when the page does not say otherwise."""
    if candidate.error:
        return "failed"
    if candidate.cached:
        return "cached"
    return "done"


def _badge(text: str, bg: str, fg: str, *, cls: str) -> str:
    return (
        f'<span class="{cls}" style="display:inline-block;background:{bg};color:{fg};border-radius:999px;'
        f'padding:0 0.55em;font-size:0.75rem;font-weight:600;line-height:1.6;white-space:nowrap;">{esc(text)}</span>'
    )


def format_score(score: float | None) -> str | None:
    if score is None or (isinstance(score, float) and not math.isfinite(score)):
        return None
    return f"{score:.3f}" if abs(score) < 1000 else f"{score:.4g}"


def _meta(candidate: Candidate) -> str:
    parts = [candidate.model]
    if candidate.latency_s is not None:
        parts.append(f"{candidate.latency_s:.1f} s")
    tokens = candidate.completion_tokens
    if tokens is not None:
        parts.append(f"{tokens:,} tokens")
    return " · ".join(parts)


def marked_plain_html(text: str, units: Sequence[Any]) -> str:
    """``text`` as typed, with each unit the fusion kept, edited or dropped wrapped in its marked span (the
    "show as typed" counterpart of ``markdown_html(text, ranges=units)``)."""
    from components.markdown_view import UNIT_STYLES, UNIT_TOOLTIPS

    out: list[str] = []
    pos = 0
    for u in sorted(units, key=lambda u: (u.start, u.end)):
        start, end = max(u.start, pos), min(u.end, len(text))
        if end <= start:
            continue
        out.append(esc(text[pos:start]))
        style = f' style="{UNIT_STYLES[u.status]}"' if UNIT_STYLES.get(u.status) else ""
        out.append(
            f'<span class="fx-unit fx-unit-{esc(u.status)}" data-status="{esc(u.status)}" '
            f'title="{esc(UNIT_TOOLTIPS[u.status])}"{style}>{esc(text[start:end])}</span>'
        )
        pos = end
    out.append(esc(text[pos:]))
    return "".join(out)


def candidate_card_html(
    candidate: Candidate,
    *,
    status: str,
    score: float | None = None,
    is_pick: bool = False,
    note: str | None = None,
    text: str | None = None,
    markdown: bool = False,
    units: Sequence[Any] | None = None,
    kept_summary: str | None = None,
) -> str:
    """HTML of one candidate card.

    ``text`` overrides ``candidate.text`` (the partial text while streaming). ``note`` is the selector's
    remark for this candidate (a judge's rationale, or why it could not be scored). A failed card shows the
    candidate's error message instead of its text. ``markdown`` renders a finished answer as Markdown
    (safely; see ``components.markdown_view``); a streaming one is always shown as typed. ``units`` (start,
    end, status) marks what the fusion kept, edited or dropped; ``kept_summary`` says it in words.
    """
    if status not in _STATUS_LOOK:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}; got {status!r}")
    i = candidate.index
    border = palette.candidate_border(i)
    label, sbg, sfg = _STATUS_LOOK[status]
    # "done" is what every finished card would say: no badge (data-status still says it); the others are news.
    badges = [] if status == "done" else [_badge(label, sbg, sfg, cls=f"fx-status fx-status-{status}")]
    if is_pick:
        badges.insert(0, _badge("★ " + PICK_BADGE, "#fef3c7", "#78350f", cls="fx-pick"))
    shown_score = format_score(score)
    if shown_score is not None:
        badges.append(_badge(f"score {shown_score}", "#f3f4f6", "#111827", cls="fx-score"))

    header = (
        f'<div style="display:flex;flex-wrap:wrap;align-items:center;gap:0.4em;padding:0.35em 0.6em;'
        f'{palette.candidate_style(i)}border-bottom:1px solid {border};">'
        f'<b class="fx-card-label">{esc(candidate.label)}</b>{"".join(badges)}</div>'
    )
    meta = f'<div class="fx-card-meta" style="font-size:0.75rem;opacity:0.75;padding:0.3em 0.6em 0 0.6em;">{esc(_meta(candidate))}</div>'
    if kept_summary:
        meta += (
            '<div class="fx-card-kept" style="font-size:0.8rem;font-weight:600;padding:0.2em 0.6em 0 0.6em;">'
            f"Fusion {esc(kept_summary)}</div>"
        )

    body_style = (
        "white-space:pre-wrap;overflow-wrap:anywhere;padding:0.4em 0.6em 0.6em 0.6em;max-height:26em;"
        "overflow-y:auto;font-size:0.9rem;line-height:1.5;"
    )
    # A long card scrolls inside, and overlay scrollbars (headless Chromium, macOS, phones) give no cue that
    # it does: a shadow at the bottom edge while more text is below, and at the top once scrolled (the
    # "local" covers move with the text and hide each shadow at its end). CSS only; no script is allowed.
    scroll_cue = (
        "background:linear-gradient(Canvas 30%,transparent) top/100% 2.5em no-repeat local,"
        "linear-gradient(transparent,Canvas 70%) bottom/100% 2.5em no-repeat local,"
        "radial-gradient(farthest-side at 50% 0,rgba(0,0,0,0.22),transparent) top/100% 0.8em no-repeat scroll,"
        "radial-gradient(farthest-side at 50% 100%,rgba(0,0,0,0.22),transparent) bottom/100% 0.8em no-repeat scroll;"
    )
    if status == "failed":
        message = candidate.error or note or "This candidate failed without an error message."
        body = (
            f'<div class="fx-card-error" style="{body_style}background:#fee2e2;color:#7f1d1d;">'
            f"<b>Error:</b> {esc(message)}</div>"
        )
        note = None if note == message else note
    elif status == "waiting" and not (text or candidate.text):
        body = f'<div class="fx-card-text" style="{body_style}opacity:0.6;font-style:italic;">waiting for the model…</div>'
    else:
        shown = candidate.text if text is None else text
        body_style += scroll_cue
        if shown.strip() and markdown and status != "streaming":
            from components.markdown_view import markdown_html

            md_style = body_style.replace("white-space:pre-wrap;", "")
            body = f'<div class="fx-card-text fx-card-md" style="{md_style}">{markdown_html(shown, ranges=units)}</div>'
        elif shown.strip() and units and status != "streaming":
            body = f'<div class="fx-card-text" dir="auto" style="{body_style}">{marked_plain_html(shown, units)}</div>'
        elif shown.strip() or status == "streaming":
            body = f'<div class="fx-card-text" dir="auto" style="{body_style}">{esc(shown)}</div>'
        else:
            body = f'<div class="fx-card-text" style="{body_style}opacity:0.6;font-style:italic;">(empty answer)</div>'
    note_html = (
        f'<div class="fx-card-note" style="font-size:0.8rem;padding:0 0.6em 0.5em 0.6em;opacity:0.85;">'
        f"<i>{esc(note)}</i></div>"
        if note
        else ""
    )
    width = "3px" if is_pick else "1px"
    pick_attr = ' data-pick="1"' if is_pick else ""
    return (
        f'<div class="fx-card" data-candidate="{i}" data-status="{status}"{pick_attr} '
        f'style="border:{width} solid {border};border-radius:8px;overflow:hidden;margin-bottom:0.6em;">'
        f"{header}{meta}{body}{note_html}</div>"
    )


def render_candidate_card(placeholder: Any, candidate: Candidate, **kwargs: Any) -> None:
    """Write (or rewrite) one card into an ``st.empty()`` placeholder; kwargs as ``candidate_card_html``."""
    kwargs.setdefault("status", default_status(candidate))
    placeholder.html(candidate_card_html(candidate, **kwargs))


def per_row_for(n: int) -> int:
    """Cards per row: 2 to 4, chosen so rows come out full where possible."""
    if n <= 2 or n == 4:
        return 2
    if n in (3, 5, 6, 9):
        return 3
    return 4


def _pick(seq: Sequence[Any] | Mapping[int, Any] | None, i: int) -> Any:
    if seq is None:
        return None
    if isinstance(seq, Mapping):
        return seq.get(i)
    return seq[i] if 0 <= i < len(seq) else None


def render_candidate_grid(
    candidates: Sequence[Candidate],
    *,
    statuses: Sequence[str] | Mapping[int, str] | str | None = None,
    scores: Sequence[float | None] | Mapping[int, float | None] | None = None,
    pick: int | None = None,
    notes: Sequence[str | None] | Mapping[int, str | None] | None = None,
    texts: Sequence[str | None] | Mapping[int, str | None] | None = None,
    per_row: int | None = None,
    markdown: bool = False,
    units: Sequence[Any] | Mapping[int, Any] | None = None,
    kept_summaries: Sequence[str | None] | Mapping[int, str | None] | None = None,
) -> list[Any]:
    """Lay out the cards in rows of ``per_row`` columns (2 to 4; chosen from N when None).

    Sequences and mappings are both looked up by ``Candidate.index`` (so ``scores`` can be
    ``BestOfN.scores``, ``notes`` ``BestOfN.notes`` and ``pick`` ``BestOfN.index``). Returns one ``st.empty()`` placeholder per candidate,
    in order, so the page can refresh a card with ``render_candidate_card`` while it streams.
    """
    import streamlit as st

    n = len(candidates)
    cols_per_row = max(2, min(4, per_row or per_row_for(n)))
    placeholders: list[Any] = []
    for row_start in range(0, n, cols_per_row):
        cols = st.columns(cols_per_row)
        for offset, cand in enumerate(candidates[row_start : row_start + cols_per_row]):
            status = statuses if isinstance(statuses, str) else _pick(statuses, cand.index)
            with cols[offset]:
                ph = st.empty()
            render_candidate_card(
                ph,
                cand,
                status=status or default_status(cand),
                score=_pick(scores, cand.index),
                is_pick=pick is not None and cand.index == pick,
                note=_pick(notes, cand.index),
                text=_pick(texts, cand.index),
                markdown=markdown,
                units=_pick(units, cand.index),
                kept_summary=_pick(kept_summaries, cand.index),
            )
            placeholders.append(ph)
    return placeholders
