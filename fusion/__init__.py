"""Fusion Explorer's engine: Best-of-N selection, Fusion-of-N, and span attribution.

Pure Python, no Streamlit. Heavy imports (litellm) happen lazily inside the functions that call a model,
so offline paths stay fast.
"""

from fusion.types import (
    Attribution,
    BestOfN,
    Candidate,
    FusedOutput,
    ModelSpec,
    Prompt,
    Run,
    SamplingSettings,
    SourceRef,
    Span,
)

__all__ = [
    "Attribution",
    "BestOfN",
    "Candidate",
    "FusedOutput",
    "ModelSpec",
    "Prompt",
    "Run",
    "SamplingSettings",
    "SourceRef",
    "Span",
]
