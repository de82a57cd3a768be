"""Spans and summary: the fused text cut where its set of sources changes, each source with the offsets
of its passage in its candidate, and the shares of the fused text each candidate supplies."""

from __future__ import annotations

from bisect import bisect_right

from fusion.attribution.matching import Blocks
from fusion.attribution.tokens import Tokens, blank_kinds
from fusion.types import Attribution, SourceRef, Span

_BIG = 1 << 62


def candidate_range(blocks: Blocks, a: int, b: int) -> tuple[int, int]:
    """Candidate tokens ``[lo, hi)`` that correspond to fused tokens ``[a, b)`` of a chain.

    Inside a copied block the mapping is exact; inside a bridged gap the fused and candidate gaps are
    mapped onto each other proportionally (they may differ in length).
    """
    return _bound(blocks, a, 0), _bound(blocks, b - 1, 1)


def _bound(blocks: Blocks, t: int, side: int) -> int:
    """Candidate position where fused token ``t`` starts (side 0) or ends (side 1)."""
    k = bisect_right(blocks, (t, _BIG, _BIG)) - 1
    fs, cs, n = blocks[k]
    if t < fs + n:
        return cs + t - fs + side
    nfs, ncs, _ = blocks[k + 1]
    gap_f, gap_c = nfs - (fs + n), ncs - (cs + n)
    return cs + n + (t - fs - n + side) * gap_c // gap_f


def build_spans(
    fused: str,
    ftok: Tokens,
    m: int,
    pieces: dict[int, list[tuple[int, int, Blocks]]],
    ctoks: dict[int, Tokens],
    n_cand: int,
) -> Attribution:
    """The attribution of the fused text (``m`` tokens ``ftok``) from each candidate's disjoint pieces
    ``(start, end, chain)`` in fused tokens, ``ctoks`` giving the candidates' tokens."""
    # A span starts at every piece boundary: pieces of one candidate are disjoint, and two pieces of one
    # chain never touch, so the (candidate, chain) sources change at each boundary and nowhere else.
    cut_set = {0}
    for plist in pieces.values():
        for a, b, _ in plist:
            cut_set.add(a)
            cut_set.add(b)
    cut_set.discard(m)
    cuts = sorted(cut_set)
    cuts.append(m)
    sources = _sources(pieces, ctoks, cuts)
    return _tile(fused, ftok, m, cuts, sources, n_cand)


def _wanted(plist: list[tuple[int, int, Blocks]], cuts: list[int], position: dict[int, int]) -> set[int]:
    """The candidate token positions whose character offsets the spans of one candidate's pieces need."""
    w: set[int] = set()
    add = w.add
    for a, b, blocks in plist:
        i = position[a]
        if len(blocks) == 1:
            shift = blocks[0][1] - blocks[0][0]
            add(a + shift)
            while cuts[i] < b:
                i += 1
                add(cuts[i] + shift)
        else:
            x = a
            while x < b:
                y = cuts[i + 1]
                lo, hi = candidate_range(blocks, x, y)
                add(lo)
                add(hi)
                i += 1
                x = y
    return w


def _sources(
    pieces: dict[int, list[tuple[int, int, Blocks]]], ctoks: dict[int, Tokens], cuts: list[int]
) -> list[list[SourceRef] | None]:
    """Per span (between consecutive ``cuts``), its sources, or None for a novel span."""
    # The candidate token range each piece gives every span it covers; first only to collect the
    # positions whose character offsets are needed (found in one pass per candidate), then again to
    # build the sources. Candidates go in order, so each span's sources come out sorted.
    position = {x: i for i, x in enumerate(cuts)}
    # Spans and sources are frozen dataclasses, whose generated __init__ sets each field through
    # object.__setattr__; filling the instance dict directly halves the cost of building the hundreds of
    # them one attribution makes (the objects are the same: equality, hashing and repr are unchanged).
    new = object.__new__
    ref_class = SourceRef
    sources: list[list[SourceRef] | None] = [None] * (len(cuts) - 1)
    for j in sorted(pieces):
        off = ctoks[j].offsets(_wanted(pieces[j], cuts, position))
        for a, b, blocks in pieces[j]:
            i = position[a]
            x = a
            while x < b:
                y = cuts[i + 1]
                if len(blocks) == 1:
                    shift = blocks[0][1] - blocks[0][0]
                    lo, hi = x + shift, y + shift
                else:
                    lo, hi = candidate_range(blocks, x, y)
                cstart = 0 if lo == 0 and x == 0 else off[lo]
                cend = off[hi]
                if cend < cstart:
                    cend = cstart
                if FILL_DICT:
                    r = new(ref_class)
                    d = r.__dict__
                    d["candidate"] = j
                    d["start"] = cstart
                    d["end"] = cend
                else:
                    r = ref_class(j, cstart, cend)
                refs = sources[i]
                if refs is None:
                    sources[i] = [r]
                else:
                    refs.append(r)
                i += 1
                x = y
    return sources


def _tile(
    fused: str, ftok: Tokens, m: int, cuts: list[int], sources: list[list[SourceRef] | None], n_cand: int
) -> Attribution:
    """The spans, and the non-whitespace characters of each copied one for the shares: its length less
    the white space in it, counted per kind of white space the text holds (usually " " and "\n")."""
    new = object.__new__
    span_class = Span
    starts = ftok.starts
    blanks = blank_kinds(fused, ftok)
    total = len(fused) - sum(fused.count(c) for c in blanks)
    counts = [0] * n_cand
    copied = 0
    spans: list[Span] = []
    count_in = fused.count
    for x, y, refs in zip(cuts, cuts[1:], sources):
        a = starts[x] if x else 0
        b = starts[y] if y < m else len(fused)
        if refs is None:
            found: tuple[SourceRef, ...] = ()
        else:
            visible = b - a
            for c in blanks:
                visible -= count_in(c, a, b)
            copied += visible
            for r in refs:
                counts[r.candidate] += visible
            found = tuple(refs)
        if FILL_DICT:
            span = new(span_class)
            d = span.__dict__
            d["start"] = a
            d["end"] = b
            d["sources"] = found
        else:
            span = span_class(a, b, found)
        spans.append(span)
    return summarise(spans, counts, total, copied)


def plain_instances() -> bool:
    """True when Span and SourceRef keep exactly their fields in an instance dict (plain frozen
    dataclasses, as now): ``build_spans`` then fills that dict directly; with slots it calls the classes."""
    try:
        ref, span = vars(SourceRef(1, 2, 3)), vars(Span(1, 2))
    except TypeError:  # no instance dict
        return False
    return ref == {"candidate": 1, "start": 2, "end": 3} and span == {"start": 1, "end": 2, "sources": ()}


FILL_DICT = plain_instances()


def summarise(spans: list[Span], counts: list[int], total: int, copied: int) -> Attribution:
    """The attribution with its shares: ``counts[i]`` and ``copied`` are non-whitespace characters of
    ``total``."""
    if total == 0:
        return Attribution(spans=spans, shares=[0.0] * len(counts), copied_fraction=0.0)
    return Attribution(spans=spans, shares=[c / total for c in counts], copied_fraction=copied / total)
