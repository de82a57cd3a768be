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


# The same ranges as one character class: finding a CJK character in a word at C speed.
CJK_CHAR = re.compile("[" + "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in _CJK_RANGES) + "]")


def is_cjk(ch: str) -> bool:
    o = ord(ch)
    if o < 0x1100:  # below every range: Latin, Greek, Cyrillic... (most characters seen) answer at once
        return False
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
        if CJK_CHAR.search(word):
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


def word_norms(text: str) -> set[str]:
    """``{t.norm for t in word_tokens(text)}``, normalising each distinct word once (a long text repeats
    most of its words)."""
    out: set[str] = set()
    for word in set(_WORD.findall(text)):
        if CJK_CHAR.search(word):
            out.update(t.norm for t in word_tokens(word))
        else:
            out.add(_tok(word, 0, len(word)).norm)
    return out


def _tok(text: str, s: int, e: int) -> Token:
    word = text[s:e]
    if word.isascii():  # NFKC leaves ASCII as it is and casefold is lower there: the same, faster
        return Token(s, e, word.lower())
    return Token(s, e, unicodedata.normalize("NFKC", word).casefold().replace("’", "'"))


# ---------------------------------------------------------------------------------------------------------
# Units: the pieces the extractive fusor keeps, drops and moves (sentences, list items, headings, code).

UNIT_KINDS = ("sentence", "item", "heading", "code", "table", "quote", "rule")
# Kinds that always sit on lines of their own; the rest (sentences) can share a line.
BLOCK_KINDS = frozenset({"item", "heading", "code", "table", "quote", "rule"})


@dataclass(frozen=True)
class Unit:
    """A sentence, list item, heading, fenced code block, table, quote line or rule of a text.

    ``text`` is exactly ``source[start:end]`` (for line kinds it includes the indentation and the marker,
    such as ``"  - "`` or ``"## "``); ``content`` is the part after the marker, which is what similarity is
    measured on. ``brk`` says what preceded the unit in its source: 0 = it continues a line, 1 = it starts a
    new line, 2 = it starts a new paragraph (a blank line before it). The first unit has ``brk`` 0.
    """

    start: int
    end: int
    kind: str
    brk: int
    text: str
    marker: str = ""

    @property
    def content(self) -> str:
        return self.text[len(self.marker) :]


_FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})")
_ATX = re.compile(r"^ {0,3}#{1,6}(?:[ \t]+|$)")
_SETEXT = re.compile(r"^ {0,3}(?:=+|-+)[ \t]*$")
_RULE = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_TABLE = re.compile(r"^[ \t]*\|")
_QUOTE = re.compile(r"^[ \t]*>[ \t]?")
# ASCII bullets need a space after them ("-5 degrees" is not an item); CJK bullets and circled numbers often
# have none.
_ITEM = re.compile(
    r"^[ \t]*(?:"
    r"(?:[-*+•‣▪◦]|\d{1,3}[.)]|[(（]\d{1,3}[)）])[ \t]+"
    r"|(?:[・●○■□◆◇★☆]|[①-⑳]|\d{1,3}[．、])[ \t]*"
    r")(?=\S)"
)
# Latin sentence ends: terminal punctuation, optional closing quotes/brackets, then white space.
_NEXT_VISIBLE = re.compile(r"\s*(\S)")
_LATIN_END = re.compile(r"[.!?…]+[\"'”’»)\]]*(?=\s)")
# CJK sentence ends need no space after them.
_CJK_END = re.compile(r"[。！？｡]+[」』）】〕\"”’]*|[!?！？．]+[」』）】〕\"”’]*(?=[^\x00-\x7f])")
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st vs cf approx fig figs vol no nos dept est inc ltd co corp "
    "z.b bzw usw ca d.h u.a nr bspw evtl ggf inkl sog vgl mio mrd jh dt str tel s.o u.u "
    "e.g i.e a.m p.m".split()
)


_ABBREVIATION_SCAN = 48


def _no_break_after(line: str, end_of_dot: int) -> bool:
    """True when the period before ``end_of_dot`` most likely ends an abbreviation, an initial or an
    ordinal ("Dr.", "z.B.", "J. R.", German "3. Oktober"), not a sentence."""
    # The word before the period, found by walking back at most _ABBREVIATION_SCAN characters: a search
    # anchored at the end of line[:end_of_dot] rescans the line for every period (quadratic on one long line).
    start = end_of_dot
    floor = max(0, end_of_dot - _ABBREVIATION_SCAN)
    while start > floor and not line[start - 1].isspace():
        start -= 1
    if start == end_of_dot or (start == floor and start > 0 and not line[start - 1].isspace()):
        return False  # no word, or one too long to be an abbreviation, an initial or an ordinal
    word = line[start:end_of_dot].lstrip("([{\"'“‘«")
    if not word.endswith("."):
        return False  # ends with ! ? … or a closing quote: a real end
    core = word.rstrip(".")
    low = core.lower()
    if low in _ABBREVIATIONS:
        return True
    if re.fullmatch(r"(?:[^\W\d_]\.)+[^\W\d_]", core):  # U.S., e.g. written with dots throughout
        return True
    if len(core) == 1 and core.isupper():  # an initial
        return True
    if re.fullmatch(r"\d{1,2}", core):  # ordinal in German and others; rarely a sentence end
        return True
    return False


def _sentence_bounds(line: str) -> list[tuple[int, int]]:
    """Sentence (start, end) offsets within one line of prose, white space trimmed from each."""
    cuts: set[int] = set()
    for m in _LATIN_END.finditer(line):
        e = m.end()
        nxt = _NEXT_VISIBLE.match(line, e)  # the next non-space character, without copying the rest
        if nxt is None:
            continue
        if nxt.group(1).islower():
            continue
        plain_period = m.group().rstrip("\"'”’»)]") == "."
        if plain_period and _no_break_after(line, m.start() + 1):
            continue
        cuts.add(e)
    for m in _CJK_END.finditer(line):
        if _NEXT_VISIBLE.match(line, m.end()):
            cuts.add(m.end())
    bounds: list[tuple[int, int]] = []
    prev = 0
    for cut in sorted(cuts) + [len(line)]:
        seg = line[prev:cut]
        s = prev + (len(seg) - len(seg.lstrip()))
        e = prev + len(seg.rstrip())
        if e > s:
            bounds.append((s, e))
        prev = cut
    return bounds


def split_sentences(text: str) -> list[str]:
    """The sentences of a piece of prose (Latin and CJK punctuation), each with its original text."""
    out: list[str] = []
    for line in text.splitlines():
        out.extend(line[s:e] for s, e in _sentence_bounds(line))
    return out


def split_units(text: str) -> list[Unit]:
    """Split a (markdown-ish) answer into units, in order, each keeping its original text and offsets.

    Fenced code blocks and tables are kept whole; headings, list items (bullets, numbers, CJK bullets;
    indented continuation lines belong to their item), quote lines and rules are one unit each; other
    lines are split into sentences (``. ! ?`` followed by white space and not by a lower-case letter,
    abbreviations and initials excepted; CJK ``。！？`` need no space). A line break always ends a unit.
    """
    lines: list[tuple[int, str]] = []  # (offset, line without its line break)
    pos = 0
    for raw in text.splitlines(keepends=True):
        lines.append((pos, raw.rstrip("\r\n")))
        pos += len(raw)
    units: list[Unit] = []
    pending = 0  # break level before the next unit
    i = 0

    def add(start: int, end: int, kind: str, marker: str = "") -> None:
        nonlocal pending
        brk = pending if units else 0
        units.append(Unit(start, end, kind, brk, text[start:end], marker))
        pending = 1

    while i < len(lines):
        off, line = lines[i]
        if not line.strip():
            if units:
                pending = 2
            i += 1
            continue
        fence = _FENCE.match(line)
        if fence:
            char, width = fence.group(2)[0], len(fence.group(2))
            closing = re.compile(r"^ {0,3}" + re.escape(char) + "{" + str(width) + r",}[ \t]*$")
            j = i + 1
            while j < len(lines) and not closing.match(lines[j][1]):
                j += 1
            j = min(j, len(lines) - 1)
            add(off, lines[j][0] + len(lines[j][1]), "code")
            i = j + 1
            continue
        if _TABLE.match(line):
            j = i
            while j + 1 < len(lines) and _TABLE.match(lines[j + 1][1]):
                j += 1
            add(off + _indent(line), lines[j][0] + len(lines[j][1].rstrip()), "table")
            i = j + 1
            continue
        if _RULE.match(line):
            add(off + _indent(line), off + len(line.rstrip()), "rule")
            i += 1
            continue
        atx = _ATX.match(line)
        if atx:
            add(off + _indent(line), off + len(line.rstrip()), "heading", line[_indent(line) : atx.end()])
            i += 1
            continue
        setext = i + 1 < len(lines) and _SETEXT.match(lines[i + 1][1])
        if setext and not _ITEM.match(line) and not _QUOTE.match(line):
            nxt_off, nxt = lines[i + 1]
            add(off + _indent(line), nxt_off + len(nxt.rstrip()), "heading")
            i += 2
            continue
        item = _ITEM.match(line)
        if item:
            ind = _indent(line)
            j = i
            # Indented lines right below an item (and no new item) continue it.
            while (
                j + 1 < len(lines)
                and lines[j + 1][1].strip()
                and lines[j + 1][1][:1] in (" ", "\t")
                and _indent(lines[j + 1][1]) > ind
                and not _ITEM.match(lines[j + 1][1])
                and not _FENCE.match(lines[j + 1][1])
            ):
                j += 1
            add(off, lines[j][0] + len(lines[j][1].rstrip()), "item", line[: item.end()])
            i = j + 1
            continue
        quote = _QUOTE.match(line)
        if quote:
            add(off, off + len(line.rstrip()), "quote", line[: quote.end()])
            i += 1
            continue
        for s, e in _sentence_bounds(line):
            add(off + s, off + e, "sentence")
            pending = 0
        pending = 1
        i += 1
    return units


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


# ---------------------------------------------------------------------------------------------------------
# Content terms: what a unit says, for support and novelty in the extractive fusor. Two candidates that
# paraphrase each other share few character n-grams per sentence but many content words and numbers.

# Function words of the languages the gallery and most prompts use; they carry no claim.
STOPWORDS = frozenset(
    """
a an the and or but if then than so as of to in on at by for with from into onto over under about after
before is are was were be been being am do does did done have has had having it its it's this that these
those there here i you he she we they me him her us them my your his our their what which who whom whose
when where why how not no nor can could would should will shall may might must also just very too more
most much many some any all each every both either neither one such own same other only even still yet
again further once up down out off while during per via etc let get got make made use used using like
well way new around roughly approximately nearly almost typically usually often generally really
actually quite rather
der die das den dem des ein eine einer eines einem einen und oder aber wenn dann als so wie von zu im in
am an auf für mit aus bei nach vor über unter um ist sind war waren wird werden wurde hat haben hatte
sein es er sie wir ihr ich du man nicht kein keine auch noch nur sehr mehr dass daß sich zum zur vom
beim bis durch
el la los las un una unos unas y o pero si que de del al en con por para es son fue ser está están hay
lo le les se su sus muy más mi tu te me nos como cuando ya sin sobre entre este esta estos estas ese esa
eso esto
le les des du et ou mais est sont été être avoir pour par avec dans sur ce cette ces qui que ne pas plus
au aux
""".split()
)

# A number: digits with inner separators ("3,7", "12,500", "4:17", "42.2"), not part of a Latin word or code
# ("A1", "mp3", "x27"); a unit may follow ("20km", "3776メートル", "2013年").
_NUMBER = re.compile(r"(?<![A-Za-zÀ-ɏ_\d.,:])\d+(?:[.,:]\d+)*(?!\d)")
_THOUSANDS = re.compile(r"\d{1,3}(?:([.,])\d{3})(?:\1\d{3})*")


def normalise_number(raw: str) -> str:
    """One spelling per value: thousands separators removed ("12,500" and "12.500" give "12500"), a decimal
    comma made a point ("3,7" gives "3.7")."""
    if _THOUSANDS.fullmatch(raw):
        return re.sub(r"[.,]", "", raw)
    return raw.replace(",", ".")


def numbers_in(text: str) -> set[str]:
    """The numbers written in digits in ``text``, normalised (see :func:`normalise_number`)."""
    return {normalise_number(m.group()) for m in _NUMBER.finditer(unicodedata.normalize("NFKC", text))}


def _stem(word: str) -> str:
    # A crude prefix stem that is the same for every language: inflected forms (run/runs, bone/bones,
    # verpasst/verpassten, Verspätung/verspätet) mostly share their first five letters.
    return word[:5] if len(word) > 5 else (word.rstrip("s") or word)


def content_terms(text: str, number_weight: float = 3.0) -> dict[str, float]:
    """The content of ``text`` as weighted terms: numbers (``"#3.7"``, weight ``number_weight``: they are
    the checkable claims), stemmed words that are not stop words (weight 1) and, for CJK text, pairs of
    adjacent CJK characters (weight 1; a single character is too common to mean anything)."""
    text = unicodedata.normalize("NFKC", text)
    out: dict[str, float] = {}
    for num in sorted(numbers_in(text)):
        out["#" + num] = number_weight
    prev_end = -1
    prev_char = ""
    for tok in word_tokens(text):
        word = tok.norm
        if len(word) == 1 and is_cjk(word):
            # Two hiragana in a row are mostly grammar (です, ます, した); a pair with a kanji, katakana or
            # hangul character carries content.
            if tok.start == prev_end and prev_char and not (_hiragana(prev_char) and _hiragana(word)):
                out.setdefault(prev_char + word, 1.0)
            prev_end, prev_char = tok.end, word
            continue
        prev_char = ""
        if any(ch.isdigit() for ch in word) or len(word) < 2 or word in STOPWORDS:
            continue
        out.setdefault(_stem(word), 1.0)
    return out


def _hiragana(ch: str) -> bool:
    return "\u3040" <= ch <= "\u309f"


def plural(n: int, word: str, words: str | None = None) -> str:
    """ "1 vote", "3 votes", "1,204 runs": a count with its noun, for messages (never "vote(s)")."""
    return f"{n:,} {word if n == 1 else (words or word + 's')}"
