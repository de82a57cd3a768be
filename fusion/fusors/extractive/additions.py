"""Additions: the units of the other candidates that the fused text takes besides the backbone's.

*Supported* additions are sentences and items that enough of the pool holds (:func:`additions_need`) and
the fused text lacks, best new supported content first. *Complementary* additions are paragraphs and
items that only one of the better-ranked candidates has: new content on the same topic, taken in turns
from each source. Both are refused when they repeat a kept unit, bring a number or a name no other
candidate gives, compete with a figure the fused text gives, lean on a sentence left out, speak in their
answer's own voice or no longer fit the length budget.
"""

from __future__ import annotations

import math
from itertools import chain
from typing import Sequence

from fusion.fusors.extractive.context import FusionContext
from fusion.fusors.extractive.placing import alike_at_all, follows_own, place
from fusion.fusors.extractive.reading import (
    in_own_voice,
    inner_names,
    opens_as_closing,
    opens_as_continuation,
)
from fusion.fusors.extractive.support import term_dice
from fusion.fusors.extractive.units import CandidateUnit, PlacedUnit, count_content_units, indent_of
from fusion.text import word_tokens

# Complementary additions must be at least this long (characters of content) and this new.
MIN_COMPLEMENT_CHARS = 40
COMPLEMENT_NOVELTY = 0.4
# A supported addition must bring this much new content that others share (one new term every other
# candidate uses, or three that a third of them use): less is another wording of what is kept.
MIN_SUPPORTED_GAIN = 1.0

LengthLimit = tuple[int, str] | None


def additions_need(m: int) -> int:
    """How many other candidates must hold a unit before it is added to the backbone: a third of the
    others, at least one (with 3 candidates: 2 of 3 agree; with 8: 4 of 8)."""
    return max(1, math.ceil((m - 1) / 3))


def fused_terms_of(placed: Sequence[PlacedUnit]) -> set[str]:
    return set(chain.from_iterable(p.source.terms for p in placed))


# --- supported additions ----------------------------------------------------------------------------------


def add_supported(ctx: FusionContext, placed: list[PlacedUnit], budget: float, limit: LengthLimit) -> None:
    """Add the other candidates' units that enough of the pool holds and the fused text lacks, best new
    supported content first.

    In a translation every candidate renders the same sentences, so a candidate with no more sentences
    than the backbone only rewords it: sentences are taken only from candidates with more of them
    (where the backbone may have left one out)."""
    settings = ctx.settings
    need = additions_need(len(ctx.texts))
    used = {p.source.uid for p in placed}
    fused_terms = fused_terms_of(placed)
    backbone_size = count_content_units(ctx.rows[ctx.backbone])
    pool = []
    for k in ctx.ranking[1:]:
        if ctx.translation and count_content_units(ctx.rows[k]) <= backbone_size:
            continue
        for v in ctx.rows[k]:
            if (
                v.uid in used
                or v.uid in ctx.alternatives
                or not v.addable
                or v.holders < need
                or v.unsupported
                or v.weight < settings.min_added_chars
            ):
                continue
            _, gain = new_weight(ctx, v, fused_terms)
            pool.append((-round(gain, 9), ctx.rank_of[k], v.position, v))
    pool.sort(key=lambda e: e[:3])
    for _, _, _, v in pool:
        share, gain = new_weight(ctx, v, fused_terms)
        if share < settings.novelty or gain < MIN_SUPPORTED_GAIN:
            continue
        if new_supported_share(ctx, v, fused_terms, need) < 0.5:
            continue
        if (opens_as_continuation(v.unit) and not follows_own(ctx, v, placed)) or orphan(ctx, v, placed):
            continue  # "This can happen..." needs the sentence it leans on
        if opens_as_closing(v.unit) or in_own_voice(v.unit):
            continue  # another answer's sign-off or own voice ("I hope this helps") adds nothing
        if covered(ctx, v, placed, settings.redundancy_threshold) or conflicts(v, placed):
            continue
        if not fits(placed, v, budget, limit):
            continue
        if place(ctx, v, placed):
            fused_terms.update(v.terms)


def new_weight(ctx: FusionContext, v: CandidateUnit, fused_terms: set[str]) -> tuple[float, float]:
    """(share of v's term weight the fused text lacks, that new weight scaled by agreement)."""
    weights = ctx.weights(v)
    total = sum(weights.values())
    if total <= 0:
        return 0.0, 0.0
    new = [(t, w) for t, w in weights.items() if t not in fused_terms]
    return sum(w for _, w in new) / total, sum(w * ctx.pool.agreement(t, v.candidate) for t, w in new)


def new_supported_share(ctx: FusionContext, v: CandidateUnit, fused_terms: set[str], need: int) -> float:
    """Share of v's new term weight that at least ``need`` other candidates use: whether what v would
    add is itself agreed on, not only the topic words around it."""
    new = [(t, w) for t, w in ctx.weights(v).items() if t not in fused_terms]
    total = sum(w for _, w in new)
    if total <= 0:
        return 0.0
    m = len(ctx.texts)
    return sum(w for t, w in new if ctx.pool.agreement(t, v.candidate) * (m - 1) >= need - 1e-9) / total


# --- checks both kinds share --------------------------------------------------------------------------------


def covered(ctx: FusionContext, v: CandidateUnit, placed: Sequence[PlacedUnit], threshold: float) -> bool:
    """Whether a kept unit already says what v says: chrF of v found in it, or the weighted Dice of
    their content terms, at least ``threshold`` ("Walk the aisle regularly" beside "Walk along the
    aisle every hour")."""
    weights = ctx.weights(v)
    near = ctx.similarity.near[v.text_id]
    for p in placed:
        if p.structural or not alike_at_all(v, p.source, near):
            continue
        if ctx.cover(v, p.source) >= threshold:
            return True
        dice = term_dice(weights, ctx.weights(p.source))
        if dice > 0 and dice >= threshold:
            return True
    return False


def fits(placed: Sequence[PlacedUnit], v: CandidateUnit, budget: float, limit: LengthLimit) -> bool:
    """Whether the fused text with v stays within the budget (characters) and the prompt's limit."""
    size = sum(len(p.text) for p in placed)
    if size + len(v.unit.text) > budget:
        return False
    if limit is None:
        return True
    n, what = limit
    if what == "sentence":
        return sum(1 for p in placed if p.kind in ("sentence", "item")) + 1 <= n
    words = sum(len(word_tokens(p.text)) for p in placed)
    return words + len(word_tokens(v.unit.text)) <= n


def orphan(ctx: FusionContext, v: CandidateUnit, placed: Sequence[PlacedUnit]) -> bool:
    """Whether v needs a unit of its own candidate that the fused text lacks: a nested list item
    without its parent item, or a line fragment (no final punctuation) outside a list."""
    row = ctx.rows[v.candidate]
    if v.unit.kind == "item":
        depth = indent_of(v.unit.marker)
        if depth == 0:
            return False
        earlier = reversed(row[: v.position])
        parent = next((u for u in earlier if u.unit.kind != "item" or indent_of(u.unit.marker) < depth), None)
        if parent is None:
            return True
        return not any(p.source.uid == parent.uid or p.layout.uid == parent.uid for p in placed)
    text = v.unit.content.rstrip(" *_\"'”’)")
    return v.unit.kind == "sentence" and not text.endswith((".", "!", "?", "。", "！", "？", ":"))


def conflicts(v: CandidateUnit, placed: Sequence[PlacedUnit]) -> bool:
    """Whether v brings other figures on a subject the fused text already gives figures for: one kept
    unit, or two adjacent ones, share with v two content words (or one word and one number) and hold a
    number, and v has a number they lack ("a newborn has around 300" beside "a newborn starts with
    about 270")."""
    if not v.nums:
        return False
    words_v = {t for t in v.terms if not t.startswith("#")}
    for i in range(len(placed)):
        for window in (placed[i : i + 1], placed[i : i + 2]):
            nums = set().union(*(p.source.nums for p in window))
            if not nums or v.nums <= nums:
                continue
            words = {t for p in window for t in p.source.terms if not t.startswith("#")}
            shared = len(words & words_v) + len(nums & v.nums)
            if shared >= 2 and len(words & words_v) >= 1:
                return True
    return False


def unsupported_name(ctx: FusionContext, v: CandidateUnit) -> bool:
    """Whether v names something (a capitalised word inside a sentence: "Numeralish", "PgBouncer")
    that no other candidate and not the prompt mentions: like a figure only one candidate gives, an
    unsupported claim. Skipped for text that capitalises its nouns (German)."""
    names = inner_names(v.unit.content)
    if not names:
        return False
    others = ctx.pool.words_elsewhere(v.candidate)
    return any(not any(name in w for w in others) for name in names)


# --- complementary additions ------------------------------------------------------------------------------


def add_complementary(
    ctx: FusionContext, placed: list[PlacedUnit], budget: float, limit: LengthLimit
) -> None:
    """Add paragraphs and list items that only one of the better-ranked half of the other candidates
    holds: new content on the same topic, with no unsupported number, that does not lean on a sentence
    left out. The sources take turns, a paragraph or item each, until the length budget is used."""
    m = len(ctx.texts)
    sources = ctx.ranking[1 : 1 + math.ceil((m - 1) / 2)]
    fused_terms = fused_terms_of(placed)
    queues = {k: addable_groups(ctx.rows[k]) for k in sources}
    while any(queues.values()):
        for k in sources:
            # The group bringing the most new on-topic content first (terms the other candidates use
            # too); a group that cannot be added now never can (the budget and novelty only shrink).
            queues[k].sort(key=lambda g: -round(_group_value(ctx, g, fused_terms), 9))
            while queues[k]:
                if _add_group(ctx, queues[k].pop(0), placed, fused_terms, budget, limit):
                    break


def addable_groups(row: Sequence[CandidateUnit]) -> list[list[CandidateUnit]]:
    """A candidate's units in the pieces that can be added on their own: each paragraph of prose (a
    lead-in keeps the list items or the code block it introduces), each list item outside such a group.
    Headings, rules and code or tables not introduced by a lead-in belong to no group."""
    groups: list[list[CandidateUnit]] = []
    cur: list[CandidateUnit] | None = None
    for u in row:
        kind = u.unit.kind
        if cur and any(x.lead_in for x in cur) and kind in ("item", "code", "table"):
            # What a lead-in introduces: a run of items, or one code block or table.
            if cur[-1].lead_in or (kind == "item" and cur[-1].unit.kind == "item"):
                cur.append(u)
                continue
        if kind == "sentence":
            if cur is not None and u.unit.brk < 2 and cur[-1].unit.kind == "sentence" and not cur[-1].lead_in:
                cur.append(u)
            else:
                cur = [u]
                groups.append(cur)
        elif kind == "item":
            cur = None
            groups.append([u])
        else:
            cur = None
    return groups


def _group_value(ctx: FusionContext, group: Sequence[CandidateUnit], fused_terms: set[str]) -> float:
    return sum(
        w * ctx.pool.agreement(t, v.candidate)
        for v in group
        for t, w in ctx.weights(v).items()
        if t not in fused_terms
    )


def _add_group(
    ctx: FusionContext,
    group: Sequence[CandidateUnit],
    placed: list[PlacedUnit],
    fused_terms: set[str],
    budget: float,
    limit: LengthLimit,
) -> bool:
    """Add what can be added of one paragraph (its sentences in order, stopping at the first that cannot
    be: the rest would lose its context), with the list or code its lead-in introduces.

    The group as a whole must be new (``COMPLEMENT_NOVELTY`` of its term weight absent from the fused
    text) and on topic; each unit must not repeat a kept unit, give an unsupported number or compete
    with the figures the fused text gives; the group must not open like a continuation."""
    if not _group_is_new(ctx, group, fused_terms) or opens_as_continuation(group[0].unit):
        return False
    taken: list[CandidateUnit] = []
    lead: CandidateUnit | None = None
    for v in group:
        if v.unit.kind in ("code", "table"):
            ok = lead is not None and not v.unsupported
        else:
            ok = _complement_ok(ctx, v, placed, fused_terms)
        if ok and fits(placed, v, budget, limit) and place(ctx, v, placed, complement=True):
            taken.append(v)
            fused_terms.update(v.terms)
            if v.lead_in:
                lead = v
        elif v.lead_in and v is group[0]:
            continue  # an introduction the fused text does not need: its items may still join a list
        elif v.unit.kind == "sentence":
            # Later sentences lean on this one. A short sentence just before the cut most likely
            # announced what is now left out ("The skull is the best-known example.").
            while (
                len(taken) > 1
                and taken[-1].unit.kind == "sentence"
                and not taken[-1].lead_in
                and taken[-1].weight < MIN_COMPLEMENT_CHARS
            ):
                gone = taken.pop()
                placed[:] = [p for p in placed if p.source is not gone]
            break
    if lead is not None and taken and taken[-1] is lead:
        # A lead-in whose list or code could not follow it introduces nothing.
        placed[:] = [p for p in placed if p.source is not lead]
        taken.pop()
    fused_terms.clear()
    fused_terms.update(fused_terms_of(placed))
    return bool(taken)


def _group_is_new(ctx: FusionContext, group: Sequence[CandidateUnit], fused_terms: set[str]) -> bool:
    """Whether the group is long enough and at least ``COMPLEMENT_NOVELTY`` of its term weight is new."""
    terms: dict[str, float] = {}
    for v in group:
        if v.unit.kind not in ("code", "table"):  # code is judged by chrF against kept code instead
            terms.update(ctx.weights(v))
    total = sum(terms.values())
    if total <= 0 or sum(v.weight for v in group) < MIN_COMPLEMENT_CHARS:
        return False
    return sum(w for t, w in terms.items() if t not in fused_terms) >= COMPLEMENT_NOVELTY * total


def _complement_ok(
    ctx: FusionContext, v: CandidateUnit, placed: Sequence[PlacedUnit], fused_terms: set[str]
) -> bool:
    settings = ctx.settings
    if v.unsupported or v.support <= 0 or not (v.addable or v.lead_in) or orphan(ctx, v, placed):
        return False
    if unsupported_name(ctx, v):
        return False
    text = v.unit.content.rstrip(" *_")
    if text.endswith(("!", "?", "！", "？")) or opens_as_closing(v.unit) or in_own_voice(v.unit):
        return False  # exclamations, questions, sign-offs and the other answer's own voice
    share, _ = new_weight(ctx, v, fused_terms)
    if share < settings.novelty / 2:
        return False
    return not covered(ctx, v, placed, settings.redundancy_threshold) and not conflicts(v, placed)
