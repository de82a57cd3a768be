"""``python -m fusion export``: votes (CSV, JSON Lines), DPO pairs, SFT data, or runs as ``fusion batch``
output lines (one file from the runs several batch workers wrote to their own outputs)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from fusion.cli.options import EXIT_OK, eprint
from fusion.errors import InputError
from fusion.text import plural

EXPORT_FORMATS = ("votes-csv", "votes-jsonl", "dpo", "sft", "sft-messages", "runs")


def cmd_export(args: argparse.Namespace) -> int:
    from storage import export
    from storage.migrations import open_database

    fmt = args.format
    if args.only_winning and not fmt.startswith("sft"):
        raise InputError("--only-winning applies to the sft and sft-messages formats only.")
    if (args.per_vote or args.include_non_blind or args.keep_conflicts or args.dpo_format or args.include_judges) \
            and fmt != "dpo":
        raise InputError(
            "--per-vote, --include-non-blind, --keep-conflicts, --dpo-format and --include-judges apply to the "
            "dpo format only."
        )
    if args.excel_safe and fmt != "votes-csv":
        raise InputError("--excel-safe applies to the votes-csv format only.")
    if args.job and fmt != "runs":
        raise InputError("--job applies to the runs format only.")
    engine = open_database()
    target: Any = sys.stdout if args.output in (None, "-") else args.output
    if fmt == "votes-csv":
        count, what = export.export_votes_csv(engine, target, tag=args.tag, excel_safe=args.excel_safe), "vote"
    elif fmt == "votes-jsonl":
        count, what = export.export_votes_jsonl(engine, target, tag=args.tag), "vote"
    elif fmt == "runs":
        from storage.claims import job_run_ids
        from storage.sink import write_batch_output

        if args.job and not job_run_ids(engine, args.job):
            raise InputError(f"No batch job {args.job!r} in this database (fusion batch prints the job's id).")
        count, what = write_batch_output(engine, target, job=args.job, tag=args.tag), "run"
    elif fmt == "dpo":
        count = export.export_dpo_jsonl(
            engine, target, tag=args.tag, per_vote=args.per_vote, include_non_blind=args.include_non_blind,
            dpo_format=args.dpo_format or "standard", keep_conflicts=args.keep_conflicts,
            include_judges=args.include_judges,
        )
        what = "preference pair"
    else:
        style = "messages" if fmt == "sft-messages" else "completion"
        count = export.export_sft_jsonl(
            engine, target, tag=args.tag, style=style, only_winning=args.only_winning
        )
        what = "fused answer"
    if target is sys.stdout:
        sys.stdout.flush()
    where = "stdout" if target is sys.stdout else args.output
    eprint(f"Exported {plural(int(count), what)} ({fmt}) to {where}.")
    left_out = count.left_out() if hasattr(count, "left_out") else None
    if left_out:
        eprint(f"Left out: {left_out}.")
    return EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser(
        "export",
        help="votes (CSV, JSON Lines), DPO pairs, SFT data or batch output lines (runs) from the database",
    )
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
    p.add_argument(
        "--dpo-format", choices=["standard", "conversational"], default=None,
        help="dpo: TRL's standard format (prompt/chosen/rejected strings, the system message in a 'system' "
        "column) or its conversational one (message lists with the system message); default standard",
    )
    p.add_argument(
        "--keep-conflicts", action="store_true",
        help="dpo: keep runs whose annotators disagree (marked conflict: true) instead of leaving them out",
    )
    p.add_argument(
        "--include-judges", action="store_true",
        help="dpo: count the pairwise judge's verdicts (annotators judge:<model>) as votes too",
    )
    p.add_argument(
        "--excel-safe", action="store_true",
        help="votes-csv: prefix text that a spreadsheet would run as a formula (= + - @) with an apostrophe; "
        "off by default, so the file holds the text exactly",
    )
    p.add_argument(
        "--job", help="runs: only the runs of this batch job, in input order (fusion batch prints its id)"
    )
    p.add_argument("-o", "--output", default="-", help="output file (default: stdout)")
    p.set_defaults(func=cmd_export)
