"""``python -m fusion batch`` and ``python -m fusion export``, registered by :func:`fusion.cli.build_parser`.

``batch --offline`` never imports litellm; live batches import it on the first model call.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from fusion.cli import (
    EXIT_FAILED,
    EXIT_OK,
    CliError,
    _add_fusor_opts,
    _add_sampling,
    _check_keys,
    _eprint,
    _open_in,
    _settings,
    build_fusor,
    build_selector,
    make_cache,
    make_client,
    split_pool,
)
from fusion.errors import InputError
from fusion.types import MAX_N

EXPORT_FORMATS = ("votes-csv", "votes-jsonl", "dpo", "sft", "sft-messages")
BATCH_CONCURRENCY = 4


# --------------------------------------------------------------------------------------------- batch


def _limited_client_factory(rate: float | None) -> Any:
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


def cmd_batch(args: argparse.Namespace) -> int:
    from fusion.batch import BatchSettings, RateLimiter, arun_batch, read_items
    from fusion.progress import CountBar
    from fusion.validate import check_n

    if not args.output or args.output == "-":
        raise CliError("batch needs --output PATH: the file is also what a re-run resumes from.")
    if args.concurrency < 1:
        raise InputError("--concurrency must be at least 1.")
    if args.rate_limit is not None and not args.rate_limit > 0:
        raise InputError("--rate-limit must be a positive number (calls per second).")
    models: list[str] = args.model or []
    tags = [t.strip() for t in (args.tag or []) if t.strip()]

    if args.offline:
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
        get_client = None
        selector_name, fusor_name = "consensus", "extractive"
        selector = build_selector(
            "consensus", judge_model=None, api_base=None, client_factory=None, args=args
        )
        fusor = build_fusor("extractive", fusor_model=None, api_base=None, client_factory=None, args=args)
        pool: list[Any] = []
    else:
        check_n(args.n)
        pool = split_pool(models, args.n, api_base=args.api_base) if models else []
        if pool:
            _check_keys(pool)
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

    # The fusor already read (and checked) the template file; it is part of the run's identity.
    template = fusor.template if getattr(fusor, "template_label", None) == "custom" else None
    settings = BatchSettings(
        selector=selector_name,
        fusor=fusor_name,
        pool=tuple(pool),
        sampling=_settings(args),
        preset=args.preset,
        template=template,
        shuffle_seed=args.shuffle_seed,
        tags=tuple(dict.fromkeys(tags)),
        offline=bool(args.offline),
    )

    stream = _open_in(args.input)
    try:
        items, input_failures = read_items(stream)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()

    from storage.migrations import init_db

    engine = init_db()
    total = len(items) + len(input_failures)
    bar = CountBar(total, "batch", quiet=args.quiet)

    def on_failure(failure: Any) -> None:
        _eprint(f"{failure}")

    cache = make_cache(not args.no_cache) if pool else None
    prompt_rate = RateLimiter(args.rate_limit) if args.rate_limit and args.offline else None
    try:
        report = asyncio.run(
            arun_batch(
                items,
                settings=settings,
                engine=engine,
                output=args.output,
                selector=selector,
                fusor=fusor,
                client=get_client() if (get_client and pool) else None,
                cache=cache,
                regenerate=args.regenerate,
                concurrency=args.concurrency,
                prompt_rate=prompt_rate,
                input_failures=input_failures,
                on_progress=bar.advance,
                on_failure=on_failure,
            )
        )
    finally:
        bar.close()
        if cache is not None and hasattr(cache, "close"):
            cache.close()
    if report.repaired_tail:
        _eprint("note: the output file ended in a half-written line (an interrupted run); it was cut off.")
    parts = [f"{report.done} done"]
    if report.skipped:
        parts.append(f"{report.skipped} already finished")
    if report.recovered:
        parts.append(f"{report.recovered} recovered")
    parts.append(f"{report.failed} failed")
    _eprint(f"batch: {report.total} lines: " + ", ".join(parts) + f". Output: {args.output}")
    if report.failed:
        _eprint("Run the same command again to retry the failed lines.")
    return EXIT_FAILED if report.failed else EXIT_OK


# --------------------------------------------------------------------------------------------- export


def cmd_export(args: argparse.Namespace) -> int:
    from storage import export
    from storage.migrations import init_db

    fmt = args.format
    if args.only_winning and not fmt.startswith("sft"):
        raise InputError("--only-winning applies to the sft and sft-messages formats only.")
    if (args.per_vote or args.include_non_blind) and fmt != "dpo":
        raise InputError("--per-vote and --include-non-blind apply to the dpo format only.")
    engine = init_db()
    target: Any = sys.stdout if args.output in (None, "-") else args.output
    if fmt == "votes-csv":
        count, what = export.export_votes_csv(engine, target, tag=args.tag), "votes"
    elif fmt == "votes-jsonl":
        count, what = export.export_votes_jsonl(engine, target, tag=args.tag), "votes"
    elif fmt == "dpo":
        count = export.export_dpo_jsonl(
            engine, target, tag=args.tag, per_vote=args.per_vote, include_non_blind=args.include_non_blind
        )
        what = "preference pairs"
    else:
        style = "messages" if fmt == "sft-messages" else "completion"
        count = export.export_sft_jsonl(
            engine, target, tag=args.tag, style=style, only_winning=args.only_winning
        )
        what = "fused answers"
    if target is sys.stdout:
        sys.stdout.flush()
    where = "stdout" if target is sys.stdout else args.output
    _eprint(f"Exported {count} {what} ({fmt}) to {where}.")
    return EXIT_OK


# --------------------------------------------------------------------------------------------- parser


def register(sub: Any) -> None:
    p = sub.add_parser(
        "batch",
        help="JSON Lines of {id?, prompt, tags?, candidates?} -> runs saved to the database and --output",
        description="Take every prompt through the method, save each run to the database (FUSION_DB_PATH "
        "or DATABASE_URL) and append it to --output. Run the same command again after an interruption: "
        "finished prompts are skipped, nothing is lost or duplicated.",
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
    p.add_argument("--api-base", help="base URL of an OpenAI-compatible server (use model openai/<name>)")
    p.add_argument("--selector", choices=["consensus", "judge"], default=None, help="default: consensus")
    p.add_argument("--judge-model", help="model of the judge selector (default: the fusor model)")
    p.add_argument("--judge-api-base")
    p.add_argument(
        "--fusor",
        choices=["llm", "extractive"],
        default=None,
        help="default: llm (extractive with --offline)",
    )
    p.add_argument("--fusor-model", help="model of the LLM fusor (default: the first --model)")
    p.add_argument("--fusor-api-base")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar (failures are still reported)")
    _add_sampling(p)
    _add_fusor_opts(p)
    for action in p._actions:
        if action.dest == "concurrency":
            # A shared sampling option with a batch meaning: prompts in flight (each samples its N at once).
            action.default = BATCH_CONCURRENCY
            action.help = f"prompts in flight at once (default {BATCH_CONCURRENCY})"
    p.set_defaults(func=cmd_batch)

    p = sub.add_parser("export", help="votes (CSV, JSON Lines), DPO pairs or SFT data from the database")
    p.add_argument("--format", required=True, choices=EXPORT_FORMATS)
    p.add_argument("--tag", help="only runs with this tag")
    p.add_argument(
        "--only-winning",
        action="store_true",
        help="sft formats: only runs whose fusion won or tied at least one vote",
    )
    p.add_argument(
        "--per-vote",
        action="store_true",
        help="dpo: a pair per decisive vote (annotators may contradict each other) instead of one per run "
        "by the majority of its blind votes",
    )
    p.add_argument(
        "--include-non-blind",
        action="store_true",
        help="dpo: count votes cast after the voter saw which answer was which",
    )
    p.add_argument("-o", "--output", default="-", help="output file (default: stdout)")
    p.set_defaults(func=cmd_export)
