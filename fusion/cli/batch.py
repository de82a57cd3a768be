"""``python -m fusion batch``: many prompts through the method, every run saved to the database and
appended to ``--output``; a re-run resumes (see :mod:`fusion.batch`).

``batch --offline`` never imports litellm; live batches import it on the first model call.

Several workers (processes, machines) given the same input, settings and PostgreSQL database share the
prompts: each claims a prompt before computing it and writes only its own runs to its own ``--output``;
``fusion export --format runs --job JOB`` writes every run of the job as one file. A worker killed holds
its prompts until ``--lease`` runs out. SQLite takes one worker per job and refuses a second (exit 2).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass
from typing import Any, Callable

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
    eprint,
    make_cache,
    make_client,
    open_in,
    sampling_settings,
)
from fusion.errors import InputError
from fusion.types import MAX_N

BATCH_CONCURRENCY = 4
LEASE_S = 120.0  # storage.claims.LEASE_S; not imported, so `--help` loads no storage


def _limited_client_factory(rate: float | None) -> Callable[[], Any]:
    """One shared client per process, built on first use, behind the rate limiter when one is set: the
    selector, the fusor and candidate sampling all draw from the same budget of calls per second."""
    holder: dict[str, Any] = {}

    def get() -> Any:
        if "client" not in holder:
            client = make_client()
            if rate:
                from fusion.batch import RateLimitedClient, RateLimiter

                client = RateLimitedClient(client, RateLimiter(rate))
            holder["client"] = client
        return holder["client"]

    return get


@dataclass
class _Methods:
    """The selector and fusor of a batch, their names as part of the run ids, and how to sample."""

    selector: Any
    fusor: Any
    selector_name: str
    fusor_name: str
    pool: list[Any]
    get_client: Callable[[], Any] | None


def offline_methods(args: argparse.Namespace, models: list[str]) -> _Methods:
    asked = [
        flag
        for flag, value in (
            ("--model", models),
            ("--fusor-model", args.fusor_model),
            ("--judge-model", args.judge_model),
        )
        if value
    ]
    if args.selector == "judge" or args.fusor == "llm" or asked:
        raise InputError(
            "--offline makes no model calls: it picks by consensus and fuses extractively. Drop "
            + (", ".join(asked) if asked else "--selector judge / --fusor llm")
            + "."
        )
    selector = build_selector("consensus", judge_model=None, api_base=None, client_factory=None, args=args)
    fusor = build_fusor("extractive", fusor_model=None, api_base=None, client_factory=None, args=args)
    return _Methods(selector, fusor, "consensus", "extractive", [], None)


def live_methods(args: argparse.Namespace, models: list[str]) -> _Methods:
    from fusion.validate import check_n

    check_n(args.n)
    from fusion.pipeline import split_pool  # the pipeline loads the fusors: only when used

    pool = split_pool(models, args.n, api_base=args.api_base) if models else []
    if pool:
        check_keys(pool)
    get_client = _limited_client_factory(args.rate_limit)
    fusor_kind = args.fusor or "llm"
    selector_kind = args.selector or "consensus"
    fusor_model = args.fusor_model or (models[0] if models else None)
    judge_model = args.judge_model or args.fusor_model or (models[0] if models else None)
    selector = build_selector(
        selector_kind,
        judge_model=judge_model,
        api_base=args.judge_api_base or args.api_base,
        client_factory=get_client,
        args=args,
    )
    fusor = build_fusor(
        fusor_kind,
        fusor_model=fusor_model,
        api_base=args.fusor_api_base or args.api_base,
        client_factory=get_client,
        args=args,
    )
    selector_name = f"judge:{judge_model}" if selector_kind == "judge" else "consensus"
    fusor_name = f"llm:{fusor_model}" if fusor_kind == "llm" else "extractive"
    return _Methods(selector, fusor, selector_name, fusor_name, pool, get_client)


def _check_args(args: argparse.Namespace) -> None:
    if not args.output or args.output == "-":
        raise CliError("batch needs --output PATH: the file is also what a re-run resumes from.")
    if args.rate_limit is not None and not args.rate_limit > 0:
        raise InputError("--rate-limit must be a positive number (calls per second).")
    if not 0 < args.lease < float("inf"):
        raise InputError("--lease must be a positive number of seconds.")


def batch_settings(args: argparse.Namespace, methods: _Methods, tags: list[str]) -> Any:
    from fusion.batch import BatchSettings

    fusor = methods.fusor
    # The fusor already read (and checked) the template file; it is part of the run's identity.
    template = fusor.template if getattr(fusor, "template_label", None) == "custom" else None
    return BatchSettings(
        selector=methods.selector_name,
        fusor=methods.fusor_name,
        pool=tuple(methods.pool),
        sampling=sampling_settings(args),
        preset=args.preset,
        template=template,
        shuffle_seed=args.shuffle_seed,
        tags=tuple(dict.fromkeys(tags)),
        offline=bool(args.offline),
    )


def cmd_batch(args: argparse.Namespace) -> int:
    from fusion.batch import RateLimiter, arun_batch, read_items
    from fusion.progress import CountBar

    _check_args(args)
    models: list[str] = args.model or []
    tags = [t.strip() for t in (args.tag or []) if t.strip()]
    methods = offline_methods(args, models) if args.offline else live_methods(args, models)
    settings = batch_settings(args, methods, tags)
    pool = methods.pool

    stream = open_in(args.input)
    try:
        items, input_failures = read_items(stream)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()

    from storage.migrations import open_database
    from storage.sink import DatabaseClaims, DatabaseSink

    engine = open_database()
    sink = DatabaseSink(engine)
    claims = DatabaseClaims(engine, lease_s=args.lease)
    bar = CountBar(len(items) + len(input_failures), "batch", quiet=args.quiet)
    cache = make_cache(not args.no_cache) if pool else None
    if cache is not None:
        cache.on_wait = bar.lock_wait  # a wait on another process's call shows in the progress line
    prompt_rate = RateLimiter(args.rate_limit) if args.rate_limit and args.offline else None
    try:
        report = asyncio.run(
            arun_batch(
                items,
                settings=settings,
                sink=sink,
                output=args.output,
                selector=methods.selector,
                fusor=methods.fusor,
                client=methods.get_client() if (methods.get_client and pool) else None,
                cache=cache,
                regenerate=args.regenerate,
                concurrency=args.concurrency,
                prompt_rate=prompt_rate,
                input_failures=input_failures,
                on_progress=bar.advance,
                on_failure=lambda failure: eprint(f"{failure}"),
                claims=claims,
            )
        )
    finally:
        bar.close()
        if cache is not None and hasattr(cache, "close"):
            cache.close()
    _report(report, args.output)
    return EXIT_FAILED if report.failed else EXIT_OK


def _report(report: Any, output: str) -> None:
    if report.repaired_tail:
        eprint("note: the output file ended in a half-written line (an interrupted run); it was cut off.")
    parts = [f"{report.done} done"]
    if report.skipped:
        parts.append(f"{report.skipped} already finished")
    if report.recovered:
        parts.append(f"{report.recovered} recovered")
    if report.elsewhere:
        parts.append(f"{report.elsewhere} taken by other workers")
    parts.append(f"{report.failed} failed")
    job = f" (job {report.job})" if report.job else ""
    eprint(f"batch: {report.total} lines: " + ", ".join(parts) + f". Output: {output}{job}")
    if report.elsewhere and report.job:
        eprint(
            f"The runs other workers did are in their output files; `fusion export --format runs --job "
            f"{report.job} -o FILE` writes every run of this job to one file."
        )
    if report.failed:
        eprint("Run the same command again to retry the failed lines.")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "batch",
        help="JSON Lines of {id?, prompt, tags?, candidates?} -> runs saved to the database and --output",
        description="Take every prompt through the method, save each run to the database (FUSION_DB_PATH "
        "or DATABASE_URL) and append it to --output. Run the same command again after an interruption: "
        "finished prompts are skipped, nothing is lost or duplicated. Several workers given the same input "
        "and the same PostgreSQL database share the prompts, each writing its own runs to its own --output "
        "(fusion export --format runs --job JOB writes them all to one file).",
    )
    p.add_argument("input", help="input .jsonl file ('-' for stdin)")
    p.add_argument("-o", "--output", required=True, help="output .jsonl file; a re-run resumes from it")
    p.add_argument("-n", type=int, default=5, help=f"candidates per prompt, 1 to {MAX_N} (default 5)")
    p.add_argument(
        "--model",
        action="append",
        help="litellm model string; repeat for a pool of teacher models (N is spread over them)",
    )
    p.add_argument(
        "--offline",
        action="store_true",
        help="no model calls: consensus Best-of-N and extractive fusion of the lines' own candidates",
    )
    p.add_argument(
        "--rate-limit",
        type=float,
        default=None,
        metavar="R",
        help="at most R model calls per second (with --offline: R prompts per second)",
    )
    p.add_argument("--tag", action="append", help="tag every run (repeatable); adds to the lines' own tags")
    p.add_argument("--api-base", type=api_base_arg, help="base URL of an OpenAI-compatible server (use model openai/<name>)")
    p.add_argument("--selector", choices=["consensus", "judge"], default=None, help="default: consensus")
    p.add_argument("--judge-model", help="model of the judge selector (default: the fusor model)")
    p.add_argument("--judge-api-base", type=api_base_arg)
    p.add_argument(
        "--fusor",
        choices=["llm", "extractive"],
        default=None,
        help="default: llm (extractive with --offline)",
    )
    p.add_argument("--fusor-model", help="model of the LLM fusor (default: the first --model)")
    p.add_argument("--fusor-api-base", type=api_base_arg)
    p.add_argument(
        "--lease",
        type=float,
        default=LEASE_S,
        metavar="SECONDS",
        help="several workers on one job: a prompt claimed by a worker that stopped renewing its claim "
        f"(killed) is taken over after this long (default {LEASE_S:.0f})",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar (failures are still reported)")
    add_sampling(p)
    add_fusor_opts(p)
    for action in p._actions:
        if action.dest == "concurrency":
            # A shared sampling option with a batch meaning: prompts in flight (each samples its N at once).
            action.default = BATCH_CONCURRENCY
            action.help = f"prompts in flight at once (default {BATCH_CONCURRENCY})"
    p.set_defaults(func=cmd_batch)
