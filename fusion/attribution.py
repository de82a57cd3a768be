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
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from functools import cache
from itertools import accumulate, chain, compress, count, repeat
from operator import add, eq, itemgetter, ne, sub
from dataclasses import dataclass
from typing import Iterable, Sequence

from fusion.errors import InputError
from fusion.text import _CJK_RANGES, is_cjk
from fusion.types import Attribution, SourceRef, Span

__all__ = ["SharePartition", "attribute", "partition", "verbatim_source"]

# Weights are kept in half-words so that they stay integers: a word weighs 2, a CJK character 1.
_WORD_WEIGHT = 2

# Text with more distinct non-ASCII letters than this (Greek, Cyrillic, ...) goes straight to the
# regular-expression tokeniser: the fast path would re-normalise nearly every word one by one.
_FAST_PATH_MAX_NON_ASCII = 40
_PLACEHOLDER = "\x1a"  # stands for a non-ASCII letter, digit or mark in the fast tokeniser
_NOT_IN_FUSED = "\0"  # the private character of every candidate token the fused text lacks
_OVERFLOW = "\uffff"  # fused tokens past the alphabet's size (a gigantic text): never matched
# One UTF-16 code unit per token: every character but NUL, the surrogates and U+FFFF.
_ALPHABET = (range(1, 0xD800), range(0xE000, 0xFFFF))
_ALPHABET_SIZE = sum(map(len, _ALPHABET))

# ASCII bytes -> folded bytes: letters lower-cased, digits and the placeholder kept, everything else
# (punctuation, apostrophes and hyphens included, white space, controls, "_") becomes a space.
_KEEP = set(b"abcdefghijklmnopqrstuvwxyz0123456789" + _PLACEHOLDER.encode())
_FOLD = bytes((c + 32 if 65 <= c <= 90 else c if c in _KEEP else 32) if c < 128 else 32 for c in range(256))
_ASCII_RUNS = re.compile(r"[\x00-\x7f]+")
_ASCII_BLANKS = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"
_WHITESPACE = re.compile(r"\s")
_BIG = 1 << 62


class _Tokens:
    """The tokens of one text: normalised forms (UTF-8), and character offsets worked out on demand.

    Fast-path texts keep ``parts``, the folded text split on single spaces, where part ``x`` starts at
    ``x + len(parts[0]) + ... + len(parts[x-1])``, and ``keys``: ``parts`` with the normalised form of
    words that held non-ASCII letters (and ``b""`` for a run of bare combining marks, which is no word).
    Every non-empty key is a token. ``blanks`` lists the kinds of white space the text holds.
    """

    __slots__ = ("length", "keys", "parts", "weights", "blanks", "_norms", "_starts")

    def __init__(
        self,
        length: int,
        *,
        keys: list[bytes] | None = None,
        parts: list[bytes] | None = None,
        norms: list[bytes] | None = None,
        starts: list[int] | None = None,
        weights: list[int] | None = None,
        blanks: list[str] | None = None,
    ) -> None:
        self.length = length  # of the original text
        self.keys = keys
        self.parts = parts
        self.weights = weights  # running total of token weights (len n + 1); None: every token is a word
        self.blanks = blanks
        self._norms = norms
        self._starts = starts

    @property
    def norms(self) -> list[bytes]:
        if self._norms is None:
            self._norms = list(filter(None, self.keys or []))
        return self._norms

    def private(self, alphabet: dict[bytes, str]) -> str:
        """The text in the private alphabet, one character per token (``alphabet[b""] == ""``)."""
        keys = self.keys if self.keys is not None else self.norms
        return "".join(map(alphabet.get, keys, repeat(_NOT_IN_FUSED)))

    @property
    def starts(self) -> list[int]:
        if self._starts is None:
            parts = self.parts or []
            before = map(add, accumulate(map(len, parts), initial=0), count())
            self._starts = list(compress(before, self.keys or []))
        return self._starts

    def offsets(self, wanted: set[int]) -> dict[int, int]:
        """Character offsets where the tokens ``wanted`` start (the text's length for one past the last).

        A candidate needs only a few of them, so they are found by walking the parts at C level rather
        than by building every offset.
        """
        if self._starts is not None or self.parts is None or len(wanted) * 16 > len(self.parts):
            starts = self.starts
            return {t: starts[t] if t < len(starts) else self.length for t in wanted}
        parts = self.parts
        lens = list(map(len, parts))
        keys = self.keys
        found: dict[int, int] = {}
        where = list(compress(count(), lens if keys is parts else keys))  # part index of each token
        x_prev = pos = 0
        for want in sorted(wanted):
            if want >= len(where):
                found[want] = self.length
                continue
            x = where[want]
            pos += sum(lens[x_prev:x]) + x - x_prev
            x_prev = x
            found[want] = pos
        return found


# A chain is copied runs of one candidate joined across small gaps: a tuple of blocks
# (fused_start, cand_start, length), in order on both sides.
_Blocks = tuple[tuple[int, int, int], ...]


def _cand_range(blocks: _Blocks, a: int, b: int) -> tuple[int, int]:
    """Candidate tokens ``[lo, hi)`` that correspond to fused tokens ``[a, b)`` of a chain.

    Inside a copied block the mapping is exact; inside a bridged gap the fused and candidate gaps are
    mapped onto each other proportionally (they may differ in length).
    """
    return _bound(blocks, a, 0), _bound(blocks, b - 1, 1)


def _bound(blocks: _Blocks, t: int, side: int) -> int:
    """Candidate position where fused token ``t`` starts (side 0) or ends (side 1)."""
    k = bisect_right(blocks, (t, _BIG, _BIG)) - 1
    fs, cs, n = blocks[k]
    if t < fs + n:
        return cs + t - fs + side
    nfs, ncs, _ = blocks[k + 1]
    gap_f, gap_c = nfs - (fs + n), ncs - (cs + n)
    return cs + n + (t - fs - n + side) * gap_c // gap_f


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

    ftok = _tokenize(fused)
    fnorms = ftok.norms
    m = len(fnorms)
    if m == 0:  # no word at all: one novel span
        visible = len(fused) - sum(fused.count(c) for c in _blanks(fused, ftok))
        return _attribution([Span(0, len(fused))], [0] * n_cand, visible, 0)

    # Candidate tokens the fused text lacks all become one character the fused string never holds, so
    # they never match (nor do the fused tokens past the alphabet's size, in a gigantic text). Zipping
    # the tokens with fresh characters gives each distinct token the character of its last occurrence.
    chars = map(chr, chain(*_ALPHABET))
    alphabet: dict[bytes, str] = dict(zip(fnorms if m <= _ALPHABET_SIZE else dict.fromkeys(fnorms), chars))
    fstr = "".join(map(alphabet.get, fnorms, repeat(_OVERFLOW)))
    alphabet[b""] = ""  # the empty parts between separators of a fast-path text
    # Seeds are windows of 4 tokens (2 when shorter copies are wanted): 4-token windows rarely match by
    # chance, so few stretches need searching.
    k = 4 if min_match >= 4 else 2
    seeds = _Seeds(fstr, k)
    threshold = min_match * _WORD_WEIGHT

    # Pass 1: copied runs of every candidate, joined into chains across small gaps.
    found: list[tuple[int, _Tokens, str, list[list[tuple[int, int, int]]]]] = []
    for j, text in enumerate(candidates):
        if not text or text.isspace():
            continue
        tok = _tokenize(text)
        cstr = tok.private(alphabet)
        if not cstr:
            continue
        if m < k or len(cstr) < k:
            runs = _match_short(fstr, cstr)
        else:
            runs = _match(fstr, cstr, seeds, max_gap)
        if runs:
            found.append((j, tok, cstr, runs))

    # Pass 2: next to fused tokens no chain covers (an edit, or text the fusor wrote), look for short
    # copied pieces across a small gap; then keep the chains that count.
    fweights = ftok.weights
    # Every run of k words reaches the threshold on its own: then every chain counts, and its weight
    # only matters to settle overlaps, which is rare.
    all_count = fweights is None and k * _WORD_WEIGHT >= threshold
    covered = bytearray(m)
    chain_weights: list[list[int | None]] = []
    for _, _, cstr, runs in found:
        if all_count:
            ws: list[int | None] = [None] * len(runs)
            counting = runs
        else:
            ws = [_counts(blocks, m, len(cstr), fweights, threshold) for blocks in runs]
            counting = [blocks for blocks, w in zip(runs, ws) if w]
        chain_weights.append(ws)
        for blocks in counting:
            a, b = blocks[0][0], blocks[-1][0] + blocks[-1][2]
            covered[a:b] = b"\x01" * (b - a)
    pieces: dict[int, list[tuple[int, int, _Blocks]]] = {}  # candidate -> disjoint (start, end, chain)
    ctoks: dict[int, _Tokens] = {}
    for (j, tok, cstr, runs), ws in zip(found, chain_weights):
        chains = _extend(fstr, cstr, runs, ws, covered, fweights, threshold, max_gap)
        if chains:
            ctoks[j] = tok
            pieces[j] = _claim(chains, fweights)

    return _spans(fused, ftok, m, pieces, ctoks, n_cand)


# --- tokenising ---------------------------------------------------------------------------------------


def _tokenize(text: str) -> _Tokens:
    fast = _tokenize_fast(text)
    return fast if fast is not None else _tokenize_regex(text)


def _tokenize_fast(text: str) -> _Tokens | None:
    """Tokens of text without CJK characters, from C-level string and bytes operations.

    Non-ASCII punctuation and symbols (curly quotes, dashes, emoji) become spaces and non-ASCII letters,
    digits and marks a placeholder letter; the few words holding a placeholder are then normalised from
    the original text. Every replacement is one character for one, so offsets hold. Returns None when
    the text needs the regular-expression tokeniser.
    """
    s = text
    if _PLACEHOLDER in s:
        s = s.replace(_PLACEHOLDER, " ")
    has_placeholder = False
    blanks = None
    if not s.isascii():
        others = set(_ASCII_RUNS.sub("", s))
        if len(others) > _FAST_PATH_MAX_NON_ASCII:
            return None
        blanks = [c for c in others if c.isspace()]
        for c in others:
            if is_cjk(c):
                return None
            if c.isalnum() or (c < "\U00010000" and unicodedata.category(c)[0] == "M"):
                s = s.replace(c, _PLACEHOLDER)
                has_placeholder = True
            else:
                s = s.replace(c, " ")
    folded = s.encode("ascii").translate(_FOLD)
    parts = folded.split(b" ")
    keys = parts
    if has_placeholder:
        # Normalise each word holding a placeholder from the original text. Part x starts right after
        # the x-th space of the folded text, and ends at the next one.
        keys = parts.copy()
        p = folded.find(0x1A)
        x = counted = 0
        while p >= 0:
            x += folded.count(32, counted, p)
            start = folded.rfind(32, 0, p) + 1
            end = folded.find(32, p)
            counted = end = len(folded) if end < 0 else end
            keys[x] = _normalise(text[start:end]).lstrip(_marks()).encode()
            p = folded.find(0x1A, end)
    return _Tokens(len(text), keys=keys, parts=parts, blanks=blanks)


def _normalise(word: str) -> str:
    return unicodedata.normalize("NFKC", word).casefold()


def _tokenize_regex(text: str) -> _Tokens:
    """Tokens of any text, from one regular-expression split (separators and tokens alternate)."""
    pattern, cjk = _token_pattern()
    parts = pattern.split(text)
    if len(parts) == 1:
        return _Tokens(len(text), norms=[], starts=[])
    words = parts[1::2]
    starts = list(accumulate(map(len, parts), initial=0))[1:-1:2]
    # One normalisation call for the whole text: the separator is a starter character that NFKC never
    # produces or composes across, so splitting afterwards gives back exactly one form per token.
    norms = _normalise("\x01".join(words)).encode().split(b"\x01")
    weights = None
    firsts = "".join(map(itemgetter(0), words))
    if cjk.search(firsts):
        # A token weighs 1 (half a word) when it is a CJK character, else 2.
        is_cjk_token = map(eq, cjk.sub("\x01", firsts), repeat("\x01"))
        weights = list(accumulate(map(sub, repeat(_WORD_WEIGHT), is_cjk_token), initial=0))
    return _Tokens(len(text), norms=norms, starts=starts, weights=weights)


@cache
def _token_pattern() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """A splitter that captures words (a letter or digit, then letters, digits and combining marks) and
    single CJK characters (with the voicing or combining marks that follow), and a CJK character class.
    Built on first use."""
    cjk = "".join(f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in _CJK_RANGES)
    marks = "".join(f"\\U{ord(lo):08x}-\\U{ord(hi):08x}" for lo, hi in _ranges(map(ord, _marks())))
    token = f"[{cjk}][\\uff9e\\uff9f{marks}]*|[^\\W_{cjk}](?:[^\\W_{cjk}]|[{marks}])*"
    return re.compile(f"({token})"), re.compile(f"[{cjk}]")


@cache
def _marks() -> str:
    """The combining marks (general category M) of the Basic Multilingual Plane, found by a scan of the
    Unicode tables (about 10 ms, once): the regular expression engine has no class for them, and a
    class with the rare marks beyond the BMP as well matches several times slower."""
    return "".join(chr(c) for c in range(0x300, 0x10000) if unicodedata.category(chr(c))[0] == "M")


def _ranges(codes: Iterable[int]) -> list[tuple[str, str]]:
    out: list[tuple[int, int]] = []
    for c in codes:
        if out and out[-1][1] == c - 1:
            out[-1] = (out[-1][0], c)
        else:
            out.append((c, c))
    return [(chr(lo), chr(hi)) for lo, hi in out]


# --- matching one candidate ---------------------------------------------------------------------------


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


def _match_short(fstr: str, cstr: str) -> list[list[tuple[int, int, int]]]:
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


class _Seeds:
    """The fused text's windows of ``k`` tokens: their set, and where each one starts."""

    def __init__(self, fstr: str, k: int) -> None:
        self.k = k
        self.runs = re.compile(f"[^{_NOT_IN_FUSED}]{{{k},}}")
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
        useful = _NOT_IN_FUSED.join(self.runs.findall(cstr))
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


def _match(fstr: str, cstr: str, seeds: _Seeds, max_gap: int) -> list[list[tuple[int, int, int]]]:
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


def _counts(
    blocks: list[tuple[int, int, int]], m: int, n: int, fweights: list[int] | None, threshold: int
) -> int:
    """The chain's weight if it counts (heavy enough, or the whole fused text or candidate), else 0."""
    if fweights is None:
        weight = _WORD_WEIGHT * sum(map(itemgetter(2), blocks))
    else:
        weight = sum(fweights[fs + ln] - fweights[fs] for fs, _, ln in blocks)
    fs, cs, _ = blocks[0]
    lfs, lcs, lln = blocks[-1]
    if weight >= threshold or (fs == 0 and lfs + lln == m) or (cs == 0 and lcs + lln == n):
        return max(weight, 1)
    return 0


def _extend(
    fstr: str,
    cstr: str,
    chains: list[list[tuple[int, int, int]]],
    chain_weights: list[int | None],
    covered: bytearray,
    fweights: list[int] | None,
    threshold: int,
    max_gap: int,
) -> list[tuple[int, int, _Blocks, int | None]]:
    """Add short copied pieces next to the chains of one candidate, join the chains they bring together,
    and return the chains that count.

    A piece is 2+ tokens copied across a gap of at most ``max_gap`` tokens on either side, so an edit
    near the start or end of a copy does not cut off the rest. Pieces are only looked for next to fused
    tokens that no chain of any candidate covers: elsewhere the tokens are attributed already.
    """
    m, n, g = len(fstr), len(cstr), max_gap

    def piece_after(fe: int, ce: int, limit: int) -> tuple[int, int, int] | None:
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

    def piece_before(fs: int, cs: int, floor: int) -> tuple[int, int, int] | None:
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
            piece = piece_before(fs, cs, floor)
            while piece is not None:
                blocks.insert(0, piece)
                grew = True
                piece = piece_before(piece[0], piece[1], floor)
        limit = chains[idx + 1][0][0] if idx + 1 < len(chains) else m
        lfs, lcs, lln = blocks[-1]
        if lfs + lln < limit - 1 and not covered[lfs + lln]:
            piece = piece_after(lfs + lln, lcs + lln, limit)
            while piece is not None:
                blocks.append(piece)
                grew = True
                piece = piece_after(piece[0] + piece[2], piece[1] + piece[2], limit)
        if (grew or grew_before) and joined:
            pfs, pcs, pln = joined[-1][-1]
            df, dc = blocks[0][0] - pfs - pln, blocks[0][1] - pcs - pln
            if 0 <= df <= g and 0 <= dc <= g:
                joined[-1].extend(blocks)
                known[-1] = _counts(joined[-1], m, n, fweights, threshold) if reweigh else None
                grew_before = True
                floor = blocks[-1][0] + blocks[-1][2]
                continue
        joined.append(blocks)
        weight = chain_weights[idx]
        if grew and reweigh:
            weight = _counts(blocks, m, n, fweights, threshold)
        known.append(weight)
        grew_before = grew
        floor = blocks[-1][0] + blocks[-1][2]
    return [
        (blocks[0][0], blocks[-1][0] + blocks[-1][2], tuple(blocks), weight)
        for blocks, weight in zip(joined, known)
        if weight != 0
    ]


def _claim(
    chains: list[tuple[int, int, _Blocks, int | None]], fweights: list[int] | None
) -> list[tuple[int, int, _Blocks]]:
    """Resolve overlaps between the chains ``(start, end, blocks, weight)`` of one candidate: heavier
    chains claim their fused tokens first. Returns disjoint ``(start, end, blocks)`` pieces in order."""
    if all(a[1] <= b[0] for a, b in zip(chains, chains[1:])):
        return [(a, b, blocks) for a, b, blocks, _ in chains]

    def weight(chain: tuple[int, int, _Blocks, int | None]) -> int:
        if chain[3] is not None:
            return chain[3]
        if fweights is None:
            return _WORD_WEIGHT * sum(map(itemgetter(2), chain[2]))
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


# --- spans and summary --------------------------------------------------------------------------------


def _spans(
    fused: str,
    ftok: _Tokens,
    m: int,
    pieces: dict[int, list[tuple[int, int, _Blocks]]],
    ctoks: dict[int, _Tokens],
    n_cand: int,
) -> Attribution:
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

    # The candidate token range each piece gives every span it covers; first only to collect the
    # positions whose character offsets are needed (found in one pass per candidate), then again to
    # build the sources. Candidates go in order, so each span's sources come out sorted.
    position = {x: i for i, x in enumerate(cuts)}
    order = sorted(pieces)
    wanted: dict[int, set[int]] = {}
    for j in order:
        w = wanted[j] = set()
        add = w.add
        for a, b, blocks in pieces[j]:
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
                    lo, hi = _cand_range(blocks, x, y)
                    add(lo)
                    add(hi)
                    i += 1
                    x = y

    # Spans and sources are frozen dataclasses, whose generated __init__ sets each field through
    # object.__setattr__; filling the instance dict directly halves the cost of building the hundreds of
    # them one attribution makes (the objects are the same: equality, hashing and repr are unchanged).
    new = object.__new__
    ref_class, span_class = SourceRef, Span
    sources: list[list[SourceRef] | None] = [None] * (len(cuts) - 1)
    for j in order:
        off = ctoks[j].offsets(wanted[j])
        for a, b, blocks in pieces[j]:
            i = position[a]
            x = a
            while x < b:
                y = cuts[i + 1]
                if len(blocks) == 1:
                    shift = blocks[0][1] - blocks[0][0]
                    lo, hi = x + shift, y + shift
                else:
                    lo, hi = _cand_range(blocks, x, y)
                cstart = 0 if lo == 0 and x == 0 else off[lo]
                cend = off[hi]
                if cend < cstart:
                    cend = cstart
                if _FILL_DICT:
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

    # The spans, and the non-whitespace characters of each copied one for the shares: its length less
    # the white space in it, counted per kind of white space the text holds (usually " " and "\n").
    starts = ftok.starts
    blanks = _blanks(fused, ftok)
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
        if _FILL_DICT:
            span = new(span_class)
            d = span.__dict__
            d["start"] = a
            d["end"] = b
            d["sources"] = found
        else:
            span = span_class(a, b, found)
        spans.append(span)
    return _attribution(spans, counts, total, copied)


def _plain_instances() -> bool:
    """True when Span and SourceRef keep exactly their fields in an instance dict (plain frozen
    dataclasses, as now): ``_spans`` then fills that dict directly; with slots it calls the classes."""
    try:
        ref, span = vars(SourceRef(1, 2, 3)), vars(Span(1, 2))
    except TypeError:  # no instance dict
        return False
    return ref == {"candidate": 1, "start": 2, "end": 3} and span == {"start": 1, "end": 2, "sources": ()}


_FILL_DICT = _plain_instances()


def _blanks(fused: str, ftok: _Tokens) -> list[str]:
    """The kinds of white space ``fused`` holds."""
    blanks = [c for c in _ASCII_BLANKS if c in fused]
    if not fused.isascii():
        others = ftok.blanks if ftok.blanks is not None else _WHITESPACE.findall(fused)
        blanks += set(others).difference(blanks)
    return blanks


def _attribution(spans: list[Span], counts: list[int], total: int, copied: int) -> Attribution:
    if total == 0:
        return Attribution(spans=spans, shares=[0.0] * len(counts), copied_fraction=0.0)
    return Attribution(spans=spans, shares=[c / total for c in counts], copied_fraction=copied / total)


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
