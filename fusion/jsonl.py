"""JSON Lines shared by the CLI, the batch runner and the app's upload: read lines leniently, report each bad
line by number, never stop at the first one; write lines that UTF-8 can always encode."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Iterable, Iterator, TextIO

from fusion.errors import InputError
from fusion.types import MAX_N
from fusion.validate import check_candidate_texts, check_prompt

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass
class FuseRecord:
    """One input line of ``fuse``: ``{"id"?, "prompt", "candidates": [text, ...], "tags"?}``."""

    id: Any
    prompt: str
    candidates: list[str]
    tags: list[str] = field(default_factory=list)
    line: int = 0


def iter_json_lines(
    lines: Iterable[str] | Iterable[bytes] | TextIO | BinaryIO,
) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """Yield (line number, object, error) for every non-blank line; a bad line yields an error, not an exception.

    Byte lines are decoded one at a time, so one line of bad UTF-8 spoils only itself.
    """
    lineno = 0
    for raw in lines:
        lineno += 1
        if isinstance(raw, bytes):
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                yield lineno, None, f"not valid UTF-8 ({exc.reason} at byte {exc.start})"
                continue
        else:
            line = raw.lstrip("\ufeff") if lineno == 1 else raw
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield lineno, None, f"not valid JSON ({exc.msg} at column {exc.colno})"
            continue
        except RecursionError:
            yield lineno, None, "JSON nested too deeply"
            continue
        if not isinstance(obj, dict):
            yield lineno, None, f"expected a JSON object, got {type(obj).__name__}"
            continue
        yield lineno, obj, None


def fuse_record(obj: dict[str, Any], line: int, *, min_candidates: int = 1, max_candidates: int = MAX_N) -> FuseRecord:
    """Validate one parsed line. Raises InputError naming what is wrong."""
    prompt = obj.get("prompt")
    if not isinstance(prompt, str):
        raise InputError("'prompt' is missing or not a string")
    check_prompt(prompt)
    if "candidates" not in obj:
        raise InputError("'candidates' is missing")
    texts = check_candidate_texts(obj["candidates"], low=min_candidates, high=max_candidates)
    tags = obj.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise InputError("'tags' must be a list of strings")
    rid = obj.get("id", line)
    if not isinstance(rid, (str, int)) or isinstance(rid, bool):
        raise InputError("'id' must be a string or a number")
    return FuseRecord(id=rid, prompt=prompt, candidates=texts, tags=list(tags), line=line)


def parse_fuse_text(
    text: str, *, min_candidates: int = 1, max_candidates: int = MAX_N
) -> tuple[list[FuseRecord], list[str]]:
    """Parse a whole uploaded file: valid records, and one message per bad line ("line 3: ...")."""
    records: list[FuseRecord] = []
    errors: list[str] = []
    for lineno, obj, error in iter_json_lines(text.splitlines()):
        if error is None:
            try:
                records.append(fuse_record(obj or {}, lineno, min_candidates=min_candidates, max_candidates=max_candidates))
                continue
            except InputError as exc:
                error = str(exc)
        errors.append(f"line {lineno}: {error}")
    return records, errors


def replace_lone_surrogates(text: str) -> str:
    """``text`` with every lone surrogate (possible in decoded model output; UTF-8 cannot encode one) made
    U+FFFD; unchanged when it has none."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return _LONE_SURROGATE.sub("\ufffd", text)


def storable_text(value: str) -> str:
    """``value`` unchanged unless it holds characters a database refuses: a lone surrogate, which UTF-8
    cannot encode, or NUL, which PostgreSQL text cannot hold. Both become U+FFFD, on every database, so a
    run reads back the same from SQLite and PostgreSQL. The batch runner applies it to its input too, so
    an output line says what the database holds."""
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    return replace_lone_surrogates(value)


def json_line(record: dict[str, Any]) -> str:
    """One output line: strict JSON (NaN refused), non-ASCII kept as is, lone surrogates replaced, then a
    newline. (``json.dumps`` escapes NUL and other control characters, so the line holds none.)"""
    return replace_lone_surrogates(json.dumps(record, ensure_ascii=False, allow_nan=False)) + "\n"
