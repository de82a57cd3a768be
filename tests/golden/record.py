"""Record the golden outputs of the offline method (consensus pick, extractive fusion, span attribution).

The golden files pin down what the engine gives today, so that a change meant to move code around (issue 11,
"The engine's shape") can be shown to change no output at all. ``tests/test_golden.py`` recomputes every
case and asserts the result equals the recording exactly.

Two sets of cases:

* the 9 built-in scenarios (``fusion/scenarios/*.json``), read at test time; the recording keeps a sha256
  of each scenario's prompt and candidates, so an edited scenario fails with its own message rather than as
  a change of behaviour;
* generated cases (``inputs.json``): candidates built from the project's own texts (README sections and
  docstrings of the engine's modules, cut into sentences and items, some dropped, reworded, renumbered or
  moved, with sentences of other sources and sign-offs mixed in), and cases written by hand for this file:
  German, Spanish, Japanese and Chinese answers, a translation, a story, a length limit, Markdown
  (headings, tables, task lists, nested lists), code, numbered procedures, conflicting figures, untrusted
  HTML, failed, single and identical candidates. Their inputs are frozen in ``inputs.json``, so editing
  the README does not move the golden outputs.

For each case (``outputs.json``): the consensus selector's verdict (pick and scores), the extractive
fusion
(text and candidate order) with its default settings, two more settings (``coherence=False``,
``complementary=False``) that reach other branches, and the attribution of the fused text with the default
settings and with ``min_match=2, max_gap=1`` (the 2-token seeds). Latency is left out: it is the one field
that is meant to vary.

Regenerate (only when a change of output is intended, and say so in the commit):

    .venv/bin/python tests/golden/record.py              # outputs for the current inputs
    .venv/bin/python tests/golden/record.py --new-inputs # rebuild inputs.json from the current texts first
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import random
import re
import sys
from pathlib import Path
from typing import Any, Sequence

os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fusion.attribution import attribute  # noqa: E402
from fusion.fusors import ExtractiveFusor  # noqa: E402
from fusion.pipeline import attribute_fused  # noqa: E402
from fusion.scenarios import load_scenarios  # noqa: E402
from fusion.selectors import ConsensusSelector  # noqa: E402
from fusion.types import Attribution, Candidate, Prompt  # noqa: E402

HERE = Path(__file__).resolve().parent
INPUTS = HERE / "inputs.json"
OUTPUTS = HERE / "outputs.json"

# The fusor settings recorded besides the default: each switches off a step, so that the steps before it
# are seen on their own.
VARIANTS: dict[str, dict[str, Any]] = {
    "coherence_off": {"coherence": False},
    "backbone_only": {"complementary": False},
}


# --- what is recorded ---------------------------------------------------------------------------------------


def candidates_of(texts: Sequence[str], errors: Sequence[str | None] | None = None) -> list[Candidate]:
    errors = list(errors or [None] * len(texts))
    return [Candidate(index=i, text=t, error=e) for i, (t, e) in enumerate(zip(texts, errors, strict=True))]


def attribution_record(attribution: Attribution | None) -> dict[str, Any] | None:
    """An attribution as JSON, each span one short list ``[start, end, [[candidate, start, end], ...]]``
    (every field of every span and source, in a form that keeps the files readable)."""
    if attribution is None:
        return None
    return {
        "spans": [
            [span.start, span.end, [[r.candidate, r.start, r.end] for r in span.sources]]
            for span in attribution.spans
        ],
        "shares": attribution.shares,
        "copied_fraction": attribution.copied_fraction,
    }


def outcome(
    prompt: Prompt, texts: Sequence[str], errors: Sequence[str | None] | None = None, *, variants: bool = True
) -> dict[str, Any]:
    """Everything the offline method gives for one prompt and its candidates, latency aside, as plain
    JSON values (floats as Python writes them: they read back exactly)."""
    candidates = candidates_of(texts, errors)
    verdict = ConsensusSelector().select_sync(prompt, candidates)
    fused = ExtractiveFusor().fuse_sync(prompt, candidates)
    attribution = attribute_fused(fused, candidates)
    out: dict[str, Any] = {
        "pick": {"index": verdict.index, "scores": verdict.scores, "error": verdict.error},
        "fused": {"text": fused.text, "order": fused.order, "method": fused.method},
        "attribution": attribution_record(attribution),
    }
    if variants:
        usable = [c.text if c.ok else None for c in candidates]
        short = attribute(fused.text, usable, min_match=2, max_gap=1) if fused.text else None
        out["attribution_short"] = attribution_record(short)
        out["variants"] = {
            name: ExtractiveFusor(**settings).fuse_sync(prompt, candidates).text
            for name, settings in VARIANTS.items()
        }
    return out


def input_digest(prompt: Prompt, texts: Sequence[str], errors: Sequence[str | None] | None = None) -> str:
    """sha256 of a case's input, to tell an edited input from a change of behaviour."""
    blob = json.dumps(
        {"prompt": prompt.text, "system": prompt.system, "candidates": list(texts), "errors": errors},
        ensure_ascii=False,
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def scenario_cases() -> list[dict[str, Any]]:
    return [
        {
            "id": f"scenario:{s.id}",
            "prompt": s.prompt,
            "system": s.system,
            "candidates": list(s.candidates),
            "errors": None,
        }
        for s in load_scenarios()
    ]


def load_inputs() -> list[dict[str, Any]]:
    return json.loads(INPUTS.read_text(encoding="utf-8"))["cases"]


def all_cases() -> list[dict[str, Any]]:
    """The scenarios (as they are now) and the frozen generated cases."""
    return scenario_cases() + load_inputs()


def prompt_of(case: dict[str, Any]) -> Prompt:
    return Prompt(case["prompt"], case.get("system"))


def record_case(case: dict[str, Any]) -> dict[str, Any]:
    prompt = prompt_of(case)
    return {
        "input_sha256": input_digest(prompt, case["candidates"], case.get("errors")),
        **outcome(prompt, case["candidates"], case.get("errors")),
    }


# --- generated inputs: candidates from the project's own texts ------------------------------------------

_LIST_LINE = re.compile(r"^\s*(?:[-*+]|\d{1,3}[.)])\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z*`(\"])")
_NUMBER = re.compile(r"\b\d+(?:\.\d+)?\b")

# Rewordings that keep the meaning, applied to some sentences of a candidate so that candidates agree in
# content but not word for word.
_REWORDINGS = [
    ("shows", "displays"),
    ("uses", "relies on"),
    ("every", "each"),
    ("cheap", "inexpensive"),
    ("quickly", "fast"),
    ("works", "runs"),
    ("keeps", "retains"),
    ("gives", "returns"),
    ("never", "not once"),
    ("about", "roughly"),
    ("most", "the majority of"),
    ("many", "a lot of"),
    ("small", "little"),
    ("start", "begin"),
    ("reads", "parses"),
    ("writes", "produces"),
    ("one", "a single"),
    ("also", "as well"),
]

# Sentences on the project's topics that no source has: a candidate that adds one brings complementary
# content (or an unsupported claim, when it carries a figure).
_EXTRA_SENTENCES = [
    "The default settings work well for most prompts, so there is rarely a reason to change them.",
    "Runs are stored in a SQLite file unless DATABASE_URL points somewhere else.",
    "A run can be reopened later from its permalink in any browser.",
    "The offline path needs no API key and no network connection.",
    "Votes are blind by default, so the labels appear only after a choice is made.",
    "Attribution colours every span of the fused text by the candidate it came from.",
    "It processes about 4,000 prompts per hour on a laptop.",
    "Each candidate is limited to 200,000 characters.",
    "The consensus pick is the answer the other candidates agree with most.",
    "Batch jobs resume where they stopped when the same command is run again.",
]

_OPENERS = ["Sure! Here is a short overview.", "Great question.", "Here is what you need to know:"]
_SIGN_OFFS = ["I hope this helps!", "Good luck with your project.", "In short, it does what it says."]


def _pieces(paragraph: str) -> tuple[str, list[str]]:
    """A paragraph as ("list", lines) or ("prose", sentences); code and tables stay whole."""
    lines = paragraph.split("\n")
    if paragraph.lstrip().startswith(("```", "|")):
        return "block", [paragraph]
    if all(_LIST_LINE.match(line) or line.startswith("  ") for line in lines):
        return "list", lines
    return "prose", _SENTENCE_END.split(" ".join(line.strip() for line in lines))


def _reword(sentence: str, rng: random.Random) -> str:
    pairs = [p for p in _REWORDINGS if re.search(rf"\b{p[0]}\b", sentence)]
    for old, new in rng.sample(pairs, min(2, len(pairs))):
        sentence = re.sub(rf"\b{old}\b", new, sentence, count=1)
    return sentence


def _change_number(sentence: str, rng: random.Random) -> str:
    found = list(_NUMBER.finditer(sentence))
    if not found:
        return sentence
    m = rng.choice(found)
    value = m.group()
    new = str(int(float(value)) * 2 + 1) if "." not in value else value + "5"
    return sentence[: m.start()] + new + sentence[m.end() :]


def _star_bullet(m: re.Match[str]) -> str:
    return m.group().replace("-", "*", 1)


def variant(
    source: str, rng: random.Random, extras: Sequence[str], *, keep_all: bool = False, drop: float = 0.2
) -> str:
    """One candidate made from ``source``: some sentences or items dropped, reworded or with a figure
    changed, list markers changed, two paragraphs swapped, an extra sentence, an opener or a sign-off."""
    paragraphs = [p for p in source.strip().split("\n\n") if p.strip()]
    out: list[str] = []
    for paragraph in paragraphs:
        kind, parts = _pieces(paragraph)
        if kind == "block":
            out.append(paragraph)
            continue
        kept = []
        for i, part in enumerate(parts):
            if not keep_all and i > 0 and rng.random() < drop:
                continue
            if rng.random() < 0.35:
                part = _reword(part, rng)
            if rng.random() < 0.08:
                part = _change_number(part, rng)
            kept.append(part)
        if not kept:
            continue
        if kind == "list":
            if rng.random() < 0.3:
                kept = [_LIST_LINE.sub(_star_bullet, line, count=1) for line in kept]
            out.append("\n".join(kept))
        else:
            out.append(" ".join(kept))
    if len(out) > 2 and rng.random() < 0.25:
        i = rng.randrange(len(out) - 1)
        out[i], out[i + 1] = out[i + 1], out[i]
    if extras and rng.random() < 0.5:
        out.insert(rng.randrange(1, len(out) + 1), rng.choice(extras))
    if rng.random() < 0.25:
        out.insert(0, rng.choice(_OPENERS))
    if rng.random() < 0.3:
        out.append(rng.choice(_SIGN_OFFS))
    return "\n\n".join(out)


def readme_sources() -> list[tuple[str, str, str]]:
    """(id, prompt, text) per section of the README (its introduction included)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    sections = re.split(r"^## ", text, flags=re.MULTILINE)
    out = []
    intro = sections[0].split("\n", 1)[1]  # without the "# Fusion Explorer" title
    out.append(("readme-intro", "What is Fusion Explorer?", intro))
    for section in sections[1:]:
        title, body = section.split("\n", 1)
        slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
        out.append((f"readme-{slug}", f"Fusion Explorer: {title}. Explain it to a new user.", body))
    return out


def docstring_sources() -> list[tuple[str, str, str]]:
    """(id, prompt, text) per docstring of the engine worth answering with: module and class docstrings
    that are a few paragraphs long."""
    # (module, file, names): None stands for the module's own docstring.
    wanted = [
        ("fusion.attribution", "fusion/attribution/__init__.py", [None, "attribute"]),
        ("fusion.coherence", "fusion/coherence.py", [None]),
        ("fusion.kept", "fusion/kept.py", [None]),
        ("fusion.diff", "fusion/diff.py", [None]),
        ("fusion.similarity", "fusion/similarity.py", [None]),
        ("fusion.batch", "fusion/batch/__init__.py", [None]),
        ("fusion.scenarios", "fusion/scenarios.py", [None]),
        ("fusion.fusors", "fusion/fusors/extractive/__init__.py", ["ExtractiveFusor"]),
        ("fusion.fusors", "fusion/fusors/llm.py", ["LLMFusor"]),
        ("fusion.selectors", "fusion/selectors.py", ["ConsensusSelector"]),
        ("fusion.pipeline", "fusion/pipeline.py", [None]),
    ]
    out = []
    for module, path, names in wanted:
        tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
        nodes = {n.name: n for n in ast.walk(tree) if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
        for name in names:
            doc = ast.get_docstring(tree if name is None else nodes[name])
            assert doc, f"{path}:{name} has no docstring"
            what = module + (f".{name}" if name else "")
            slug = what.replace(".", "-").lower()
            out.append((f"doc-{slug}", f"What does {what} do, and how?", _unwrap(doc)))
    return out


def _unwrap(doc: str) -> str:
    """Docstring lines joined into paragraphs (wrapped lines of one sentence or item become one line)."""
    paragraphs = []
    for block in doc.split("\n\n"):
        lines: list[str] = []
        for line in block.split("\n"):
            if lines and not _LIST_LINE.match(line) and not line.startswith("    "):
                lines[-1] += " " + line.strip()
            elif lines and not _LIST_LINE.match(line) and _LIST_LINE.match(lines[-1]):
                lines[-1] += " " + line.strip()
            else:
                lines.append(line.rstrip())
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)


def generated_from_project() -> list[dict[str, Any]]:
    sources = readme_sources() + docstring_sources()
    cases = []
    for k, (case_id, prompt, text) in enumerate(sources):
        rng = random.Random(f"golden:{case_id}")
        n = 3 + k % 4  # 3 to 6 candidates
        extras = [s for s in _EXTRA_SENTENCES if s not in text]
        candidates = [variant(text, rng, extras, keep_all=(j == 0)) for j in range(n)]
        cases.append(_case(case_id, prompt, candidates))
    # More diverse pools: 4 to 8 candidates, none whole, each with sentences of the next source mixed in
    # (content only some of them have, for the additions).
    for k, (case_id, prompt, text) in enumerate(sources):
        rng = random.Random(f"golden:mixed:{case_id}")
        _, _, neighbour = sources[(k + 1) % len(sources)]
        extras = [s for p in neighbour.split("\n\n") if _pieces(p)[0] == "prose" for s in _pieces(p)[1]]
        n = 4 + k % 5
        candidates = [variant(text, rng, extras[j::n] or extras, drop=0.35) for j in range(n)]
        cases.append(_case(f"{case_id}-mixed", prompt, candidates))
    # Two candidates only: no majority to go by.
    rng = random.Random("golden:pair")
    _, prompt, text = sources[1]
    cases.append({
        "id": "readme-pair",
        "prompt": prompt,
        "system": "Answer briefly.",
        "candidates": [variant(text, rng, _EXTRA_SENTENCES) for _ in range(2)],
        "errors": None,
    })
    return cases


def _case(case_id: str, prompt: str, candidates: list[str]) -> dict[str, Any]:
    return {"id": case_id, "prompt": prompt, "system": None, "candidates": candidates, "errors": None}


def build_inputs() -> dict[str, Any]:
    from tests.golden.hand_written import HAND_WRITTEN

    cases = generated_from_project() + [{"system": None, "errors": None, **c} for c in HAND_WRITTEN]
    ids = [c["id"] for c in cases]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    return {
        "about": "Inputs of the golden cases (tests/golden/record.py): candidates built from the project's "
        "own texts, and cases written by hand for the golden tests. Not model outputs.",
        "cases": cases,
    }


def write_json(path: Path, data: Any) -> None:
    path.write_text(_pretty(data) + "\n", encoding="utf-8")


def _pretty(value: Any, level: int = 0) -> str:
    """JSON indented by one space per level, except that a list of lists (the spans) has one member per
    line: a span spread over a dozen lines makes the file hard to read."""
    pad, inner = " " * level, " " * (level + 1)
    if isinstance(value, dict) and value:
        items = [
            f"{inner}{json.dumps(k, ensure_ascii=False)}: {_pretty(v, level + 1)}"
            for k, v in value.items()
        ]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list) and value and all(isinstance(x, list) for x in value):
        rows = [inner + json.dumps(x, ensure_ascii=False) for x in value]
        return "[\n" + ",\n".join(rows) + "\n" + pad + "]"
    if isinstance(value, list) and any(isinstance(x, (dict, list, str)) for x in value):
        rows = [inner + _pretty(x, level + 1) for x in value]
        return "[\n" + ",\n".join(rows) + "\n" + pad + "]"
    return json.dumps(value, ensure_ascii=False)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--new-inputs", action="store_true", help="rebuild inputs.json from the current texts first"
    )
    args = parser.parse_args(argv)
    if args.new_inputs or not INPUTS.exists():
        write_json(INPUTS, build_inputs())
    cases = all_cases()
    write_json(OUTPUTS, {c["id"]: record_case(c) for c in cases})
    print(f"recorded {len(cases)} cases into {OUTPUTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
