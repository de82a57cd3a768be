"""False alarms of the degenerate-fusion check (fusion.degenerate) on real answers.

The check is meant for fusors that talk about their input instead of answering. Real answers by real models
are not degenerate (they answer the prompt), so each one, taken in turn as "the fusion" of the other
answers to the same prompt, should get no warning; every warning here is a false alarm or a real terse
non-answer, and the examples are printed so that a person can tell which.

    .venv/bin/python bench/degenerate_alarms.py [--out bench/results/degenerate.md]

Reads AlpacaEval (8 models' answers per instruction) and WMT24 en-de (each system's translation) from the
first shared/data folder above the project root; without it there is nothing to measure.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fusion.attribution import attribute  # noqa: E402
from fusion.degenerate import check_fusion  # noqa: E402
from fusion.fusors import PRESETS  # noqa: E402
from fusion.pipeline import supplied_candidates  # noqa: E402
from fusion.types import FusedOutput, Prompt  # noqa: E402


def default_data() -> Path:
    for parent in ROOT.parents:
        if (parent / "shared" / "data").is_dir():
            return parent / "shared" / "data"
    return ROOT.parent / "shared" / "data"


def cases(data: Path):
    for line in (data / "alpaca_eval_judged8.jsonl").open(encoding="utf-8"):
        row = json.loads(line)
        yield "AlpacaEval", row["id"], row["instruction"], list(row["outputs"].values())
    for line in (data / "wmt24_en-de.jsonl").open(encoding="utf-8"):
        row = json.loads(line)
        texts = [t for t in row["systems"].values() if isinstance(t, str) and t.strip()]
        yield "WMT24 en-de", row["id"], "Translate into German:\n" + row["src"], texts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data())
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "degenerate.md")
    args = parser.parse_args()
    if not (args.data / "alpaca_eval_judged8.jsonl").is_file():
        print(f"no shared data at {args.data}: nothing to measure", file=sys.stderr)
        return 1
    template = PRESETS["fusion"].template
    answers: collections.Counter[str] = collections.Counter()
    flagged: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    examples: list[str] = []
    for dataset, case_id, prompt, texts in cases(args.data):
        for i, text in enumerate(texts):
            others = texts[:i] + texts[i + 1 :]
            fused = FusedOutput(text=text, method="llm:real-answer", template="fusion")
            warnings = check_fusion(Prompt(prompt), supplied_candidates(others), fused, attribute(text, others),
                                    template=template)
            answers[dataset] += 1
            for w in warnings:
                flagged[dataset][w.code] += 1
                examples.append(f"- {dataset} {case_id}: {w.message}")
    lines = [
        "# Degenerate-fusion check: false alarms on real answers",
        "",
        f"Command: `.venv/bin/python bench/degenerate_alarms.py` (data: {args.data.name}/ of the shared folder)",
        "",
        "Each real answer, taken as the fusion of the other answers to its prompt, should get no warning.",
        "",
        "| data | answers checked | answers with a warning | by check |",
        "|---|---:|---:|---|",
    ]
    for dataset, n in answers.items():
        by = ", ".join(f"{code} {k}" for code, k in sorted(flagged[dataset].items())) or "none"
        lines.append(f"| {dataset} | {n:,} | {sum(flagged[dataset].values()):,} | {by} |")
    lines += ["", "Every warning, for reading by eye:", "", *(examples or ["- none"]), ""]
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
