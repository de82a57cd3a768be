"""``fusion scale``: the N-scaling experiment (see :mod:`fusion.scaling`).

For each prompt the largest N is sampled once (or taken from the line's own candidates), and every N asked
for is picked and fused from the first N of those samples. Every run is saved, tagged ``scale:<experiment>``
and ``scale-k:<N>``, so the Results page can plot win rate against N from the votes on them: people's, from
Annotate, and the pairwise judge's (``--pairwise-judge``, here or later with ``fusion judge --tag``).

A re-run resumes: prompts whose runs are all saved are skipped, and the judge only judges runs it has not.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import sys
from pathlib import Path
from typing import Any

from fusion.cli.batch import batch_settings, live_methods, offline_methods
from fusion.cli.judge import judge_runs, pairwise_judge
from fusion.cli.options import (
    EXIT_FAILED,
    EXIT_OK,
    add_fusor_opts,
    add_sampling,
    api_base_arg,
    eprint,
    make_cache,
    open_in,
)
from fusion.errors import FusionError, InputError
from fusion.text import plural

SCALE_SOURCE = "scale"


async def _base_run(item: Any, settings: Any, methods: Any, cache: Any, nmax: int) -> Any:
    """The prompt's nmax samples, in a run not yet picked or fused."""
    from fusion.generate import generate_candidates
    from fusion.types import Candidate, Run

    if item.candidates is not None:
        if len(item.candidates) < nmax:
            raise InputError(
                f"N = {nmax} needs {nmax} candidates; this line has {len(item.candidates)}. Every prompt of an "
                "experiment is compared at every N, so lower the largest --n or leave the line out"
            )
        candidates = [Candidate(index=i, text=t, sample_index=i) for i, t in enumerate(item.candidates)]
        return Run(prompt=item.prompt, candidates=candidates, source=SCALE_SOURCE, tags=list(item.tags))
    if settings.offline:
        raise InputError("this line has no candidates, and an offline experiment cannot sample them")
    candidates = await generate_candidates(
        item.prompt, list(settings.pool), settings.sampling, client=methods.get_client(), cache=cache,
        concurrency=nmax, stream=False,
    )
    return Run(prompt=item.prompt, candidates=candidates, pool=list(settings.pool), settings=settings.sampling,
               source=SCALE_SOURCE, tags=list(item.tags))


async def _scale_all(items: list[Any], *, ks: list[int], experiment: str, settings: Any, methods: Any,
                     engine: Any, cache: Any, concurrency: int, bar: Any) -> int:
    from fusion.batch import batch_run_id
    from fusion.scaling import ascale
    from storage.runs import existing_run_ids, save_run

    sem = asyncio.Semaphore(max(1, concurrency))
    failed = unusable = 0

    async def one(item: Any) -> None:
        nonlocal failed, unusable
        async with sem:
            base_id = batch_run_id(item, settings)
            have = await asyncio.to_thread(existing_run_ids, engine, [f"{base_id}-k{k}" for k in ks])
            missing = [k for k in ks if f"{base_id}-k{k}" not in have]
            if not missing:
                bar.advance(skipped=True)
                return
            try:
                base = (await _base_run(item, settings, methods, cache, ks[-1])).with_id(base_id)
                base.tags = list(dict.fromkeys([*base.tags, *settings.tags]))
                runs = await ascale(base, missing, experiment, selector=methods.selector, fusor=methods.fusor)
                for run in runs:
                    await asyncio.to_thread(save_run, engine, run)
            except InputError as exc:  # the line itself: a retry gives the same answer
                unusable += 1
                eprint(f"{item.label}: {exc}")
                bar.advance(ok=False)
                return
            except FusionError as exc:
                failed += 1
                eprint(f"{item.label}: {exc}")
                bar.advance(ok=False)
                return
            bar.advance(ok=True)

    await asyncio.gather(*(one(item) for item in items))
    return failed, unusable


def cmd_scale(args: argparse.Namespace) -> int:
    from fusion.batch import read_items
    from fusion.progress import CountBar
    from fusion.scaling import (  # the pipeline and its fusors: not on every command's start
        SCALE_TAG,
        parse_ks,
    )
    from storage.migrations import open_database

    ks = parse_ks(args.n)
    experiment = (args.experiment or Path(args.input).stem or "experiment").strip()
    models: list[str] = args.model or []
    shaped = copy.copy(args)
    shaped.n, shaped.offline, shaped.rate_limit = ks[-1], not models, args.rate_limit
    methods = offline_methods(shaped, models) if shaped.offline else live_methods(shaped, models)
    tags = [t.strip() for t in (args.tag or []) if t.strip()]
    settings = batch_settings(shaped, methods, tags)
    judge = None
    if args.pairwise_judge:
        judge = pairwise_judge(args.pairwise_judge, api_base=args.judge_api_base or args.api_base,
                               timeout=args.timeout, retries=args.retries, rate_limit=args.rate_limit)

    stream = open_in(args.input)
    try:
        items, failures = read_items(stream)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    for failure in failures:
        eprint(str(failure))
    if not items:
        raise InputError("No usable line in the input.")
    engine = open_database()
    cache = make_cache(not args.no_cache) if methods.pool else None
    bar = CountBar(len(items), f"scale N={','.join(map(str, ks))}", quiet=args.quiet)
    if cache is not None:
        cache.on_wait = bar.lock_wait
    try:
        failed, unusable = asyncio.run(_scale_all(items, ks=ks, experiment=experiment, settings=settings, methods=methods,
                                        engine=engine, cache=cache, concurrency=args.concurrency, bar=bar))
    finally:
        bar.close()
        if cache is not None and hasattr(cache, "close"):
            cache.close()
    unusable += len(failures)
    tag = f"{SCALE_TAG}{experiment}"
    said = [f"{failed} failed (run the same command again to retry them)"] if failed else []
    if unusable:
        said.append(f"{plural(unusable, 'line')} could not be used (see above; a rerun gives the same)")
    eprint(f"scale: {plural(len(items), 'prompt')} x N = {', '.join(map(str, ks))}; runs tagged {tag}"
           + ("; " + "; ".join(said) + "." if said else "."))
    failed += unusable
    if judge is not None:
        from fusion.pairwise import judge_annotator
        from storage.votes import annotation_queue

        todo = annotation_queue(engine, judge_annotator(judge.model), tag=tag, limit=None)
        jbar = CountBar(len(todo), "judge", quiet=args.quiet)
        stored, jfailed = asyncio.run(judge_runs(engine, judge, todo, concurrency=args.concurrency, bar=jbar))
        jbar.close()
        eprint(f"judge: {plural(stored, 'verdict')} stored" + (f", {jfailed} without a verdict." if jfailed else "."))
        failed += jfailed
    return EXIT_FAILED if failed else EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser(
        "scale",
        help="the N-scaling experiment: fuse and pick nested subsets of one draw, for each N asked",
        description="Sample the largest N once per prompt (or use the lines' candidates), then pick Best-of-N "
        "and fuse the first N samples for each N. Every run is saved and tagged scale:<experiment> and "
        "scale-k:<N>; vote on them in Annotate or judge them with --pairwise-judge, and see win rate against "
        "N on the Results page. Without --model it is offline (consensus and extractive).",
    )
    p.add_argument("input", help="input .jsonl file of {id?, prompt, system?, tags?, candidates?} ('-' for stdin)")
    p.add_argument("--n", required=True, help="the N to compare, e.g. 1,2,3,5,8")
    p.add_argument("--experiment", help="name of the experiment (default: the input file's name)")
    p.add_argument("--model", action="append", help="candidate model (repeat for a pool); none: offline")
    p.add_argument("--api-base", type=api_base_arg, help="base URL of an OpenAI-compatible server (use model openai/<name>)")
    p.add_argument("--selector", choices=["consensus", "judge"], default=None, help="Best-of-N selector")
    p.add_argument("--judge-model", help="model of the judge selector")
    p.add_argument("--judge-api-base", type=api_base_arg)
    p.add_argument("--fusor", choices=["llm", "extractive"], default=None, help="default: llm with --model")
    p.add_argument("--fusor-model", help="model of the LLM fusor (default: the first --model)")
    p.add_argument("--fusor-api-base", type=api_base_arg)
    p.add_argument("--pairwise-judge", metavar="MODEL", help="judge fused against Best-of-N for every run")
    p.add_argument("--rate-limit", type=float, default=None, help="at most this many model calls per second")
    p.add_argument("--tag", action="append", help="tag every run (repeatable)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    add_sampling(p)
    add_fusor_opts(p)
    for action in p._actions:
        if action.dest == "concurrency":
            action.default = 2
            action.help = "prompts in flight at once (default 2)"
    p.set_defaults(func=cmd_scale)
