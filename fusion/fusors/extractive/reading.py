"""How a unit or a prompt reads: the word lists and patterns the extractive fusor judges text by.

A unit taken out of its own answer must still make sense where it lands: it must not lean on the sentence
before it ("This is why..."), close the answer ("Good luck!"), speak in its answer's own voice ("I hope
this helps") or name something no other candidate mentions. The prompt says whether the candidates are
translations of one text (they are then parallel), one voice (a story), or held to a length.
"""

from __future__ import annotations

import re

from fusion.text import Unit, is_cjk, word_tokens
from fusion.types import Prompt

# Markdown emphasis and structure characters, and a task-list checkbox: not part of what a unit says.
FORMAT_CHARS = re.compile(r"[*_`#>|~]+")
CHECKBOX = re.compile(r"^\s*\[[ xX]\]\s+")

# Openers that make a sentence lean on the one before it ("This is why...", "So yes, ..."): taken out of
# its own answer, such a sentence points at something the fused text may not say.
_DEPENDENT_OPENERS = frozenset(
    """
this that these those it its they them their he she his her such so thus therefore hence also however but
and or then finally yes no here there another both instead otherwise again still too besides plus overall
first second third next now lastly additionally moreover furthermore similarly likewise meanwhile afterwards
dies diese dieser dieses also aber und dann daher deshalb außerdem trotzdem ja nein
esto eso esta este estos estas así pero y entonces además también sin embargo sí
""".split()
)
_DEPENDENT_PHRASES = (
    "in short",
    "in summary",
    "in conclusion",
    "to sum up",
    "for example",
    "for instance",
    "as a result",
    "on the other hand",
    "in addition",
    "that said",
    "in other words",
    "that is",
    "since then",
    "short answer",
    "por ejemplo",
    "zum beispiel",
)
_FIRST_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")

_CLOSING = (
    "finally",
    "in short",
    "in summary",
    "in conclusion",
    "to sum up",
    "overall",
    "good luck",
    "hope this",
    "i hope",
    "remember",
    "enjoy",
    "bottom line",
    "all in all",
    "so ",
    "en resumen",
    "suerte",
    "¡suerte",
    "¡disfruta",
    "insgesamt",
    "viel erfolg",
    "zusammenfassend",
)

# The answer's own voice ("I hope...", "I don't have enough context", "my advice"): it speaks for the
# candidate it comes from, not for the fused text.
_PERSONAL = frozenset(
    "i i'm i'd i've i'll me my mine ich mich mir mein meine yo me mi mis je moi mon ma mes".split()
)

_WORD_RUN = re.compile(r"(?<![\w`'’.-])[^\W\d_]+(?![\w`'’-])")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;]\s+|\n\s*)[\s*_\"'“(\[]*$")

# "in three sentences", "at most 120 words": a length the prompt asks for, which additions must respect.
_NUMBER_WORDS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten".split())}
_LENGTH_LIMIT = re.compile(
    r"\b(?:in|at most|no more than|up to|under|within|maximum of|max\.?|exactly|only)\s+"
    r"(\d{1,4}|" + "|".join(_NUMBER_WORDS) + r")\s+(sentences?|words?)\b",
    re.IGNORECASE,
)
_TRANSLATION = re.compile(r"translat|übersetz|traduc|tradu[zi]|翻訳|翻译|번역", re.IGNORECASE)
# Creative writing: a story is one voice; sentences from other stories do not belong in it.
_CREATIVE = re.compile(
    r"\b(?:story|stories|poem|poetry|haiku|limerick|lyrics|song|sonnet|fable|fairy tale|joke|fiction|"
    r"narrative|screenplay|rap|rhyme|verse|invent|imaginary|fictional|made-up|make up|rewrite|rephrase|"
    r"paraphrase|reword|proofread)\b",
    re.IGNORECASE,
)


def opens_as_continuation(unit: Unit) -> bool:
    """Whether the unit opens like a continuation ("This means...", "So yes, ...", "For example, ...")."""
    plain = FORMAT_CHARS.sub(" ", CHECKBOX.sub("", unit.content)).strip().casefold()
    if plain.startswith(_DEPENDENT_PHRASES):
        return True
    m = _FIRST_WORD.match(plain)
    return bool(m) and m.group().replace("’", "'").split("'")[0] in _DEPENDENT_OPENERS


def opens_as_closing(unit: Unit) -> bool:
    """Whether a paragraph opens like the closing words of an answer ("Finally, ...", "Good luck!")."""
    plain = FORMAT_CHARS.sub(" ", unit.content).strip().casefold()
    return plain.startswith(_CLOSING)


def in_own_voice(unit: Unit) -> bool:
    """Whether the unit speaks as its answer's author ("I hope this helps", "my advice")."""
    return any(tok.norm in _PERSONAL for tok in word_tokens(unit.content))


def inner_names(content: str) -> set[str]:
    """Capitalised words inside sentences (not first in one), case-folded; none for text that capitalises
    most of its nouns (more than a quarter of its inner words capitalised, as German does). Code in
    backticks is left out."""
    text = re.sub(r"`[^`]*`", " ", content)
    runs = list(_WORD_RUN.finditer(text))
    inner = [
        m
        for m in runs
        if m.group()[0].isupper()
        and any(c.islower() for c in m.group())
        and not _SENTENCE_START.search(text[: m.start()])
    ]
    words = len(runs)
    if not inner or len(inner) > 0.25 * max(1, words):
        return set()
    return {m.group().casefold() for m in inner}


def reads_as_sentence(content: str) -> bool:
    """A list item that reads as a sentence on its own (capital or emphasis first, final punctuation), so
    it can stand as a paragraph where there is no list to join."""
    text = content.strip()
    if not text or text.endswith(":"):
        return False
    first = FORMAT_CHARS.sub("", text)[:1]
    return (first.isupper() or is_cjk(first)) and text[-1] in ".!?。！？)"


def length_limit(prompt: Prompt) -> tuple[int, str] | None:
    """A length the prompt asks for ("in three sentences", "at most 120 words"): ``(n, "sentence" |
    "word")``, or None. English phrasing only; the smallest limit wins when there are several."""
    found: list[tuple[int, str]] = []
    for m in _LENGTH_LIMIT.finditer(prompt.text):
        raw = m.group(1).lower()
        n = int(raw) if raw.isdigit() else _NUMBER_WORDS[raw]
        if n > 0:
            found.append((n, "sentence" if m.group(2).lower().startswith("sentence") else "word"))
    return min(found) if found else None


def asks_for_translation(prompt: Prompt) -> bool:
    """Whether the prompt asks for a translation: every candidate then renders the same sentences."""
    return bool(_TRANSLATION.search(prompt.text))


def asks_for_one_voice(prompt: Prompt) -> bool:
    """Whether the prompt asks for creative writing or a rewrite, where sentences of other candidates do
    not belong."""
    return bool(_CREATIVE.search(prompt.text))
