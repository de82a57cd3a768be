"""Golden hashes on real answers: does the offline method still give exactly what it gave?

For the first 50 AlpacaEval instructions of the shared data (8 real models' answers each) and the first 50
WMT24 en-de segments with a source of 20 characters or more (10 systems' translations each), this runs the
offline method as tests/golden/record.py does (consensus pick, extractive fusion, span attribution; see
:func:`tests.golden.record.outcome`) and records a sha256 of each output: the pick (index and scores), the
fused text (with the candidate order) and the spans (with shares and copied fraction). Only the hashes and
the data's ids are written, never the shared texts (the project must not copy them).

    .venv/bin/python bench/golden_hashes.py           # record into bench/results/golden_hashes.json
    .venv/bin/python bench/golden_hashes.py --check   # compare with the recording; exit 1 on a difference

Record on code whose behaviour is trusted; a refactoring must then pass ``--check``. Reads the first
shared/data folder above the project root, or ``--data DIR``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fusion.types import Prompt  # noqa: E402
from tests.golden.record import outcome  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "golden_hashes.json"
FIRST = 50
PARTS = ("pick", "fused", "spans")
WMT_PROMPT = "Translate the following text from English into German:\n\n"


def default_data() -> Path:
    """The first shared/data folder above the project root (a worktree sits one level deeper)."""
    for parent in ROOT.parents:
        if (parent / "shared" / "data").is_dir():
            return parent / "shared" / "data"
    return ROOT.parent / "shared" / "data"


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def alpaca_cases(data: Path) -> list[tuple[str, Prompt, list[str]]]:
    rows = list(_rows(data / "alpaca_eval_judged8.jsonl"))[:FIRST]
    return [(r["id"], Prompt(r["instruction"]), list(r["outputs"].values())) for r in rows]


def wmt_cases(data: Path) -> list[tuple[str, Prompt, list[str]]]:
    # Trivial segments (handles, URLs) are skipped, as the data's README advises.
    rows = [r for r in _rows(data / "wmt24_en-de.jsonl") if len(r["src"]) >= 20][:FIRST]
    return [(str(r["id"]), Prompt(WMT_PROMPT + r["src"]), list(r["systems"].values())) for r in rows]


def digest(value: Any) -> str:
    blob = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def hashes(prompt: Prompt, texts: Sequence[str]) -> dict[str, str]:
    got = outcome(prompt, texts, variants=False)
    return {"pick": digest(got["pick"]), "fused": digest(got["fused"]), "spans": digest(got["attribution"])}


def compute(data: Path) -> dict[str, dict[str, dict[str, str]]]:
    return {
        name: {case_id: hashes(prompt, texts) for case_id, prompt, texts in cases(data)}
        for name, cases in (("alpaca_eval", alpaca_cases), ("wmt24_en-de", wmt_cases))
    }


def revision() -> str:
    try:
        command = ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]
        out = subprocess.run(command, capture_output=True, text=True)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def differences(recorded: dict[str, Any], got: dict[str, Any]) -> list[str]:
    out = []
    for name in sorted(set(recorded) | set(got)):
        want, have = recorded.get(name, {}), got.get(name, {})
        for case_id in sorted(set(want) | set(have)):
            if case_id not in have or case_id not in want:
                out.append(f"{name} {case_id}: {'missing now' if case_id not in have else 'not recorded'}")
                continue
            changed = [p for p in PARTS if want[case_id].get(p) != have[case_id].get(p)]
            if changed:
                out.append(f"{name} {case_id}: {', '.join(changed)} changed")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the recorded hashes instead")
    parser.add_argument("--data", type=Path, default=None, help="the shared data folder")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the file of recorded hashes")
    args = parser.parse_args(argv)
    data = args.data or default_data()
    if not (data / "alpaca_eval_judged8.jsonl").is_file() or not (data / "wmt24_en-de.jsonl").is_file():
        need = "alpaca_eval_judged8.jsonl, wmt24_en-de.jsonl"
        print(f"golden_hashes: no shared data in {data} ({need}); pass --data DIR", file=sys.stderr)
        return 2
    if args.check and not args.out.is_file():
        print(f"golden_hashes: nothing recorded at {args.out}; run without --check first", file=sys.stderr)
        return 2
    started = time.perf_counter()
    got = compute(data)
    seconds = time.perf_counter() - started
    cases = sum(map(len, got.values()))
    if args.check:
        recorded = json.loads(args.out.read_text(encoding="utf-8"))
        diff = differences(recorded["hashes"], got)
        for line in diff:
            print(line)
        if diff:
            print(f"golden_hashes: {len(diff)} of {cases} cases differ from {args.out.name} "
                  f"(recorded at {recorded.get('revision')})", file=sys.stderr)
            return 1
        print(f"golden_hashes: all {cases} cases identical to the recording of {recorded.get('revision')} "
              f"({seconds:.1f} s)")
        return 0
    record = {
        "command": ".venv/bin/python bench/golden_hashes.py",
        "revision": revision(),
        "what": "sha256 of the consensus pick (index, scores), the extractive fusion (text, order) and the "
        "span attribution (spans, shares, copied fraction) per case: the first 50 AlpacaEval instructions "
        "(8 models) and the first 50 WMT24 en-de segments with a source of 20+ characters (10 systems). "
        "Hashes and ids only: the shared texts are not copied.",
        "hashes": got,
    }
    args.out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(f"golden_hashes: recorded {cases} cases into {args.out} ({seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
