"""Batch input: the lines of a JSON Lines file made :class:`BatchItem` (or :class:`LineFailure`), the
settings that shape a batch's result, and the run and job ids derived from both."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from fusion.errors import InputError
from fusion.jsonl import iter_json_lines, storable_text
from fusion.types import ModelSpec, Prompt, SamplingSettings
from fusion.validate import check_candidate_texts, check_prompt

BATCH_SOURCE = "batch"
RUN_ID_PREFIX = "batch-"
FINGERPRINT_VERSION = 1
JOB_ID_PREFIX = "job-"


@dataclass
class BatchItem:
    """One valid input line."""

    line: int
    input_id: str | int | None
    prompt: Prompt
    tags: list[str] = field(default_factory=list)
    candidates: list[str] | None = None  # None: sample them from the pool

    @property
    def content_hash(self) -> str:
        blob = json.dumps(
            {"prompt": self.prompt.text, "system": self.prompt.system, "candidates": self.candidates},
            ensure_ascii=False,
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()

    @property
    def identity(self) -> str:
        """The input id when given (typed: 1 and "1" differ), else the content hash."""
        if self.input_id is not None:
            return "id:" + json.dumps(self.input_id, ensure_ascii=False)
        return "sha256:" + self.content_hash

    @property
    def label(self) -> str:
        return f"line {self.line}" + (f" (id {self.input_id})" if self.input_id is not None else "")


@dataclass
class LineFailure:
    line: int
    input_id: str | int | None
    message: str

    def __str__(self) -> str:
        ident = f" (id {self.input_id})" if self.input_id is not None else ""
        return f"line {self.line}{ident}: {self.message}"


def parse_item(obj: dict[str, Any], line: int) -> BatchItem:
    """Validate one parsed input line; raises :class:`InputError` naming what is wrong."""
    prompt = obj.get("prompt")
    if not isinstance(prompt, str):
        raise InputError("'prompt' is missing or not a string")
    check_prompt(prompt)
    system = obj.get("system")
    if system is not None and not isinstance(system, str):
        raise InputError("'system' must be a string")
    tags = obj.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) and t.strip() for t in tags):
        raise InputError("'tags' must be a list of non-empty strings")
    rid = obj.get("id")
    if rid is not None and (not isinstance(rid, (str, int)) or isinstance(rid, bool) or rid == ""):
        raise InputError("'id' must be a non-empty string or a number")
    texts: list[str] | None = None
    if obj.get("candidates") is not None:
        # Two usable candidates at least: with one there is nothing to choose between or fuse.
        texts = check_candidate_texts(obj["candidates"], low=2)
    # As the database will hold them (NUL and lone surrogates made U+FFFD), so that the output line, the
    # stored run and the run id all agree.
    return BatchItem(
        line=line,
        input_id=storable_text(rid) if isinstance(rid, str) else rid,
        prompt=Prompt(storable_text(prompt), system=storable_text(system) if system else None),
        tags=[storable_text(t.strip()) for t in tags],
        candidates=[storable_text(t) for t in texts] if texts is not None else None,
    )


def read_items(lines: Iterable[str] | Iterable[bytes] | Any) -> tuple[list[BatchItem], list[LineFailure]]:
    """Parse a whole input: valid items, and a failure per bad line (malformed JSON, missing prompt, an id
    used twice for different content). A line repeating an earlier one exactly is dropped silently."""
    items: list[BatchItem] = []
    failures: list[LineFailure] = []
    seen: dict[str, BatchItem] = {}
    for lineno, obj, error in iter_json_lines(lines):
        if error is None:
            try:
                item = parse_item(obj or {}, lineno)
            except InputError as exc:
                error = str(exc)
            else:
                first = seen.get(item.identity)
                if first is None:
                    seen[item.identity] = item
                    items.append(item)
                elif first.content_hash != item.content_hash:
                    failures.append(
                        LineFailure(
                            lineno,
                            item.input_id,
                            f"id {item.input_id!r} is already used on line {first.line}",
                        )
                    )
                continue
        rid = obj.get("id") if isinstance(obj, dict) and isinstance(obj.get("id"), (str, int)) else None
        failures.append(LineFailure(lineno, rid, error))
    return items, failures


# ----------------------------------------------------------------------------------------------------------
# Settings and run ids


@dataclass(frozen=True)
class BatchSettings:
    """What shapes a batch run's result, hence its run id. ``selector`` is "consensus" or
    "judge:<model>", ``fusor`` "extractive" or "llm:<model>"."""

    selector: str = "consensus"
    fusor: str = "extractive"
    pool: tuple[ModelSpec, ...] = ()
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    preset: str | None = None
    template: str | None = None
    shuffle_seed: int | None = None
    tags: tuple[str, ...] = ()  # added to every run; not part of the identity
    offline: bool = False  # no model calls at all: a line without candidates is an error

    def fingerprint(self, item: BatchItem) -> dict[str, Any]:
        fp: dict[str, Any] = {"v": FINGERPRINT_VERSION, "selector": self.selector, "fusor": self.fusor}
        if self.fusor != "extractive":
            template_hash = hashlib.sha256(self.template.encode()).hexdigest() if self.template else None
            fp.update(preset=self.preset, template=template_hash, shuffle_seed=self.shuffle_seed)
        if item.candidates is None:
            # Only lines sampled from the pool depend on it and on the sampling settings.
            s = self.sampling
            fp["pool"] = [[m.model, m.samples] for m in self.pool]
            fp["sampling"] = [s.temperature, s.top_p, s.max_tokens, s.seed]
        return fp


def batch_run_id(item: BatchItem, settings: BatchSettings) -> str:
    blob = json.dumps([item.identity, settings.fingerprint(item)], sort_keys=True, ensure_ascii=False)
    return RUN_ID_PREFIX + hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def batch_job_id(run_ids: Iterable[str]) -> str:
    """The job of a batch: a hash of its sorted run ids, so every worker given the same input and settings
    (lines in any order) names the same job."""
    blob = "\n".join(sorted(set(run_ids)))
    return JOB_ID_PREFIX + hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()[:16]
