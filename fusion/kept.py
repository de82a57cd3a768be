"""What the fusion kept and what it dropped, per candidate.

Fusion-of-N is defined as much by what it discards as by what it keeps. From a span attribution
(:func:`fusion.attribution.attribute`) this module works out, for each candidate:

* its **kept ranges**: the character ranges of the candidate that the fused text reuses, merged;
* the **status of each unit** (sentence, list item, heading, quote line, table, fenced code block as one
  unit, as cut by :func:`fusion.text.split_units`): ``"kept"`` (copied as is), ``"edited"`` (a
  substantial part reused, with changes) or ``"dropped"``; and the counts ("kept 4 of 9 sentences").

How a unit's status is decided
------------------------------
Only a unit's *word characters* are measured (letters, digits and CJK characters; no white space,
punctuation, Markdown emphasis or symbols), over its content: a list item's or heading's marker
(``"- "``, ``"3. "``, ``"## "``) is left out, so a renumbered item is not an edit, and so are a code block's
fence lines. The attribution itself ignores punctuation and white space, so measuring them would only
add noise. A unit without any word character (a rule, ``"**"``, an emoji line) is not a unit.

``coverage`` is the fraction of the unit's word characters inside the kept ranges. A unit is *reused*
when its coverage is at least :data:`REUSED_MIN_COVERAGE` (0.5): at least half of it comes back in the
fused text, by the attribution's account. Then:

* ``"kept"`` (copied as is): the unit is reused **and** its words, in order, occur in the fused text
  (compared case-, width- and punctuation-insensitively, as the attribution compares them);
* ``"edited"`` (lightly edited, or partly reused): reused, but its words are not all there in that order;
* ``"dropped"``: not reused.

Why "as is" is tested on the words and not by a coverage near 1: coverage cannot tell the two apart.
The attribution bridges small edits inside a copy (its ``max_gap``), so a sentence with one word changed
is fully covered; and where a phrase repeats in a candidate (every Japanese sentence ending in です。) the
attribution may place a copied word at its other occurrence, so a sentence copied as is can show a
coverage of 0.85 while a neighbour it never copied gets 0.1.

Why 0.5: "at least half of it is reused" is the plain reading of "a substantial part", and the counts
are not very sensitive to it. On the 100 AlpacaEval prompts fused offline with N = 8
(``bench/kept_quality.py``, results in ``bench/results/kept.md``) 80% of the units have a coverage of
exactly 0 or exactly 1; the share of units counted as reused moves from 23% to 16% as the threshold goes
from 0.3 to 0.7. Read by eye, units between 0.3 and 0.7 are partial reuse either way (the fused text
shares a clause or a phrase with them), and below 0.5 the unit's point is usually gone. An ``"edited"``
unit is therefore "lightly edited or partly reused": of 20 sampled, 14 were light edits (a word, a
number, a clause changed) and 6 were sentences whose longest phrase the fused text reuses inside a
sentence of its own.

Unknown locations
-----------------
Spans read from JSON written before source locations were recorded carry ``SourceRef`` offsets of -1:
the candidate is known, where in the candidate is not. :func:`kept_ranges` refuses such an attribution
(:class:`LocationsUnknown`) rather than guess or silently report "all dropped"; :func:`kept_reports`,
which also has the texts, attributes the fused text again (attribution is deterministic) and uses that.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any, Sequence

from fusion.errors import InputError
from fusion.text import _CJK_RANGES, Unit, split_units
from fusion.types import Attribution, Run

__all__ = [
    "REUSED_MIN_COVERAGE",
    "STATUSES",
    "KeptReport",
    "LocationsUnknown",
    "UnitStatus",
    "has_locations",
    "kept_ranges",
    "kept_report",
    "kept_reports",
    "measured_region",
    "normalised_words",
    "run_kept",
    "unit_statuses",
]

STATUSES = ("kept", "edited", "dropped")
REUSED_MIN_COVERAGE = 0.5

# A word character: a letter or digit of any script (CJK included), not "_".
_WORD_CHAR = re.compile(r"[^\W_]")
_FENCE_LINE = re.compile(r"[ \t]*(?:`{3,}|~{3,})[ \t]*$")
# Words as fusion.text.word_tokens cuts them (a run of letters and digits, inner apostrophes and hyphens
# allowed; every CJK character a word of its own), as one regular expression so that a whole text is cut
# at C speed: word_tokens builds an object per word, which made it most of the cost here.
_CJK_CLASS = "".join(f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in _CJK_RANGES)
_WORDS = re.compile(f"[{_CJK_CLASS}]|[^\\W_{_CJK_CLASS}]+(?:['\\-][^\\W_{_CJK_CLASS}]+)*")


class LocationsUnknown(InputError):
    """The attribution names a candidate without saying where in it (offsets -1, from old JSON)."""


@dataclass(frozen=True)
class UnitStatus:
    """One unit of a candidate, ``text[start:end]``, and what the fusion did with it.

    ``status`` is one of :data:`STATUSES`; ``coverage`` the fraction (0..1) of its word characters that
    the fused text reuses; ``kind`` the unit kind of :mod:`fusion.text` (``"sentence"``, ``"item"``,
    ``"heading"``, ``"code"``, ``"table"``, ``"quote"``).
    """

    start: int
    end: int
    status: str
    kind: str
    coverage: float

    def to_list(self) -> list[Any]:
        return [self.start, self.end, self.status, self.kind, round(self.coverage, 3)]

    @classmethod
    def from_list(cls, data: Sequence[Any]) -> UnitStatus:
        start, end, status, kind, coverage = data
        if status not in STATUSES:
            raise InputError(f"Unknown unit status {status!r}; expected one of {', '.join(STATUSES)}.")
        return cls(int(start), int(end), str(status), str(kind), float(coverage))


@dataclass
class KeptReport:
    """What the fused text kept of candidate ``index``.

    ``ranges`` are merged, sorted ``(start, end)`` character ranges of the candidate that the fused text
    reuses (see :func:`kept_ranges`); ``units`` every unit of the candidate in order with its status.
    """

    index: int
    ranges: list[tuple[int, int]] = field(default_factory=list)
    units: list[UnitStatus] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        """``{"kept", "edited", "dropped", "total"}`` numbers of units."""
        out = {s: 0 for s in STATUSES}
        for u in self.units:
            out[u.status] += 1
        out["total"] = len(self.units)
        return out

    def summary(self) -> str:
        """A one-line account for a candidate's card: "kept 4 of 9 sentences (1 edited)".

        Kept counts both units copied as is and edited ones; the noun follows the units' kinds.
        """
        c = self.counts
        kinds = {u.kind for u in self.units}
        noun = "sentences" if kinds <= {"sentence"} else "list items" if kinds == {"item"} else "parts"
        if c["total"] == 1:
            noun = {"sentences": "sentence", "list items": "list item"}.get(noun, "part")
        text = f"kept {c['kept'] + c['edited']} of {c['total']} {noun}"
        return text + (f" ({c['edited']} edited)" if c["edited"] else "")

    def to_dict(self) -> dict[str, Any]:
        """The compact form written by the CLI: ``{"index", "ranges": [[s, e], ...], "units": counts,
        "unit_status": [[start, end, status, kind, coverage], ...]}`` (coverage rounded to 3 places)."""
        return {
            "index": self.index,
            "ranges": [[a, b] for a, b in self.ranges],
            "units": self.counts,
            "unit_status": [u.to_list() for u in self.units],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KeptReport:
        return cls(
            index=int(data["index"]),
            ranges=[(int(a), int(b)) for a, b in data.get("ranges", [])],
            units=[UnitStatus.from_list(u) for u in data.get("unit_status", [])],
        )


# --------------------------------------------------------------------------------------------- ranges


def has_locations(attribution: Attribution) -> bool:
    """True when every source of every span says where it sits in its candidate."""
    return all(r.start >= 0 and r.end >= 0 for s in attribution.spans for r in s.sources)


def kept_ranges(attribution: Attribution, candidate_index: int) -> list[tuple[int, int]]:
    """The character ranges of candidate ``candidate_index`` that the fused text reuses, merged.

    The ranges are the candidate-side offsets of every span naming the candidate (``SourceRef``), sorted,
    with overlapping and touching ranges merged; empty for a candidate the fusion took nothing from.
    A source's range runs from its first copied word to the start of the candidate's next word, so the
    space and punctuation after a copied passage belong to it, and a small edit the attribution bridged
    inside a copy lies inside it.

    Raises :class:`LocationsUnknown` when a span names the candidate with unknown offsets (-1): from old
    JSON the candidate is known, where in it is not (:func:`kept_reports` re-attributes then).
    """
    refs: list[tuple[int, int]] = []
    for span in attribution.spans:
        for r in span.sources:
            if r.candidate != candidate_index:
                continue
            if r.start < 0 or r.end < 0:
                raise LocationsUnknown(
                    f"The attribution does not say where in candidate {candidate_index + 1} its spans sit "
                    "(it was saved without source locations); attribute the fused text again."
                )
            if r.end > r.start:
                refs.append((r.start, r.end))
    refs.sort()
    merged: list[tuple[int, int]] = []
    for a, b in refs:
        if merged and a <= merged[-1][1]:
            if b > merged[-1][1]:
                merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return merged


# --------------------------------------------------------------------------------------------- units


def measured_region(unit: Unit) -> tuple[int, int]:
    """The part of a unit whose words count: without a list or heading marker, without code fences."""
    start, end = unit.start + len(unit.marker), unit.end
    if unit.kind == "code":
        lines = unit.text.split("\n")
        if len(lines) >= 2:
            start = unit.start + len(lines[0]) + 1
            if len(lines) >= 3 and _FENCE_LINE.match(lines[-1]):
                end = unit.end - len(lines[-1]) - 1
            if end < start:
                end = start
    return start, end


def normalised_words(text: str) -> list[str]:
    """The words of ``text``, NFKC-normalised and case-folded (curly apostrophes made straight), without
    punctuation or white space; each CJK character is a word. What "the same words" means here."""
    return _WORDS.findall(unicodedata.normalize("NFKC", text).casefold().replace("\u2019", "'"))


class _FusedWords:
    """The fused text's words joined by single spaces, for "copied as is" tests, and the words of each of
    its units, for short units."""

    def __init__(self, fused: str) -> None:
        self.joined = " " + " ".join(normalised_words(fused)) + " "
        self._units: set[str] | None = None
        self._fused = fused

    def contains(self, words: Sequence[str]) -> bool:
        return bool(words) and (" " + " ".join(words) + " ") in self.joined

    def has_unit(self, text: str) -> bool:
        """Whether a unit of the fused text reads as ``text`` (a unit's measured region), up to case, white
        space, emphasis and final punctuation (:func:`short_unit_key`). Built on first use: few runs need it."""
        if self._units is None:
            self._units = {short_unit_key(self._fused[a:b]) for a, b in map(measured_region, split_units(self._fused))}
        return short_unit_key(text) in self._units


_EMPHASIS = re.compile(r"[*_`]+")
_FINAL_PUNCTUATION = re.compile(r"[\s.!?;:,。！？]+$")


def short_unit_key(text: str) -> str:
    """A short unit as compared with the fused text's units: NFKC, case-folded, emphasis marks and final
    punctuation taken off, white space collapsed. Unlike :func:`normalised_words` it keeps inner symbols, so
    "Savings: $1000" is not "savings += 1000"."""
    text = unicodedata.normalize("NFKC", text).casefold().replace("\u2019", "'")
    text = _FINAL_PUNCTUATION.sub("", _EMPHASIS.sub("", text))
    return " ".join(text.split())


def _word_count(text: str, a: int, b: int) -> int:
    return len(_WORD_CHAR.findall(text, a, b)) if b > a else 0


def _covered(text: str, a: int, b: int, ranges: Sequence[tuple[int, int]], ends: Sequence[int]) -> int:
    """Word characters of ``text[a:b]`` inside ``ranges`` (merged and sorted; ``ends`` their ends)."""
    n = 0
    k = bisect_right(ends, a)  # the first range ending after a
    while k < len(ranges) and ranges[k][0] < b:
        n += _word_count(text, max(a, ranges[k][0]), min(b, ranges[k][1]))
        k += 1
    return n


SHORT_UNIT_WORDS = 4  # the attribution's min_match: shorter units are checked against the fused text directly


def unit_statuses(
    candidate: str,
    ranges: Sequence[tuple[int, int]],
    fused: str | _FusedWords,
    *,
    reused_min: float = REUSED_MIN_COVERAGE,
) -> list[UnitStatus]:
    """Every unit of ``candidate`` with its status, given the candidate's kept ``ranges`` (merged and
    sorted, as :func:`kept_ranges` returns them) and the fused text. See the module notes for the rules;
    ``reused_min`` is the coverage from which a unit counts as reused (above 0, at most 1)."""
    if not 0.0 < reused_min <= 1.0:
        raise InputError(f"reused_min must be above 0 and at most 1; got {reused_min!r}.")
    fused_words = fused if isinstance(fused, _FusedWords) else _FusedWords(fused)
    ranges = list(ranges)
    ends = [b for _, b in ranges]
    out: list[UnitStatus] = []
    for unit in split_units(candidate):
        a, b = measured_region(unit)
        total = _word_count(candidate, a, b)
        if total == 0:
            continue  # punctuation, symbols or white space only: not a unit
        coverage = _covered(candidate, a, b, ranges, ends) / total
        words = normalised_words(candidate[a:b])
        if coverage >= reused_min:
            status = "kept" if fused_words.contains(words) else "edited"
        elif len(words) >= 2 and len(words) < SHORT_UNIT_WORDS and fused_words.has_unit(candidate[a:b]):
            # The attribution ignores copies shorter than its min_match (4 words) as chance overlap, so a
            # short sentence the fusion repeats word for word ("Nice day.") has no coverage. A sentence of
            # the fused text that reads the same is no chance overlap, and it was kept; the same words
            # inside a longer fused sentence ("Add the vanilla." in "Add the vanilla and stir.") or with
            # other symbols ("Savings: $1000" and the code line "savings += 1000") may be.
            status = "kept"
        else:
            status = "dropped"
        out.append(UnitStatus(unit.start, unit.end, status, unit.kind, coverage))
    return out


# --------------------------------------------------------------------------------------------- reports


def kept_report(attribution: Attribution, fused: str, candidate: str, candidate_index: int) -> KeptReport:
    """The :class:`KeptReport` of one candidate. Raises :class:`LocationsUnknown` as :func:`kept_ranges`."""
    ranges = kept_ranges(attribution, candidate_index)
    return KeptReport(candidate_index, ranges, unit_statuses(candidate, ranges, fused))


def kept_reports(
    fused: str, candidates: Sequence[str | None], attribution: Attribution | None = None
) -> list[KeptReport | None]:
    """One :class:`KeptReport` per candidate, in order; ``None`` for a failed candidate (``None`` or
    empty text). ``attribution`` is the fused text's attribution against exactly these candidates; when
    it is missing, or lacks source locations (old JSON), the fused text is attributed again."""
    if attribution is None or not has_locations(attribution):
        from fusion.attribution import attribute

        attribution = attribute(fused, list(candidates))
    fused_words = _FusedWords(fused)
    out: list[KeptReport | None] = []
    for i, text in enumerate(candidates):
        if not text or not text.strip():
            out.append(None)
            continue
        ranges = kept_ranges(attribution, i)
        out.append(KeptReport(i, ranges, unit_statuses(text, ranges, fused_words)))
    return out


def run_kept(run: Run) -> list[KeptReport | None] | None:
    """The kept reports of a run's candidates (``None`` for a failed one), or ``None`` when the run has
    no fused text to compare with."""
    if run.fused is None or run.fused.error or not run.fused.text:
        return None
    texts = [c.text if c.ok else None for c in run.candidates]
    return kept_reports(run.fused.text, texts, run.attribution)
