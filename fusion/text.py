"""Text helpers shared by the selectors, the fusors and attribution. Script-aware: CJK text has no
spaces between words, so it is handled a character at a time."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Han, Hiragana, Katakana, Hangul, and their common extension/compatibility blocks.
_CJK_RANGES = (
    (0x1100, 0x11FF),  # Hangul Jamo
    (0x2E80, 0x2FDF),  # CJK radicals, Kangxi
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3100, 0x31FF),  # Bopomofo, Hangul compatibility Jamo, Katakana ext
    (0x3400, 0x4DBF),  # CJK ext A
    (0x4E00, 0x9FFF),  # CJK unified
    (0xA960, 0xA97F),
    (0xAC00, 0xD7FF),  # Hangul syllables
    (0xF900, 0xFAFF),  # CJK compatibility
    (0xFF66, 0xFF9F),  # half-width Katakana
    (0x20000, 0x2FA1F),
)


def is_cjk(ch: str) -> bool:
    o = ord(ch)
    for lo, hi in _CJK_RANGES:
        if lo <= o <= hi:
            return True
    return False


@dataclass(frozen=True)
class Token:
    """A word (or one CJK character) with its offsets in the original text and a normalised form."""

    start: int
    end: int
    norm: str


# A word is a run of letters/digits/marks (apostrophes and hyphens inside it allowed); CJK characters are
# split out one by one below.
_WORD = re.compile(r"[^\W_]+(?:['’\-][^\W_]+)*", re.UNICODE)


def word_tokens(text: str) -> list[Token]:
    """Words and CJK characters of ``text``; punctuation and white space are left out.

    The normalised form is case-folded and NFKC-normalised, so a copy that differs only in case, width or
    punctuation still matches.
    """
    out: list[Token] = []
    for m in _WORD.finditer(text):
        s, e = m.start(), m.end()
        word = m.group()
        if any(is_cjk(c) for c in word):
            run_start = s
            for i, c in enumerate(word):
                if is_cjk(c):
                    if run_start < s + i:
                        out.append(_tok(text, run_start, s + i))
                    out.append(_tok(text, s + i, s + i + 1))
                    run_start = s + i + 1
            if run_start < e:
                out.append(_tok(text, run_start, e))
        else:
            out.append(_tok(text, s, e))
    return out


def _tok(text: str, s: int, e: int) -> Token:
    return Token(s, e, unicodedata.normalize("NFKC", text[s:e]).casefold().replace("’", "'"))
