"""Plain domain objects shared by the engine, the storage layer, the CLI and the app.

Everything here is a dataclass that round-trips through ``to_dict`` / ``from_dict`` so that runs can be
written as JSON Lines, stored in the database and rebuilt without loss. API keys never appear in any
serialised form: :class:`ModelSpec` carries one only in memory, and ``to_dict`` leaves it out.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Sequence

# Limits that every entry point (CLI, app, batch) enforces through ``fusion.validate``.
MIN_N = 1
MAX_N = 32
MAX_PROMPT_CHARS = 50_000
MAX_CANDIDATE_CHARS = 200_000


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """Keep only the keys ``cls`` declares, so older or newer JSON still loads."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


@dataclass(frozen=True)
class Prompt:
    """What the user asks. ``system`` is an optional system message sent before it."""

    text: str
    system: str | None = None

    def messages(self) -> list[dict[str, str]]:
        msgs: list[dict[str, str]] = []
        if self.system:
            msgs.append({"role": "system", "content": self.system})
        msgs.append({"role": "user", "content": self.text})
        return msgs

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | str) -> Prompt:
        if isinstance(data, str):
            return cls(text=data)
        return cls(**_known(cls, data))


# One time limit for every role (candidates, judge, fusor): with these a hanging server is given up on
# after two attempts, about 41 s (fusion.llm retries a timeout once at most).
DEFAULT_TIMEOUT_S = 20.0
DEFAULT_RETRIES = 2


@dataclass(frozen=True)
class SamplingSettings:
    """Sampling parameters for every candidate call of a run."""

    temperature: float = 0.8
    top_p: float | None = None
    max_tokens: int | None = 1024
    seed: int | None = None
    timeout: float = DEFAULT_TIMEOUT_S  # seconds one attempt of a model call may wait (see fusion.llm)
    num_retries: int = DEFAULT_RETRIES  # extra attempts on 429, 5xx and (once) timeouts

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> SamplingSettings:
        return cls(**_known(cls, data or {}))


@dataclass(frozen=True)
class ModelSpec:
    """One entry of the candidate pool: a litellm model string and how many samples to draw from it.

    ``api_key`` is for callers that pass a key explicitly (for example from Streamlit secrets). It is
    kept out of ``repr``, equality and ``to_dict`` so that it cannot leak into logs, caches or exports.
    """

    model: str
    samples: int = 1
    api_base: str | None = None
    api_key: str | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "samples": self.samples, "api_base": self.api_base}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | str) -> ModelSpec:
        if isinstance(data, str):
            return cls(model=data)
        clean = _known(cls, data)
        clean.pop("api_key", None)
        return cls(**clean)


@dataclass
class Candidate:
    """One generated (or supplied) answer. A failed sample keeps its slot with ``error`` set."""

    index: int  # position in the run, 0-based; what spans and scores refer to
    text: str
    model: str = "supplied"
    sample_index: int = 0  # which sample of its model this is
    latency_s: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    error: str | None = None
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.text.strip())

    @property
    def label(self) -> str:
        """Human-facing name, 1-based, as shown in the UI and reports."""
        return f"Candidate {self.index + 1}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Candidate:
        return cls(**_known(cls, data))


@dataclass
class BestOfN:
    """A selector's verdict: a score per candidate (``None`` where it could not be scored) and the pick."""

    index: int | None
    scores: list[float | None]
    method: str  # "consensus", or "judge:<model>"
    notes: list[str | None] = field(default_factory=list)  # per candidate: rationale or why scoring failed
    error: str | None = None  # set when no candidate could be picked

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BestOfN:
        return cls(**_known(cls, data))


@dataclass
class FusedOutput:
    """The fusor's answer and how it was produced."""

    text: str
    method: str  # "extractive", or "llm:<model>"
    model: str | None = None
    template: str | None = None  # the preset name or "custom"
    order: list[int] = field(default_factory=list)  # candidate indices in the order the fusor saw them
    seed: int | None = None  # seed of the shuffle that produced ``order``
    latency_s: float | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FusedOutput:
        return cls(**_known(cls, data))


@dataclass(frozen=True)
class SourceRef:
    """Where a span of the fused text sits in one candidate (character offsets into that candidate)."""

    candidate: int
    start: int
    end: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Span:
    """A piece of the fused text, ``fused[start:end]``. No sources means novel text."""

    start: int
    end: int
    sources: tuple[SourceRef, ...] = ()

    @property
    def novel(self) -> bool:
        return not self.sources

    @property
    def candidates(self) -> list[int]:
        return [s.candidate for s in self.sources]

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "sources": self.candidates,
            "locations": [s.to_dict() for s in self.sources],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Span:
        locations = data.get("locations")
        if locations is not None:
            refs = tuple(SourceRef(int(x["candidate"]), int(x["start"]), int(x["end"])) for x in locations)
        else:
            refs = tuple(SourceRef(int(c), -1, -1) for c in data.get("sources", []))
        return cls(int(data["start"]), int(data["end"]), refs)


@dataclass
class Attribution:
    """Spans that tile the fused text exactly, plus summary figures.

    ``shares[i]`` is the fraction of the fused text's non-whitespace characters that candidate ``i``
    supplies (a span shared by several candidates counts for each of them, so shares can sum above 1).
    ``copied_fraction`` is the fraction of those characters found in at least one candidate.
    """

    spans: list[Span]
    shares: list[float]
    copied_fraction: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "spans": [s.to_dict() for s in self.spans],
            "shares": list(self.shares),
            "copied_fraction": self.copied_fraction,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Attribution:
        return cls(
            spans=[Span.from_dict(s) for s in data.get("spans", [])],
            shares=[float(x) for x in data.get("shares", [])],
            copied_fraction=float(data.get("copied_fraction", 0.0)),
        )


SCENARIO_SOURCE_PREFIX = "scenario:"


def model_groups(models: Sequence[str], source: str) -> list[str]:
    """The names a run is grouped under when results are split by model.

    A built-in scenario's candidates carry fictional persona names (``scenario:coach``); listing those
    beside real models would put thirty made-up "models" in every split, so a scenario run is grouped under
    its scenario (its ``source``, ``scenario:<id>``) instead. Other runs keep their models as they are.
    """
    if source.startswith(SCENARIO_SOURCE_PREFIX) and len(source) > len(SCENARIO_SOURCE_PREFIX):
        return [source]
    return list(dict.fromkeys(m for m in models if m))


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass
class Run:
    """One prompt taken through the whole method: candidates, the Best-of-N pick, the fusion, attribution."""

    prompt: Prompt
    candidates: list[Candidate] = field(default_factory=list)
    pool: list[ModelSpec] = field(default_factory=list)
    settings: SamplingSettings = field(default_factory=SamplingSettings)
    bon: BestOfN | None = None
    fused: FusedOutput | None = None
    attribution: Attribution | None = None
    tags: list[str] = field(default_factory=list)
    id: str = field(default_factory=new_run_id)
    source: str = "live"  # "live", "scenario:<id>", "supplied", "batch"
    created_at: float = field(default_factory=time.time)

    @property
    def usable(self) -> list[Candidate]:
        return [c for c in self.candidates if c.ok]

    @property
    def bon_text(self) -> str | None:
        if self.bon is None or self.bon.index is None:
            return None
        return self.candidates[self.bon.index].text

    def with_id(self, run_id: str) -> Run:
        return replace(self, id=run_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "prompt": self.prompt.to_dict(),
            "candidates": [c.to_dict() for c in self.candidates],
            "pool": [m.to_dict() for m in self.pool],
            "settings": self.settings.to_dict(),
            "bon": self.bon.to_dict() if self.bon else None,
            "fused": self.fused.to_dict() if self.fused else None,
            "attribution": self.attribution.to_dict() if self.attribution else None,
            "tags": list(self.tags),
            "source": self.source,
            "created_at": self.created_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Run:
        return cls(
            id=data.get("id") or new_run_id(),
            prompt=Prompt.from_dict(data["prompt"]),
            candidates=[Candidate.from_dict(c) for c in data.get("candidates", [])],
            pool=[ModelSpec.from_dict(m) for m in data.get("pool", [])],
            settings=SamplingSettings.from_dict(data.get("settings")),
            bon=BestOfN.from_dict(data["bon"]) if data.get("bon") else None,
            fused=FusedOutput.from_dict(data["fused"]) if data.get("fused") else None,
            attribution=Attribution.from_dict(data["attribution"]) if data.get("attribution") else None,
            tags=list(data.get("tags", [])),
            source=data.get("source", "live"),
            created_at=float(data.get("created_at") or time.time()),
        )
