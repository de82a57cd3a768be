"""Matching one candidate against the fused text: the copied runs, joined into chains across small gaps.

Both texts are strings in a private alphabet, one character per token. The fused text's windows of ``k``
tokens (:class:`Seeds`), read as integers straight from the UTF-16 bytes, are intersected with the
candidate's, which marks the fused stretches that can hold a copy; only those are searched, longest run
first, with ``str`` search (:func:`match_runs`). Runs at most ``max_gap`` tokens apart on both sides are
joined into chains, short pieces next to uncovered fused text are picked up (:func:`extend_chains`), and
overlapping chains of one candidate are resolved, heavier first (:func:`claim_overlaps`).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from itertools import chain, compress, count
from operator import itemgetter, ne

from fusion.attribution.tokens import NOT_IN_FUSED, WORD_WEIGHT

# A chain is copied runs of one candidate joined across small gaps: a tuple of blocks
# (fused_start, cand_start, length), in order on both sides.
Blocks = tuple[tuple[int, int, int], ...]


def _windows(s: str, k: int) -> list[memoryview]:
    """Every window of ``k`` (2 or 4) neighbouring characters of ``s`` as one integer, read from the
    UTF-16 bytes without a Python loop: view ``r`` holds the windows starting at ``r``, ``r + k``, ..."""
    raw = memoryview(s.encode("utf-16-le"))
    fmt = "I" if k == 2 else "Q"
    views = []
    for r in range(k):
        n = max(0, (len(s) - k - r) // k + 1)
        views.append(raw[2 * r : 2 * r + n * 2 * k].cast(fmt))
    return views


def match_whole(fstr: str, cstr: str) -> list[list[tuple[int, int, int]]]:
    """One side is shorter than a seed: only a whole-text copy can count."""
    m, n = len(fstr), len(cstr)
    out = []
    if m <= n:
        q = cstr.find(fstr)
        if q >= 0:
            out.append([(0, q, m)])
    if n < m:
        p = fstr.find(cstr)
        while p >= 0:
            out.append([(p, 0, n)])
            p = fstr.find(cstr, p + n)
    return out


class Seeds:
    """The fused text's windows of ``k`` tokens: their set, and where each one starts."""

    def __init__(self, fstr: str, k: int) -> None:
        self.k = k
        self.runs = re.compile(f"[^{NOT_IN_FUSED}]{{{k},}}")
        size = self.size = len(fstr) - k + 1
        windows: list[int] = [0] * size
        for r, view in enumerate(_windows(fstr, k)):
            windows[r::k] = view
        self.windows = set(windows)
        # The first position of each window (a dict keeps the last value written for a key, so the
        # positions go in backwards), and the later positions of a repeated window.
        self.first = dict(zip(reversed(windows), range(size - 1, -1, -1)))
        self.more: dict[int, list[int]] = {}  # window -> its later positions, for repeated windows
        if len(self.first) < size:
            later = compress(count(), map(ne, map(self.first.__getitem__, windows), count()))
            for pos in later:
                self.more.setdefault(windows[pos], []).append(pos)

    def hits(self, cstr: str) -> bytearray:
        """``hits[i] == 1`` when the fused window starting at token ``i`` occurs in ``cstr``."""
        # Only runs of k or more tokens the fused text has can hold a shared window.
        useful = NOT_IN_FUSED.join(self.runs.findall(cstr))
        common = self.windows.intersection(chain.from_iterable(_windows(useful, self.k)))
        hits = bytearray(self.size)
        first = self.first
        for w in common:
            hits[first[w]] = 1
        if self.more:
            for w in common.intersection(self.more):
                for pos in self.more[w]:
                    hits[pos] = 1
        return hits


def match_runs(fstr: str, cstr: str, seeds: Seeds, max_gap: int) -> list[list[tuple[int, int, int]]]:
    """Runs copied from one candidate, joined into chains, in fused order (chains may overlap).

    ``hits[i] == 1`` when fused tokens ``i .. i+k-1`` occur side by side somewhere in the candidate, so
    every copied run of ``k`` or more tokens lies in a stretch of ones. Runs are taken greedily from the
    left in each stretch, each the longest prefix of the remaining fused tokens found anywhere in the
    candidate; for a short run (one that may well repeat) the first occurrence at or after the end of
    the previous run is preferred, so a repeated passage maps in order. A run is also extended
    backwards where the tokens agree: that
    recovers a copy that starts inside the previous run but comes from another place. Runs join into a
    chain when the gaps between them, in the fused text and in the candidate, are both at most
    ``max_gap`` tokens. A chain is a list of blocks ``(fused_start, cand_start, length)``.
    """
    # One function of about 70 lines, by choice: it is the hot loop of attribution, and its state (the
    # chain being built, where the candidate is expected to continue) changes on every run; split up,
    # that state would travel back and forth between functions on every step.
    k = seeds.k
    hits = seeds.hits(cstr)
    if 1 not in hits:
        return []
    chains: list[list[tuple[int, int, int]]] = []
    blocks: list[tuple[int, int, int]] = []
    expect = 0
    find, next_hit = cstr.find, hits.find
    i = next_hit(1)
    while i >= 0:
        z = next_hit(0, i)
        if z < 0:
            z = len(hits)
        e = z + k - 1  # this stretch covers fused tokens [i, e)
        start = i
        while i <= e - k:
            # The longest prefix of fused tokens [i, e) found anywhere in the candidate: all of it, or
            # found by halving (the first k tokens occur, since their window does).
            needle = fstr[i:e]
            q = find(needle)
            if q < 0:
                lo, hi = k, e - i
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    if fstr[i : i + mid] in cstr:
                        lo = mid
                    else:
                        hi = mid
                needle = fstr[i : i + lo]
                q = find(needle)
            length = len(needle)
            if q < expect and length < 12:  # a short passage may repeat: keep the candidate's order
                later = find(needle, expect)
                if later >= 0:
                    q = later
            back = 0
            while i - back > start and q - back > 0 and fstr[i - back - 1] == cstr[q - back - 1]:
                back += 1
            fs, cs, ln = i - back, q - back, length + back
            expect = q + length
            i += length
            if blocks:
                pfs, pcs, pln = blocks[-1]
                df, dc = fs - pfs - pln, cs - pcs - pln
                if df < 0 and fs - cs == pfs - pcs:  # the same diagonal, overlapping: one longer run
                    if fs + ln > pfs + pln:
                        blocks[-1] = (pfs, pcs, fs + ln - pfs)
                    continue
                if 0 <= df <= max_gap and 0 <= dc <= max_gap:
                    blocks.append((fs, cs, ln))
                    continue
                chains.append(blocks)
            blocks = [(fs, cs, ln)]
        i = next_hit(1, z)
    if blocks:
        chains.append(blocks)
    return chains


def chain_weight(
    blocks: list[tuple[int, int, int]], m: int, n: int, fweights: list[int] | None, threshold: int
) -> int:
    """The chain's weight if it counts (heavy enough, or the whole fused text or candidate), else 0."""
    if fweights is None:
        weight = WORD_WEIGHT * sum(map(itemgetter(2), blocks))
    else:
        weight = sum(fweights[fs + ln] - fweights[fs] for fs, _, ln in blocks)
    fs, cs, _ = blocks[0]
    lfs, lcs, lln = blocks[-1]
    if weight >= threshold or (fs == 0 and lfs + lln == m) or (cs == 0 and lcs + lln == n):
        return max(weight, 1)
    return 0


def extend_chains(
    fstr: str,
    cstr: str,
    chains: list[list[tuple[int, int, int]]],
    chain_weights: list[int | None],
    covered: bytearray,
    fweights: list[int] | None,
    threshold: int,
    max_gap: int,
) -> list[tuple[int, int, Blocks, int | None]]:
    """Add short copied pieces next to the chains of one candidate, join the chains they bring together,
    and return the chains that count.

    A piece is 2+ tokens copied across a gap of at most ``max_gap`` tokens on either side, so an edit
    near the start or end of a copy does not cut off the rest. Pieces are only looked for next to fused
    tokens that no chain of any candidate covers: elsewhere the tokens are attributed already.
    """
    m, n, g = len(fstr), len(cstr), max_gap
    # Pieces are looked for next to uncovered fused tokens only, and two chains can only join once one
    # of them grew: the runs were joined where they could be already. A chain that grew or joined is
    # weighed again, unless every chain counts (``chain_weights`` are all None then).
    reweigh = any(w is not None for w in chain_weights)
    joined: list[list[tuple[int, int, int]]] = []
    known: list[int | None] = []
    floor = 0  # fused end of the previous chain: a piece before a chain stops there
    grew_before = False
    for idx, blocks in enumerate(chains):
        grew = False
        fs, cs, _ = blocks[0]
        if fs > floor + 1 and not covered[fs - 1]:
            piece = _piece_before(fstr, cstr, g, fs, cs, floor)
            while piece is not None:
                blocks.insert(0, piece)
                grew = True
                piece = _piece_before(fstr, cstr, g, piece[0], piece[1], floor)
        limit = chains[idx + 1][0][0] if idx + 1 < len(chains) else m
        lfs, lcs, lln = blocks[-1]
        if lfs + lln < limit - 1 and not covered[lfs + lln]:
            piece = _piece_after(fstr, cstr, g, lfs + lln, lcs + lln, limit)
            while piece is not None:
                blocks.append(piece)
                grew = True
                piece = _piece_after(fstr, cstr, g, piece[0] + piece[2], piece[1] + piece[2], limit)
        if (grew or grew_before) and joined:
            pfs, pcs, pln = joined[-1][-1]
            df, dc = blocks[0][0] - pfs - pln, blocks[0][1] - pcs - pln
            if 0 <= df <= g and 0 <= dc <= g:
                joined[-1].extend(blocks)
                known[-1] = chain_weight(joined[-1], m, n, fweights, threshold) if reweigh else None
                grew_before = True
                floor = blocks[-1][0] + blocks[-1][2]
                continue
        joined.append(blocks)
        weight = chain_weights[idx]
        if grew and reweigh:
            weight = chain_weight(blocks, m, n, fweights, threshold)
        known.append(weight)
        grew_before = grew
        floor = blocks[-1][0] + blocks[-1][2]
    return [
        (blocks[0][0], blocks[-1][0] + blocks[-1][2], tuple(blocks), weight)
        for blocks, weight in zip(joined, known)
        if weight != 0
    ]


def _piece_after(fstr: str, cstr: str, g: int, fe: int, ce: int, limit: int) -> tuple[int, int, int] | None:
    """A piece of 2+ tokens copied after a chain ending at fused ``fe`` and candidate ``ce``, across a gap
    of at most ``g`` tokens on either side, starting before ``limit``: ``(fused_start, cand_start,
    length)``, or None."""
    m, n = len(fstr), len(cstr)
    # The smallest total gap wins, then the smallest fused gap; the piece must start before limit.
    best = None
    for df in range(g + 1):
        a = fe + df
        if a + 2 > limit or (best is not None and df > best[2]):
            break
        q = cstr.find(fstr[a : a + 2], ce if df else ce + 1, ce + g + 2)
        if q >= 0 and (best is None or df + q - ce < best[2]):
            best = (a, q, df + q - ce)
    if best is None:
        return None
    a, b, _ = best
    ln = 2
    while a + ln < m and b + ln < n and fstr[a + ln] == cstr[b + ln]:
        ln += 1
    return a, b, ln


def _piece_before(fstr: str, cstr: str, g: int, fs: int, cs: int, floor: int) -> tuple[int, int, int] | None:
    """Like :func:`_piece_after`, before a chain starting at fused ``fs`` and candidate ``cs``, not
    reaching back past fused ``floor``."""
    best = None
    for df in range(g + 1):
        a = fs - df  # the piece would end here
        if a - 2 < floor or (best is not None and df > best[2]):
            break
        hi = cs if df else cs - 1
        q = cstr.rfind(fstr[a - 2 : a], max(0, cs - g - 2), hi) if hi >= 2 else -1
        if q >= 0 and (best is None or df + cs - q - 2 < best[2]):
            best = (a, q + 2, df + cs - q - 2)
    if best is None:
        return None
    a, b, _ = best
    ln = 2
    while a - ln > floor and b - ln > 0 and fstr[a - ln - 1] == cstr[b - ln - 1]:
        ln += 1
    return a - ln, b - ln, ln


def claim_overlaps(
    chains: list[tuple[int, int, Blocks, int | None]], fweights: list[int] | None
) -> list[tuple[int, int, Blocks]]:
    """Resolve overlaps between the chains ``(start, end, blocks, weight)`` of one candidate: heavier
    chains claim their fused tokens first. Returns disjoint ``(start, end, blocks)`` pieces in order."""
    if all(a[1] <= b[0] for a, b in zip(chains, chains[1:])):
        return [(a, b, blocks) for a, b, blocks, _ in chains]

    def weight(chain: tuple[int, int, Blocks, int | None]) -> int:
        if chain[3] is not None:
            return chain[3]
        if fweights is None:
            return WORD_WEIGHT * sum(map(itemgetter(2), chain[2]))
        return sum(fweights[fs + ln] - fweights[fs] for fs, _, ln in chain[2])

    starts: list[int] = []  # claimed intervals, disjoint and sorted: starts[i], ends[i]
    ends: list[int] = []
    out = []
    for a, b, blocks, _ in sorted(chains, key=lambda c: (-weight(c), c[0])):
        # Claimed intervals that may overlap [a, b): from the last one starting at or before a.
        i = max(bisect_right(starts, a) - 1, 0)
        pos = a
        free: list[tuple[int, int]] = []
        while i < len(starts) and starts[i] < b:
            if ends[i] > pos:
                if starts[i] > pos:
                    free.append((pos, starts[i]))
                pos = ends[i]
            i += 1
        if pos < b:
            free.append((pos, b))
        for fa, fb in free:
            out.append((fa, fb, blocks))
            k = bisect_right(starts, fa)
            starts.insert(k, fa)
            ends.insert(k, fb)
    out.sort(key=itemgetter(0))
    return out
