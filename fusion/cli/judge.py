"""``fusion judge``: the pairwise LLM judge on saved runs, fused against Best-of-N in both orders.

Each verdict is stored like a vote under the annotator ``judge:<model>`` (see :mod:`fusion.pairwise`), so a
re-run judges only the runs that judge has not judged yet: the same resume as Annotate's queue. Runs whose
fused answer is the pick word for word are not judged (there is nothing to compare), as on Annotate.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from fusion.cli.options import CONCURRENCY, EXIT_FAILED, EXIT_OK, RETRIES, SECONDS, api_base_arg, eprint
from fusion.errors import InputError
from fusion.text import plural
from fusion.types import DEFAULT_RETRIES, DEFAULT_TIMEOUT_S

DEFAULT_CONCURRENCY = 4
GIVE_UP_AFTER = 3  # failures before any success: the judge is unreachable or unusable, not one bad reply


def pairwise_judge(model: str, *, api_base: str | None, timeout: float, retries: int, rate_limit: float | None,
                   client: Any = None) -> Any:
    """The judge, its key chosen by the same rule as every other model call."""
    from fusion.pairwise import PairwiseJudge
    from fusion.providers import check_keys, key_for
    from fusion.types import ModelSpec

    check_keys([ModelSpec(model, api_base=api_base)])  # a hosted judge without its key: say so now

    if client is None:
        from fusion.cli.options import make_client

        client = make_client()
        if rate_limit:
            from fusion.batch import RateLimitedClient, RateLimiter

            client = RateLimitedClient(client, RateLimiter(rate_limit))
    return PairwiseJudge(client, model, api_base=api_base, api_key=key_for(model, api_base),
                         timeout=timeout, num_retries=retries)


async def judge_runs(engine: Any, judge: Any, run_ids: list[str], *, concurrency: int, bar: Any) -> tuple[int, int]:
    """Judge and store each run; (verdicts stored, failures). A failure leaves the run for the next try."""
    from storage.runs import load_run
    from storage.votes import record_judge_verdict

    sem = asyncio.Semaphore(max(1, concurrency))
    stored = failed = 0
    given_up: list[str] = []

    async def one(run_id: str) -> None:
        nonlocal stored, failed
        async with sem:
            if given_up:  # the judge could not be reached on the first tries: don't try every run
                bar.advance(skipped=True)
                return
            run = await asyncio.to_thread(load_run, engine, run_id)
            if run is None or run.bon_text is None or run.fused is None or not run.fused.text:
                bar.advance(skipped=True)  # deleted or changed since the queue was read
                return
            verdict = await judge.ajudge(run.prompt, run.fused.text, run.bon_text)
            if verdict.winner is None:
                failed += 1
                eprint(f"run {run_id}: {verdict.error}")
                bar.advance(ok=False)
                if not stored and failed >= GIVE_UP_AFTER and not given_up:
                    given_up.append(run_id)
                    eprint(f"error: the judge failed on the first {failed} runs and judged none; stopping "
                           "(check the model name, --api-base and the key, then run the same command again).")
                return
            await asyncio.to_thread(record_judge_verdict, engine, run_id, verdict)
            stored += 1
            bar.advance(ok=True)

    await asyncio.gather(*(one(r) for r in run_ids))
    return stored, failed


def cmd_judge(args: argparse.Namespace) -> int:
    from fusion.pairwise import judge_annotator
    from fusion.progress import CountBar
    from storage.migrations import open_database
    from storage.votes import annotation_queue

    if args.rate_limit is not None and args.rate_limit <= 0:
        raise InputError("--rate-limit must be a positive number of calls per second.")
    judge = pairwise_judge(args.model, api_base=args.api_base, timeout=args.timeout, retries=args.retries,
                           rate_limit=args.rate_limit)
    engine = open_database()
    todo = annotation_queue(engine, judge_annotator(judge.model), tag=args.tag, limit=args.limit)
    where = f" tagged {args.tag}" if args.tag else ""
    if not todo:
        eprint(f"Nothing to judge: every run{where} with a pair to compare has a verdict of judge:{judge.model}.")
        return EXIT_OK
    bar = CountBar(len(todo), label="judge", quiet=args.quiet)
    stored, failed = asyncio.run(judge_runs(engine, judge, todo, concurrency=args.concurrency, bar=bar))
    bar.close()
    eprint(f"Judged {plural(stored, 'run')}{where} with judge:{judge.model}"
           + (f"; {plural(failed, 'run')} got no verdict (run the same command again to retry them)." if failed else "."))
    return EXIT_FAILED if failed else EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser("judge", help="judge saved runs pairwise (fused vs Best-of-N, both orders) with an LLM")
    p.add_argument("--model", required=True, help="the judge model (litellm name, e.g. openai/gpt-4o)")
    p.add_argument("--tag", help="only runs with this tag")
    p.add_argument("--api-base", type=api_base_arg, help="base URL of an OpenAI-compatible server (use model openai/<name>)")
    p.add_argument("--rate-limit", type=float, default=None, help="at most this many judge calls per second")
    p.add_argument("--concurrency", type=CONCURRENCY, default=DEFAULT_CONCURRENCY, help="runs judged at once")
    p.add_argument("--limit", type=int, default=None, help="judge at most this many runs")
    p.add_argument("--timeout", type=SECONDS, default=DEFAULT_TIMEOUT_S, help="seconds one judge call attempt may wait")
    p.add_argument("--retries", type=RETRIES, default=DEFAULT_RETRIES, help="retries on 429, 5xx and (once) timeouts")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_judge)
