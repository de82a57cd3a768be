"""``python -m fusion scenarios``: list the built-in scenarios, or print them as input lines for ``fuse``."""

from __future__ import annotations

import argparse
from typing import Any

from fusion.cli.options import EXIT_OK, dump


def cmd_scenarios(args: argparse.Namespace) -> int:
    from fusion.scenarios import load_scenarios, scenario_to_candidates

    for s in load_scenarios():
        if args.jsonl:
            print(dump({"id": s.id, "prompt": s.prompt, "candidates": list(s.candidates), "tags": [s.category, s.language]}))
        else:
            print(f"{s.id:28} {s.category:14} {s.language:6} {len(scenario_to_candidates(s))} candidates  {s.title}")
    return EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser("scenarios", help="list the built-in scenarios")
    p.add_argument("--jsonl", action="store_true", help="print them as input lines for `fuse`")
    p.set_defaults(func=cmd_scenarios)
