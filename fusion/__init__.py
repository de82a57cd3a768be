"""Fusion Explorer's engine: Best-of-N selection, Fusion-of-N, and span attribution.

Pure Python, no Streamlit. Heavy imports (litellm) happen lazily inside the functions that call a model,
so offline paths stay fast.
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _distribution_version

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

DISTRIBUTION = "fusion-explorer"


def _version() -> str:
    """The installed distribution's version; in a checkout that was never pip-installed (``make app``,
    ``python -m fusion``) there is no metadata, so the checkout's pyproject.toml says it."""
    try:
        return _distribution_version(DISTRIBUTION)
    except PackageNotFoundError:
        pass
    import tomllib
    from pathlib import Path

    try:
        project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text("utf-8"))
        return str(project["project"]["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return "0+unknown"


__version__ = _version()

__all__ = [
    "__version__",
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
