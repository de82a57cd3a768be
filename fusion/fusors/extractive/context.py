"""What every step of one extractive fusion reads: the settings, the prompt, the candidates cut into units,
their consensus ranking and the similarity between their units."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from fusion.fusors.extractive.reading import asks_for_translation
from fusion.fusors.extractive.support import UnitSimilarity
from fusion.fusors.extractive.units import CandidatePool, CandidateUnit
from fusion.types import Prompt

if TYPE_CHECKING:  # the settings' class imports the steps, which import this module
    from fusion.fusors.extractive import ExtractiveFusor


class FusionContext:
    """One extractive fusion: the units of every candidate, their support, and a memo of similarities.

    ``ranking`` lists the candidates (positions in ``texts``) best first by consensus: ``ranking[0]`` is the
    backbone. ``aligned`` and ``alternatives`` are filled in by the slot step and read by the later ones.
    """

    def __init__(
        self, settings: ExtractiveFusor, prompt: Prompt, texts: Sequence[str], ranking: Sequence[int]
    ) -> None:
        self.settings = settings
        self.prompt = prompt
        self.texts = texts
        self.ranking = list(ranking)
        self.rank_of = {k: r for r, k in enumerate(self.ranking)}
        self.translation = asks_for_translation(prompt)
        # Every candidate of a translation renders the same sentences: wordings align even when they
        # share few character n-grams (other word order, other politeness level in Japanese).
        self.slot_floor = settings.slot_threshold / 2 if self.translation else settings.slot_threshold
        # uids of backbone units with a wording aligned in another candidate: never pruned as outliers.
        self.aligned: set[int] = set()
        # uids of the other candidates' units aligned to a backbone unit: other wordings, never added.
        self.alternatives: set[int] = set()
        self.pool = CandidatePool(prompt, texts)
        self.similarity = UnitSimilarity(self.pool.similarity_texts)

    @property
    def backbone(self) -> int:
        """The consensus candidate's position: it gives the fused text's order and structure."""
        return self.ranking[0]

    @property
    def rows(self) -> list[list[CandidateUnit]]:
        return self.pool.rows

    def cover(self, x: CandidateUnit, y: CandidateUnit) -> float:
        return self.similarity.cover(x, y)

    def sym(self, x: CandidateUnit, y: CandidateUnit) -> float:
        return self.similarity.sym(x, y)

    def weights(self, u: CandidateUnit) -> dict[str, float]:
        return self.pool.weights(u)
