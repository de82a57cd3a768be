"""Joining the placed units into the fused text, and the last pass that makes it read as one answer.

Units keep the white space of their candidate where they were adjacent in it; elsewhere the separator
follows from their kinds and break levels (no space after CJK text). Ordered lists are renumbered, so
items from different candidates neither repeat nor skip numbers. The coherence pass then takes out what
:func:`fusion.coherence.coherence_defects` blames (a heading or lead-in left without its content, a
sentence announcing a list that is not there) until nothing is left to blame.
"""

from __future__ import annotations

import re
from typing import Sequence

from fusion.coherence import coherence_defects
from fusion.fusors.extractive.context import FusionContext
from fusion.fusors.extractive.placing import has_numbered_marker
from fusion.fusors.extractive.units import PlacedUnit
from fusion.text import BLOCK_KINDS, is_cjk

_ORDERED = re.compile(r"^([ \t]*)(\d{1,3})([.)])([ \t]+)")
_FENCE_LINE = re.compile(r"^ {0,3}(?:`{3,}|~{3,})")


def coherent_text(ctx: FusionContext, placed: list[PlacedUnit], dropped: set[int]) -> str:
    """The fused text, with every unit that :func:`fusion.coherence.coherence_defects` blames taken
    out until it finds nothing: a heading or lead-in left without its content (its section was pruned,
    or the text ends on it), a sentence announcing a list that is not there or pointing at a step the
    text does not number. Taking one out can empty another (a lead-in whose only content was an empty
    item lead-in), hence the loop; each round removes at least one unit.

    A translation renders its source's structure: a colon or heading that the backbone's translation
    has itself is kept."""
    backbone = ctx.texts[ctx.backbone].strip()
    context = "\n".join(x for x in (ctx.prompt.system, ctx.prompt.text) if x)
    tolerated: set[tuple[str, str]] = set()
    if ctx.translation:
        tolerated = {(d.kind, d.text.strip()) for d in coherence_defects(backbone, context=context)}
    while True:
        if not any(not p.structural for p in placed):
            return backbone
        text, spans = render(ctx, placed, dropped)
        if not ctx.settings.coherence:
            return text
        blamed: set[int] = set()
        bared = False
        for d in coherence_defects(text, context=context):
            if (d.kind, d.text.strip()) in tolerated:
                continue
            for i, (a, b) in enumerate(spans):
                if not a <= d.start < b:
                    continue
                p = placed[i]
                if d.kind == "empty-lead-in" and _own_step(ctx, p) and not p.bare:
                    # A step of the backbone's procedure is an instruction of its own: without what it
                    # introduced it stays, as a step ("2. Choose a location"); a hole is worse. (An
                    # added one is not needed: "1) Assume the hypothesis, that is:" goes.)
                    p.bare = bared = True
                else:
                    blamed.add(i)
        if not blamed and not bared:
            return text
        dropped.update(placed[i].layout.uid for i in blamed)
        placed = [p for i, p in enumerate(placed) if i not in blamed]


def _own_step(ctx: FusionContext, p: PlacedUnit) -> bool:
    """Whether p is a numbered step of the backbone's own procedure, not an added one."""
    own_step = p.kind == "item" and has_numbered_marker(p) and not p.added
    return own_step and p.layout.candidate == ctx.backbone


def render(
    ctx: FusionContext, placed: Sequence[PlacedUnit], dropped: set[int]
) -> tuple[str, list[tuple[int, int]]]:
    """The joined text (lists renumbered, white space trimmed) and where each placed unit is in it."""
    parts: list[str] = []
    spans: list[tuple[int, int]] = []
    pos = 0
    prev: PlacedUnit | None = None
    for p in placed:
        text = p.text
        if prev is None:
            text = text.lstrip()
        else:
            sep = separator(ctx, prev, p, dropped)
            parts.append(sep)
            pos += len(sep)
            if p.kind not in BLOCK_KINDS:
                text = text.lstrip()
        spans.append((pos, pos + len(text)))
        parts.append(text)
        pos += len(text)
        prev = p
    joined, edits = renumber_edits("".join(parts))

    def moved(offset: int) -> int:
        # A renumbered item ("9." to "10.") shifts everything after its number.
        return offset + sum(new - old for at, old, new in edits if at < offset)

    lead = len(joined) - len(joined.lstrip())
    spans = [(moved(a) - lead, moved(b) - lead) for a, b in spans]
    return joined.strip(), spans


def separator(ctx: FusionContext, prev: PlacedUnit, cur: PlacedUnit, dropped: set[int]) -> str:
    """What goes between two placed units: their candidate's own white space when they were adjacent in
    it (or only dropped units stood between them), else what their kinds and break levels call for."""
    a, b = prev.layout, cur.layout
    if (
        cur.break_level is None
        and not prev.reshaped
        and not cur.reshaped
        and a.candidate == b.candidate
        and a.position < b.position
    ):
        between = ctx.rows[b.candidate][a.position + 1 : b.position]
        if not between:
            # Adjacent in their source: keep the original white space.
            return ctx.texts[b.candidate][a.unit.end : b.unit.start]
        if all(x.uid in dropped for x in between):
            brk = max([b.unit.brk] + [x.unit.brk for x in between])
            return separator_by_kind(prev, cur, brk)
    return separator_by_kind(prev, cur, cur.break_level if cur.break_level is not None else b.unit.brk)


def separator_by_kind(prev: PlacedUnit, cur: PlacedUnit, brk: int) -> str:
    """The separator for break level ``brk`` (0 same line, 1 new line, 2 new paragraph) between units of
    these kinds: blocks (items, headings, code...) always start a line."""
    a, b = prev.kind, cur.kind
    if a in BLOCK_KINDS or b in BLOCK_KINDS:
        if a == b and a in ("item", "quote"):
            return "\n\n" if brk >= 2 else "\n"
        return "\n\n"
    if brk >= 2:
        return "\n\n"
    if brk == 1:
        return "\n"
    left = prev.text.rstrip()[-1:]
    # No space after CJK text; after a Latin sentence a space, even before CJK, so the end stays visible.
    if left and (is_cjk(left) or left in "。！？」』）"):
        return ""
    return " "


def renumber_edits(text: str) -> tuple[str, list[tuple[int, int, int]]]:
    """Renumber runs of ordered list items (same indentation and delimiter) 1, 2, 3... from each run's
    first number, so items taken from different candidates neither repeat nor skip numbers. Fenced code
    is left alone; a non-indented line that is not an item ends every run. Returns the text and its edits
    as (offset of the number in ``text``, old length, new length)."""
    lines = text.split("\n")
    expected: dict[tuple[str, str], int] = {}
    edits: list[tuple[int, int, int]] = []
    in_code = False
    offset = 0
    for i, line in enumerate(lines):
        start, offset = offset, offset + len(line) + 1
        if _FENCE_LINE.match(line):
            in_code = not in_code
            expected.clear()
            continue
        if in_code:
            continue
        m = _ORDERED.match(line)
        if m is None:
            if line.strip() and not line[:1].isspace():
                expected.clear()
            continue
        indent, number, delim = m.group(1), int(m.group(2)), m.group(3)
        key = (indent, delim)
        # An item closes the runs nested deeper than it.
        for other in [k for k in expected if len(k[0]) > len(indent)]:
            del expected[other]
        if key not in expected:
            expected[key] = number
        elif number != expected[key]:
            lines[i] = f"{indent}{expected[key]}{delim}{m.group(4)}{line[m.end() :]}"
            edits.append((start + m.start(2), len(m.group(2)), len(str(expected[key]))))
        expected[key] += 1
    return "\n".join(lines), edits
