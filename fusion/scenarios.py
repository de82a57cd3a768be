"""The built-in scenario gallery: prompts with ready-made candidate answers, so the app works offline.

Every scenario, its prompt, its candidates and its reference translation were WRITTEN BY HAND FOR THIS
PROJECT as demo data. They are not real model outputs and are not copied from any dataset. The candidate
labels ("concise", "verbose", ...) are fictional answer styles, not model names.

The candidates of a scenario are written so that different candidates hold different good parts (one has
the best structure, another a key fact, another a good example, one an error or filler): that is the
situation where fusing them beats picking any single one. Each scenario's ``note`` says where those parts
are, for demos.

Data lives in ``fusion/scenarios/<id>.json`` (UTF-8, one file per scenario) next to this module and is read
through ``importlib.resources``, so loading works from any working directory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from fusion.types import Candidate, Prompt, Run

# A scenario must have this many candidates: fewer gives fusion nothing to combine; more clutters the gallery.
MIN_CANDIDATES = 4
MAX_CANDIDATES = 6

_DATA_PACKAGE = "fusion"
_DATA_DIR = "scenarios"


@dataclass(frozen=True)
class Scenario:
    """One gallery entry.

    ``language`` is the language the candidates are written in ("en", "es"), or ``source→target`` for a
    translation ("en→de"). ``note`` is a one-line hint for demos: which candidate holds which good part or
    mistake (1-based, like the UI's candidate labels). ``reference`` is a hand-written reference
    translation where there is one.
    """

    id: str
    title: str
    category: str
    language: str
    prompt: str
    candidates: tuple[str, ...]
    candidate_labels: tuple[str, ...]
    note: str
    reference: str | None = None
    system: str | None = None

    @property
    def output_language(self) -> str:
        """The language the candidates are written in: the target for a translation."""
        return self.language.split("→")[-1].strip()


class ScenarioDataError(ValueError):
    """A scenario file is malformed. Raised at load time, naming the file, so a bad edit fails loudly."""


def _text(data: dict[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ScenarioDataError(f"{where}: '{key}' must be a non-empty string.")
    return value


def _optional_text(data: dict[str, Any], key: str, where: str) -> str | None:
    return None if data.get(key) is None else _text(data, key, where)


def parse_scenario(data: Any, where: str = "scenario") -> Scenario:
    """Build a :class:`Scenario` from one decoded JSON object, checking every field."""
    if not isinstance(data, dict):
        raise ScenarioDataError(f"{where}: expected a JSON object.")
    raw = data.get("candidates")
    if not isinstance(raw, list) or not MIN_CANDIDATES <= len(raw) <= MAX_CANDIDATES:
        raise ScenarioDataError(
            f"{where}: 'candidates' must be a list of {MIN_CANDIDATES} to {MAX_CANDIDATES} items."
        )
    texts: list[str] = []
    labels: list[str] = []
    for i, item in enumerate(raw, 1):
        if not isinstance(item, dict):
            raise ScenarioDataError(f"{where}: candidate {i} must be an object with 'label' and 'text'.")
        labels.append(_text(item, "label", f"{where}, candidate {i}"))
        texts.append(_text(item, "text", f"{where}, candidate {i}"))
    return Scenario(
        id=_text(data, "id", where),
        title=_text(data, "title", where),
        category=_text(data, "category", where),
        language=_text(data, "language", where),
        prompt=_text(data, "prompt", where),
        candidates=tuple(texts),
        candidate_labels=tuple(labels),
        note=_text(data, "note", where),
        reference=_optional_text(data, "reference", where),
        system=_optional_text(data, "system", where),
    )


@lru_cache(maxsize=1)
def _load_all() -> tuple[Scenario, ...]:
    folder = resources.files(_DATA_PACKAGE).joinpath(_DATA_DIR)
    entries: list[tuple[int, str, Scenario]] = []
    for entry in folder.iterdir():
        if not entry.name.endswith(".json"):
            continue
        try:
            data = json.loads(entry.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ScenarioDataError(f"{entry.name}: not valid JSON ({exc}).") from exc
        scenario = parse_scenario(data, entry.name)
        if entry.name != f"{scenario.id}.json":
            raise ScenarioDataError(f"{entry.name}: the file name must be '{scenario.id}.json'.")
        order = data.get("order")
        if isinstance(order, bool) or not isinstance(order, int):
            raise ScenarioDataError(f"{entry.name}: 'order' must be a whole number.")
        entries.append((order, scenario.id, scenario))
    entries.sort(key=lambda e: (e[0], e[1]))
    scenarios = tuple(e[2] for e in entries)
    ids = [s.id for s in scenarios]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ScenarioDataError(f"Duplicate scenario ids: {', '.join(duplicates)}.")
    return scenarios


def load_scenarios() -> list[Scenario]:
    """All built-in scenarios in gallery order. Files are read once per process; the list is a fresh copy."""
    return list(_load_all())


def get_scenario(scenario_id: str) -> Scenario:
    """The scenario with this id; ``KeyError`` naming the known ids if there is none."""
    for scenario in _load_all():
        if scenario.id == scenario_id:
            return scenario
    known = ", ".join(s.id for s in _load_all())
    raise KeyError(f"No built-in scenario with id {scenario_id!r}. Known ids: {known}.")


def scenario_to_candidates(s: Scenario) -> list[Candidate]:
    """The scenario's answers as engine candidates, with ``model="scenario:<label>"``.

    ``sample_index`` counts repeats of a label, so two candidates labelled alike still read as distinct
    samples of one "model".
    """
    seen: dict[str, int] = {}
    out: list[Candidate] = []
    for i, (text, label) in enumerate(zip(s.candidates, s.candidate_labels)):
        sample = seen.get(label, 0)
        seen[label] = sample + 1
        out.append(Candidate(index=i, text=text, model=f"scenario:{label}", sample_index=sample))
    return out


def scenario_to_run(s: Scenario) -> Run:
    """A fresh run holding the scenario's prompt and candidates, not yet selected or fused."""
    return Run(
        prompt=Prompt(text=s.prompt, system=s.system),
        candidates=scenario_to_candidates(s),
        source=f"scenario:{s.id}",
        tags=["scenario", s.category],
    )
