"""Fusors: write one answer from N candidates (Fusion-of-N).

* :class:`LLMFusor` (:mod:`fusion.fusors.llm`) is the paper's method: a model sees the prompt and every
  usable candidate (shuffled, numbered, delimited) and writes the single best answer, with one of the
  :data:`PRESETS` below as its instructions (or a template of the user's).
* :class:`ExtractiveFusor` (:mod:`fusion.fusors.extractive`) works offline: sentence-level consensus fusion
  that only reuses candidate text.

Both take all of a run's candidates and use only the usable ones (``Candidate.ok``). What every fusor
shares (the :class:`Fusor` protocol, :func:`fuse`) and the fusor prompts are in :mod:`fusion.fusors.base`;
this package re-exports them with the fusors and their public helpers, so ``from fusion.fusors import X`` is
the one import path.
"""

from __future__ import annotations

from fusion.fusors.base import PRESETS, Fusor, FusorPreset, fuse, usable_or_raise
from fusion.fusors.extractive import ExtractiveFusor, length_limit
from fusion.fusors.llm import (
    ALLOWED_PLACEHOLDERS,
    REQUIRED_PLACEHOLDERS,
    LLMFusor,
    check_template,
    escape_delimiters,
    render_candidates,
    render_fusor_prompt,
    render_prompt_text,
)

__all__ = [
    "ALLOWED_PLACEHOLDERS",
    "PRESETS",
    "REQUIRED_PLACEHOLDERS",
    "ExtractiveFusor",
    "Fusor",
    "FusorPreset",
    "LLMFusor",
    "check_template",
    "escape_delimiters",
    "fuse",
    "length_limit",
    "render_candidates",
    "render_fusor_prompt",
    "render_prompt_text",
    "usable_or_raise",
]
