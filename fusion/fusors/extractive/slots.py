"""Slots: the same sentence of the backbone in several wordings, and which wording the fused text uses.

Every other candidate is aligned to the backbone in order (sentence to sentence, item to item) by symmetric
chrF. A backbone unit with aligned wordings in a majority of the pool forms a *slot*. In a translation the
wording agreeing most with the slot's others is used (minimum Bayes risk per sentence); in an answer the
backbone's own wording stays unless it gives a figure the rest of the slot does not and misses what the
slot's majority says.
"""

from __future__ import annotations

from collections import Counter
from itertools import chain
from typing import Sequence

import numpy as np

from fusion.fusors.extractive.context import FusionContext
from fusion.fusors.extractive.units import CandidateUnit, PlacedUnit, is_numbered_item

# A slot's wording may miss at most this much more of the slot's majority terms than the best one.
SLOT_RECALL_SLACK = 0.2


def align(
    ctx: FusionContext, backbone_row: Sequence[CandidateUnit], row: Sequence[CandidateUnit]
) -> list[CandidateUnit | None]:
    """Monotone alignment of the backbone's units to one candidate's (sentence to sentence, item to
    item) maximising the summed symmetric chrF of aligned pairs, pairs below the slot threshold left
    out. Returns, per backbone unit, its partner or None."""
    sims = _pair_similarities(ctx, backbone_row, row)
    if not sims:
        return [None] * len(backbone_row)
    # Dynamic programming over (backbone prefix, candidate prefix), as for a longest common subsequence
    # whose matches weigh their similarity. Row by row with numpy: score[i][k] is the best of
    # score[i-1][k], score[i][k-1] and score[i-1][k-1] + s(i-1, k-1), that is the running maximum along
    # the row of max(score[i-1][k], score[i-1][k-1] + s); the same floating-point sums and maxima as the
    # cell-by-cell loop, so the same scores, in time linear in the row instead of a Python loop per cell.
    n, p = len(backbone_row), len(row)
    by_row: dict[int, list[tuple[int, float]]] = {}
    for (i, k), s in sims.items():
        by_row.setdefault(i, []).append((k, s))
    table = np.zeros((n + 1, p + 1))
    for i in range(1, n + 1):
        above = table[i - 1]
        cells = above.copy()
        for k, s in by_row.get(i - 1, ()):
            if above[k] + s > cells[k + 1]:
                cells[k + 1] = above[k] + s
        cells[0] = 0.0
        np.maximum.accumulate(cells, out=table[i])
    score = table.item  # the walk back reads n + p cells: no Python copy of the table
    out: list[CandidateUnit | None] = [None] * n
    i, k = n, p
    while i > 0 and k > 0:
        s = sims.get((i - 1, k - 1))
        if s is not None and score(i, k) == score(i - 1, k - 1) + s:
            out[i - 1] = row[k - 1]
            i, k = i - 1, k - 1
        elif score(i, k) == score(i - 1, k):
            i -= 1
        else:
            k -= 1
    return out


def _pair_similarities(
    ctx: FusionContext, backbone_row: Sequence[CandidateUnit], row: Sequence[CandidateUnit]
) -> dict[tuple[int, int], float]:
    """Symmetric chrF of the pairs (backbone unit i, candidate unit k) of one kind that reach the slot
    floor; only pairs the prefilter lets through are measured."""
    floor = ctx.slot_floor
    by_text_id: dict[int, list[int]] = {}
    for k, v in enumerate(row):
        by_text_id.setdefault(v.text_id, []).append(k)
    sims: dict[tuple[int, int], float] = {}
    for i, b in enumerate(backbone_row):
        if b.unit.kind not in ("sentence", "item"):
            continue
        for text_id in ctx.similarity.near[b.text_id] | {b.text_id}:
            for k in by_text_id.get(text_id, ()):
                v = row[k]
                if v.unit.kind != b.unit.kind:
                    continue
                s = ctx.sym(b, v)
                if s >= floor:
                    sims[(i, k)] = s
    return sims


def choose_slots(ctx: FusionContext, placed: list[PlacedUnit]) -> float:
    """Per backbone sentence or item held by a majority of the pool, use the wording that agrees most
    with the slot's other wordings. Returns the share of the backbone's content in such slots."""
    m = len(ctx.texts)
    backbone_row = ctx.rows[ctx.backbone]
    others = ctx.ranking[1:]
    aligned = {k: align(ctx, backbone_row, ctx.rows[k]) for k in others}
    need = m // 2  # other candidates, so that the slot has a majority of the pool
    total = in_slots = 0
    for i, b in enumerate(backbone_row):
        if b.structural or b.unit.kind in ("code", "table"):
            continue
        total += b.weight
        members = [b] + [v for k in others if (v := aligned[k][i]) is not None]
        if len(members) > 1:
            ctx.aligned.add(b.uid)
            ctx.alternatives.update(v.uid for v in members[1:])
        if len(members) - 1 < need:
            continue
        in_slots += b.weight
        best = slot_choice(ctx, b, members)
        if best is not b:
            marker = b.unit.marker if b.unit.kind == "item" else None
            placed[i] = PlacedUnit(best, b, marker=marker)
    return in_slots / total if total else 0.0


def slot_choice(ctx: FusionContext, b: CandidateUnit, members: Sequence[CandidateUnit]) -> CandidateUnit:
    """The wording that agrees best (mean symmetric chrF) with the slot's other wordings, among those
    that say what the slot's majority says: a wording missing majority content terms ("afternoon"
    where most say afternoon) or bringing a number the others lack is not chosen."""
    counts = Counter(chain.from_iterable(x.terms for x in members))
    majority = {
        t: max(x.terms.get(t, 0.0) for x in members) for t, c in counts.items() if 2 * c > len(members)
    }
    want = sum(majority.values())

    def recall(x: CandidateUnit) -> float:
        return sum(w for t, w in majority.items() if t in x.terms) / want if want else 1.0

    floor = max(recall(x) for x in members) - SLOT_RECALL_SLACK
    others_nums = set().union(*(y.nums for y in members if y is not b))
    if not ctx.translation and (recall(b) >= floor or not b.nums - others_nums or is_numbered_item(b)):
        # In an answer a sentence keeps its wording unless it gives a figure the rest of the slot does
        # not and misses what the slot's majority says ("150" where most say "270"). A numbered step
        # is never reworded from elsewhere: the aligned step of another procedure may be another step.
        return b
    best, best_score = b, -1.0
    for x in members:
        others = [y for y in members if y is not x]
        if x is not b:
            seen = set().union(*(y.nums for y in others))
            if not x.nums <= seen:
                continue  # a number the rest of the slot does not give
            if not 0.6 <= x.weight / max(1, b.weight) <= 1.6 or recall(x) < floor:
                continue
        score = sum(ctx.sym(x, y) for y in others) / len(others)
        if x is b and recall(b) < floor:
            score = -0.5  # the backbone's wording misses what the slot agrees on: any other wins
        # Ties go to the backbone, then to the better-ranked candidate (members are in rank order).
        if score > best_score + 1e-9:
            best, best_score = x, score
    return best
