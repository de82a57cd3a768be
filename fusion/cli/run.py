"""``python -m fusion run``: one live run against a model (needs a key or a local server)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from fusion.cli.options import (
    EXIT_FAILED,
    EXIT_OK,
    CliError,
    add_fusor_opts,
    add_sampling,
    api_base_arg,
    build_fusor,
    build_selector,
    check_keys,
    client_factory,
    dump,
    eprint,
    make_cache,
    sampling_settings,
)
from fusion.types import MAX_N, Prompt


def cmd_run(args: argparse.Namespace) -> int:
    from fusion.pipeline import arun_live
    from fusion.progress import CandidateProgress
    from fusion.validate import check_n, check_prompt

    args.prompt = read_prompt(args)
    check_prompt(args.prompt)
    check_n(args.n)
    models = args.model or []
    from fusion.pipeline import split_pool  # the pipeline loads the fusors: only when used

    pool = split_pool(models, args.n, api_base=args.api_base)
    check_keys(pool)
    get_client = client_factory()
    fusor_model = args.fusor_model or (models[0] if args.fusor == "llm" else None)
    judge_model = args.judge_model or args.fusor_model or models[0]
    selector = build_selector(
        args.selector, judge_model=judge_model, api_base=args.judge_api_base or args.api_base,
        client_factory=get_client, args=args,
    )
    fusor = build_fusor(
        args.fusor, fusor_model=fusor_model, api_base=args.fusor_api_base or args.api_base,
        client_factory=get_client, args=args,
    )
    progress = CandidateProgress(args.n, quiet=args.quiet)
    prompt = Prompt(args.prompt, system=args.system)
    run = asyncio.run(
        arun_live(
            prompt,
            pool,
            sampling_settings(args),
            client=get_client(),
            selector=selector,
            fusor=fusor,
            cache=_cache_reporting_to(progress, make_cache(not args.no_cache)),
            regenerate=args.regenerate,
            concurrency=args.concurrency,
            tags=args.tag or [],
            on_candidate_event=progress,
            on_stage=progress.stage,
        )
    )
    from fusion.degenerate import run_warnings

    # One rule with batch: a run without a pick or without a fusion failed (and has nothing to vote on).
    problems = []
    if run.bon is None or run.bon.index is None:
        problems.append(f"no Best-of-N pick: {run.bon.error if run.bon else 'the selector gave none'}")
    if run.fused is None or run.fused.error:
        problems.append(f"fusion failed: {run.fused.error if run.fused else 'the fusor gave no answer'}")
    if args.save and not problems:
        from storage.migrations import open_database
        from storage.runs import save_run

        save_run(open_database(), run)
        eprint(f"Saved run {run.id}.")
    warnings = run_warnings(run)
    if args.json:
        print(dump(run.to_dict() | {"warnings": [w.to_dict() for w in warnings]}))
    else:
        print(format_run(run))
    for w in warnings:
        eprint(f"warning: {w.message}")
    for problem in problems:
        eprint(f"error: {problem}")
    if problems and args.save:
        eprint("The run was not saved: it has nothing to vote on.")
    return EXIT_FAILED if problems else EXIT_OK


def format_run(run: Any) -> str:
    """The human-readable report of one run printed by ``run``."""
    lines = [f"Prompt: {run.prompt.text}", ""]
    scores = run.bon.scores if run.bon else []
    for c in run.candidates:
        mark = "  <- Best-of-N" if run.bon and run.bon.index == c.index else ""
        score = scores[c.index] if c.index < len(scores) and scores[c.index] is not None else None
        score_txt = f" score {score:.3g}" if score is not None else ""
        status = f"FAILED: {c.error}" if c.error else f"{len(c.text.split())} words"
        lines.append(f"[{c.index + 1}] {c.model} sample {c.sample_index + 1}: {status}{score_txt}{mark}")
    if run.bon:
        lines += ["", f"Best-of-N ({run.bon.method}):"]
        lines.append(run.bon_text if run.bon_text is not None else f"(no pick: {run.bon.error})")
    if run.fused:
        lines += ["", f"Fused ({run.fused.method}):"]
        lines.append(run.fused.text if not run.fused.error else f"(failed: {run.fused.error})")
    if run.attribution:
        shares = ", ".join(
            f"{i + 1}: {s:.0%}" for i, s in enumerate(run.attribution.shares) if s > 0
        )
        lines += ["", f"Attribution: {run.attribution.copied_fraction:.0%} copied from candidates"
                  + (f" ({shares})" if shares else "")]
    return "\n".join(lines)


def _cache_reporting_to(progress: Any, cache: Any) -> Any:
    """The cache, its waits on other processes' calls reported on the candidates' progress lines."""
    if cache is not None:
        cache.on_wait = progress.lock_wait
    return cache


def read_prompt(args: argparse.Namespace) -> str:
    """The prompt from the argument, ``-`` (standard input) or ``--prompt-file``: a command line holds at
    most about 128 KiB, far less than the longest prompt allowed."""
    if args.prompt_file is not None:
        if args.prompt not in (None, ""):
            raise CliError("Give the prompt as an argument or with --prompt-file, not both.")
        if args.prompt_file == "-":
            return sys.stdin.read()
        try:
            return Path(args.prompt_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise CliError(f"Cannot read the prompt file {args.prompt_file}: {exc.strerror or exc}") from exc
        except UnicodeDecodeError:
            raise CliError(f"The prompt file {args.prompt_file} is not UTF-8 text.") from None
    if args.prompt == "-":
        return sys.stdin.read()
    if args.prompt is None:
        raise CliError("Give a prompt: as an argument, '-' to read it from standard input, or --prompt-file.")
    return args.prompt


def register(sub: Any) -> None:
    p = sub.add_parser("run", help="one live run against a model (needs a key or a local server)")
    p.add_argument("prompt", nargs="?", help="the prompt; '-' reads it from standard input")
    p.add_argument("--prompt-file", metavar="PATH", help="read the prompt from a UTF-8 file ('-': standard input)")
    p.add_argument("-n", type=int, default=5, help=f"number of candidates, 1 to {MAX_N} (default 5)")
    p.add_argument("--model", action="append", required=True,
                   help="litellm model string; repeat for a pool of models (N is spread over them)")
    p.add_argument("--system", help="a system message sent before the prompt")
    p.add_argument("--api-base", type=api_base_arg, help="base URL of an OpenAI-compatible server (use model openai/<name>)")
    p.add_argument("--selector", choices=["consensus", "judge"], default="consensus")
    p.add_argument("--judge-model", help="model of the judge selector (default: the fusor model)")
    p.add_argument("--judge-api-base", type=api_base_arg)
    p.add_argument("--fusor", choices=["llm", "extractive"], default="llm")
    p.add_argument("--fusor-model", help="model of the LLM fusor (default: the first --model)")
    p.add_argument("--fusor-api-base", type=api_base_arg)
    p.add_argument("--tag", action="append", help="tag the run (repeatable)")
    p.add_argument("--save", action="store_true", help="save the run to the database")
    p.add_argument("--json", action="store_true", help="print the whole run as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    add_sampling(p)
    add_fusor_opts(p)
    p.set_defaults(func=cmd_run)
