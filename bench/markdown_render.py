"""Rendering model answers as Markdown with attribution drawn over them, against plain escaping.

One page's worth of text: 8 candidates of about 800 words and a fused text of about 1,000 words.

- baseline: what the views do today, ``attribution_html`` for the fused text (escaped spans) and the
  escaped text of each candidate (``esc``, as the candidate cards do);
- markdown: ``attributed_markdown_html`` for the fused text and ``markdown_html`` for each candidate;
- markdown + units: the same, each candidate with the ranges the fusion kept and dropped
  (``markdown_html(text, ranges=...)``; the ranges are taken from the attribution's source locations).

Times are CPU (process) time, the three renderings timed back to back in each repeat (other jobs share the
2 cores), medians of the repeats. The parser is built once per process; its first-call cost is reported
apart. Real answers come from ../shared/data/alpaca_eval_judged8.jsonl (8 models; each candidate joins one
model's answers to several instructions, tables and code included); without it the built-in scenarios'
answers are repeated to length, with a message saying so.

    .venv/bin/python bench/markdown_render.py [--repeats 15] [--out bench/results/markdown_render.md] [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from components import markdown_view  # noqa: E402
from components.attribution_view import attribution_html, esc  # noqa: E402
from components.markdown_view import attributed_markdown_html, markdown_html  # noqa: E402
from fusion.attribution import attribute  # noqa: E402
from fusion.scenarios import load_scenarios  # noqa: E402
from fusion.types import Attribution  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
N_CANDIDATES = 8
CANDIDATE_WORDS = 800
FUSED_WORDS = 1000


def _cut(text: str, words: int) -> str:
    """``text`` up to the end of the block (blank line) in which the ``words``-th word falls."""
    count = 0
    for m in re.finditer(r"\S+", text):
        count += 1
        if count >= words:
            end = text.find("\n\n", m.end())
            return text if end < 0 else text[:end]
    return text


def real_candidates(data: Path) -> tuple[list[str], str] | None:
    path = data / "alpaca_eval_judged8.jsonl"
    if not path.exists():
        return None
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    models = list(rows[0]["outputs"])[:N_CANDIDATES]
    # Instructions whose answers have Markdown to render come first: code fences, tables, lists, headings.
    def markdown_in(r: dict) -> int:
        return -sum(bool(re.search(r"```|\|---|^#|^\s*[-*] ", t, re.M)) for t in r["outputs"].values())

    rich = sorted(rows, key=markdown_in)
    candidates = []
    for model in models:
        parts: list[str] = []
        k = 0
        while sum(len(p.split()) for p in parts) < CANDIDATE_WORDS:
            parts.append(rich[k % len(rich)]["outputs"][model])
            k += 1
        candidates.append(_cut("\n\n".join(parts), CANDIDATE_WORDS))
    return candidates, "alpaca_eval_judged8 (real answers of 8 models, instructions with Markdown first)"


def scenario_candidates() -> tuple[list[str], str]:
    texts = [t for s in load_scenarios() for t in s.candidates]
    candidates = []
    for i in range(N_CANDIDATES):
        parts: list[str] = []
        k = i
        while sum(len(p.split()) for p in parts) < CANDIDATE_WORDS:
            parts.append(texts[k % len(texts)])
            k += N_CANDIDATES
        candidates.append(_cut("\n\n".join(parts), CANDIDATE_WORDS))
    return candidates, "built-in scenarios' answers repeated to length (shared data absent)"


def fuse(candidates: list[str], seed: int = 0) -> str:
    """A fused text of about FUSED_WORDS words as a fusor writes one: blocks of different candidates, some
    cut short, some followed by a new sentence."""
    rng = random.Random(seed)
    blocks = [b for c in candidates for b in re.split(r"\n{2,}", c) if b.strip()]
    out: list[str] = []
    while sum(len(b.split()) for b in out) < FUSED_WORDS:
        b = blocks[rng.randrange(len(blocks))]
        if rng.random() < 0.25:
            b = b[: max(1, int(len(b) * rng.uniform(0.5, 0.9)))]
        if rng.random() < 0.2:
            b += " This sentence is written by the fusor and found in no candidate."
        out.append(b)
    return "\n\n".join(out)


def units_of(attribution: Attribution, candidates: list[str]) -> list[list[tuple[int, int, str]]]:
    """Per candidate: the passages the fused text copied (kept), everything else dropped."""
    kept: list[list[tuple[int, int]]] = [[] for _ in candidates]
    for span in attribution.spans:
        for ref in span.sources:
            if 0 <= ref.start < ref.end:
                kept[ref.candidate].append((ref.start, ref.end))
    out = []
    for i, text in enumerate(candidates):
        units, pos = [], 0
        for start, end in sorted(kept[i]):
            start = max(start, pos)
            if start > pos:
                units.append((pos, start, "dropped"))
            if end > start:
                units.append((start, end, "kept"))
                pos = end
        if pos < len(text):
            units.append((pos, len(text), "dropped"))
        out.append(units)
    return out


def _timed(fn: Callable[[], object], number: int) -> float:
    t = time.process_time()
    for _ in range(number):
        fn()
    return (time.process_time() - t) / number


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "markdown_render.md")
    parser.add_argument("--data", type=Path, default=DATA, help="folder with the shared data files")
    args = parser.parse_args()
    command = ".venv/bin/python bench/markdown_render.py" + (
        f" --data {args.data}" if args.data.resolve() != DATA.resolve() else ""
    )

    got = real_candidates(args.data)
    if got is None:
        print(f"note: {args.data / 'alpaca_eval_judged8.jsonl'} is absent; using the built-in scenarios.")
        got = scenario_candidates()
    candidates, source = got
    fused = fuse(candidates)
    attribution = attribute(fused, candidates)
    labels = [f"Candidate {i + 1}" for i in range(len(candidates))]
    units = units_of(attribution, candidates)

    t = time.process_time()
    markdown_view._parser()
    first_call = time.process_time() - t

    def baseline() -> object:
        return [attribution_html(fused, attribution, labels)] + [f"<div>{esc(c)}</div>" for c in candidates]

    def markdown() -> object:
        return [attributed_markdown_html(fused, attribution, labels)] + [markdown_html(c) for c in candidates]

    def markdown_units() -> object:
        return [attributed_markdown_html(fused, attribution, labels)] + [
            markdown_html(c, ranges=u) for c, u in zip(candidates, units)
        ]

    def fused_only() -> object:
        return attributed_markdown_html(fused, attribution, labels)

    md = markdown_view._parser()

    def library_render() -> object:
        # Reference only: markdown-it-py's own HTML renderer on the same texts (no tracing, no marks).
        return [md.render(fused)] + [md.render(c) for c in candidates]

    fns = {
        "baseline": baseline,
        "markdown": markdown,
        "markdown + units": markdown_units,
        "fused only": fused_only,
        "markdown-it render": library_render,
    }
    for fn in fns.values():
        fn()  # warm-up
    inner = {name: max(1, int(0.05 / max(_timed(fn, 1), 1e-5))) for name, fn in fns.items()}
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(args.repeats):
        for name, fn in fns.items():
            times[name].append(_timed(fn, inner[name]))
    med = {name: statistics.median(ts) for name, ts in times.items()}

    cand_words = [len(c.split()) for c in candidates]
    fences = sum(c.count("```") // 2 for c in candidates)
    tables = sum(len(re.findall(r"^\s*\|?\s*:?-{3,}", c, re.M)) for c in candidates)
    spans = len(attribution.spans)
    out_chars = sum(len(x) for x in markdown())
    lines = [
        "# Markdown rendering with attribution, against plain escaping",
        "",
        f"Command: `{command}`",
        "",
        f"Input: {source}. {N_CANDIDATES} candidates of {min(cand_words)}-{max(cand_words)} words "
        f"({statistics.mean(cand_words):.0f} on average; {fences} code fences and {tables} table(s) among them) "
        "and a "
        f"fused text of {len(fused.split())} words built from their blocks, attributed by the engine "
        f"({spans} spans, copied fraction {attribution.copied_fraction:.2f}). "
        f"Machine: {platform.machine()}, Python {platform.python_version()}, markdown-it-py "
        f"{__import__('markdown_it').__version__}. CPU (process) time; the renderings are timed back to back in "
        f"each of {args.repeats} repeats and the medians compared.",
        "",
        "| rendering (fused text + 8 candidates) | ms | ratio to baseline |",
        "|---|---|---|",
    ]
    for name in ("baseline", "markdown", "markdown + units", "markdown-it render"):
        lines.append(f"| {name} | {med[name] * 1000:.1f} | {med[name] / med['baseline']:.1f}x |")
    lines += [
        "",
        f"- markdown against markdown-it-py's own renderer on the same texts (parse + HTML, no tracing, no "
        f"marks): {med['markdown'] / med['markdown-it render']:.2f}x.",
        f"- The fused text alone (attributed Markdown): {med['fused only'] * 1000:.1f} ms.",
        f"- Building the parser, once per process (cached afterwards): {first_call * 1000:.1f} ms.",
        f"- HTML written for the whole page: {out_chars / 1000:.0f} kB (inline styles on every element).",
        "- baseline: `attribution_html` for the fused text, `esc` for each candidate; markdown: "
        "`attributed_markdown_html` and `markdown_html`; markdown + units: each candidate also with its "
        "kept/dropped ranges (`markdown_html(text, ranges=...)`).",
    ]
    report = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report, encoding="utf-8")
    print(report)


if __name__ == "__main__":
    main()
