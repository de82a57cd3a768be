"""``python -m fusion export``: votes (CSV, JSON Lines), DPO pairs or SFT data from the database."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from fusion.cli.options import EXIT_OK, eprint
from fusion.errors import InputError

EXPORT_FORMATS = ("votes-csv", "votes-jsonl", "dpo", "sft", "sft-messages")


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
    eprint(f"Exported {count} {what} ({fmt}) to {where}.")
    return EXIT_OK


def register(sub: Any) -> None:
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
