"""Placing an added unit in the fused text, in the form the spot needs.

A supported addition goes after the kept unit matching its previous neighbour in its own candidate (else
before the next one's match); a complementary paragraph goes after the backbone's body, before closing
words such as "Finally, ...". Never before the backbone's opening, inside a paragraph, or between a
sentence and the list or code it introduces. Items join lists with the list's marker; a numbered procedure
only takes a missing step that fits between its neighbours; an item with no list to join stands as a
paragraph only if it reads as a sentence.
"""

from __future__ import annotations

import re
from typing import Sequence

from fusion.fusors.extractive.context import FusionContext
from fusion.fusors.extractive.reading import CHECKBOX, opens_as_closing, reads_as_sentence
from fusion.fusors.extractive.support import term_dice
from fusion.fusors.extractive.units import CandidateUnit, PlacedUnit, is_numbered_item

_ITEM_NUMBER = re.compile(r"\d+")


def place(
    ctx: FusionContext, v: CandidateUnit, placed: list[PlacedUnit], *, complement: bool = False
) -> bool:
    """Insert v where it fits; False when there is no such place (nothing is changed then)."""
    # A paragraph only one candidate has goes after the backbone's body (before its closing words),
    # where it cannot cut a line of thought in two; within its own group it follows its predecessor;
    # an item may still join a list where its neighbours put it.
    own = complement and follows_own(ctx, v, placed)
    anchor = not complement or own or v.unit.kind == "item"
    idx = insert_index(ctx, v, placed) if anchor else None
    anchored = idx is not None
    if idx is None:
        if not complement and v.unit.kind == "item":
            return False  # a lone supported item with no anchor has no list to go to
        idx = tail_index(placed)
    if not ctx.translation:
        if idx == 0 and placed:
            idx = 1  # the backbone's opening stays the opening
        # Not inside a paragraph, where the next sentence may lean on the previous one: at its end.
        while idx < len(placed) and placed[idx].kind == "sentence" and break_before(placed[idx]) < 2:
            idx += 1
    if v.unit.kind == "sentence" and 0 < idx < len(placed) and (
        placed[idx - 1].source.lead_in
        or (placed[idx - 1].kind == "sentence" and placed[idx].kind in ("item", "code", "table"))
    ):
        # Not between a sentence and the list or code it introduces.
        idx = tail_index(placed)
        anchored = False
    if inside_steps(placed, idx) and (complement or not fills_step(ctx, v, placed, idx)):
        return False  # a numbered procedure takes only a missing step several candidates agree on
    entry = fit(ctx, v, placed, idx)
    if entry is None:
        return False
    if not anchored and entry.kind == "sentence" and entry.break_level is None:
        entry.break_level = 2  # with no neighbour to continue, it opens a paragraph of its own
    placed.insert(idx, entry)
    return True


def follows_own(ctx: FusionContext, v: CandidateUnit, placed: Sequence[PlacedUnit]) -> bool:
    """Whether v's predecessor in its own candidate is in the fused text (so v can follow it)."""
    if v.position == 0:
        return False
    before = ctx.rows[v.candidate][v.position - 1]
    return any(p.source.uid == before.uid or p.layout.uid == before.uid for p in placed)


def match_placed(ctx: FusionContext, w: CandidateUnit, placed: Sequence[PlacedUnit]) -> int | None:
    """Index of the placed unit that is w (or the slot w was aligned to), or best holds w's content (at
    least the support threshold)."""
    settings = ctx.settings
    best, best_score = None, 0.0
    weights = ctx.weights(w)
    near = ctx.similarity.near[w.text_id]
    for i, p in enumerate(placed):
        if p.source.uid == w.uid or p.layout.uid == w.uid:
            return i
        if p.structural != w.structural:
            continue
        if not alike_at_all(w, p.source, near):
            continue  # chrF and term Dice both 0: no score to beat the best with
        score = ctx.cover(w, p.source)
        if score < settings.support_threshold:
            # Or the same content words (a paraphrase chrF misses), as in the redundancy check.
            dice = term_dice(weights, ctx.weights(p.source))
            score = dice if dice >= settings.redundancy_threshold else 0.0
        if score > best_score:
            best, best_score = i, score
    return best


def alike_at_all(w: CandidateUnit, u: CandidateUnit, near: set[int]) -> bool:
    """Whether chrF or term Dice between w and u can be above 0: u's similarity text is w's or near it,
    or they share a content term. A cheap test that saves measuring most pairs in long answers."""
    return u.text_id == w.text_id or u.text_id in near or not w.terms.keys().isdisjoint(u.terms)


def insert_index(ctx: FusionContext, v: CandidateUnit, placed: Sequence[PlacedUnit]) -> int | None:
    """Where v goes by its neighbours in its own candidate: after the match of one of the three units
    before it, else before the match of one of the three after it; None when none is in the fused text."""
    row = ctx.rows[v.candidate]
    for w in reversed(row[max(0, v.position - 3) : v.position]):
        i = match_placed(ctx, w, placed)
        if i is not None:
            j = i + 1
            # After what was already added from v's candidate behind the same anchor: source order.
            while (
                j < len(placed)
                and placed[j].added
                and placed[j].source.candidate == v.candidate
                and placed[j].source.position < v.position
            ):
                j += 1
            return j
    for w in row[v.position + 1 : v.position + 4]:
        i = match_placed(ctx, w, placed)
        if i is not None:
            return i
    return None


def tail_index(placed: Sequence[PlacedUnit]) -> int:
    """Where content with no anchor goes: before a short closing paragraph of prose ("Good luck!",
    "In short, ..."), else at the end."""
    j = len(placed)
    while j > 0 and placed[j - 1].kind == "sentence":
        j -= 1
        start = break_before(placed[j])
        if start >= 2 or j == 0:
            break
    closing = len(placed) - j
    if 0 < j < len(placed) and closing <= 2 and opens_as_closing(placed[j].source.unit):
        return j
    return len(placed)


def inside_steps(placed: Sequence[PlacedUnit], idx: int) -> bool:
    """Whether position idx is within a numbered list or at either end of one."""
    prev = placed[idx - 1] if idx > 0 else None
    nxt = placed[idx] if idx < len(placed) else None
    return any(p is not None and p.kind == "item" and has_numbered_marker(p) for p in (prev, nxt))


def fills_step(ctx: FusionContext, v: CandidateUnit, placed: Sequence[PlacedUnit], idx: int) -> bool:
    """Whether v is a numbered step whose neighbours in its own procedure are the steps on either side
    of idx (the backbone skipped it)."""
    row = ctx.rows[v.candidate]
    if v.unit.kind != "item" or not v.unit.marker.strip()[:1].isdigit() or not 0 < v.position < len(row) - 1:
        return False
    if idx >= len(placed):
        return False
    before = match_placed(ctx, row[v.position - 1], placed)
    after = match_placed(ctx, row[v.position + 1], placed)
    return before == idx - 1 and after == idx


def fit(ctx: FusionContext, v: CandidateUnit, placed: Sequence[PlacedUnit], idx: int) -> PlacedUnit | None:
    """v in the form the spot needs: items join lists with the list's marker, a sentence between
    items becomes an item, an item outside a list stands as a paragraph if it reads as a sentence."""
    prev = placed[idx - 1] if idx > 0 else None
    nxt = placed[idx] if idx < len(placed) else None
    if prev is not None and prev.source.candidate == v.candidate and not prev.reshaped:
        between = ctx.rows[v.candidate][prev.source.position + 1 : v.position]
        if prev.source.position == v.position - 1 or (
            v.unit.kind == "item" and (prev.source.lead_in or prev.kind == "item") and all(
                u.unit.kind == "item" for u in between
            )
        ):
            if prev.source.lead_in and v.unit.kind == "item":
                # The first item of a list that starts here: a numbered one starts at 1.
                marker = _ITEM_NUMBER.sub("1", v.unit.marker, count=1)
                return PlacedUnit(v, v, marker=marker, added=True)
            return PlacedUnit(v, v, added=True)  # after its own predecessor or lead-in: as in its source
    prev_item = prev is not None and prev.kind == "item"
    next_item = nxt is not None and nxt.kind == "item"
    if v.unit.kind == "item":
        if prev_item or next_item:
            ref = prev if prev_item else nxt
            assert ref is not None
            marker = list_marker_for(ref, v)
            return PlacedUnit(v, v, marker=marker, break_level=1 if prev_item else 2, added=True)
        if reads_as_sentence(v.unit.content) and not is_numbered_item(v):
            # A numbered item is a step of its own procedure: out of it, it makes no sense.
            return PlacedUnit(v, v, marker="", break_level=2, added=True)
        return None
    if prev_item and next_item:
        assert prev is not None
        if not reads_as_sentence(v.unit.content):
            return None  # a line fragment from another layout ("3 large tomatoes") is not an item here
        return PlacedUnit(v, v, marker=list_marker_for(prev, v), break_level=1, added=True)
    if prev_item:
        return PlacedUnit(v, v, break_level=2, added=True)
    return PlacedUnit(v, v, added=True)


def list_marker_for(ref: PlacedUnit, v: CandidateUnit) -> str:
    """The marker for v joining ref's list: ref's bullet or number (renumbered later), and a task-list
    checkbox when ref has one and v has none."""
    marker = ref.marker if ref.marker else ref.source.unit.marker
    if CHECKBOX.match(ref.source.unit.content) and not CHECKBOX.match(v.unit.content):
        box = CHECKBOX.match(ref.source.unit.content)
        assert box is not None
        marker += box.group().strip() + " "
    return marker


def has_numbered_marker(p: PlacedUnit) -> bool:
    marker = p.marker if p.marker else p.source.unit.marker
    return marker.strip()[:1].isdigit()


def break_before(p: PlacedUnit) -> int:
    """What precedes a placed unit: 0 same line, 1 new line, 2 new paragraph."""
    return p.break_level if p.break_level is not None else p.layout.unit.brk
