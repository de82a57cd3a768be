"""``python -m fusion fuse``: JSON Lines of {id?, prompt, candidates} -> picks, fusions, attribution.

Offline (consensus + extractive) unless a model is given; a malformed line is reported by number and the
other lines are still processed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from fusion.cli.options import (
    EXIT_FAILED,
    EXIT_OK,
    RETRIES,
    SECONDS,
    add_fusor_opts,
    api_base_arg,
    build_fusor,
    build_selector,
    client_factory,
    dump,
    eprint,
    open_in,
    open_out,
)
from fusion.errors import FusionError
from fusion.jsonl import fuse_record as parse_fuse_record
from fusion.jsonl import iter_json_lines
from fusion.types import DEFAULT_TIMEOUT_S, Prompt


def fuse_record(obj: dict[str, Any], lineno: int, *, selector: Any, fusor: Any) -> dict[str, Any]:
    """One ``fuse`` input object to its output object. Raises InputError on a malformed object."""
    from fusion.pipeline import acomplete, supplied_candidates
    from fusion.readout import readout_fields
    from fusion.types import Run

    rec = parse_fuse_record(obj, lineno)
    run = Run(prompt=Prompt(rec.prompt), candidates=supplied_candidates(rec.candidates))
    asyncio.run(acomplete(run, selector=selector, fusor=fusor))
    out: dict[str, Any] = {"id": rec.id}
    out["bon"] = (
        {"index": run.bon.index, "scores": run.bon.scores, "method": run.bon.method}
        | ({"error": run.bon.error} if run.bon.error else {})
        if run.bon
        else None
    )
    out["fused"] = {"text": run.fused.text, "method": run.fused.method} | (
        {"error": run.fused.error} if run.fused.error else {}
    )
    out["attribution"] = run.attribution.to_dict() if run.attribution else None
    out.update(readout_fields(run))
    return out


def cmd_fuse(args: argparse.Namespace) -> int:
    from fusion.progress import CountBar

    get_client = client_factory()
    model = args.model
    judge_model = args.judge_model or model
    fusor_model = args.fusor_model or model
    selector = build_selector(
        "judge" if judge_model else "consensus", judge_model=judge_model, api_base=args.api_base,
        client_factory=get_client, args=args,
    )
    fusor = build_fusor(
        "llm" if fusor_model else "extractive", fusor_model=fusor_model, api_base=args.api_base,
        client_factory=get_client, args=args,
    )
    stream = open_in(args.input)
    lines = list(iter_json_lines(stream))
    out = open_out(args.output)
    bar = CountBar(len(lines), "fuse", quiet=args.quiet or len(lines) < 2)
    failures = 0
    try:
        for lineno, obj, error in lines:
            if error is None:
                try:
                    record = fuse_record(obj or {}, lineno, selector=selector, fusor=fusor)
                except FusionError as exc:
                    error = str(exc)
                else:
                    out.write(dump(record) + "\n")
                    out.flush()
                    bon = record["bon"] or {}
                    problems = []
                    if bon.get("index") is None:  # the same rule as run and batch: no pick, a failed line
                        problems.append(f"no Best-of-N pick: {bon.get('error') or 'the selector gave none'}")
                    if record["fused"].get("error") is not None:
                        problems.append(f"fusion failed: {record['fused']['error']}")
                    failed = bool(problems)
                    for problem in problems:
                        eprint(f"line {lineno}: {problem}")
                    failures += failed
                    bar.advance(ok=not failed)
                    continue
            failures += 1
            eprint(f"line {lineno}: {error}")
            bar.advance(ok=False)
    finally:
        bar.close()
        if out is not sys.stdout:
            out.close()
    return EXIT_FAILED if failures else EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser("fuse", help="JSON Lines of {id?, prompt, candidates} -> picks, fusions, attribution")
    p.add_argument("input", nargs="?", default="-", help="input .jsonl file (default: stdin)")
    p.add_argument("-o", "--output", help="output .jsonl file (default: stdout)")
    p.add_argument("--model", help="use this model as LLM judge and fusor (default: offline consensus + extractive)")
    p.add_argument("--judge-model", help="LLM judge model (default: --model; none: offline consensus)")
    p.add_argument("--fusor-model", help="LLM fusor model (default: --model; none: offline extractive)")
    p.add_argument("--api-base", type=api_base_arg)
    p.add_argument("--timeout", type=SECONDS, default=DEFAULT_TIMEOUT_S, help="seconds one attempt of a model call may wait")
    p.add_argument("--retries", type=RETRIES, default=2)
    p.add_argument("-q", "--quiet", action="store_true")
    add_fusor_opts(p)
    p.set_defaults(func=cmd_fuse)
