"""Run every benchmark and rewrite its recorded results in bench/results/.

    .venv/bin/python bench/run_all.py            (or: make bench)

Each benchmark measures ratios against a baseline within the same run (these machines are noisy), and
writes a markdown file that starts with the exact command that produced it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHES = [
    ("attribution.py", ["--out", "bench/results/attribution.md"]),
    ("concurrency.py", ["--out", "bench/results/concurrency.md"]),
    ("extractive_quality.py", ["--out", "bench/results/extractive.md"]),
    ("kept_quality.py", ["--out", "bench/results/kept.md"]),
    ("text_long_lines.py", ["--out", "bench/results/text_long_lines.md"]),
    ("markdown_render.py", ["--out", "bench/results/markdown_render.md"]),
    ("storage_queries.py", ["--pg", "--out", "bench/results/storage_queries.md"]),
    ("stats_speed.py", ["--out", "bench/results/stats_speed.md"]),
    ("results_page.py", ["--out", "bench/results/results_page.md"]),
    ("results_page.py", ["--population", "--out", "bench/results/results_page_small.md"]),
    # Last: it takes 20-30 minutes (two app servers, Chromium, the Results page computed afresh 10 times).
    ("browser_speed.py", ["--out", "bench/results/browser_speed.md"]),
]


def main() -> int:
    failed = []
    for script, args in BENCHES:
        print(f"== {script}", flush=True)
        code = subprocess.call([sys.executable, str(ROOT / "bench" / script), *args], cwd=ROOT)
        if code:
            failed.append(script)
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
