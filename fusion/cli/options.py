"""What the CLI's commands share: exit codes, :class:`CliError`, argument groups, file opening, key checks,
and the factories of model clients, caches, selectors and fusors.

Imports of litellm and of storage happen inside the factories, so offline commands never pay for them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, BinaryIO, Callable, Sequence, TextIO

from fusion.errors import InputError
from fusion.types import DEFAULT_RETRIES, DEFAULT_TIMEOUT_S, ModelSpec, SamplingSettings

EXIT_OK = 0
EXIT_FAILED = 1  # the command ran but some or all work failed
EXIT_USAGE = 2  # the command could not start: bad arguments, missing key, unreadable file


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def api_base_arg(value: str) -> str | None:
    """``--api-base``: an http(s) server URL, checked before anything runs."""
    from fusion.validate import check_api_base

    try:
        return check_api_base(value)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def count_arg(low: int, high: int) -> Callable[[str], int]:
    """A whole number from ``low`` to ``high`` (``--retries``, ``--concurrency``)."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"a whole number, not {value!r}") from None
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}; got {number}")
        return number

    return parse


def number_arg(low: float, high: float, *, low_open: bool = False, unit: str = "") -> Callable[[str], float]:
    """A number from ``low`` (excluded when ``low_open``) to ``high``, in ``unit`` if given (``--timeout``:
    above 0, since 0 would mean no time limit at all; ``--temperature``, ``--top-p``)."""
    units = f" {unit}" if unit else ""

    def parse(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"a number{' of ' + unit if unit else ''}, not {value!r}") from None
        above = number > low if low_open else number >= low
        if not (above and number <= high):  # also refuses nan
            span = f"more than {low:g} and at most {high:g}" if low_open else f"from {low:g} to {high:g}"
            raise argparse.ArgumentTypeError(f"must be {span}{units}; got {value}")
        return number

    return parse


SECONDS = number_arg(0.0, 3600.0, low_open=True, unit="seconds")
RETRIES = count_arg(0, 10)
MAX_TOKENS = count_arg(1, 1_000_000)
TEMPERATURE = number_arg(0.0, 2.0)
TOP_P = number_arg(0.0, 1.0, low_open=True)
CONCURRENCY = count_arg(1, 256)


def eprint(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


def open_in(path: str) -> BinaryIO:
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


def open_out(path: str | None) -> TextIO:
    if not path or path == "-":
        return sys.stdout
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    return p.open("w", encoding="utf-8")


def dump(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, allow_nan=False)


def sampling_settings(args: argparse.Namespace) -> SamplingSettings:
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


def check_keys(pool: Sequence[ModelSpec]) -> None:
    from fusion.providers import check_keys as check_pool_keys

    check_pool_keys(pool)


def client_factory() -> Callable[[], Any]:
    """One shared client per process, built on first use (so offline paths never import litellm)."""
    holder: dict[str, Any] = {}

    def get() -> Any:
        if "client" not in holder:
            holder["client"] = make_client()
        return holder["client"]

    return get


def add_sampling(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("sampling")
    g.add_argument("--temperature", type=TEMPERATURE, default=0.8, help="0 to 2 (default 0.8)")
    g.add_argument("--top-p", type=TOP_P, default=None, help="more than 0 and at most 1")
    g.add_argument("--max-tokens", type=MAX_TOKENS, default=1024, help="1 to 1,000,000 (default 1024)")
    g.add_argument("--seed", type=int, default=None, help="sample k of a model uses seed+k")
    g.add_argument("--timeout", type=SECONDS, default=DEFAULT_TIMEOUT_S,
                   help=f"seconds one attempt of a model call may wait for a byte (default {DEFAULT_TIMEOUT_S:g})")
    g.add_argument("--retries", type=RETRIES, default=DEFAULT_RETRIES,
                   help=f"retries on 429, 5xx and (once) timeouts (default {DEFAULT_RETRIES})")
    g.add_argument("--concurrency", type=CONCURRENCY, default=8, help="model calls in flight at once")
    g.add_argument("--no-cache", action="store_true", help="do not read or write the response cache")
    g.add_argument("--regenerate", action="store_true", help="skip cached answers (and store the new ones)")


def add_fusor_opts(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("fusor")
    g.add_argument("--preset", default="fusion", help="fusor prompt preset: fusion, moa or blender")
    g.add_argument("--template-file", help="a custom fusor template with {prompt} and {candidates}")
    g.add_argument("--shuffle-seed", type=int, default=None, help="seed of the candidate order the fusor sees")
