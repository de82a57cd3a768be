"""Pruning: what of the backbone the fused text leaves out.

Near-duplicates always go. Outliers go only when the pool agrees: when other candidates hold most of the
backbone, a backbone unit that nobody else holds or words alike stands out against that agreement. With
diverse candidates (stories, plans, recipes) "held by no other" says nothing about being wrong, and in a
translation such a sentence still renders a sentence of the source.
"""

from __future__ import annotations

from typing import Sequence

from fusion.coherence import lead_ins
from fusion.fusors.extractive.context import FusionContext
from fusion.fusors.extractive.units import CandidateUnit, PlacedUnit, is_numbered_item


def pool_agrees(ctx: FusionContext, placed: Sequence[PlacedUnit]) -> bool:
    """Whether other candidates hold at least ``min_supported_share`` of the backbone's content."""
    content = [p for p in placed if not p.structural]
    total = sum(p.source.weight for p in content)
    supported = sum(p.source.weight for p in content if p.source is not p.layout or p.source.holders >= 1)
    return total > 0 and supported >= ctx.settings.min_supported_share * total


def prune(
    ctx: FusionContext, placed: list[PlacedUnit], *, outliers: bool
) -> tuple[list[PlacedUnit], set[int]]:
    """Drop near-duplicates and, when ``outliers``, the backbone's units no other candidate holds.
    Returns the units kept and the uids of the layout units dropped."""
    row = ctx.rows[ctx.backbone]
    # Placed units are still the backbone's, one per unit, in order: placed[k] is row[k]'s.
    assert len(placed) == len(row)
    drop = [outliers and _outlier(ctx, row, p) for p in placed]
    for lead in lead_ins(ctx.texts[ctx.backbone], [u.unit for u in row]):
        for part in (lead.own, lead.content):
            if part and all(drop[k] for k in part):
                # Everything under a heading or lead-in ("2. Choose a location:"), or the list it
                # introduces, would go: keep its best supported unit, so that it does not stand empty
                # or seem to introduce what follows (the heading itself is never pruned).
                keep = max(part, key=lambda k: (placed[k].source.support, -k))
                drop[keep] = False
    kept: list[PlacedUnit] = []
    dropped: set[int] = set()
    # Kept content units by similarity text: a near-duplicate has chrF above 0 both ways, so it is the
    # same text or one of ``near``; only those are compared, not every kept unit (quadratic in long
    # answers).
    kept_by_text: dict[int, list[CandidateUnit]] = {}
    for p, gone in zip(placed, drop):
        if gone:
            dropped.add(p.layout.uid)
            continue
        # A repeated numbered step is a procedure replayed (a worked example), and a repeated label
        # ("Environmental impact:" under each option) is structure: neither is a duplicate.
        if (
            not p.structural
            and not is_numbered_item(p.source)
            and not p.source.heading_like
            and any(near_duplicate(ctx, p.source, k) for k in _alike_kept(ctx, p.source, kept_by_text))
        ):
            dropped.add(p.layout.uid)
            continue
        kept.append(p)
        if not p.structural:
            kept_by_text.setdefault(p.source.text_id, []).append(p.source)
    return kept, dropped


def _alike_kept(
    ctx: FusionContext, u: CandidateUnit, kept_by_text: dict[int, list[CandidateUnit]]
) -> list[CandidateUnit]:
    """The kept content units whose similarity text is u's or near it (the only ones chrF can find alike)."""
    near = ctx.similarity.near[u.text_id]
    ids = [t for t in near if t in kept_by_text] if len(near) < len(kept_by_text) else [
        t for t in kept_by_text if t in near
    ]
    return [k for t in [u.text_id, *ids] for k in kept_by_text.get(t, ())]


def _outlier(ctx: FusionContext, row: Sequence[CandidateUnit], p: PlacedUnit) -> bool:
    """Whether a backbone unit no other candidate holds, aligns with or words alike may go: not
    structure, a reworded slot, a unit that must stay (:attr:`CandidateUnit.prunable`), nor a sentence
    introducing the list, code or table right after it (like a lead-in)."""
    if p.structural or p.source is not p.layout:
        return False
    following = row[p.layout.position + 1] if p.layout.position + 1 < len(row) else None
    introduces = following is not None and following.unit.kind in ("item", "code", "table")
    return (
        p.source.holders == 0
        and p.source.prunable
        and not (p.kind == "sentence" and introduces)
        and p.layout.uid not in ctx.aligned
    )


def near_duplicate(ctx: FusionContext, a: CandidateUnit, b: CandidateUnit) -> bool:
    t = ctx.settings.duplicate_threshold
    return ctx.cover(a, b) >= t and ctx.cover(b, a) >= t
