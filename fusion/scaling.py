"""The N-scaling experiment: how the gain of fusion over Best-of-N changes with the number of candidates.

The paper plots win rate against N and finds the gain largest below N = 10, with a plateau past about 7.
To measure that without the noise of drawing fresh samples for every N, each prompt's largest-N samples
are drawn once, and every smaller N uses the *first k* of them (nested subsets): the N = 3 run sees
exactly the first three candidates the N = 5 run sees. Best-of-N picks from the same subset the fusor
fuses, so each k compares like with like. Every run is tagged with its experiment and k, so its votes,
human or judge, can be grouped by k.

Alongside the win rate, :func:`pick_share` reports how much of the fused text comes from the Best-of-N
pick: a fusor that only ever copies the pick would sit near 1 at every N.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Sequence

from fusion.errors import InputError
from fusion.fusors import Fusor
from fusion.pipeline import acomplete
from fusion.selectors import Selector
from fusion.types import Run
from fusion.validate import MAX_N

SCALE_TAG = "scale:"  # scale:<experiment>, on every run of an experiment
K_TAG = "scale-k:"  # scale-k:<k>, the subset size of the run


def parse_ks(text: str | Sequence[int]) -> list[int]:
    """The subset sizes of an experiment, sorted and distinct: "1,2,3,5,8" -> [1, 2, 3, 5, 8]."""
    parts = text.split(",") if isinstance(text, str) else list(text)
    ks: set[int] = set()
    for part in parts:
        word = str(part).strip()
        if not word:
            continue
        try:
            k = int(word)
        except ValueError:
            raise InputError(f"--n takes whole numbers separated by commas, such as 1,2,3,5,8; got {word!r}.") from None
        if not 1 <= k <= MAX_N:
            raise InputError(f"Each N must be between 1 and {MAX_N}; got {k}.")
        ks.add(k)
    if not ks:
        raise InputError("Give at least one N, such as --n 1,2,3,5,8.")
    return sorted(ks)


def experiment_tags(experiment: str, k: int) -> list[str]:
    return [f"{SCALE_TAG}{experiment}", f"{K_TAG}{k}"]


def run_k(run: Run) -> int | None:
    """The subset size a run was made with, from its tags (None for a run outside any experiment)."""
    for tag in run.tags:
        if tag.startswith(K_TAG):
            try:
                return int(tag[len(K_TAG) :])
            except ValueError:
                return None
    return None


def tag_k(tags: Sequence[str]) -> str | None:
    """The k label of a vote's or run's tags ("3"), for grouping votes by subset size."""
    for tag in tags:
        if tag.startswith(K_TAG):
            return tag[len(K_TAG) :]
    return None


def subset_run(base: Run, k: int, experiment: str) -> Run:
    """A run over the first ``k`` candidates of ``base`` (by index), not yet picked or fused.

    Its id is derived from the base run's, so resuming an experiment finds the runs it already made.
    """
    if k > len(base.candidates):
        raise InputError(f"N = {k} needs {k} candidates; the run has {len(base.candidates)}.")
    ordered = sorted(base.candidates, key=lambda c: c.index)[:k]
    run = Run(
        prompt=base.prompt,
        candidates=[copy.copy(c) for c in ordered],
        pool=list(base.pool),
        settings=base.settings,
        tags=[t for t in base.tags if not t.startswith((SCALE_TAG, K_TAG))] + experiment_tags(experiment, k),
        source=base.source,
    )
    return run.with_id(f"{base.id}-k{k}")


async def ascale(
    base: Run, ks: Sequence[int], experiment: str, *, selector: Selector, fusor: Fusor
) -> list[Run]:
    """Pick, fuse and attribute each nested subset of ``base``'s candidates; one run per k.

    A subset with no usable candidate (its samples all failed) gives no run; the others still do.
    """
    runs = []
    for k in ks:
        run = subset_run(base, k, experiment)
        if not run.usable:
            continue
        runs.append(await acomplete(run, selector=selector, fusor=fusor))
    return runs


@dataclass(frozen=True)
class PickShare:
    """How much of a run's fused text the Best-of-N pick supplies (its attribution share)."""

    run_id: str
    k: int | None
    share: float | None  # None when the run has no pick or no attributed fusion


def pick_share(run: Run) -> PickShare:
    share = None
    if run.bon is not None and run.bon.index is not None and run.attribution is not None:
        positions = [i for i, c in enumerate(run.candidates) if c.index == run.bon.index]
        if positions and positions[0] < len(run.attribution.shares):
            share = run.attribution.shares[positions[0]]
    return PickShare(run.id, run_k(run), share)
