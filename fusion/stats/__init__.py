"""Statistics of the annotation results: win rates with bootstrap intervals, position bias, agreement.

Vectorised with numpy and deterministic for a given ``seed``, so the Results page, a rerun of it and a
script compute the same numbers from the same votes. ``from fusion.stats import X`` gives every public name;
the modules hold one kind of statistic each:

* :mod:`fusion.stats.votes` - reading votes into a :class:`VoteTable` (parallel arrays), from records or
  from columns read in SQL (:func:`vote_table_from_columns`), and the splits by model, N, tag, annotator.
* :mod:`fusion.stats.bootstrap` - the percentile bootstrap over runs behind every interval.
* :mod:`fusion.stats.rates` - the win rate of Fusion-of-N over Best-of-N (fused win 1, tie 0.5, Best-of-N
  win 0, "both bad" left out and counted apart) and position bias (how often the left response wins among
  decisive votes; 0.5 is none), each a :class:`WinRate` with counts and interval.
* :mod:`fusion.stats.agreement` - Cohen's kappa per pair of annotators and Krippendorff's alpha (nominal)
  over all of them, on the ``winner`` of shared runs.
* :mod:`fusion.stats.summary` - :func:`summarize`: all of the above as the Results page shows it, in one pass.
* :mod:`fusion.stats.distribution` - n, mean, median, p10, p90, min, max of per-run numbers, and the
  per-run attribution figures (copied fraction, contributing candidates, share of the pick).

A *vote* is any object with the attributes ``run_id``, ``annotator``, ``winner`` (``fused`` | ``bon`` |
``tie`` | ``both_bad``), ``a_is`` (``bon`` | ``fused``: the side shown as Response A), ``choice`` (``A`` |
``B`` | ``tie`` | ``both_bad``), ``n``, ``models``, ``tags``, ``source`` and ``blind`` -
:class:`storage.votes.VoteRecord` - or a mapping with those keys (a line of the votes JSON Lines export).
Only what a statistic uses must be there; a missing ``blind`` counts as blind (``VoteRecord``'s default).

Conventions:

* The rate is a ratio over votes (sum of scores / number of scored votes). Votes on the same run are not
  independent (same prompt, same pair of texts), so the interval is a percentile bootstrap over *runs*:
  resample runs with replacement and take all of their votes.
* No interval is better than a misleading one: below :data:`MIN_RUNS_FOR_INTERVAL` runs with a scored vote,
  and when every run gives the same rate (the bootstrap then returns one point, whatever the number of
  runs), ``low`` and ``high`` are ``None`` and ``no_interval`` says why.
* Undefined statistics are ``None``, never ``nan``: no votes gives no rate; Cohen's kappa and Krippendorff's
  alpha are ``None`` when the data show no variation at all (everyone used one and the same category), where
  both formulas divide zero by zero. Agreement on a single category says nothing about reliability, so we
  refuse to call it perfect (1.0) - the page says "undefined" instead.
* Blind votes: a vote cast after the voter saw which response was which can be swayed by the label.
  :func:`summarize` uses blind votes only unless asked to include the others, and counts both kinds.

Pure: nothing here imports storage or Streamlit (``storage.stats_sql`` reads the columns, this package
computes).
"""

from __future__ import annotations

from fusion.stats.agreement import (
    KappaRow,
    annotator_units,
    cohens_kappa,
    krippendorff_alpha,
    pairwise_kappa,
)
from fusion.stats.bootstrap import CONFIDENCE, MIN_RUNS_FOR_INTERVAL, N_BOOT, SEED, bootstrap_ratio, quantile
from fusion.stats.distribution import attribution_values, distribution
from fusion.stats.rates import POSITION_SCORE, WIN_SCORE, WinRate, position_bias, win_rate, win_rate_by
from fusion.stats.summary import ResultsSummary, split_rates, summarize
from fusion.stats.votes import (
    CHOICES,
    SPLITS,
    WINNERS,
    VoteTable,
    is_blind,
    vote_model_groups,
    vote_table,
    vote_table_from_columns,
)

__all__ = [
    "CHOICES",
    "CONFIDENCE",
    "MIN_RUNS_FOR_INTERVAL",
    "N_BOOT",
    "POSITION_SCORE",
    "SEED",
    "SPLITS",
    "WINNERS",
    "WIN_SCORE",
    "KappaRow",
    "ResultsSummary",
    "VoteTable",
    "WinRate",
    "annotator_units",
    "attribution_values",
    "bootstrap_ratio",
    "cohens_kappa",
    "distribution",
    "is_blind",
    "krippendorff_alpha",
    "pairwise_kappa",
    "position_bias",
    "quantile",
    "split_rates",
    "summarize",
    "vote_model_groups",
    "vote_table",
    "vote_table_from_columns",
    "win_rate",
    "win_rate_by",
]
