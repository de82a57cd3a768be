"""``python -m fusion attribute``: JSON Lines of {candidates, fused} -> spans, shares, copied fraction."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from fusion.cli.options import EXIT_FAILED, EXIT_OK, dump, eprint, open_in, open_out
from fusion.errors import FusionError, InputError
from fusion.jsonl import iter_json_lines


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
    out = open_out(args.output)
    failures = 0
    try:
        for lineno, obj, error in iter_json_lines(open_in(args.input)):
            if error is None:
                try:
                    out.write(dump(attribute_record(obj or {})) + "\n")
                    out.flush()
                    continue
                except FusionError as exc:
                    error = str(exc)
            failures += 1
            eprint(f"line {lineno}: {error}")
    finally:
        if out is not sys.stdout:
            out.close()
    return EXIT_FAILED if failures else EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser("attribute", help="JSON Lines of {candidates, fused} -> spans, shares, copied fraction")
    p.add_argument("input", nargs="?", default="-")
    p.add_argument("-o", "--output")
    p.set_defaults(func=cmd_attribute)
