"""Cutting the candidates into units: the pieces the extractive fusor keeps, drops, rewords and moves.

Each usable candidate is split by :func:`fusion.text.split_units` (sentences, list items, headings, fenced
code and tables kept whole). A :class:`CandidateUnit` is one such unit with what the later steps need: its
content terms (:func:`fusion.text.content_terms`), its numbers, the text its similarity is measured on, and
(filled in by :func:`fusion.fusors.extractive.support.measure_support`) how many other candidates hold it.
A :class:`PlacedUnit` is a unit in the fused text, with the form it takes there.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from itertools import chain
from typing import Sequence

from fusion.coherence import COLONS, bold_heading, ends_with_colon
from fusion.fusors.extractive.reading import CHECKBOX, FORMAT_CHARS
from fusion.text import CJK_CHAR, Unit, content_terms, split_units, word_norms
from fusion.types import Prompt


def similarity_text(unit: Unit) -> str:
    """What similarity is measured on: the unit's content, normalised, without markdown emphasis or a
    task-list checkbox."""
    text = unicodedata.normalize("NFKC", unit.content).casefold()
    if unit.kind == "code":
        return text
    return FORMAT_CHARS.sub(" ", CHECKBOX.sub("", text))


@dataclass(eq=False)
class CandidateUnit:
    """A unit of one candidate, with what similarity and support need."""

    uid: int
    candidate: int  # position among the usable candidates
    position: int  # position within its candidate
    unit: Unit
    text_id: int  # id of the unit's similarity text; identical texts share one
    terms: dict[str, float]
    nums: frozenset[str]
    holders: int = 0  # other candidates that hold most of this unit's content terms
    support: float = 0.0  # mean share of its content terms found in each other candidate
    unsupported: frozenset[str] = frozenset()  # its numbers that no other candidate (nor the prompt) has

    @property
    def structural(self) -> bool:
        return self.unit.kind in ("heading", "rule")

    @property
    def lead_in(self) -> bool:
        """A sentence introducing what follows ("Here are some tips:")."""
        return self.unit.kind == "sentence" and self.unit.text.rstrip().endswith((":", "："))

    @property
    def item_lead_in(self) -> bool:
        """A list item introducing what follows ("2. Choose a location:"): its own sub-items or lines."""
        return self.unit.kind == "item" and ends_with_colon(self.unit.content)

    @property
    def heading_like(self) -> bool:
        """Structure rather than content: a heading, a bold-only line, or a sentence or an item ending in a
        colon (emphasis after it ignored: "**Ingredients:**")."""
        if self.structural or self.item_lead_in:
            return True
        text = self.unit.text
        return self.unit.kind == "sentence" and (ends_with_colon(text) or bold_heading(text))

    @property
    def prunable(self) -> bool:
        """Whether dropping this backbone unit as an outlier is safe: not code or tables (kept whole), not
        a step of a numbered list (a procedure with a hole is worse), not a lead-in or heading (what it
        introduces would lose its head)."""
        if self.unit.kind in ("code", "table") or self.heading_like:
            return False
        return not (self.unit.kind == "item" and self.unit.marker.strip()[:1].isdigit())

    @property
    def addable(self) -> bool:
        """Prose sentences and list items can be taken from other candidates on their own; headings and
        rules would bring structure the backbone does not have, and a lead-in (a sentence or an item ending
        in a colon), code or a table only comes as part of a complementary group (a lead-in with what it
        introduces): alone, it would introduce nothing, or whatever happens to follow it."""
        if self.unit.kind == "item":
            return not self.item_lead_in
        return self.unit.kind == "sentence" and not self.heading_like

    @cached_property
    def weight(self) -> int:
        """Size of the content in characters, a CJK character counting as two (it carries about a word).
        Remembered: the additions ask for it once per comparison."""
        content = "".join(self.unit.content.split())
        return len(content) + len(CJK_CHAR.findall(content))


@dataclass(eq=False)
class PlacedUnit:
    """A unit placed in the fused text: ``source`` gives the words, ``layout`` the place in a candidate
    whose white space and paragraph breaks are kept (the backbone unit a slot choice replaced, or
    ``source`` itself)."""

    source: CandidateUnit
    layout: CandidateUnit
    marker: str | None = None  # list marker to use instead of the unit's own ("" = no marker)
    break_level: int | None = None  # break level to use instead of the layout's
    added: bool = False
    # A numbered step whose colon introduced content that is gone: shown without the colon.
    bare: bool = False

    @property
    def kind(self) -> str:
        if self.marker is None:
            return self.source.unit.kind
        return "item" if self.marker else "sentence"

    @property
    def text(self) -> str:
        unit = self.source.unit
        text = unit.text if self.marker is None else self.marker + unit.content.lstrip()
        return without_colon(text) if self.bare else text

    @property
    def reshaped(self) -> bool:
        """Whether its form differs from the layout unit's in its candidate (so that unit's white space may
        not fit)."""
        return self.marker is not None and self.marker != self.layout.unit.marker

    @property
    def structural(self) -> bool:
        return self.source.structural


def without_colon(text: str) -> str:
    """The text without its final colon ("2. **Choose a spot:**" gives "2. **Choose a spot**")."""
    body = text.rstrip()
    tail = len(body) - len(body.rstrip(" \t*_`"))
    head, closing = body[: len(body) - tail], body[len(body) - tail :]
    if head.endswith(COLONS):
        head = head[:-1].rstrip()
    return head + closing + text[len(body) :]


def indent_of(marker: str) -> int:
    return len(marker) - len(marker.lstrip(" \t"))


def is_numbered_item(u: CandidateUnit) -> bool:
    return u.unit.kind == "item" and u.unit.marker.strip()[:1].isdigit()


def count_content_units(row: Sequence[CandidateUnit]) -> int:
    """The sentences and list items of one candidate."""
    return sum(1 for u in row if u.unit.kind in ("sentence", "item"))


class CandidatePool:
    """The usable candidates cut into units, with the term statistics support is measured by.

    ``rows[k]`` holds candidate ``k``'s units in order, ``units`` all of them by ``uid``;
    ``similarity_texts[text_id]`` is the text a unit's similarity is measured on (identical texts share an
    id). ``candidate_terms[k]`` is the set of candidate ``k``'s content terms and ``df[t]`` the number of
    candidates using term ``t``.
    """

    def __init__(self, prompt: Prompt, texts: Sequence[str]) -> None:
        self.prompt = prompt
        self.texts = texts
        self.rows: list[list[CandidateUnit]] = []
        self.units: list[CandidateUnit] = []
        self.similarity_texts: list[str] = []
        text_ids: dict[str, int] = {}
        for k, text in enumerate(texts):
            row = []
            for position, unit in enumerate(split_units(text)):
                st = similarity_text(unit)
                text_id = text_ids.setdefault(st, len(text_ids))
                if text_id == len(self.similarity_texts):
                    self.similarity_texts.append(st)
                terms = {} if unit.kind == "rule" else content_terms(unit.content)
                nums = frozenset(t[1:] for t in terms if t.startswith("#"))
                u = CandidateUnit(len(self.units), k, position, unit, text_id, terms, nums)
                row.append(u)
                self.units.append(u)
            self.rows.append(row)
        prompt_text = "\n".join(x for x in (prompt.system, prompt.text) if x)
        self.prompt_terms = set(content_terms(prompt_text))
        self._weight_memo: dict[int, dict[str, float]] = {}
        self._lower_words: list[set[str]] | None = None
        self.candidate_terms = [set(chain.from_iterable(u.terms for u in row)) for row in self.rows]
        # In how many candidates each term occurs.
        self.df: Counter[str] = Counter(chain.from_iterable(self.candidate_terms))

    def weights(self, u: CandidateUnit) -> dict[str, float]:
        """The unit's content terms with the weight they count for in support and novelty."""
        got = self._weight_memo.get(u.uid)
        if got is None:
            # Words the prompt already uses are the topic, which every answer repeats: they count half.
            prompt = self.prompt_terms
            got = {t: w * (0.5 if t in prompt and not t.startswith("#") else 1.0) for t, w in u.terms.items()}
            self._weight_memo[u.uid] = got
        return got

    def agreement(self, t: str, own: int) -> float:
        """Share of the other candidates that contain term t (t is in candidate ``own``)."""
        m = len(self.texts)
        return (self.df[t] - (1 if t in self.candidate_terms[own] else 0)) / (m - 1)

    def words_elsewhere(self, own: int) -> list[set[str]]:
        """The normalised words of every candidate but ``own``, and of the prompt."""
        if self._lower_words is None:
            self._lower_words = [word_norms(text) for text in self.texts] + [
                word_norms(f"{self.prompt.system or ''} {self.prompt.text}")
            ]
        return [w for k, w in enumerate(self._lower_words) if k != own]
