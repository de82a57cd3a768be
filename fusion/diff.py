"""Best-of-N against the fusion: a sentence-level diff of the pick's text and the fused text.

Long answers often begin identically (an extractive fusion, or an LLM fusor that starts from one
candidate) and differ further down; a character diff of two such texts is unreadable, a side-by-side view
hides where they part. This diff works on units (sentences, list items, headings, quote lines, tables,
fenced code blocks as one unit: :func:`fusion.text.split_units`) and returns rows in reading order:

* ``"shared"``: the unit is in both texts with the same words;
* ``"edited"``: a unit of the pick and a unit of the fusion that say nearly the same thing, paired
  (word-level similarity at least :data:`EDITED_MIN_SIMILARITY`);
* ``"dropped"``: a unit of the pick that the fusion does not have;
* ``"added"``: a unit of the fusion that the pick does not have.

Units are compared by their words (:func:`fusion.kept.normalised_words`: case, width and punctuation
folded; a CJK character is one word), without list or heading markers, so a renumbered item
or a sentence that only lost its bold is "shared". A unit without any word is left out. The alignment is
:class:`difflib.SequenceMatcher` over the normalised units; inside each replaced block the pick's and
the fusion's units are paired, in order, to maximise the summed similarity of the pairs, where
similarity is ``SequenceMatcher.ratio`` over the two units' words (see ``_pair`` for how that stays fast
on long answers).

Every row carries character ranges into the pick's text (``bon``) and the fused text (``fused``), so a
view can show the original text of either side.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any, Sequence

from fusion.errors import InputError
from fusion.kept import measured_region, normalised_words
from fusion.text import split_units
from fusion.types import Run

__all__ = ["DIFF_OPS", "EDITED_MIN_SIMILARITY", "DiffRow", "SentenceDiff", "diff_sentences", "run_diff"]

DIFF_OPS = ("shared", "edited", "dropped", "added")
# Two units count as one edited unit when at least this share of their words line up (ratio = 2M / T):
# one word changed in a 10-word sentence gives 0.9, a clause added to a short sentence about 0.7, two
# sentences that only share their topic words 0.3-0.5.
EDITED_MIN_SIMILARITY = 0.6
# Above this many candidate pairs in one replaced block, pairs are only looked for near the diagonal
# (see _pair); an answer rewritten from top to bottom costs time, not quadratic memory.
_MAX_PAIRS = 40_000
# At most this many partners of one unit are scored with SequenceMatcher, those with the best cheap
# bound (nearest the diagonal on ties): in a list of look-alike items ("Step 3 of ...") every pair
# passes the bound, and scoring all of them would cost seconds.
_MAX_SCORED = 4


@dataclass(frozen=True)
class DiffRow:
    """One row of the diff. ``bon`` and ``fused`` are ``(start, end)`` character ranges of the unit in
    the pick's text and in the fused text (``None`` on the side that lacks it); ``similarity`` is 1 for
    a shared row, the word-level ratio for an edited one and 0 for an added or dropped one."""

    op: str
    bon: tuple[int, int] | None
    fused: tuple[int, int] | None
    similarity: float

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "op": self.op,
            "bon": list(self.bon) if self.bon else None,
            "fused": list(self.fused) if self.fused else None,
        }
        if self.op == "edited":
            out["similarity"] = round(self.similarity, 3)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DiffRow:
        op = data.get("op")
        if op not in DIFF_OPS:
            raise InputError(f"Unknown diff row {op!r}; expected one of {', '.join(DIFF_OPS)}.")
        bon, fused = data.get("bon"), data.get("fused")
        default = {"shared": 1.0, "edited": 0.0}.get(op, 0.0)
        return cls(
            op=op,
            bon=(int(bon[0]), int(bon[1])) if bon else None,
            fused=(int(fused[0]), int(fused[1])) if fused else None,
            similarity=float(data.get("similarity", default)),
        )


@dataclass
class SentenceDiff:
    """The rows of a pick-against-fusion diff, in reading order."""

    rows: list[DiffRow] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        out = {op: 0 for op in DIFF_OPS}
        for r in self.rows:
            out[r.op] += 1
        return out

    @property
    def leading_shared(self) -> int:
        """How many rows at the top are shared: what a view can fold away when both begin alike."""
        n = 0
        for r in self.rows:
            if r.op != "shared":
                break
            n += 1
        return n

    @property
    def identical(self) -> bool:
        """Every unit is shared (also true of two texts without any unit)."""
        return all(r.op == "shared" for r in self.rows)

    def to_dict(self) -> dict[str, Any]:
        return {"counts": self.counts, "rows": [r.to_dict() for r in self.rows]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SentenceDiff:
        return cls(rows=[DiffRow.from_dict(r) for r in data.get("rows", [])])


@dataclass
class _Side:
    """The comparable units of one text: ranges, word lists and the normalised keys compared."""

    ranges: list[tuple[int, int]]
    words: list[list[str]]
    keys: list[str]


def _side(text: str) -> _Side:
    ranges: list[tuple[int, int]] = []
    words: list[list[str]] = []
    for unit in split_units(text) if text else []:
        a, b = measured_region(unit)
        w = normalised_words(text[a:b])
        if w:
            ranges.append((unit.start, unit.end))
            words.append(w)
    return _Side(ranges, words, [" ".join(w) for w in words])


def _pair(
    a_words: Sequence[list[str]], b_words: Sequence[list[str]], least: float
) -> list[tuple[int, int, float]]:
    """Pairs ``(i, j, similarity)``, increasing in both ``i`` and ``j``, with similarity >= ``least``,
    that maximise the summed similarity.

    Similarity is ``SequenceMatcher.ratio`` over words, 2M / T with M matched words; it is only computed
    where a cheap upper bound reaches ``least``: M is at most the shorter list's length, and at most the
    distinct words both hold plus the repeats of the shorter list. Unrelated sentences sharing only
    "the" and "of" fail the bound, so a block of 200 by 200 sentences costs a few tens of milliseconds.
    The best chain of pairs is then found over the (few) qualifying pairs only, with a prefix-maximum
    Fenwick tree over ``j``, instead of a full ``p`` by ``q`` table. Of the partners that pass the bound,
    only the ``_MAX_SCORED`` with the highest bound are scored.

    When the block holds more than ``_MAX_PAIRS`` unit pairs, only pairs near the block's diagonal are
    scored (a band wide enough to keep about ``_MAX_PAIRS`` of them): a rewrite that moves a sentence
    from the top of a very long answer to its bottom is then an added and a dropped row there.
    """
    p, q = len(a_words), len(b_words)
    if not p or not q:
        return []
    b_sets = [frozenset(w) for w in b_words]
    b_lens = [len(w) for w in b_words]
    b_reps = [n - len(st) for n, st in zip(b_lens, b_sets)]
    band = max(1, _MAX_PAIRS // (2 * max(p, q))) if p * q > _MAX_PAIRS else None
    wanted: dict[int, list[int]] = {}  # j -> the i whose similarity to it is worth computing
    for i, words in enumerate(a_words):
        sa, la = frozenset(words), len(words)
        ra = la - len(sa)
        centre = (i * q) // p  # where a partner of unit i sits if the block were edited evenly
        lo, hi = (0, q) if band is None else (max(0, centre - band), min(q, centre + band + 1))
        hopeful: list[tuple[float, int, int]] = []  # (bound on the ratio, closeness to the diagonal, j)
        for j in range(lo, hi):
            lb = b_lens[j]
            total = la + lb
            need = least * total
            if 2 * (la if la < lb else lb) < need:
                continue
            rb = b_reps[j]
            shared = len(sa & b_sets[j]) + (ra if ra < rb else rb)
            if 2 * shared < need:
                continue
            hopeful.append((2 * shared / total, -abs(j - centre), j))
        if len(hopeful) > _MAX_SCORED:
            hopeful = heapq.nlargest(_MAX_SCORED, hopeful)
        for _, _, j in hopeful:
            wanted.setdefault(j, []).append(i)
    # SequenceMatcher indexes its second sequence once: score every wanted pair of one j together.
    found: list[tuple[int, int, float]] = []
    matcher = SequenceMatcher(None, autojunk=False)
    for j, rows in wanted.items():
        matcher.set_seq2(b_words[j])
        for i in rows:
            matcher.set_seq1(a_words[i])
            sim = matcher.ratio()
            if sim >= least:
                found.append((i, j, sim))
    found.sort()  # increasing i, then j
    if not found:
        return []
    # best[k]: the largest total of a chain ending with pair k; tree: prefix maxima of best over j.
    size = q + 1
    tree_val = [0.0] * (size + 1)
    tree_arg = [-1] * (size + 1)
    best = [0.0] * len(found)
    prev = [-1] * len(found)
    k = 0
    while k < len(found):
        i = found[k][0]
        end = k
        while end < len(found) and found[end][0] == i:
            end += 1
        for x in range(k, end):  # query first: pairs of one i cannot chain with each other
            j = found[x][1]
            pos, v, arg = j, 0.0, -1  # the best over j' < j: prefix [1, j] of the 1-based tree
            while pos > 0:
                if tree_val[pos] > v:
                    v, arg = tree_val[pos], tree_arg[pos]
                pos -= pos & -pos
            best[x] = v + found[x][2]
            prev[x] = arg
        for x in range(k, end):
            pos = found[x][1] + 1
            while pos <= size:
                if best[x] > tree_val[pos]:
                    tree_val[pos], tree_arg[pos] = best[x], x
                pos += pos & -pos
        k = end
    x = max(range(len(found)), key=best.__getitem__)
    chain: list[tuple[int, int, float]] = []
    while x >= 0:
        chain.append(found[x])
        x = prev[x]
    chain.reverse()
    return chain


def diff_sentences(
    bon_text: str, fused_text: str, *, edited_min: float = EDITED_MIN_SIMILARITY
) -> SentenceDiff:
    """The sentence-level diff of the Best-of-N pick's text against the fused text (see the module notes).

    Rows come in reading order: shared and edited rows in the order of both texts, and inside a changed
    stretch the pick's dropped units before the fusion's added ones that precede the next edited pair.
    Two empty texts give no rows; an empty side gives only added (or only dropped) rows.
    """
    if not 0.0 < edited_min <= 1.0:
        raise InputError(f"edited_min must be in (0, 1]; got {edited_min!r}.")
    a, b = _side(bon_text or ""), _side(fused_text or "")
    rows: list[DiffRow] = []

    def dropped(i: int) -> None:
        rows.append(DiffRow("dropped", a.ranges[i], None, 0.0))

    def added(j: int) -> None:
        rows.append(DiffRow("added", None, b.ranges[j], 0.0))

    matcher = SequenceMatcher(None, a.keys, b.keys, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            rows.extend(DiffRow("shared", a.ranges[i1 + k], b.ranges[j1 + k], 1.0) for k in range(i2 - i1))
        elif tag == "delete":
            for i in range(i1, i2):
                dropped(i)
        elif tag == "insert":
            for j in range(j1, j2):
                added(j)
        else:  # replace: pair the units that were edited, the rest were dropped or added
            i, j = i1, j1
            for pi, pj, s in _pair(a.words[i1:i2], b.words[j1:j2], edited_min):
                while i < i1 + pi:
                    dropped(i)
                    i += 1
                while j < j1 + pj:
                    added(j)
                    j += 1
                rows.append(DiffRow("edited", a.ranges[i], b.ranges[j], s))
                i, j = i + 1, j + 1
            while i < i2:
                dropped(i)
                i += 1
            while j < j2:
                added(j)
                j += 1
    return SentenceDiff(rows)


def run_diff(run: Run) -> SentenceDiff | None:
    """The diff of a run's Best-of-N pick against its fused text, or ``None`` when either is missing."""
    pick = run.bon_text
    if pick is None or run.fused is None or run.fused.error:
        return None
    return diff_sentences(pick, run.fused.text)
