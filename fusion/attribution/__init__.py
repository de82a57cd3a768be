"""Span attribution: which candidate each piece of the fused text was copied from.

The fused text is cut into spans that tile it exactly. A span names every candidate it was copied from
(several when they share the passage), each with the character offsets where the passage sits in that
candidate; a span with no source is novel text the fusor wrote itself.

How it works, and why it is cheap enough to run on every fusion:

* Texts are cut into word tokens (CJK characters one by one, punctuation dropped, case, width and
  compatibility forms folded by NFKC and case folding), so a copy that differs only in case,
  punctuation, spacing or full/half width still lines up. The rules are those of
  ``fusion.text.word_tokens`` except that apostrophes and hyphens separate words ("don't" is two
  tokens, in every text alike) and combining marks (of the Basic Multilingual Plane) stay inside their
  word. Text without CJK is cut with C-level ``bytes``/``str`` operations, without a Python step per
  word; other text with one regular-expression split.
* Each distinct fused token gets one character of a private alphabet, so the fused text and each
  candidate become strings with one character per token. The fused text's 4-token windows, read as
  integers straight from the UTF-16 bytes, are intersected with each candidate's, which marks the
  fused stretches that can hold a copy from that candidate. Only those are searched (longest run
  first, with ``str`` search), so the work grows about linearly with the length of the texts, where a
  character-level diff grows much faster.
* Runs copied from one candidate that sit at most ``max_gap`` tokens apart on both sides are joined, and
  next to fused text no run covers, short copied pieces across such a gap are picked up, so one or two
  changed words inside a long copy do not break it. Joined runs shorter than ``min_match`` words are
  dropped as chance overlap (a CJK character weighs half a word), except a run that is the whole fused
  text or a whole candidate: "Paris" copied from the answer "Paris." is copied.

Where each part lives: :mod:`fusion.attribution.tokens` cuts texts into tokens,
:mod:`fusion.attribution.matching` finds one candidate's copied runs and chains, and
:mod:`fusion.attribution.spans` cuts the fused text into spans and counts the shares. This module runs
them (:func:`attribute`) and holds what is read off an attribution (:func:`partition`,
:func:`verbatim_source`).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain, repeat
from typing import Sequence

from fusion.attribution.matching import (
    Seeds,
    chain_weight,
    claim_overlaps,
    extend_chains,
    match_runs,
    match_whole,
)
from fusion.attribution.spans import Blocks, build_spans, summarise
from fusion.attribution.tokens import WORD_WEIGHT, Tokens, blank_kinds, tokenize
from fusion.errors import InputError
from fusion.types import Attribution, Span

__all__ = ["SharePartition", "attribute", "partition", "verbatim_source"]

_OVERFLOW = "\uffff"  # fused tokens past the alphabet's size (a gigantic text): never matched
# One UTF-16 code unit per token: every character but NUL, the surrogates and U+FFFF.
_ALPHABET = (range(1, 0xD800), range(0xE000, 0xFFFF))
_ALPHABET_SIZE = sum(map(len, _ALPHABET))


def attribute(
    fused: str, candidates: Sequence[str | None], *, min_match: int = 4, max_gap: int = 2
) -> Attribution:
    """Attribute every span of ``fused`` to the candidates it was copied from.

    ``candidates[i]`` may be ``None`` or empty for a failed candidate: it contributes nothing and its
    share is 0.

    Returns an :class:`~fusion.types.Attribution` whose ``spans`` tile ``fused`` exactly (character
    offsets, in order, no gaps or overlaps, from 0 to ``len(fused)``; no spans for an empty text). Each
    span lists one :class:`~fusion.types.SourceRef` per candidate it was copied from, in candidate
    order, with the character offsets of the passage in that candidate; a span without sources is novel.
    Spans change where the set of sources changes, or where a source continues from another place in its
    candidate (so two adjacent spans can name the same candidates, at different places). Characters
    between tokens (spaces, punctuation) belong to the span on their left, leading characters to the
    first span; a source likewise runs from its first token to the start of the candidate's next token
    (or the candidate's end). Where an edit inside a copy was bridged, the source covers the edit too.

    ``shares[i]`` is the fraction of the fused text's non-whitespace characters that lie in spans naming
    candidate ``i`` (a shared span counts for each of its candidates, so shares can sum above 1).
    ``copied_fraction`` is the fraction of those characters that lie in spans with at least one source.
    Both are 0 when the fused text has no non-whitespace character.

    ``min_match`` is the shortest copy counted, in words (a CJK character counts as half a word);
    ``max_gap`` is the longest changed stretch, in tokens on either side, bridged inside a copy.
    Copies shorter than two tokens count only as a whole text or next to a longer copy.
    """
    if isinstance(min_match, bool) or not isinstance(min_match, int) or min_match < 1:
        raise InputError(f"min_match must be a whole number of at least 1, not {min_match!r}.")
    if isinstance(max_gap, bool) or not isinstance(max_gap, int) or max_gap < 0:
        raise InputError(f"max_gap must be a whole number of at least 0, not {max_gap!r}.")
    n_cand = len(candidates)
    if not fused:
        return Attribution(spans=[], shares=[0.0] * n_cand, copied_fraction=0.0)

    ftok = tokenize(fused)
    fnorms = ftok.norms
    m = len(fnorms)
    if m == 0:  # no word at all: one novel span
        visible = len(fused) - sum(fused.count(c) for c in blank_kinds(fused, ftok))
        return summarise([Span(0, len(fused))], [0] * n_cand, visible, 0)

    alphabet, fstr = _private_alphabet(fnorms)
    # Seeds are windows of 4 tokens (2 when shorter copies are wanted): 4-token windows rarely match by
    # chance, so few stretches need searching.
    k = 4 if min_match >= 4 else 2
    found = _copied_runs(fstr, candidates, alphabet, Seeds(fstr, k), max_gap)
    pieces, ctoks = _counting_pieces(fstr, found, ftok.weights, k, min_match * WORD_WEIGHT, max_gap)
    return build_spans(fused, ftok, m, pieces, ctoks, n_cand)


# A candidate's tokens, its private string and its copied runs, joined into chains (pass 1).
_Found = list[tuple[int, Tokens, str, list[list[tuple[int, int, int]]]]]


def _private_alphabet(fnorms: list[bytes]) -> tuple[dict[bytes, str], str]:
    """One character per distinct fused token, and the fused text written in them."""
    # Candidate tokens the fused text lacks all become one character the fused string never holds, so
    # they never match (nor do the fused tokens past the alphabet's size, in a gigantic text). Zipping
    # the tokens with fresh characters gives each distinct token the character of its last occurrence.
    chars = map(chr, chain(*_ALPHABET))
    m = len(fnorms)
    alphabet: dict[bytes, str] = dict(zip(fnorms if m <= _ALPHABET_SIZE else dict.fromkeys(fnorms), chars))
    fstr = "".join(map(alphabet.get, fnorms, repeat(_OVERFLOW)))
    alphabet[b""] = ""  # the empty parts between separators of a fast-path text
    return alphabet, fstr


def _copied_runs(
    fstr: str, candidates: Sequence[str | None], alphabet: dict[bytes, str], seeds: Seeds, max_gap: int
) -> _Found:
    """Pass 1: copied runs of every candidate, joined into chains across small gaps."""
    k, m = seeds.k, len(fstr)
    found: _Found = []
    for j, text in enumerate(candidates):
        if not text or text.isspace():
            continue
        tok = tokenize(text)
        cstr = tok.private(alphabet)
        if not cstr:
            continue
        if m < k or len(cstr) < k:
            runs = match_whole(fstr, cstr)
        else:
            runs = match_runs(fstr, cstr, seeds, max_gap)
        if runs:
            found.append((j, tok, cstr, runs))
    return found


def _counting_pieces(
    fstr: str, found: _Found, fweights: list[int] | None, k: int, threshold: int, max_gap: int
) -> tuple[dict[int, list[tuple[int, int, Blocks]]], dict[int, Tokens]]:
    """Pass 2: next to fused tokens no chain covers (an edit, or text the fusor wrote), look for short
    copied pieces across a small gap; then keep the chains that count. Returns per candidate its
    disjoint pieces ``(start, end, chain)`` and its tokens."""
    m = len(fstr)
    # Every run of k words reaches the threshold on its own: then every chain counts, and its weight
    # only matters to settle overlaps, which is rare.
    all_count = fweights is None and k * WORD_WEIGHT >= threshold
    covered = bytearray(m)
    chain_weights: list[list[int | None]] = []
    for _, _, cstr, runs in found:
        if all_count:
            ws: list[int | None] = [None] * len(runs)
            counting = runs
        else:
            ws = [chain_weight(blocks, m, len(cstr), fweights, threshold) for blocks in runs]
            counting = [blocks for blocks, w in zip(runs, ws) if w]
        chain_weights.append(ws)
        for blocks in counting:
            a, b = blocks[0][0], blocks[-1][0] + blocks[-1][2]
            covered[a:b] = b"\x01" * (b - a)
    pieces: dict[int, list[tuple[int, int, Blocks]]] = {}  # candidate -> disjoint (start, end, chain)
    ctoks: dict[int, Tokens] = {}
    for (j, tok, cstr, runs), ws in zip(found, chain_weights):
        chains = extend_chains(fstr, cstr, runs, ws, covered, fweights, threshold, max_gap)
        if chains:
            ctoks[j] = tok
            pieces[j] = claim_overlaps(chains, fweights)
    return pieces, ctoks


@dataclass(frozen=True)
class SharePartition:
    """Every non-whitespace character of the fused text counted exactly once.

    ``Attribution.shares`` counts a passage several candidates share for each of them, so those shares sum
    above 100% and cannot be read as parts of a whole. Here a character is in one candidate only
    (``only[i]``), in several (``shared``), or in none (``novel``); the parts sum to 1 (0 for an empty text).
    """

    only: list[float]
    shared: float
    novel: float

    @property
    def parts_total(self) -> float:
        return sum(self.only) + self.shared + self.novel

    def whole_percents(self) -> list[int]:
        """The parts ``[*only, shared, novel]`` as whole percents that add up to the rounded total (100 for a
        text that is not empty): each rounded on its own, 12.5 + 75.5 + 12.0 would read 13 + 76 + 12 = 101.
        Largest remainder: every part gets its floor, the parts with the largest remainders get the rest."""
        values = [100.0 * v for v in [*self.only, self.shared, self.novel]]
        floors = [int(v) for v in values]
        left = round(sum(values)) - sum(floors)
        by_remainder = sorted(range(len(values)), key=lambda k: (-(values[k] - floors[k]), k))
        for k in by_remainder[: max(0, left)]:
            floors[k] += 1
        return floors


def partition(fused: str, attribution: Attribution, n_candidates: int | None = None) -> SharePartition:
    """Split the fused text's non-whitespace characters into one-candidate, shared and new parts."""
    n = max(n_candidates or 0, len(attribution.shares))
    only = [0] * n
    shared = novel = 0
    covered = 0
    for sp in attribution.spans:
        piece = fused[max(sp.start, 0) : max(sp.end, 0)]
        weight = len(piece) - sum(1 for ch in piece if ch.isspace())
        covered += weight
        sources = set(sp.candidates)
        if not sources:
            novel += weight
        elif len(sources) == 1:
            (i,) = sources
            if 0 <= i < n:
                only[i] += weight
            else:
                novel += weight
        else:
            shared += weight
    total = covered
    if total == 0:
        return SharePartition(only=[0.0] * n, shared=0.0, novel=0.0)
    return SharePartition(only=[c / total for c in only], shared=shared / total, novel=novel / total)


def verbatim_source(fused: str, candidates: Sequence[str | None]) -> int | None:
    """The first candidate the fused text repeats word for word (ignoring surrounding white space)."""
    target = fused.strip()
    if not target:
        return None
    for i, text in enumerate(candidates):
        if text is not None and text.strip() == target:
            return i
    return None
