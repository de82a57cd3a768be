"""Tokenising for span attribution: texts as word tokens, normalised, with offsets on demand.

Tokens follow ``fusion.text.word_tokens`` except that apostrophes and hyphens separate words ("don't" is
two tokens, in every text alike) and combining marks (of the Basic Multilingual Plane) stay inside their
word. Text without CJK is cut with C-level ``bytes``/``str`` operations, without a Python step per word
(:func:`tokenize_fast`); other text with one regular-expression split (:func:`tokenize_regex`). Both give
the same tokens.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from itertools import accumulate, compress, count, repeat
from operator import add, eq, itemgetter, sub
from typing import Iterable

from fusion.text import _CJK_RANGES, is_cjk

# Weights are kept in half-words so that they stay integers: a word weighs 2, a CJK character 1.
WORD_WEIGHT = 2

# Text with more distinct non-ASCII letters than this (Greek, Cyrillic, ...) goes straight to the
# regular-expression tokeniser: the fast path would re-normalise nearly every word one by one.
_FAST_PATH_MAX_NON_ASCII = 40
_PLACEHOLDER = "\x1a"  # stands for a non-ASCII letter, digit or mark in the fast tokeniser
NOT_IN_FUSED = "\0"  # the private character of every candidate token the fused text lacks

# ASCII bytes -> folded bytes: letters lower-cased, digits and the placeholder kept, everything else
# (punctuation, apostrophes and hyphens included, white space, controls, "_") becomes a space.
_KEEP = set(b"abcdefghijklmnopqrstuvwxyz0123456789" + _PLACEHOLDER.encode())
_FOLD = bytes((c + 32 if 65 <= c <= 90 else c if c in _KEEP else 32) if c < 128 else 32 for c in range(256))
_ASCII_RUNS = re.compile(r"[\x00-\x7f]+")
_ASCII_BLANKS = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"
_WHITESPACE = re.compile(r"\s")


class Tokens:
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
        return "".join(map(alphabet.get, keys, repeat(NOT_IN_FUSED)))

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


def tokenize(text: str) -> Tokens:
    fast = tokenize_fast(text)
    return fast if fast is not None else tokenize_regex(text)


def tokenize_fast(text: str) -> Tokens | None:
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
    return Tokens(len(text), keys=keys, parts=parts, blanks=blanks)


def _normalise(word: str) -> str:
    return unicodedata.normalize("NFKC", word).casefold()


def tokenize_regex(text: str) -> Tokens:
    """Tokens of any text, from one regular-expression split (separators and tokens alternate)."""
    pattern, cjk = _token_pattern()
    parts = pattern.split(text)
    if len(parts) == 1:
        return Tokens(len(text), norms=[], starts=[])
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
        weights = list(accumulate(map(sub, repeat(WORD_WEIGHT), is_cjk_token), initial=0))
    return Tokens(len(text), norms=norms, starts=starts, weights=weights)


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


def blank_kinds(fused: str, ftok: Tokens) -> list[str]:
    """The kinds of white space ``fused`` holds."""
    blanks = [c for c in _ASCII_BLANKS if c in fused]
    if not fused.isascii():
        others = ftok.blanks if ftok.blanks is not None else _WHITESPACE.findall(fused)
        blanks += set(others).difference(blanks)
    return blanks
