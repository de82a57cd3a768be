"""Span attribution: which candidate each piece of the fused text was copied from.

The fused text is cut into spans that tile it exactly. A span names every candidate it was copied from
(several when they share the passage), each with the character offsets where the passage sits in that
candidate; a span with no source is novel text the fusor wrote itself.

How it works, and why it is cheap enough to run on every fusion:

* Texts are cut into word tokens (CJK characters one by one, punctuation dropped, case, width and
  compatibility forms folded by NFKC and case folding), so a copy that differs only in case,
  punctuation, spacing or full/half width still lines up. The rules are those of
  ``fusion.text.word_tokens`` except that apostrophes and hyphens separate words ("don't" is two
  tokens, in every text alike) and combining marks stay inside their word. Text without CJK is cut
  with C-level ``bytes``/``str`` operations, without a Python step per word.
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
from operator import add, itemgetter, ne
from typing import Iterable, NamedTuple, Sequence

from fusion.errors import InputError
from fusion.text import _CJK_RANGES, is_cjk
from fusion.types import Attribution, SourceRef, Span

__all__ = ["attribute"]

# Weights are kept in half-words so that they stay integers: a word weighs 2, a CJK character 1.
_WORD_WEIGHT = 2
_CJK_WEIGHT = 1

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
        found: dict[int, int] = {}
        where = list(compress(count(), self.keys or []))  # part index of each token
        x_prev = pos = 0
        for want in sorted(wanted):
            if want >= len(where):
                found[want] = self.length
                continue
            x = where[want]
            pos += sum(map(len, parts[x_prev:x])) + x - x_prev
            x_prev = x
            found[want] = pos
        return found


class _Chain(NamedTuple):
    """Copied runs of one candidate joined across small gaps: blocks of (fused_start, cand_start, length)."""

    blocks: tuple[tuple[int, int, int], ...]
    weight: int

    @property
    def fstart(self) -> int:
        return self.blocks[0][0]

    @property
    def fend(self) -> int:
        return self.blocks[-1][0] + self.blocks[-1][2]

    def cand_range(self, a: int, b: int) -> tuple[int, int]:
        """Candidate tokens ``[lo, hi)`` that correspond to fused tokens ``[a, b)`` of this chain.

        Inside a copied block the mapping is exact; inside a bridged gap the fused and candidate gaps are
        mapped onto each other proportionally (they may differ in length).
        """
        blocks = self.blocks
        if len(blocks) == 1:
            fs, cs, _ = blocks[0]
            return cs + a - fs, cs + b - fs
        return self._bound(a, 0), self._bound(b - 1, 1)

    def _bound(self, t: int, side: int) -> int:
        """Candidate position where fused token ``t`` starts (side 0) or ends (side 1)."""
        blocks = self.blocks
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
    covered = bytearray(m)
    for _, _, cstr, runs in found:
        for blocks in runs:
            if _counts(blocks, m, len(cstr), fweights, threshold):
                covered[blocks[0][0] : blocks[-1][0] + blocks[-1][2]] = b"\x01" * (
                    blocks[-1][0] + blocks[-1][2] - blocks[0][0]
                )
    pieces: dict[int, list[tuple[int, int, _Chain]]] = {}  # candidate -> disjoint (start, end, chain)
    ctoks: dict[int, _Tokens] = {}
    for j, tok, cstr, runs in found:
        chains = _extend(fstr, cstr, runs, covered, fweights, threshold, max_gap)
        if chains:
            ctoks[j] = tok
            pieces[j] = _claim(chains)

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
            if c.isalnum() or unicodedata.category(c)[0] == "M":
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
    matches = list(_token_pattern().finditer(text))
    if not matches:
        return _Tokens(len(text), norms=[], starts=[])
    words = [mt.group() for mt in matches]
    # One normalisation call for the whole text: the separator is a starter character that NFKC never
    # produces or composes across, so splitting afterwards gives back exactly one form per token.
    norms = _normalise("\x01".join(words)).encode().split(b"\x01")
    cjk = [is_cjk(w[0]) for w in words]
    weights = None
    if any(cjk):
        weights = list(accumulate((_CJK_WEIGHT if c else _WORD_WEIGHT for c in cjk), initial=0))
    return _Tokens(len(text), norms=norms, starts=[mt.start() for mt in matches], weights=weights)


@cache
def _token_pattern() -> re.Pattern[str]:
    """Words (a letter or digit, then letters, digits and combining marks) and single CJK characters (with
    the voicing or combining marks that follow). Built on first use."""
    cjk = "".join(f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in _CJK_RANGES)
    marks = "".join(f"\\U{ord(lo):08x}-\\U{ord(hi):08x}" for lo, hi in _ranges(map(ord, _marks())))
    return re.compile(f"[{cjk}][\\uff9e\\uff9f{marks}]*|[^\\W_{cjk}](?:[^\\W_{cjk}]|[{marks}])*")


@cache
def _marks() -> str:
    """Every combining mark (general category M), found by a scan of the Unicode tables (about 20 ms,
    once): the regular expression engine has no class for them."""
    codes = chain(range(0x300, 0x20000), range(0xE0100, 0xE01F0))
    return "".join(chr(c) for c in codes if unicodedata.category(chr(c))[0] == "M")


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
    candidate; of its occurrences the first at or after the end of the previous run is used, so a
    repeated passage maps in order. A run is also extended backwards where the tokens agree: that
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
    i = hits.find(1)
    while i >= 0:
        z = hits.find(0, i)
        if z < 0:
            z = len(hits)
        e = z + k - 1  # this stretch covers fused tokens [i, e)
        start = i
        while i <= e - k:
            # The longest prefix of fused tokens [i, e) found anywhere in the candidate: all of it, or
            # found by halving (the first k tokens occur, since their window does).
            needle = fstr[i:e]
            q = cstr.find(needle)
            if q < 0:
                lo, hi = k, e - i
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    if fstr[i : i + mid] in cstr:
                        lo = mid
                    else:
                        hi = mid
                needle = fstr[i : i + lo]
                q = cstr.find(needle)
            length = len(needle)
            if q < expect and length < 12:  # a short passage may repeat: keep the candidate's order
                later = cstr.find(needle, expect)
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
        i = hits.find(1, z)
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
    covered: bytearray,
    fweights: list[int] | None,
    threshold: int,
    max_gap: int,
) -> list[_Chain]:
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

    joined: list[list[tuple[int, int, int]]] = []
    for idx, blocks in enumerate(chains):
        fs, cs, _ = blocks[0]
        floor = joined[-1][-1][0] + joined[-1][-1][2] if joined else 0
        if fs > floor + 1 and not covered[fs - 1]:
            piece = piece_before(fs, cs, floor)
            while piece is not None:
                blocks.insert(0, piece)
                piece = piece_before(piece[0], piece[1], floor)
        limit = chains[idx + 1][0][0] if idx + 1 < len(chains) else m
        lfs, lcs, lln = blocks[-1]
        if lfs + lln < limit - 1 and not covered[lfs + lln]:
            piece = piece_after(lfs + lln, lcs + lln, limit)
            while piece is not None:
                blocks.append(piece)
                piece = piece_after(piece[0] + piece[2], piece[1] + piece[2], limit)
        if joined:
            pfs, pcs, pln = joined[-1][-1]
            df, dc = blocks[0][0] - pfs - pln, blocks[0][1] - pcs - pln
            if 0 <= df <= g and 0 <= dc <= g:
                joined[-1].extend(blocks)
                continue
        joined.append(blocks)
    out = []
    for blocks in joined:
        weight = _counts(blocks, m, n, fweights, threshold)
        if weight:
            out.append(_Chain(tuple(blocks), weight))
    return out


def _claim(chains: list[_Chain]) -> list[tuple[int, int, _Chain]]:
    """Resolve overlaps between chains of one candidate: heavier chains claim their fused tokens first.

    Returns disjoint ``(start, end, chain)`` pieces in fused order."""
    out = [(ch.fstart, ch.fend, ch) for ch in chains]
    if all(a[1] <= b[0] for a, b in zip(out, out[1:])):
        return out
    starts: list[int] = []  # claimed intervals, disjoint and sorted: starts[i], ends[i]
    ends: list[int] = []
    out = []
    for ch in sorted(chains, key=lambda c: (-c.weight, c.fstart)):
        a, b = ch.fstart, ch.fend
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
            out.append((fa, fb, ch))
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
    pieces: dict[int, list[tuple[int, int, _Chain]]],
    ctoks: dict[int, _Tokens],
    n_cand: int,
) -> Attribution:
    # Cut the fused tokens at every piece boundary; each elementary stretch collects its (candidate,
    # chain) sources in candidate order; neighbours with the same sources are merged into one span.
    bounds = sorted({0, m}.union(*((a, b) for plist in pieces.values() for a, b, _ in plist)))
    index = {x: i for i, x in enumerate(bounds)}
    sources: list[list[tuple[int, _Chain]]] = [[] for _ in range(len(bounds) - 1)]
    for j in sorted(pieces):
        for a, b, ch in pieces[j]:
            item = (j, ch)
            for i in range(index[a], index[b]):
                sources[i].append(item)
    cuts = [0]
    keys = [sources[0]]
    for i in range(1, len(sources)):
        if sources[i] != keys[-1]:
            cuts.append(bounds[i])
            keys.append(sources[i])
    cuts.append(m)

    # Candidate token ranges of every source, then their character offsets in one pass per candidate.
    wanted: dict[int, set[int]] = {j: set() for j in ctoks}
    ranges = []
    for x, y, key in zip(cuts, cuts[1:], keys):
        rs = []
        for j, ch in key:
            blocks = ch.blocks
            if len(blocks) == 1:
                fs, cs, _ = blocks[0]
                lo, hi = cs + x - fs, cs + y - fs
            else:
                lo, hi = ch.cand_range(x, y)
            w = wanted[j]
            w.add(lo)
            w.add(hi)
            rs.append((j, lo, hi))
        ranges.append(rs)
    offsets = {j: ctoks[j].offsets(w) for j, w in wanted.items() if w}

    # The spans, and the non-whitespace characters of each copied one for the shares: its length less
    # the white space in it, counted per kind of white space the text holds (usually " " and "\n").
    # Spans and sources are frozen dataclasses, whose generated __init__ sets each field through
    # object.__setattr__; filling the instance dict directly halves the cost of building the hundreds of
    # them one attribution makes (the objects are the same: equality, hashing and repr are unchanged).
    starts = ftok.starts
    blanks = _blanks(fused, ftok)
    total = len(fused) - sum(fused.count(c) for c in blanks)
    counts = [0] * n_cand
    copied = 0
    spans: list[Span] = []
    new = object.__new__
    for x, y, rs in zip(cuts, cuts[1:], ranges):
        a = starts[x] if x else 0
        b = starts[y] if y < m else len(fused)
        refs = []
        if rs:
            visible = b - a
            for c in blanks:
                visible -= fused.count(c, a, b)
            copied += visible
            for j, lo, hi in rs:
                off = offsets[j]
                cstart = 0 if lo == 0 and x == 0 else off[lo]
                cend = off[hi]
                r = new(SourceRef)
                d = r.__dict__
                d["candidate"] = j
                d["start"] = cstart
                d["end"] = cend if cend > cstart else cstart
                refs.append(r)
                counts[j] += visible
        span = new(Span)
        d = span.__dict__
        d["start"] = a
        d["end"] = b
        d["sources"] = tuple(refs)
        spans.append(span)
    return _attribution(spans, counts, total, copied)


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
