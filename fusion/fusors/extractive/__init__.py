"""Extractive fusion: Fusion-of-N offline, by sentence-level consensus; every sentence is a candidate's.

How it works, in one paragraph: the usable candidates are cut into units (sentences, list items, headings,
code and tables kept whole) with their content terms (:mod:`.units`). A unit is *supported* when other
candidates hold most of its term weight, and two units are alike when their character n-grams agree
(chrF; :mod:`.support`). The consensus candidate, Best-of-N's pick, is the *backbone*: it gives the order
and the structure. Each other candidate is aligned to it sentence by sentence; where most of the pool has
a wording of a backbone sentence, a translation takes the wording the others agree with most and an
answer keeps its own unless it gives a lone figure the others contradict (:mod:`.slots`). When the pool
agrees with most of the backbone, backbone units nobody else holds are dropped as outliers, and repeats
always are (:mod:`.pruning`). Units that a third of the other candidates hold and the backbone lacks are
added, and, unless the prompt asks for one voice, paragraphs only one of the better candidates has, as
long as they are new, on topic and within a length budget (:mod:`.additions`), each put where its
neighbours in its own candidate are, in the form the spot needs (:mod:`.placing`). The units are joined
with their candidate's own white space where they were adjacent in it, lists renumbered, and a last pass
takes out what no longer reads as one answer (:mod:`.joining`). The steps in full are in
:class:`ExtractiveFusor`'s docstring.
"""

from __future__ import annotations

import asyncio
import time
from typing import Sequence

from fusion.client import TokenCallback, maybe_await
from fusion.fusors.base import usable_or_raise
from fusion.fusors.extractive.additions import add_complementary, add_supported
from fusion.fusors.extractive.context import FusionContext
from fusion.fusors.extractive.joining import coherent_text
from fusion.fusors.extractive.pruning import pool_agrees, prune
from fusion.fusors.extractive.reading import asks_for_one_voice, length_limit
from fusion.fusors.extractive.slots import choose_slots
from fusion.fusors.extractive.support import measure_support
from fusion.fusors.extractive.units import PlacedUnit
from fusion.selectors import consensus_ranking, consensus_scores
from fusion.types import Candidate, FusedOutput, Prompt

__all__ = ["ExtractiveFusor", "fuse_texts", "length_limit"]


class ExtractiveFusor:
    """Offline Fusion-of-N by sentence-level consensus; every sentence of the result comes from a candidate.

    1. *Units and terms.* Each usable candidate is split into units (:func:`fusion.text.split_units`:
       sentences, list items, headings, fenced code and tables kept whole; CJK punctuation understood).
       A unit's content is a set of terms (:func:`fusion.text.content_terms`: stemmed content words,
       numbers weighted three times, pairs of CJK characters), so that paraphrases still agree.
    2. *Support.* Another candidate *holds* a unit when it contains at least ``support_threshold`` of the
       unit's term weight (words of the prompt count half: every answer repeats the topic). A number that
       neither another candidate nor the prompt contains is an *unsupported claim*.
    3. *Backbone.* The consensus (MBR) candidate, :class:`fusion.selectors.ConsensusSelector`'s pick, gives
       the order and structure.
    4. *Slots.* Every other candidate is aligned to the backbone in order, sentence to sentence and item
       to item, by symmetric chrF (at least ``slot_threshold``; half that for a translation prompt). Where
       a majority of the pool has a wording of a backbone sentence: in a translation, the wording agreeing
       most with the slot's others is used (MBR per sentence), among those holding the slot's majority
       content and bringing no number the others lack; in an answer, the backbone's sentence is replaced
       only when it gives a figure the rest of the slot does not and misses what the majority says
       ("150" where most say "270"). Numbered steps of an answer are never replaced.
    5. *Pruning.* With three or more candidates, when the pool holds most of the backbone (at least
       ``min_supported_share`` of its content), backbone units no other candidate holds or words alike
       are dropped as outliers; never in a translation, nor code, tables, numbered steps, headings,
       lead-ins (sentences or items ending in a colon, bold-only lines) or a sentence introducing a list or
       code, and never all of what a heading or lead-in has under it (its best supported unit stays).
       Near-duplicates are dropped (repeated numbered steps and repeated labels are not).
    6. *Supported additions.* Sentences and items (not lead-ins or bold-only lines: alone, they would
       introduce whatever happens to follow them) of the other candidates that at least a third of the
       others hold (:func:`.additions.additions_need`), best new supported content first, when: they are
       not another wording of a backbone sentence; at least ``novelty`` of their term weight is new and
       half of that new weight is itself held by that many others; no kept unit says the same (chrF or
       term Dice at least ``redundancy_threshold``); they hold no unsupported number nor a figure
       competing with one kept (:func:`.additions.conflicts`); they do not lean on a sentence left out
       ("This means..."), speak in their answer's own voice ("I hope this helps"), or miss their parent
       item. In a translation only candidates with more sentences than the backbone add any.
    7. *Complementary additions.* Unless the candidates are parallel (a translation) or the prompt asks
       for one voice (a story, a poem, a rewrite), paragraphs and list items that only one of the
       better-ranked half of the other candidates has may be added: mostly new, on topic, without
       unsupported numbers or names ("a number or named entity no other candidate gives"), competing
       figures, exclamations, questions, sign-offs or an opening that leans on what came before; a
       paragraph in order up to its first unusable sentence, a lead-in only with the list or code it
       introduces. Sources take turns, the most new on-topic content first.
    8. *Budget.* Supported additions stop at ``length_ratio`` times the longest candidate, complementary
       ones at ``length_ratio`` times the backbone; a length the prompt asks for ("in three sentences",
       "at most 120 words") is respected.
    9. *Placement.* A supported addition goes after the kept unit matching its previous neighbour in its
       own candidate (else before the next one's match), a complementary paragraph after the backbone's
       body (before closing words such as "Finally, ..."); never before the backbone's opening, inside a
       paragraph, or between a sentence and the list or code it introduces. Items join lists with the
       list's marker (numbered lists are renumbered; a numbered procedure only takes a missing step that
       fits between its neighbours); an item with no list to join stands as a paragraph only if it reads
       as a sentence. Units keep their source's white space where they were adjacent in it.
    10. *Coherence* (unless ``coherence=False``, a switch for measurement). The result must read as one
       answer (:func:`fusion.coherence.coherence_defects`):
       a heading or lead-in left without its content, a sentence announcing a list that is not there or
       pointing at a step the text does not number is taken out, until none is left (in a translation,
       such structure is kept where the backbone's translation has it too).

    With two usable candidates there is no majority to go by: the result is the backbone (minus
    near-duplicates). ``FusedOutput.order`` lists the usable candidates by consensus rank, backbone first.
    Never empty: if nothing survives, the consensus candidate is returned. One usable candidate gives its
    text; identical candidates give that text. Deterministic (no randomness; ties go to the lower index).
    """

    name = "extractive"

    def __init__(
        self,
        *,
        support_threshold: float = 0.5,
        redundancy_threshold: float = 0.4,
        duplicate_threshold: float = 0.85,
        min_supported_share: float = 0.6,
        min_added_chars: int = 20,
        slot_threshold: float = 0.45,
        novelty: float = 0.5,
        length_ratio: float = 1.3,
        complementary: bool = True,
        coherence: bool = True,
    ) -> None:
        self.support_threshold = support_threshold
        self.min_added_chars = min_added_chars
        self.redundancy_threshold = redundancy_threshold
        self.duplicate_threshold = duplicate_threshold
        self.min_supported_share = min_supported_share
        self.slot_threshold = slot_threshold
        self.novelty = novelty
        self.length_ratio = length_ratio
        self.complementary = complementary
        # Off only to measure what the final pass (step 10) still has to take out.
        self.coherence = coherence

    async def afuse(
        self, prompt: Prompt, candidates: Sequence[Candidate], *, on_token: TokenCallback | None = None
    ) -> FusedOutput:
        # CPU-bound (well under a second for 16 answers of 800 words): off the event loop, so that a
        # selector or UI running concurrently is not blocked.
        out = await asyncio.to_thread(self.fuse_sync, prompt, list(candidates))
        if on_token is not None and out.text:
            # There is nothing to stream; one delta keeps streaming UIs uniform across fusors.
            await maybe_await(on_token(out.text))
        return out

    def fuse_sync(self, prompt: Prompt, candidates: Sequence[Candidate]) -> FusedOutput:
        started = time.perf_counter()
        usable = usable_or_raise(candidates)
        if len(usable) == 1:
            return FusedOutput(
                usable[0].text.strip(),
                method=self.name,
                order=[usable[0].index],
                latency_s=time.perf_counter() - started,
            )
        texts = [c.text for c in usable]
        scores = consensus_scores(texts)
        ranking = consensus_ranking(scores, [c.index for c in usable])
        text = fuse_texts(self, prompt, texts, ranking)
        if not text.strip():
            text = texts[ranking[0]].strip()
        return FusedOutput(
            text,
            method=self.name,
            order=[usable[r].index for r in ranking],
            latency_s=time.perf_counter() - started,
        )


def fuse_texts(
    settings: ExtractiveFusor, prompt: Prompt, texts: Sequence[str], ranking: Sequence[int]
) -> str:
    """The extractive fusion of ``texts`` (the usable candidates), ``ranking`` being their consensus order
    (positions in ``texts``, best first). Empty when the backbone has no unit."""
    ctx = FusionContext(settings, prompt, texts, ranking)
    m = len(texts)
    backbone = ctx.rows[ctx.backbone]
    if not backbone:
        return ""
    first = texts[0].strip()
    if all(t.strip() == first for t in texts[1:]):
        return texts[ctx.backbone].strip()
    measure_support(ctx.pool, settings.support_threshold)
    placed = [PlacedUnit(u, u) for u in backbone]
    parallel = False
    if m >= 3:
        # Parallel: nearly every backbone sentence has a majority of wordings, as in a translation.
        parallel = choose_slots(ctx, placed) >= 0.9
    # When the pool holds most of the backbone, a backbone unit nobody else holds stands out against
    # that agreement: an outlier. With diverse candidates nothing stands out; the backbone stays whole.
    agreeing = m >= 3 and pool_agrees(ctx, placed)
    placed, dropped = prune(ctx, placed, outliers=agreeing and not ctx.translation)
    # A story or poem is one voice: sentences from other stories do not belong in it.
    if m >= 3 and not asks_for_one_voice(prompt):
        limit = length_limit(prompt)
        sizes = sorted(len(t.strip()) for t in texts)
        # What the pool agrees on may make the text as long as the longest candidate and a bit more;
        # what one candidate adds stops nearer the backbone's length.
        add_supported(ctx, placed, settings.length_ratio * sizes[-1], limit)
        budget = settings.length_ratio * len(texts[ctx.backbone].strip())
        if settings.complementary and not parallel and not ctx.translation:
            add_complementary(ctx, placed, budget, limit)
    return coherent_text(ctx, placed, dropped)
