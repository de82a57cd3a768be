"""Measuring support between units: how alike two units are, and how many candidates hold a unit.

Two measures, for two questions. *Wording*: how much of one unit's text another unit has, by chrF
(:class:`UnitSimilarity`; character n-grams, so inflections and small edits still agree), used to align
sentences across candidates and to spot repeats. *Content*: how much of a unit's term weight another
candidate has anywhere (:func:`measure_support`), so that a paraphrase in other words still counts as
agreement.
"""

from __future__ import annotations

from collections import Counter, deque
from itertools import chain

from fusion.fusors.extractive.units import CandidatePool, CandidateUnit
from fusion.similarity import NgramProfile, chrf_from_counts, match_counts

# A unit pair sharing less than this fraction of the reference unit's character trigrams cannot reach
# the similarity thresholds in use (chrF at orders 3-6 would be too low), so chrF is not computed.
PREFILTER = 0.2

# Pools of more similarity texts than this (about 8 candidates of 25,000 characters; the recorded cases
# have at most a few hundred) find their candidate pairs by blocking instead (see
# :meth:`UnitSimilarity._blocked_pairs`): all pairs sharing a fifth of their trigrams grow with the square
# of the pool (3.6 million pairs for 8 candidates of 150,000 characters), since short sentences share
# their common trigrams ("the", "ing") with nearly every other.
LARGE_POOL = 2000
# Blocking: a trigram in more similarity texts than this is too common to say two texts are alike.
BLOCK_DF = 64
# Blocking: a pair must share this many of those rarer trigrams to be measured.
BLOCK_SHARED = 3
# Large pools keep this many n-gram profiles of units at most (the most recently made).
PROFILES_KEPT = 1500


def trigrams(text: str) -> frozenset[str]:
    """The character trigrams of the text, white space left out (the text itself when shorter)."""
    chars = "".join(text.split())
    if len(chars) < 3:
        return frozenset([chars]) if chars else frozenset()
    return frozenset(map("".join, zip(chars, chars[1:], chars[2:])))


class UnitSimilarity:
    """chrF between the units of a pool, computed on demand and remembered.

    ``near[x]`` lists the similarity texts that share at least :data:`PREFILTER` of text ``x``'s trigrams:
    any other pair is too far apart for chrF to matter and counts as 0. Above :data:`LARGE_POOL` texts,
    only the pairs that blocking proposes are in ``near`` (:meth:`_blocked_pairs`); the rule is the same
    for them.
    """

    def __init__(self, similarity_texts: list[str]) -> None:
        self.texts = similarity_texts
        self._profiles: list[NgramProfile | None] = [None] * len(similarity_texts)
        self._cover: dict[tuple[int, int], float] = {}
        self.blocked = len(similarity_texts) > LARGE_POOL
        self._recent: deque[int] = deque()
        self.near = self._blocked_pairs() if self.blocked else self._candidate_pairs()

    def _candidate_pairs(self) -> list[set[int]]:
        """For each text id x, the text ids y sharing at least PREFILTER of x's trigrams (so cover(x, y)
        may be high). Counting goes through an inverted index so that no pair is visited in Python."""
        feats = [trigrams(t) for t in self.texts]
        postings: dict[str, list[int]] = {}
        for text_id, fs in enumerate(feats):
            for f in fs:
                postings.setdefault(f, []).append(text_id)
        near: list[set[int]] = []
        for text_id, fs in enumerate(feats):
            if not fs:
                near.append(set())
                continue
            counts = Counter(chain.from_iterable(postings[f] for f in fs))
            need = PREFILTER * len(fs)
            near.append({y for y, c in counts.items() if c >= need and y != text_id})
        return near

    def _blocked_pairs(self) -> list[set[int]]:
        """Like :meth:`_candidate_pairs`, for large pools, in time about linear in the pool: only the pairs
        sharing at least :data:`BLOCK_SHARED` trigrams that occur in at most :data:`BLOCK_DF` texts are
        looked at (each posting list walked is then short), and of those, the ones sharing
        :data:`PREFILTER` of x's trigrams are kept, as in the exact rule.

        Not exact: a pair alike only through common trigrams is missed. Wordings alike enough to align
        (symmetric chrF of 0.45 and up) share most of their words, rare trigrams with them; a pair that
        only shares "the", "and", "ing" is not such a pair. A text with fewer than ``BLOCK_SHARED`` rare
        trigrams needs only one shared."""
        feats = [trigrams(t) for t in self.texts]
        df = Counter(chain.from_iterable(feats))
        postings: dict[str, list[int]] = {}
        rare: list[list[str]] = []
        common: list[int] = []  # per text, how many of its trigrams are too common to block on
        for text_id, fs in enumerate(feats):
            own = [f for f in fs if df[f] <= BLOCK_DF]
            rare.append(own)
            common.append(len(fs) - len(own))
            for f in own:
                postings.setdefault(f, []).append(text_id)
        near: list[set[int]] = []
        for text_id, fs in enumerate(feats):
            own = rare[text_id]
            if not own:
                near.append(set())
                continue
            counts = Counter(chain.from_iterable(postings[f] for f in own))
            least = min(BLOCK_SHARED, len(own))
            need = PREFILTER * len(fs)
            mine = common[text_id]
            # c counts the shared rare trigrams exactly; the common ones shared are at most the fewer
            # of the two texts' common trigrams: a pair that cannot reach ``need`` even so is not
            # intersected, and one the rare ones already take there needs no intersection.
            near.append(
                {
                    y
                    for y, c in counts.items()
                    if c >= least
                    and y != text_id
                    and c + min(mine, common[y]) >= need
                    and (c >= need or len(fs & feats[y]) >= need)
                }
            )
        return near

    def _profile(self, text_id: int) -> NgramProfile:
        prof = self._profiles[text_id]
        if prof is None:
            prof = self._profiles[text_id] = NgramProfile(self.texts[text_id])
            if self.blocked:
                # A profile holds six orders of n-grams, ~30 KB for a sentence: 9,500 of them were 280 MB.
                # Large pools keep the most recent PROFILES_KEPT; one measured again is counted again.
                self._recent.append(text_id)
                if len(self._recent) > PROFILES_KEPT:
                    self._profiles[self._recent.popleft()] = None
        return prof

    def cover(self, x: CandidateUnit, y: CandidateUnit) -> float:
        """How much of unit x is found in unit y (chrF, y as hypothesis, x as reference)."""
        if x.structural != y.structural or (x.unit.kind == "code") != (y.unit.kind == "code"):
            return 0.0
        return self._cover_text(x.text_id, y.text_id)

    def sym(self, x: CandidateUnit, y: CandidateUnit) -> float:
        """Symmetric agreement of two units: the mean of chrF both ways."""
        return (self.cover(x, y) + self.cover(y, x)) / 2

    def _cover_text(self, tx: int, ty: int) -> float:
        if tx == ty:
            return 1.0
        if ty not in self.near[tx]:
            return 0.0
        got = self._cover.get((tx, ty))
        if got is None:
            px, py = self._profile(tx), self._profile(ty)
            shared = match_counts(px, py)
            got = chrf_from_counts(py, px, shared)
            self._cover[(tx, ty)] = got
            self._cover[(ty, tx)] = chrf_from_counts(px, py, shared)
        return got


def measure_support(pool: CandidatePool, threshold: float) -> None:
    """Fill in every unit's ``holders`` (other candidates holding at least ``threshold`` of its term
    weight), ``support`` (the mean share held) and ``unsupported`` (its numbers that neither another
    candidate nor the prompt gives)."""
    m = len(pool.texts)
    prompt_nums = {t for t in pool.prompt_terms if t.startswith("#")}
    for u in pool.units:
        weights = pool.weights(u)
        total = sum(weights.values())
        if total <= 0 or m < 2:
            continue
        covs = []
        for j, terms in enumerate(pool.candidate_terms):
            if j != u.candidate:
                covs.append(sum(w for t, w in weights.items() if t in terms) / total)
        u.holders = sum(1 for c in covs if c >= threshold)
        u.support = sum(covs) / len(covs)
        u.unsupported = frozenset(n for n in u.nums if pool.df["#" + n] <= 1 and "#" + n not in prompt_nums)


def term_dice(weights: dict[str, float], other: dict[str, float]) -> float:
    """Weighted Dice of two units' content terms: 0 when they share none. Catches a paraphrase that chrF
    misses ("Walk the aisle regularly" beside "Walk along the aisle every hour")."""
    shared = sum(min(w, other[t]) for t, w in weights.items() if t in other)
    return 2 * shared / (sum(weights.values()) + sum(other.values())) if shared else 0.0
