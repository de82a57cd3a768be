"""``python -m fusion``: the engine from the command line.

Offline commands (``fuse``, ``attribute`` without a model, ``scenarios``) never import litellm, whose import
alone costs seconds; live commands import it on first use. Every failure ends with one clear line on
stderr and a non-zero exit code; a malformed JSON Lines input line is reported by number and the other
lines are still processed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any, BinaryIO, Sequence, TextIO

from fusion.errors import FusionError, InputError, MissingKeyError
from fusion.jsonl import fuse_record as parse_fuse_record
from fusion.jsonl import iter_json_lines
from fusion.pipeline import split_pool
from fusion.types import MAX_N, ModelSpec, Prompt, SamplingSettings

EXIT_OK = 0
EXIT_FAILED = 1  # the command ran but some or all work failed
EXIT_USAGE = 2  # the command could not start: bad arguments, missing key, unreadable file


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


# --------------------------------------------------------------------------------------------- helpers


def _eprint(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


def _open_in(path: str) -> BinaryIO:
    """Binary, so that a line of bad UTF-8 is reported by number instead of aborting the whole read."""
    if path == "-":
        return sys.stdin.buffer
    p = Path(path)
    if not p.exists():
        raise CliError(f"Input file not found: {path}")
    if p.is_dir():
        raise CliError(f"Input path is a folder, not a file: {path}")
    try:
        return p.open("rb")
    except OSError as exc:
        raise CliError(f"Cannot read {path}: {exc.strerror}") from exc


def _open_out(path: str | None) -> TextIO:
    if not path or path == "-":
        return sys.stdout
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    return p.open("w", encoding="utf-8")


def _dump(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, allow_nan=False)


def _settings(args: argparse.Namespace) -> SamplingSettings:
    return SamplingSettings(
        temperature=args.temperature,
        top_p=args.top_p,
        max_tokens=args.max_tokens,
        seed=args.seed,
        timeout=args.timeout,
        num_retries=args.retries,
    )


def make_client() -> Any:
    from fusion.llm import LiteLLMClient

    return LiteLLMClient()


def make_cache(enabled: bool) -> Any:
    if not enabled:
        return None
    from storage.cache import DiskResponseCache, default_cache_dir

    return DiskResponseCache(default_cache_dir())


def build_selector(name: str, *, judge_model: str | None, api_base: str | None, client_factory: Any, args: Any) -> Any:
    from fusion.pipeline import make_selector

    if name == "judge" and not judge_model:
        raise InputError("--selector judge needs a judge model: pass --judge-model (or --model).")
    return make_selector(
        name,
        client=client_factory() if name == "judge" else None,
        model=judge_model,
        api_base=api_base,
        timeout=args.timeout,
        num_retries=args.retries,
    )


def build_fusor(
    name: str, *, fusor_model: str | None, api_base: str | None, client_factory: Any, args: Any
) -> Any:
    from fusion.pipeline import make_fusor

    if name == "llm" and not fusor_model:
        raise InputError("--fusor llm needs a fusor model: pass --fusor-model (or --model).")
    template = None
    if name == "llm" and getattr(args, "template_file", None):
        try:
            template = Path(args.template_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise CliError(f"Cannot read the template file: {exc.strerror}: {args.template_file}") from exc
    return make_fusor(
        name,
        client=client_factory() if name == "llm" else None,
        model=fusor_model,
        preset=args.preset,
        template=template,
        seed=args.shuffle_seed,
        api_base=api_base,
        timeout=args.timeout,
        num_retries=args.retries,
    )


def _check_keys(pool: Sequence[ModelSpec]) -> None:
    from fusion.providers import check_keys

    check_keys(pool)


def _client_factory() -> Any:
    """One shared client per process, built on first use (so offline paths never import litellm)."""
    holder: dict[str, Any] = {}

    def get() -> Any:
        if "client" not in holder:
            holder["client"] = make_client()
        return holder["client"]

    return get


# --------------------------------------------------------------------------------------------- commands


def cmd_run(args: argparse.Namespace) -> int:
    from fusion.pipeline import arun_live
    from fusion.progress import CandidateProgress
    from fusion.validate import check_n, check_prompt

    check_prompt(args.prompt)
    check_n(args.n)
    models = args.model or []
    pool = split_pool(models, args.n, api_base=args.api_base)
    _check_keys(pool)
    get_client = _client_factory()
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
            _settings(args),
            client=get_client(),
            selector=selector,
            fusor=fusor,
            cache=make_cache(not args.no_cache),
            regenerate=args.regenerate,
            concurrency=args.concurrency,
            tags=args.tag or [],
            on_candidate_event=progress,
            on_stage=progress.stage,
        )
    )
    if args.save:
        from storage.migrations import init_db
        from storage.queries import save_run

        save_run(init_db(), run)
        _eprint(f"Saved run {run.id}.")
    if args.json:
        print(_dump(run.to_dict()))
    else:
        print(format_run(run))
    failed = run.fused is None or bool(run.fused.error)
    if run.fused is not None and run.fused.error:
        _eprint(f"error: fusion failed: {run.fused.error}")
    return EXIT_FAILED if failed else EXIT_OK


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
        lines += ["", f"Attribution: {run.attribution.copied_fraction:.0%} copied from candidates ({shares})"]
    return "\n".join(lines)


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

    get_client = _client_factory()
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
    stream = _open_in(args.input)
    lines = list(iter_json_lines(stream))
    out = _open_out(args.output)
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
                    out.write(_dump(record) + "\n")
                    out.flush()
                    failed = record["fused"].get("error") is not None
                    if failed:
                        _eprint(f"line {lineno}: fusion failed: {record['fused']['error']}")
                    failures += failed
                    bar.advance(ok=not failed)
                    continue
            failures += 1
            _eprint(f"line {lineno}: {error}")
            bar.advance(ok=False)
    finally:
        bar.close()
        if out is not sys.stdout:
            out.close()
    return EXIT_FAILED if failures else EXIT_OK


def attribute_record(obj: dict[str, Any]) -> dict[str, Any]:
    from fusion.attribution import attribute
    from fusion.kept import kept_reports
    from fusion.validate import check_candidate_texts

    fused = obj.get("fused")
    if not isinstance(fused, str):
        raise InputError("'fused' must be a string")
    if "candidates" not in obj:
        raise InputError("'candidates' is missing")
    texts = check_candidate_texts(obj["candidates"])
    attribution = attribute(fused, texts)
    out = attribution.to_dict()
    out["kept"] = [r.to_dict() if r else None for r in kept_reports(fused, texts, attribution)]
    return out


def cmd_attribute(args: argparse.Namespace) -> int:
    out = _open_out(args.output)
    failures = 0
    try:
        for lineno, obj, error in iter_json_lines(_open_in(args.input)):
            if error is None:
                try:
                    out.write(_dump(attribute_record(obj or {})) + "\n")
                    out.flush()
                    continue
                except FusionError as exc:
                    error = str(exc)
            failures += 1
            _eprint(f"line {lineno}: {error}")
    finally:
        if out is not sys.stdout:
            out.close()
    return EXIT_FAILED if failures else EXIT_OK


def cmd_scenarios(args: argparse.Namespace) -> int:
    from fusion.scenarios import load_scenarios, scenario_to_candidates

    for s in load_scenarios():
        if args.jsonl:
            print(_dump({"id": s.id, "prompt": s.prompt, "candidates": list(s.candidates), "tags": [s.category, s.language]}))
        else:
            print(f"{s.id:28} {s.category:14} {s.language:6} {len(scenario_to_candidates(s))} candidates  {s.title}")
    return EXIT_OK


# --------------------------------------------------------------------------------------------- parser


def _add_sampling(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("sampling")
    g.add_argument("--temperature", type=float, default=0.8)
    g.add_argument("--top-p", type=float, default=None)
    g.add_argument("--max-tokens", type=int, default=1024)
    g.add_argument("--seed", type=int, default=None, help="sample k of a model uses seed+k")
    g.add_argument("--timeout", type=float, default=120.0, help="seconds per model call")
    g.add_argument("--retries", type=int, default=2, help="retries on 429, 5xx and timeouts")
    g.add_argument("--concurrency", type=int, default=8, help="model calls in flight at once")
    g.add_argument("--no-cache", action="store_true", help="do not read or write the response cache")
    g.add_argument("--regenerate", action="store_true", help="skip cached answers (and store the new ones)")


def _add_fusor_opts(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("fusor")
    g.add_argument("--preset", default="fusion", help="fusor prompt preset: fusion, moa or blender")
    g.add_argument("--template-file", help="a custom fusor template with {prompt} and {candidates}")
    g.add_argument("--shuffle-seed", type=int, default=None, help="seed of the candidate order the fusor sees")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fusion",
        description="Fusion-of-N from the command line: sample N candidates, pick Best-of-N, fuse, attribute.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="one live run against a model (needs a key or a local server)")
    p.add_argument("prompt")
    p.add_argument("-n", type=int, default=5, help=f"number of candidates, 1 to {MAX_N} (default 5)")
    p.add_argument("--model", action="append", required=True,
                   help="litellm model string; repeat for a pool of models (N is spread over them)")
    p.add_argument("--system", help="a system message sent before the prompt")
    p.add_argument("--api-base", help="base URL of an OpenAI-compatible server (use model openai/<name>)")
    p.add_argument("--selector", choices=["consensus", "judge"], default="consensus")
    p.add_argument("--judge-model", help="model of the judge selector (default: the fusor model)")
    p.add_argument("--judge-api-base")
    p.add_argument("--fusor", choices=["llm", "extractive"], default="llm")
    p.add_argument("--fusor-model", help="model of the LLM fusor (default: the first --model)")
    p.add_argument("--fusor-api-base")
    p.add_argument("--tag", action="append", help="tag the run (repeatable)")
    p.add_argument("--save", action="store_true", help="save the run to the database")
    p.add_argument("--json", action="store_true", help="print the whole run as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    _add_sampling(p)
    _add_fusor_opts(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("fuse", help="JSON Lines of {id?, prompt, candidates} -> picks, fusions, attribution")
    p.add_argument("input", nargs="?", default="-", help="input .jsonl file (default: stdin)")
    p.add_argument("-o", "--output", help="output .jsonl file (default: stdout)")
    p.add_argument("--model", help="use this model as LLM judge and fusor (default: offline consensus + extractive)")
    p.add_argument("--judge-model", help="LLM judge model (default: --model; none: offline consensus)")
    p.add_argument("--fusor-model", help="LLM fusor model (default: --model; none: offline extractive)")
    p.add_argument("--api-base")
    p.add_argument("--timeout", type=float, default=180.0)
    p.add_argument("--retries", type=int, default=2)
    p.add_argument("-q", "--quiet", action="store_true")
    _add_fusor_opts(p)
    p.set_defaults(func=cmd_fuse)

    p = sub.add_parser("attribute", help="JSON Lines of {candidates, fused} -> spans, shares, copied fraction")
    p.add_argument("input", nargs="?", default="-")
    p.add_argument("-o", "--output")
    p.set_defaults(func=cmd_attribute)

    p = sub.add_parser("scenarios", help="list the built-in scenarios")
    p.add_argument("--jsonl", action="store_true", help="print them as input lines for `fuse`")
    p.set_defaults(func=cmd_scenarios)

    _add_later_commands(sub)
    return parser


def _add_later_commands(sub: Any) -> None:
    """Batch and export live in their own module; they register themselves when present."""
    try:
        from fusion import cli_batch
    except ImportError:
        return
    cli_batch.register(sub)


def main(argv: Sequence[str] | None = None) -> int:
    # Without it litellm fetches a model cost map from GitHub at import (warnings, seconds of retries, or
    # a hang on a machine without internet); its bundled copy is enough here. LITELLM_OFFLINE_MODE=false
    # in the environment still wins.
    os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        _eprint(f"error: {exc}")
        return exc.code
    except (InputError,) as exc:
        _eprint(f"error: {exc}")
        return EXIT_USAGE
    except MissingKeyError as exc:
        _eprint(f"error: {exc}")
        return EXIT_USAGE
    except FusionError as exc:
        _eprint(f"error: {exc}")
        return EXIT_FAILED
    except KeyboardInterrupt:
        _eprint("interrupted")
        return 130
    except BrokenPipeError:
        return EXIT_OK
