"""``python -m fusion``: the engine from the command line, a face above :mod:`fusion` and :mod:`storage`.

One module per command (``run``, ``fuse``, ``attribute``, ``scenarios``, ``batch``, ``export``), each with
its ``cmd_*`` function and a ``register(sub)`` that adds its parser; what they share is in
:mod:`fusion.cli.options`. Commands import only ``options`` and the engine, never this package, so there
is no import circle.

Offline commands (``fuse``, ``attribute`` without a model, ``scenarios``) never import litellm, whose import
alone costs seconds; live commands import it on first use. Every failure ends with one clear line on
stderr and a non-zero exit code; a malformed JSON Lines input line is reported by number and the other
lines are still processed.
"""

from __future__ import annotations

import argparse
import os
from typing import Sequence

from fusion.cli import attribute, batch, export, fuse, judge, run, scale, scenarios, users
from fusion.cli.options import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError, eprint
from fusion.errors import FusionError, InputError, MissingKeyError, SetupError

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fusion",
        description="Fusion-of-N from the command line: sample N candidates, pick Best-of-N, fuse, attribute.",
    )
    from fusion import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # The order of `--help`'s command list.
    for command in (run, fuse, attribute, scenarios, batch, export, judge, scale, users):
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Without it litellm fetches a model cost map from GitHub at import (warnings, seconds of retries, or
    # a hang on a machine without internet); its bundled copy is enough here. LITELLM_OFFLINE_MODE=false
    # in the environment still wins.
    os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SetupError as exc:  # before FusionError: the database or a driver, not the work: exit 2
        eprint(f"error: {exc}")
        return EXIT_USAGE
    except CliError as exc:
        eprint(f"error: {exc}")
        return exc.code
    except (InputError,) as exc:
        eprint(f"error: {exc}")
        return EXIT_USAGE
    except MissingKeyError as exc:
        eprint(f"error: {exc}")
        return EXIT_USAGE
    except FusionError as exc:
        eprint(f"error: {exc}")
        return EXIT_FAILED
    except KeyboardInterrupt:
        eprint("interrupted")
        return 130
    except BrokenPipeError:
        return EXIT_OK
