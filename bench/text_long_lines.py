"""Sentence splitting on one long line against the same text split over many lines (the baseline).

Model answers sometimes come as one huge paragraph (no newlines). ``fusion.text.split_units`` is used by the
extractive fusor, the kept/dropped report and the sentence diff; it used to look for the word before every
period with a regular expression anchored at the end of the line so far, which rescans the line for each
period: quadratic in the line's length. This measures the ratio one-line / many-lines at growing sizes; a
linear splitter keeps it flat near 1.

    .venv/bin/python bench/text_long_lines.py [--out bench/results/text_long_lines.md]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fusion.text import split_units  # noqa: E402

SENTENCE = "Sentence number {i} is here. Dr. Who met J. R. R. Tolkien on 3. Oktober, e.g. at noon."


def best_of(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rows = []
    for n in (125, 250, 500, 1000, 2000):
        parts = [SENTENCE.format(i=i) for i in range(n)]
        one_line, many_lines = " ".join(parts), "\n".join(parts)
        a = best_of(lambda: split_units(one_line))
        b = best_of(lambda: split_units(many_lines))
        rows.append((len(one_line), a, b, a / b))
    lines = [
        "# Sentence splitting on one long line",
        "",
        "Command: `.venv/bin/python bench/text_long_lines.py --out bench/results/text_long_lines.md` "
        "(best of 5 per cell, same process).",
        "",
        "| characters | one line (ms) | same text, one sentence per line (ms) | ratio |",
        "|---:|---:|---:|---:|",
    ]
    lines += [f"| {c:,} | {a * 1000:.1f} | {b * 1000:.1f} | {r:.2f} |" for c, a, b, r in rows]
    growth = rows[-1][1] / rows[0][1]
    size = rows[-1][0] / rows[0][0]
    lines += ["", f"One line grows {growth:.1f}x for {size:.0f}x the characters "
              f"(median ratio to the baseline {statistics.median(r for *_, r in rows):.2f})."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
