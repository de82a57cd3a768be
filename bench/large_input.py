"""Large input: `fusion fuse` (offline: consensus pick, extractive fusion, attribution, reading aids) on 8
candidates of 20,000 / 40,000 / 80,000 / 150,000 characters, before and after, in the same run.

The candidates are real answers: candidate k is the AlpacaEval answers of one model after another (for
instruction j, model (k + j) mod 8), joined until the size is reached, so the 8 candidates answer the same
questions in the same order, as 8 pasted answers to one long request would. They are written to a
temporary folder, never into the project.

Each measurement is a fresh process (`python -m fusion fuse` of that tree) timed by wall clock, its peak
memory read from ``resource.getrusage`` (maximum resident set size, interpreter and imports included).
The baseline is the code of ``--before`` (a commit; default the parent of the change) checked out in a
temporary git worktree; before and after alternate, so machine load hits both alike.

    .venv/bin/python bench/large_input.py                      # writes bench/results/large_input.md
    .venv/bin/python bench/large_input.py --sizes 20000 40000  # a quicker look
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fusion.similarity import chrf  # noqa: E402
RESULTS = ROOT / "bench" / "results" / "large_input.md"
SIZES = (20_000, 40_000, 80_000, 150_000)
N = 8
DEFAULT_BEFORE = "2675203"  # the commit before the linear-time work

_CHILD = r"""
import json, os, resource, sys, time
sys.path.insert(0, sys.argv[1])
os.environ["LITELLM_OFFLINE_MODE"] = "true"
from fusion.cli import main
t = time.perf_counter()
code = main(["fuse", "-q", sys.argv[2], "-o", sys.argv[3]])
wall = time.perf_counter() - t
use = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"code": code, "wall": wall, "cpu": use.ru_utime + use.ru_stime, "rss_mb": use.ru_maxrss / 1024}))
"""


# Memory after a run in a long-lived process (the app server): resident size once the run is done, with
# and without the queue's release (fusion.limits.release_memory) at the end of the slot.
_MEMORY_CHILD = r"""
import asyncio, gc, json, os, sys
sys.path.insert(0, sys.argv[1])
os.environ["LITELLM_OFFLINE_MODE"] = "true"
from fusion.fusors import ExtractiveFusor
from fusion.limits import WorkQueue
from fusion.pipeline import acomplete, supplied_candidates
from fusion.selectors import ConsensusSelector
from fusion.types import Prompt, Run

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024

obj = json.loads(open(sys.argv[2]).read())
start = rss()
run = Run(prompt=Prompt(obj["prompt"]), candidates=supplied_candidates(obj["candidates"]))
del obj
work = lambda: asyncio.run(acomplete(run, selector=ConsensusSelector(), fusor=ExtractiveFusor()))
if sys.argv[3] == "slot":
    with WorkQueue(1).slot():
        work()
else:
    work()
held = rss()
del run
gc.collect()
print(json.dumps({"start": start, "held": held, "freed": rss()}))
"""


def memory_after(infile: Path) -> dict[str, dict[str, float]]:
    out = {}
    for how in ("plain", "slot"):
        proc = subprocess.run(
            [sys.executable, "-c", _MEMORY_CHILD, str(ROOT), str(infile), how],
            capture_output=True, text=True, cwd=ROOT, check=True,
        )
        out[how] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def default_data() -> Path:
    for parent in ROOT.parents:
        if (parent / "shared" / "data").is_dir():
            return parent / "shared" / "data"
    return ROOT.parent / "shared" / "data"


def candidates(data: Path, size: int, n: int = N) -> list[str]:
    """n candidates of ``size`` characters made of real answers (see the module docstring)."""
    rows = [json.loads(line) for line in (data / "alpaca_eval_judged8.jsonl").open(encoding="utf-8") if line.strip()]
    models = list(rows[0]["outputs"])
    out = []
    for k in range(n):
        parts: list[str] = []
        total = j = 0
        while total < size:
            row = rows[j % len(rows)]
            shift = 3 * (j // len(rows))  # a second pass over the data takes other models' answers
            text = (row["outputs"].get(models[(k + j + shift) % len(models)]) or "").strip()
            j += 1
            if text:
                parts.append(text)
                total += len(text) + 2
        out.append("\n\n".join(parts)[:size])
    return out


def measure(tree: Path, infile: Path, outfile: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tree), str(infile), str(outfile)],
        capture_output=True, text=True, cwd=tree, check=False,
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        raise SystemExit(f"fuse failed in {tree}: {proc.stderr.strip()[-2000:]}")
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    record = json.loads(outfile.read_text(encoding="utf-8").splitlines()[0])
    got["fused"] = record["fused"]["text"]
    got["fused_chars"] = len(got["fused"])
    got["copied"] = (record.get("attribution") or {}).get("copied_fraction")
    return got


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    ap.add_argument("--before", default=DEFAULT_BEFORE, help="baseline commit (default: %(default)s)")
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument(
        "--memory-only", action="store_true",
        help="only the memory a long-lived process keeps after a run of the largest size, with and without "
        "the queue's release; written to bench/results/large_input_memory.md",
    )
    args = ap.parse_args()
    data = args.data or default_data()
    if not (data / "alpaca_eval_judged8.jsonl").exists():
        print(f"large_input: no {data / 'alpaca_eval_judged8.jsonl'}; nothing measured", file=sys.stderr)
        return 1
    if args.memory_only:
        return memory_report(data, max(args.sizes), write_file=not args.no_write)
    rows = []
    with tempfile.TemporaryDirectory(prefix="large_input_") as tmp:
        old = Path(tmp) / "before"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(old), args.before], check=True)
        try:
            for size in args.sizes:
                infile = Path(tmp) / f"in_{size}.jsonl"
                prompt = "Answer each of these questions in turn."
                infile.write_text(json.dumps({"id": f"large-{size}", "prompt": prompt, "candidates": candidates(data, size)}) + "\n")
                after = measure(ROOT, infile, Path(tmp) / "after.jsonl")
                before = measure(old, infile, Path(tmp) / "before.jsonl")
                # How alike the two fused texts are (chrF both ways, averaged): 1 = the same text.
                agree = (chrf(after["fused"], before["fused"]) + chrf(before["fused"], after["fused"])) / 2
                row = {"size": size, "before": before, "after": after, "load": os.getloadavg()[0], "agree": agree}
                rows.append(row)
                print(
                    f"{N} x {size:,}: before {before['wall']:.1f} s ({before['cpu']:.1f} s CPU) {before['rss_mb']:.0f} MB, "
                    f"after {after['wall']:.1f} s ({after['cpu']:.1f} s CPU) {after['rss_mb']:.0f} MB "
                    f"(x{before['wall'] / after['wall']:.1f} faster), same text: {before['fused'] == after['fused']}, "
                    f"chrF agreement {agree:.4f}, load {row['load']:.1f}",
                    flush=True,
                )
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], check=False)
    if not args.no_write:
        write(rows, args)
    return 0


def memory_report(data: Path, size: int, *, write_file: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="large_input_") as tmp:
        infile = Path(tmp) / "in.jsonl"
        prompt = "Answer each of these questions in turn."
        infile.write_text(json.dumps({"id": "large", "prompt": prompt, "candidates": candidates(data, size)}) + "\n")
        got = memory_after(infile)
    lines = [
        "# Large input: memory a long-lived process keeps after one run",
        "",
        "```",
        f".venv/bin/python bench/large_input.py --memory-only --sizes {size}",
        "```",
        "",
        f"8 candidates of {size:,} characters fused offline (pick, fusion, attribution) in a fresh process, "
        "as the app server does; resident size (VmRSS) before, once the run is done (the run still held, "
        "as the page holds it to show it) and after the run is dropped. *slot*: inside "
        "`fusion.limits.WorkQueue.slot`, whose end collects and returns free memory to the system "
        "(`malloc_trim`); *plain*: without.",
        "",
        "| | start (MB) | run done, still held (MB) | run dropped (MB) |",
        "|---|---|---|---|",
    ]
    for how, label in (("plain", "plain"), ("slot", "slot (the app's path for heavy input)")):
        g = got[how]
        lines.append(f"| {label} | {g['start']:.0f} | {g['held']:.0f} | {g['freed']:.0f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if write_file:
        (ROOT / "bench" / "results" / "large_input_memory.md").write_text(text, encoding="utf-8")
    return 0


def write(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    lines = [
        "# Large input: `fusion fuse` on 8 long candidates, before and after",
        "",
        "```",
        f".venv/bin/python bench/large_input.py --sizes {' '.join(map(str, args.sizes))} --before {args.before}",
        "```",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on revision {head} (after) against "
        f"{args.before} (before), each a fresh process (offline consensus, extractive fusion, attribution, "
        "kept/diff/warnings), peak memory = maximum resident set size including the interpreter and imports. "
        "2 shared cores; load is the 1-minute load average when the pair was measured (other engineers' "
        "tests, a local model server and browsers ran at the same time: CPU time, user + system of the "
        "process, is the steadier measure). *Same fused text*: "
        "whether the two fused answers are identical; *chrF agreement*: their mean chrF both ways (1 = same). "
        "Pools above 2,000 similarity texts (here from 40,000 characters per candidate) use blocking for "
        "their unit pairs (`fusion/fusors/extractive/support.py`, `LARGE_POOL`), so from there on the "
        "text may differ slightly.",
        "",
        "| characters per candidate | before (s) | after (s) | speed-up | CPU before / after (s) | before peak (MB) | after peak (MB) | memory ratio | fused chars before / after | same fused text | chrF agreement | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        b, a = r["before"], r["after"]
        lines.append(
            f"| {r['size']:,} | {b['wall']:.1f} | {a['wall']:.1f} | {b['wall'] / a['wall']:.1f}x | "
            f"{b['cpu']:.1f} / {a['cpu']:.1f} | {b['rss_mb']:.0f} | "
            f"{a['rss_mb']:.0f} | {a['rss_mb'] / b['rss_mb']:.2f} | {b['fused_chars']:,} / {a['fused_chars']:,} | "
            f"{'yes' if a['fused'] == b['fused'] else 'no'} | {r['agree']:.4f} | {r['load']:.1f} |"
        )
    RESULTS.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    raise SystemExit(main())
