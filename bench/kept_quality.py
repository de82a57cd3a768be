"""What the fusion kept and dropped (fusion.kept) and the pick-against-fusion diff (fusion.diff), on real
answers: are the statuses right, and is the diff fast enough for long answers?

(a) AlpacaEval (100 instructions; candidates = the first N models' answers, N = 4 and 8), fused offline
    with ``fusion.pipeline.run_supplied`` (consensus pick, extractive fusion): the distribution of unit
    statuses (kept / edited / dropped), for the pick and for the other candidates; the distribution of
    unit coverage (why the threshold sits where it does) and how the counts move with the threshold.
(b) Spot checks: 20 units per status drawn at random (seeded), each checked independently of the
    attribution: a kept unit's text must be in the fused text character for character (white space,
    list and heading markers aside); a dropped unit must share no run of 6 words with the fused text; an
    edited unit is shown beside the most similar stretch of the fused text (difflib ratio). The samples
    are printed so that a person can read them.
(c) The sentence diff of pick against fusion on the same runs: row counts, and how many runs begin with
    shared rows.
(d) Speed, as ratios to a baseline measured in the same run: the diff of two answers of 200 sentences
    (long answers that begin identically, with edits, drops and additions further down; and two unrelated
    answers, the worst case of the pairing step) against the span attribution of the same pair; and the
    kept reports of 8 candidates against their attribution.

Real outputs come from shared/data (looked for next to the project and above it); each part that needs
them is skipped with a message when the folder is absent.

    .venv/bin/python bench/kept_quality.py [--out bench/results/kept.md] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import statistics
import sys
import time
import unicodedata
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any, Callable, Sequence

os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fusion.attribution import attribute  # noqa: E402
from fusion.diff import diff_sentences, run_diff  # noqa: E402
from fusion.kept import STATUSES, kept_reports, measured_region, run_kept  # noqa: E402
from fusion.pipeline import run_supplied  # noqa: E402
from fusion.text import split_units  # noqa: E402


def find_data() -> Path | None:
    """shared/data next to the project or next to one of its parent folders (worktrees live deeper)."""
    for base in [ROOT, *ROOT.parents]:
        d = base / "shared" / "data"
        if (d / "alpaca_eval_judged8.jsonl").exists():
            return d
    return None


def load_alpaca(data: Path) -> list[dict[str, Any]]:
    with (data / "alpaca_eval_judged8.jsonl").open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def squash(text: str) -> str:
    """Text for character-level checks: NFKC, white space collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


def content_of(text: str, start: int, end: int) -> str:
    """A unit's text without its list or heading marker (and a code block without its fences)."""
    for u in split_units(text):
        if u.start == start and u.end == end:
            a, b = measured_region(u)
            return text[a:b]
    return text[start:end]


WORDS = re.compile(r"[^\W_]+", re.UNICODE)


def shared_run(unit: str, fused: str, k: int = 6) -> str | None:
    """A run of ``k`` words of ``unit`` that the fused text also has (case folded), or None."""
    u = [w.casefold() for w in WORDS.findall(unit)]
    f = " " + " ".join(w.casefold() for w in WORDS.findall(fused)) + " "
    for i in range(len(u) - k + 1):
        if " " + " ".join(u[i : i + k]) + " " in f:
            return " ".join(u[i : i + k])
    return None


def longest_shared(unit: str, fused: str) -> str:
    """The longest run of words of ``unit`` that the fused text also has, as "k of n words"."""
    n = len(WORDS.findall(unit))
    for k in range(n, 0, -1):
        if shared_run(unit, fused, k):
            return f"{k} of {n} words"
    return f"0 of {n} words"


def best_match(unit: str, fused: str) -> tuple[float, str]:
    """The fused unit most similar to ``unit`` (difflib ratio, characters)."""
    best = (0.0, "")
    for fu in split_units(fused):
        r = SequenceMatcher(None, squash(unit), squash(fu.content), autojunk=False).ratio()
        if r > best[0]:
            best = (r, fu.text)
    return best


def short(text: str, n: int = 150) -> str:
    t = squash(text).replace("|", "\\|")
    return t if len(t) <= n else t[: n - 1] + "…"


# --------------------------------------------------------------------------------------------- (a) (b) (c)


def quality(rows: list[dict[str, Any]], seed: int) -> tuple[list[str], dict[str, Any]]:
    out: list[str] = ["## (a) Unit statuses on AlpacaEval, offline pipeline (consensus + extractive)", ""]
    summary: dict[str, Any] = {}
    samples: dict[str, list[tuple[str, str, str, float]]] = {s: [] for s in STATUSES}  # (run id, unit, fused, cov)
    pool: dict[str, list[tuple[str, str, str, float]]] = {s: [] for s in STATUSES}
    coverage_bins = [0] * 12  # 0, (0,.1], ..., (.9,1), 1
    thresholds = (0.3, 0.5, 0.7, 0.9)
    reused_at = {t: 0 for t in thresholds}
    verbatim_below_09 = 0
    all_units = 0
    diff_rows: dict[int, dict[str, int]] = {}
    leading: dict[int, list[int]] = {}
    identical: dict[int, int] = {}
    out.append("| N | runs | units | kept | edited | dropped | pick: kept / edited / dropped | others: kept / edited / dropped | candidates with >= 1 unit kept or edited (mean) |")
    out.append("|---|---|---|---|---|---|---|---|---|")
    for n in (4, 8):
        tot = {s: 0 for s in STATUSES}
        pick = {s: 0 for s in STATUSES}
        others = {s: 0 for s in STATUSES}
        contributing: list[int] = []
        dcounts = {"shared": 0, "edited": 0, "dropped": 0, "added": 0}
        lead: list[int] = []
        same = 0
        for row in rows:
            texts = list(row["outputs"].values())[:n]
            run = run_supplied(row["instruction"], texts)
            reports = run_kept(run)
            assert reports is not None
            fused = run.fused.text if run.fused else ""
            contributing.append(sum(1 for r in reports if r and (r.counts["kept"] + r.counts["edited"])))
            for rep in reports:
                if rep is None:
                    continue
                text = texts[rep.index]
                for u in rep.units:
                    tot[u.status] += 1
                    (pick if rep.index == run.bon.index else others)[u.status] += 1
                    if n == 8:
                        all_units += 1
                        c = u.coverage
                        coverage_bins[0 if c == 0 else 11 if c == 1 else 1 + min(9, int(c * 10))] += 1
                        for t in thresholds:
                            reused_at[t] += c >= t
                        if u.status == "kept" and c < 0.9:
                            verbatim_below_09 += 1
                        pool[u.status].append((row["id"], content_of(text, u.start, u.end), fused, c))
            d = run_diff(run)
            if d is not None:
                for k, v in d.counts.items():
                    dcounts[k] += v
                lead.append(d.leading_shared)
                same += d.identical
        units = sum(tot.values())
        frac = {s: tot[s] / units for s in STATUSES}
        ptot, otot = sum(pick.values()), sum(others.values())
        out.append(
            f"| {n} | {len(rows)} | {units} | {frac['kept']:.1%} | {frac['edited']:.1%} | {frac['dropped']:.1%} | "
            + " / ".join(f"{pick[s] / ptot:.0%}" for s in STATUSES) + " | "
            + " / ".join(f"{others[s] / otot:.0%}" for s in STATUSES)
            + f" | {statistics.mean(contributing):.2f} of {n} |"
        )
        summary[f"n{n}"] = {"units": units, **tot, "pick": pick, "others": others}
        diff_rows[n] = dcounts
        leading[n] = lead
        identical[n] = same
    out.append("")
    # Bin k (1..10) holds coverage in [(k-1)/10, k/10), bin 10 stops short of 1; 0 and 1 have their own.
    labels = ["0"] + [f"[{(i - 1) / 10:.1f}, {i / 10:.1f})" for i in range(1, 11)] + ["1"]
    labels[1] = "(0, 0.1)"
    out.append(f"Unit coverage (N = 8, {all_units} units; fraction of a unit's word characters the fused text reuses):")
    out.append("")
    out.append("| coverage | " + " | ".join(labels) + " |")
    out.append("|---|" + "---|" * len(labels))
    out.append("| units | " + " | ".join(str(x) for x in coverage_bins) + " |")
    out.append("")
    out.append(
        "Units counted as reused (kept or edited) if the threshold were: "
        + ", ".join(f"{t}: {reused_at[t]} ({reused_at[t] / all_units:.1%})" for t in thresholds)
        + f". Kept units (copied as is) whose coverage is below 0.9: {verbatim_below_09}."
    )
    out.append("")
    summary["coverage_bins"] = coverage_bins
    summary["reused_at"] = {str(t): v for t, v in reused_at.items()}

    # (b) spot checks
    rng = random.Random(seed)
    out += ["## (b) Spot checks: 20 units per status (N = 8), checked without the attribution", ""]
    checks: dict[str, Any] = {}
    for status in STATUSES:
        chosen = rng.sample(pool[status], min(20, len(pool[status])))
        samples[status] = chosen
        out.append(f"### {status} ({len(pool[status])} in all; {len(chosen)} sampled)")
        out.append("")
        if status == "kept":
            out.append("| run | coverage | found in the fused text character for character | unit |")
            out.append("|---|---|---|---|")
            ok = 0
            for rid, unit, fused, cov in chosen:
                found = squash(unit) in squash(fused)
                ok += found
                out.append(f"| {rid} | {cov:.2f} | {'yes' if found else 'NO'} | {short(unit)} |")
            checks[status] = f"{ok} of {len(chosen)} found verbatim"
        elif status == "dropped":
            out.append("| run | coverage | a run of 6 words shared with the fused text | unit |")
            out.append("|---|---|---|---|")
            clean = 0
            for rid, unit, fused, cov in chosen:
                hit = shared_run(unit, fused)
                clean += hit is None
                out.append(f"| {rid} | {cov:.2f} | {hit or 'none'} | {short(unit)} |")
            checks[status] = f"{clean} of {len(chosen)} share no 6-word run with the fused text"
        else:
            out.append("| run | coverage | ratio to the closest fused unit | unit | closest fused unit |")
            out.append("|---|---|---|---|---|")
            ratios = []
            for rid, unit, fused, cov in chosen:
                r, text = best_match(unit, fused)
                ratios.append(r)
                out.append(f"| {rid} | {cov:.2f} | {r:.2f} | {short(unit, 110)} | {short(text, 110)} |")
            checks[status] = (
                f"closest fused unit's ratio: median {statistics.median(ratios):.2f}, min {min(ratios):.2f}"
                if ratios else "none sampled"
            )
        out.append("")
        out.append(f"Check: {checks[status]}.")
        out.append("")
    summary["checks"] = checks

    # Units near the threshold, to judge by eye where "reused" should begin.
    out += ["### Near the threshold (REUSED_MIN_COVERAGE = 0.5): 10 units each side", ""]
    out.append("| run | coverage | status | longest run of words shared with the fused text | unit |")
    out.append("|---|---|---|---|---|")
    everything = [x for status in STATUSES for x in pool[status]]
    below = [x for x in everything if 0.3 <= x[3] < 0.5]
    above = [x for x in everything if 0.5 <= x[3] < 0.7]
    for group in (rng.sample(below, min(10, len(below))), rng.sample(above, min(10, len(above)))):
        for rid, unit, fused, cov in sorted(group, key=lambda x: x[3]):
            status = "reused" if cov >= 0.5 else "dropped"
            out.append(f"| {rid} | {cov:.2f} | {status} | {longest_shared(unit, fused)} | {short(unit, 120)} |")
    out.append("")

    # (c) diff
    out += ["## (c) Pick against fusion, sentence diff (same runs)", ""]
    out.append("| N | shared | edited | dropped | added | runs identical | runs beginning with >= 1 shared row | median leading shared rows |")
    out.append("|---|---|---|---|---|---|---|---|")
    for n in (4, 8):
        c = diff_rows[n]
        lead = leading[n]
        out.append(
            f"| {n} | {c['shared']} | {c['edited']} | {c['dropped']} | {c['added']} | "
            f"{identical[n]} of {len(lead)} | {sum(1 for x in lead if x)} of {len(lead)} | {statistics.median(lead):.0f} |"
        )
    out.append("")
    summary["diff"] = diff_rows
    return out, summary


# --------------------------------------------------------------------------------------------- (d) speed


def interleaved(fns: Sequence[Callable[[], Any]], repeats: int) -> list[list[float]]:
    """Times of each function, run in turn within every repeat (order rotated), so that load from other
    work on the machine falls on all of them alike; a ratio of two is then taken per repeat."""
    times: list[list[float]] = [[] for _ in fns]
    for r in range(repeats):
        order = list(range(len(fns)))
        order = order[r % len(order) :] + order[: r % len(order)]
        for k in order:
            t = time.perf_counter()
            fns[k]()
            times[k].append(time.perf_counter() - t)
    return times


def median_ratio(a: Sequence[float], b: Sequence[float]) -> float:
    return statistics.median(x / y for x, y in zip(a, b))


def sentences_of(rows: Sequence[dict[str, Any]], model: str) -> list[str]:
    """Plain sentences of one model's answers, of at least 5 words, that split back into the same
    sentences when joined into paragraphs."""
    out = []
    seen = set()
    for row in rows:
        for u in split_units(row["outputs"][model]):
            t = u.text
            if u.kind != "sentence" or len(t.split()) < 5 or t in seen:
                continue
            # Between two other sentences it must still be one sentence (no abbreviation at its end).
            if len(split_units(f"Alpha beta gamma. {t} Delta epsilon zeta.")) == 3:
                seen.add(t)
                out.append(t)
    return out


def speed(rows: list[dict[str, Any]], repeats: int, seed: int) -> tuple[list[str], dict[str, Any]]:
    rng = random.Random(seed)
    a_pool = sentences_of(rows, "gpt4_1106_preview")
    b_pool = sentences_of(rows, "claude-2.1")
    bon = a_pool[:200]
    # Long answers that begin identically: the first 100 sentences shared, then every 5th edited (one word
    # replaced), every 7th dropped, and every 9th followed by a sentence of another model.
    fused_units: list[str] = bon[:100]
    extra = iter(b_pool)
    expected = {"shared": 100, "edited": 0, "dropped": 0, "added": 0}
    for k, s in enumerate(bon[100:], start=100):
        if k % 7 == 0:
            expected["dropped"] += 1
            continue
        if k % 5 == 0:
            words = s.split()
            words[len(words) // 2] = "notably"
            s = " ".join(words)
            expected["edited"] += 1
        else:
            expected["shared"] += 1
        fused_units.append(s)
        if k % 9 == 0:
            fused_units.append(next(extra))
            expected["added"] += 1
    def paragraphs(sentences: Sequence[str]) -> str:
        # Answers come in paragraphs: four sentences each, a blank line between.
        return "\n\n".join(" ".join(sentences[i : i + 4]) for i in range(0, len(sentences), 4))

    bon_text, fused_text = paragraphs(bon), paragraphs(fused_units)
    other_text = paragraphs(b_pool[-200:])  # an unrelated answer of 200 sentences
    # A list of look-alike items, each lightly edited: every pair passes the cheap similarity bound.
    look_alike = [f"- Step {k}: check the valve on line {k % 13} and write the pressure down." for k in range(200)]
    look_alike_edited = [x.replace("write the pressure down", "note the pressure") for x in look_alike]
    cases = [
        ("200 sentences in paragraphs, first 100 identical, edits/drops/additions after", bon_text, fused_text),
        ("200 sentences vs 200 unrelated sentences", bon_text, other_text),
        ("200 look-alike list items, every one lightly edited", "\n".join(look_alike), "\n".join(look_alike_edited)),
        ("the first case written as one line each (no paragraph breaks)", " ".join(bon), " ".join(fused_units)),
    ]
    out = [
        f"## (d) Speed (median of {repeats} runs; the baseline is timed in turn with each run, and the ratio "
        "is the median of the per-run ratios)",
        "",
    ]
    out.append(
        "| case | chars (pick / fused) | rows: shared / edited / dropped / added | diff | of which split_units "
        "of both texts | attribution of the same pair (baseline) | diff / attribution |"
    )
    out.append("|---|---|---|---|---|---|---|")
    summary: dict[str, Any] = {}
    for name, a, b in cases:
        d = diff_sentences(a, b)
        c = d.counts
        times = interleaved(
            [lambda: diff_sentences(a, b), lambda: (split_units(a), split_units(b)), lambda: attribute(b, [a])],
            repeats,
        )
        t_diff, t_split, t_att = (statistics.median(t) for t in times)
        ratio = median_ratio(times[0], times[2])
        out.append(
            f"| {name} | {len(a)} / {len(b)} | {c['shared']} / {c['edited']} / {c['dropped']} / {c['added']} | "
            f"{t_diff * 1000:.1f} ms | {t_split * 1000:.1f} ms | {t_att * 1000:.1f} ms | {ratio:.2f}x |"
        )
        summary[name] = {"diff_s": t_diff, "split_s": t_split, "attribution_s": t_att, "ratio": ratio}
    # Kept reports of 8 candidates against their attribution.
    picks = rng.sample(rows, 10)
    t_kept, t_att, ratios = [], [], []
    for row in picks:
        texts = list(row["outputs"].values())
        run = run_supplied(row["instruction"], texts)
        fused = run.fused.text
        att = run.attribution
        tk, ta = interleaved([lambda: kept_reports(fused, texts, att), lambda: attribute(fused, texts)], repeats)
        t_kept.append(statistics.median(tk))
        t_att.append(statistics.median(ta))
        ratios.append(median_ratio(tk, ta))
    ratio = statistics.median(ratios)
    out.append("")
    out.append(
        "Rows expected in the first case by construction: "
        + " / ".join(str(expected[k]) for k in ("shared", "edited", "dropped", "added"))
        + " (shared / edited / dropped / added)."
    )
    out.append("")
    out.append(
        f"Kept reports of 8 candidates (10 AlpacaEval prompts): median {statistics.median(t_kept) * 1000:.1f} ms "
        f"against {statistics.median(t_att) * 1000:.1f} ms for the attribution they read (baseline): "
        f"**{ratio:.2f}x** the attribution's time."
    )
    out.append("")
    summary["kept_over_attribution"] = ratio
    return out, summary


# What I saw reading the samples of seed 7 (the default) by eye; the samples are drawn with a fixed seed
# from deterministic runs, so they are the same on every rerun with the same data and code.
BY_EYE = """\
## Read by eye (the samples above, seed 7)

- **kept** (20): every unit is in the fused text. 19 are there character for character; the 20th
  (alpaca_eval_272, "/ (n-r)!", the tail of a formula the sentence splitter cut at "n! ") is in the fused
  text as "n! / [(n-r)!": the same words, a bracket apart; "as is" ignores punctuation by design, as the
  attribution does. The kept units include list items of a recipe, a placeholder line ("Phone: [Your
  Phone Number]"), one-word items ("Bold"), a line of arithmetic and dialogue: Markdown, code and short
  items are matched like prose. A short unit (2 or 3 words, under the attribution's four) counts as kept
  only when a unit of the fused text reads the same, symbols included: an earlier rule that looked for
  its words anywhere kept "Savings: $1000" for the code line "savings += 1000" and "Add the vanilla."
  for "... add the vanilla extract ...".
- **edited** (20): 12 are light edits of the unit: a word or clause changed ("several potential USPs" ->
  "a few potential USPs", "Sure, here's a recipe for making frosting with Crisco" -> "Here is a simple
  recipe for making frosting with Crisco shortening"), a number changed ("1/2 cup grated Parmesan" ->
  "1/4 cup of grated Parmesan"), a parenthesis cut ("4 cups powdered sugar (confectioners' sugar),
  sifted"). 8 are units whose longest phrase the fused text reuses inside a sentence of its own ("...
  as soon as possible ..."; "the rational root theorem"; "scene IV: Store the second number"; a
  template question "How do you ... in R?"): partly reused rather than edited. The extractive fusor
  copies whole units, so most edited units come from other candidates sharing a phrase with a copied
  unit (an LLM fusor's light rewrites are exercised in tests/test_cli_kept.py).
- **dropped** (20): 17 share no run of 6 words with the fused text; the other 3 share a phrase but not
  the point: "the Gulf of Mannar" in a different list of seas (alpaca_eval_98, coverage 0.25), "allows
  quantum computers to perform certain" in another explanation (alpaca_eval_729, 0.20), "getting a job in
  the government" (alpaca_eval_456, 0.48). Dropped is right for all 20.
- **near 0.5**: on both sides the fused text shares a clause or a phrase with the unit. Below it the
  longest shared run is 4 to 16 words of 9 to 37 and the unit's point is mostly gone; above it 4 to 20
  words of 7 to 32, some in scattered pieces (alpaca_eval_410, 0.63, longest run 5 of 21 words). There is
  no gap in the data at 0.5: it is where "at least half reused" puts the line.
- **diff**: the extractive fusion copies whole units, so pick-against-fusion rows are shared, added or
  dropped, hardly ever edited; 90 of 100 runs begin with shared rows at N = 4 (a median of 6 sentences),
  which is what the diff view folds away.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="write the report (markdown) here")
    parser.add_argument("--seed", type=int, default=7, help="seed of the spot-check samples")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per speed case")
    args = parser.parse_args()
    data = find_data()
    cmd = " ".join([".venv/bin/python", "bench/kept_quality.py", *sys.argv[1:]])
    lines = [
        "# What the fusion kept and dropped; pick against fusion",
        "",
        f"Command: `{cmd}`. Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}. "
        f"Spot-check seed {args.seed}.",
        "",
    ]
    if data is None:
        lines.append("shared/data/alpaca_eval_judged8.jsonl not found: nothing measured.")
        print("\n".join(lines))
        return
    rows = load_alpaca(data)
    load_before = os.getloadavg()[0]
    q_lines, _ = quality(rows, args.seed)
    s_lines, _ = speed(rows, args.repeats, args.seed)
    s_lines.append(
        f"Load average (1 min) at the start and the end: {load_before:.1f}, {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} cores: times are inflated by other work, ratios less so."
    )
    s_lines.append("")
    notes = [BY_EYE] if args.seed == 7 else ["(The notes read by eye refer to seed 7.)"]
    report = "\n".join(lines + q_lines + s_lines + notes) + "\n"
    if args.out:
        args.out.write_text(report, encoding="utf-8")
    print(report)


if __name__ == "__main__":
    main()
