"""Does a text read as one answer? Structural checks for text assembled from pieces of other texts.

A fusion that copies sentences and list items from several candidates can leave a heading or a lead-in
("2. Choose a location:", "You will need the following:") without what it introduced, or keep a sentence
that points at a list or a step that is no longer there. :func:`coherence_defects` finds these:

* ``empty-heading``: a Markdown heading (``#``, setext) or a bold-only line (``**Ingredients**``) with no
  content under it before the next heading of the same or a higher level, or the end;
* ``empty-lead-in``: a line or a list item ending in a colon (``:``, full-width ``：``) with no content
  under it: for a line, before the next heading or colon line of the same or a higher level (a label such
  as "Ingredients:" ranks above a sentence such as "Here is what you need:"); for a list item, before its
  next numbered sibling (or a sibling that is a lead-in too), a shallower item, a heading, or a paragraph
  past the end of the list (the closing words after the last step are not its content). A sentence
  that announces a list ("Here are some tips:") needs a list, code, a table, a quote or paragraphs opening
  with labels under it, not just prose;
* ``missing-list``: a sentence announcing a list ("the following steps", "listed below", "here are some
  tips", "as follows") with nothing of the kind after it, or pointing at one ("these steps", "the steps
  above") when the text has none;
* ``dangling-step``: a reference to a numbered step ("as mentioned in step 4") that the text does not
  number (nor the context, such as the prompt, mention).

A sentence ending in a colon directly followed by a heading or another colon line introduces it ("Here
is a recipe:" over "Ingredients:"), as does a colon line directly followed by a Markdown heading; a
heading that opens the text (not a label) is its title and heads all of it. Two labels or bold lines in a
row are siblings ("Ingredients:" then "Instructions:"): the first is empty, unless the second starts a
family of sub-labels that share its first word ("For the dough:", "For the filling:"; "Environmental
implications:" under "Single-use bottles:" and again under "Reusable bottles:"), which the first heads. A
label over a single sub-label ("Ingredients:" over "For the marinade:" alone) is still read as empty.

The structural checks (headings, colons, list markers, indentation) hold for any language, since they
go by :func:`fusion.text.split_units` (CJK bullets and the full-width colon included). The phrase cues
of ``missing-list`` are English, and so are the cues telling a short introduction ("Here's a recipe:",
"They work by:") from a label; the step words of ``dangling-step`` are English, German, Spanish,
French and Japanese; "The End" as a closing line (not a heading) is recognised in English, German,
Spanish, French and Italian.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from fusion.text import Unit, split_units, word_tokens

COLONS = (":", "：", "﹕")
HEADING_ROLES = ("heading", "lead-in", "item-lead-in")
CONTENT_ROLES = ("text", "item", "block")
# Units whose words are checked for references ("the following", "step 4"): not code or tables.
PROSE_KINDS = ("sentence", "item", "quote")
# Levels below the Markdown headings (1-6): a bold-only line, a label ("Ingredients:"), a sentence ending
# in a colon. A heading or lead-in ends where one of the same or a higher level (a lower number) starts.
BOLD_LEVEL = 7
LABEL_LEVEL = 8
LEAD_IN_LEVEL = 9
# A label is a colon line of at most this many words (and 48 characters).
LABEL_WORDS = 5

# "**Ingredients**", "__Notes:__", "**Step 2**:" on a line of their own.
_BOLD_LINE = re.compile(r"^(\*\*|__)(?P<inner>(?:(?!\1).)+?)\1[ \t]*[:：]?$")
# A bold line ending like a sentence or a salutation ("**Good luck!**", "**Best regards,**") is emphasis.
_NOT_HEADING_END = (".", "!", "?", "。", "！", "？", "…", ",", "，", "、")
_PLACEHOLDER = re.compile(r"^\[[^\]]*\]$")
_THE_END = frozenset({"the end", "ende", "das ende", "fin", "la fin", "fine"})
_TRAILING_EMPHASIS = " \t*_`"
_ORDERED_MARKER = re.compile(r"[\d①-⑳]")
# A paragraph opening with a short label ("Determine your goal: ...", "Step 1: ..."): a list written
# as paragraphs.
_LABELLED = re.compile(r"^[\s*_]*(?P<label>[^.!?:：\n]{1,60}?)[\s*_]*[:：][\s*_]*\S")

# English cues. A list noun after "the following", "here are", "... below".
_LIST_NOUNS = (
    r"(?:steps|tips|ways|ideas|options|examples|suggestions|points|things|items|ingredients|"
    r"instructions|reasons|resources|questions|recommendations|facts|strategies|rules|guidelines|methods|"
    r"factors|features|benefits|categories|types|tools|materials|activities|places|books|words|names|"
    r"stages|phases|exercises|techniques|considerations|precautions|components|elements|characteristics|"
    r"key points|list|table)"
)
_QUALIFIERS = (
    r"(?:a|an|the|some|several|few|\d+|two|three|four|five|six|seven|eight|nine|ten|more|other|additional|"
    r"list|of|quick|simple|short|basic|brief|detailed|possible|step-by-step|useful|helpful|practical|key|"
    r"main|important|common|popular|great|good|top|best|general|essential)"
)
# Announces a list, code or table, which must follow.
_ANNOUNCES_LIST = re.compile(
    r"\bthe following\s+(?:[\w-]+\s+){0,2}?" + _LIST_NOUNS + r"\b"
    r"|\bthe following\s*(?::|\bare\b|\binclude)"
    r"|\b" + _LIST_NOUNS + r"\s+(?:listed\s+)?below\b"
    r"|\blisted below\b"
    r"|\bhere(?:'s|’s| is| are)\s+(?:" + _QUALIFIERS + r"\s+){0,4}" + _LIST_NOUNS + r"\b",
    re.IGNORECASE,
)
# Announces something (a list or not), which must follow.
_ANNOUNCES = re.compile(
    r"\bas follows\b"
    r"|\b(?:shown|outlined|described|given|detailed|provided|summari[sz]ed|included|presented|see|found)\s+"
    r"below\b"
    r"|\bbelow\s+(?:are|is)\b"
    r"|\bthe following is\b",
    re.IGNORECASE,
)
# A short colon line that introduces rather than names: "Here's a recipe:", "They work by:" (English).
_INTRODUCES = re.compile(
    r"^[\s*_]*(?:here(?:'s|’s| is| are)|sure|okay|ok|yes|so|now|then|next|finally)\b"
    r"|\b(?:is|are|was|were|be|by|as|like|include|includes|including|following|follows|below|to|with|for|"
    r"of|from|that|this|these|such)[\s*_]*[:：][\s*_]*$",
    re.IGNORECASE,
)
# Points at a list that must be somewhere in the text ("these steps" may point forward or back) ...
_POINTS_AT_LIST = re.compile(
    r"\b(?:these|those)\s+(?:[\w-]+\s+)?(?:steps|tips|instructions|guidelines|suggestions|strategies|"
    r"items|points|options|ideas|methods|rules|recommendations)\b",
    re.IGNORECASE,
)
# ... or before the reference.
_POINTS_BACK = re.compile(
    r"\b(?:listed|mentioned|shown|outlined|described|given|detailed|provided)\s+above\b"
    r"|\bthe\s+(?:steps|tips|list|items|points|options|ideas|instructions|suggestions|methods)\s+above\b"
    r"|\bthe above\s+(?:steps|tips|list|items|points|options|ideas|instructions|suggestions|methods)\b",
    re.IGNORECASE,
)
# "step 4", "steps 2-3", "Schritt 4", "paso 4", "étape 4", "ステップ4", "手順4".
_STEP_REF = re.compile(
    r"(?:\b(?:steps?|schritte?n?|pasos?|étapes?|etapas?)\s*(?:#|no\.?\s*|nr\.?\s*)?"
    r"|ステップ\s*|手順\s*)"
    r"(?P<a>\d{1,3})(?:\s*(?:-|–|to|and|&|or|bis|und|y|a|et)\s*(?P<b>\d{1,3})\b)?",
    re.IGNORECASE,
)
_NUMBER_AT_START = re.compile(r"^\s*[(（]?(\d{1,3})")


@dataclass(frozen=True)
class Block:
    """A line of prose (its sentences), a list item, a heading, or a code block, table, quote or rule.

    ``role`` is ``heading`` (``level`` 1-6 for Markdown headings, 7 for a bold-only line, 8 for a label: a
    short line ending in a colon, "Ingredients:"), ``lead-in`` (a sentence ending in a colon, level 9),
    ``item-lead-in`` (a list item ending in a colon), ``text`` (prose), ``item``, ``block`` (code, table,
    quote) or ``rule``. ``units`` are indices into the units the block was built from; ``brk`` is the first
    unit's break (0 same line, 1 new line, 2 new paragraph); ``colon``: the block ends in a colon."""

    role: str
    units: tuple[int, ...]
    start: int
    end: int
    indent: int
    brk: int
    level: int = 0
    ordered: bool = False
    colon: bool = False
    key: str = ""  # a heading's first word, case-folded: sub-headings of one family share it

    @property
    def heading_like(self) -> bool:
        return self.role in HEADING_ROLES


@dataclass(frozen=True)
class LeadIn:
    """A heading or lead-in and the units that count as its content (none: it stands without them)."""

    block: Block
    content: tuple[int, ...]
    # The part of the content a colon line itself introduces: its first list, not the paragraphs or other
    # lists after it (for headings, the whole content).
    own: tuple[int, ...] = ()

    @property
    def unit(self) -> int:
        """Index of the unit that carries the heading or the colon (the last one of a prose line)."""
        return self.block.units[-1]


@dataclass(frozen=True)
class Defect:
    """One place where the text does not read as one answer. ``start``/``end`` delimit the unit to blame
    (the heading, the lead-in, the sentence with the reference) in the text checked."""

    kind: str
    start: int
    end: int
    text: str
    detail: str

    def __str__(self) -> str:
        excerpt = self.text if len(self.text) <= 80 else self.text[:77] + "..."
        return f"{self.kind} at {self.start}: {excerpt!r} ({self.detail})"


def _strip_emphasis(text: str) -> str:
    return text.rstrip().rstrip(_TRAILING_EMPHASIS).rstrip()


def ends_with_colon(text: str) -> bool:
    """Whether text ends in a colon of any script, emphasis and white space after it ignored."""
    return _strip_emphasis(text).endswith(COLONS)


def bold_heading(line: str) -> bool:
    """Whether a line is bold text only and reads as a heading: not a bold sentence or salutation
    ("**Good luck!**", "**Best regards,**"), a placeholder ("**[Your Name]**") or "**The End**"."""
    m = _BOLD_LINE.match(line.strip())
    if not m:
        return False
    inner = m.group("inner").strip().rstrip(":：").rstrip(_TRAILING_EMPHASIS).strip()
    if not inner or inner.endswith(_NOT_HEADING_END) or _PLACEHOLDER.match(inner):
        return False
    return inner.casefold() not in _THE_END


def _label(line: str) -> bool:
    """A short line ending in a colon that names what follows ("Ingredients:", "For the sauce:", "材料："),
    as opposed to a sentence introducing it ("Here is what you will need:", "They work by:")."""
    if len(word_tokens(line)) > LABEL_WORDS or len(line.strip()) > 48:
        return False
    return not (_INTRODUCES.search(line) or _ANNOUNCES_LIST.search(line) or _ANNOUNCES.search(line))


def _labelled(text: str) -> bool:
    m = _LABELLED.match(text)
    return bool(m) and len(word_tokens(m.group("label"))) <= 6


def _first_word(text: str) -> str:
    words = word_tokens(text)
    return words[0].norm if words else ""


def _heading_level(unit: Unit) -> int:
    marker = unit.marker.strip()
    if marker.startswith("#"):
        return len(marker)
    # A setext heading: its underline is the unit's last line.
    return 1 if unit.text.rstrip().endswith("=") else 2


def outline(text: str, units: Sequence[Unit] | None = None) -> list[Block]:
    """The blocks of ``text`` in order (from ``units``, which must be :func:`fusion.text.split_units` of
    this very text; computed when not given). Sentences sharing a line form one block."""
    if units is None:
        units = split_units(text)
    blocks: list[Block] = []
    i = 0
    while i < len(units):
        u = units[i]
        line_start = text.rfind("\n", 0, u.start) + 1
        indent = len(text[line_start : u.start].expandtabs(4))
        if u.kind == "sentence":
            j = i
            while j + 1 < len(units) and units[j + 1].kind == "sentence" and units[j + 1].brk == 0:
                j += 1
            line = text[u.start : units[j].end]
            colon = ends_with_colon(units[j].text)
            if bold_heading(line):
                role, level = "heading", BOLD_LEVEL
            elif colon and i == j and _label(line):
                role, level = "heading", LABEL_LEVEL
            elif colon:
                role, level = "lead-in", LEAD_IN_LEVEL
            else:
                role, level = "text", 0
            span = tuple(range(i, j + 1))
            key = _first_word(line) if role == "heading" else ""
            end = units[j].end
            blocks.append(Block(role, span, u.start, end, indent, u.brk, level, colon=colon, key=key))
            i = j + 1
            continue
        if u.kind == "heading":
            level = _heading_level(u)
            colon = ends_with_colon(u.text)
            key = _first_word(u.content)
            blocks.append(Block("heading", (i,), u.start, u.end, indent, u.brk, level, colon=colon, key=key))
        elif u.kind == "item":
            marker = u.marker.expandtabs(4)
            depth = len(marker) - len(marker.lstrip())
            ordered = bool(_ORDERED_MARKER.search(u.marker))
            colon = ends_with_colon(u.content)
            role = "item-lead-in" if colon else "item"
            blocks.append(Block(role, (i,), u.start, u.end, depth, u.brk, 0, ordered, colon))
        elif u.kind == "rule":
            blocks.append(Block("rule", (i,), u.start, u.end, indent, u.brk))
        else:  # code, table, quote
            blocks.append(Block("block", (i,), u.start, u.end, indent, u.brk))
        i += 1
    return blocks


def _closes(lead: Block, b: Block) -> bool:
    """Whether block b ends the scope of the heading or lead-in ``lead``."""
    if lead.role == "item-lead-in":
        # A Markdown or bold heading, a shallower item, or the next step of a numbered list (the next
        # bullet only when it is a lead-in too: "Key launches included:" may be followed by sibling
        # bullets that are its items).
        if b.role == "heading":
            return b.level <= BOLD_LEVEL
        if b.role in ("item", "item-lead-in"):
            if b.indent != lead.indent:
                return b.indent < lead.indent
            return b.ordered == lead.ordered and (lead.ordered or b.role == "item-lead-in")
        return False
    if b.role in ("heading", "lead-in") and b.level <= lead.level:
        return True
    # A line indented into a list item ends where the item does.
    return lead.level > 6 and lead.indent >= 2 and b.role != "block" and b.indent < lead.indent


def _peer_counts(blocks: Sequence[Block]) -> Counter[tuple[int, str]]:
    """How many bold lines or labels of each level start with each first word."""
    return Counter((b.level, b.key) for b in blocks if b.role == "heading" and b.level >= BOLD_LEVEL)


def _scope_end(
    blocks: Sequence[Block], i: int, tight: bool = False, peers: Counter[tuple[int, str]] | None = None
) -> int:
    """Index of the first block after blocks[i] that is no longer under it (``tight``: no longer part of
    the one list a colon line introduces)."""
    lead = blocks[i]
    if i == 0 and lead.role == "heading" and not lead.colon:
        return len(blocks)  # a title ("# Guide", "**Lingua Nova**") heads the whole text
    nxt = i + 1
    while nxt < len(blocks) and blocks[nxt].role == "rule":
        nxt += 1
    if nxt < len(blocks) and lead.colon and lead.role != "item-lead-in":
        after = blocks[nxt]
        if (lead.role == "lead-in" and after.role in ("heading", "lead-in")) or (
            after.role == "heading" and after.level < BOLD_LEVEL
        ):
            # "Here is a recipe:" over "Ingredients:", "Steps:" over "### 1. Mix": the first introduces
            # the second and ends no earlier than it.
            return max(_scope_end(blocks, nxt, tight, peers), _own_scope_end(blocks, i, tight, peers))
        same_kind = after.role == "heading" and after.level == lead.level
        if lead.role == "heading" and lead.level >= BOLD_LEVEL and same_kind:
            if peers is None:
                peers = _peer_counts(blocks)
            level = lead.level
            if after.key != lead.key and peers[level, after.key] > 1 and peers[level, lead.key] == 1:
                # "Single-use bottles:" over "Environmental implications:", a label that comes again under
                # "Reusable bottles:": a family of sub-labels (they share a first word), and their parent.
                # Not when the first recurs as well ("Verse 1:", "Chorus:", "Verse 2:", "Chorus:"): peers.
                return _family_end(blocks, i, after.key)
    return _own_scope_end(blocks, i, tight, peers)


def _family_end(blocks: Sequence[Block], i: int, key: str) -> int:
    lead = blocks[i]
    for j in range(i + 1, len(blocks)):
        b = blocks[j]
        if b.role not in ("heading", "lead-in"):
            continue
        if b.level < lead.level or (b.level == lead.level and b.key != key):
            return j
    return len(blocks)


def _own_scope_end(
    blocks: Sequence[Block], i: int, tight: bool = False, peers: Counter[tuple[int, str]] | None = None
) -> int:
    lead = blocks[i]
    first_item: Block | None = None
    j = i + 1
    while j < len(blocks):
        b = blocks[j]
        if _closes(lead, b) or (lead.role == "item-lead-in" and _leaves_list(blocks, i, j)):
            return j
        if tight and lead.colon and lead.role in ("heading", "lead-in"):
            # What a colon line itself introduces is one list: it ends with a paragraph after it, or a
            # list of the other kind ("You will need:" bullets, then numbered steps).
            if first_item is None and b.role in ("item", "item-lead-in"):
                first_item = b
            elif first_item is not None and b.indent <= first_item.indent and b.brk >= 2:
                if b.role in ("text", "lead-in") or (b.role != "block" and b.ordered != first_item.ordered):
                    return j
        if b.role == "item-lead-in" and lead.role != "item-lead-in":
            # A colon line or heading inside that item belongs to the item, not to us.
            j = max(j + 1, _scope_end(blocks, j, peers=peers))
            continue
        j += 1
    return len(blocks)


def _sibling(lead: Block, b: Block) -> bool:
    return b.role in ("item", "item-lead-in") and b.indent == lead.indent and b.ordered == lead.ordered


def _ends_list(lead: Block, b: Block) -> bool:
    """Whether b is past the list of item ``lead``: a Markdown or bold heading, or a shallower item."""
    if b.role == "heading":
        return b.level <= BOLD_LEVEL
    return b.role in ("item", "item-lead-in") and b.indent < lead.indent


def _leaves_list(blocks: Sequence[Block], i: int, j: int) -> bool:
    """Whether blocks[j], a paragraph after a blank line not indented into list item blocks[i], is past the
    end of that item's list: no sibling follows it, and the list's other items carry no paragraphs either
    (numbered headings over paragraphs, "1. Tea cup breeds:" then a paragraph, are a style of their own).
    So the closing words after the last step ("That's it! Have fun.") are not that step's content."""
    lead, b = blocks[i], blocks[j]
    if b.role not in ("text", "lead-in") or b.brk < 2 or b.indent > lead.indent:
        return False
    for k in range(j + 1, len(blocks)):
        c = blocks[k]
        if _sibling(lead, c):
            return False  # the list goes on after the paragraph: it is inside
        if _ends_list(lead, c):
            break
    for k in range(i - 1, -1, -1):
        c = blocks[k]
        if _ends_list(lead, c):
            break
        if _sibling(lead, c) and k + 1 < len(blocks):
            after = blocks[k + 1]
            if after.role in ("text", "lead-in") and after.brk >= 2 and after.indent <= lead.indent:
                return False  # an earlier item has a paragraph under it: this list is written that way
    return True


def lead_ins(text: str, units: Sequence[Unit] | None = None) -> list[LeadIn]:
    """Every heading and lead-in of ``text`` with the units that count as its content: prose, list items,
    code, tables and quotes in its scope (headings and lead-ins nested in it are not content themselves,
    but their content is). For a lead-in that announces a list ("Here are some tips:", "the following
    steps:") prose counts only when it is written as a list (paragraphs opening with a label).
    ``LeadIn.own`` is the part a colon line itself introduces (its first list). ``units`` as for
    :func:`outline`."""
    if units is None:
        units = split_units(text)
    blocks = outline(text, units)
    peers = _peer_counts(blocks)
    out: list[LeadIn] = []
    for i, b in enumerate(blocks):
        if not b.heading_like:
            continue
        wants_list = b.colon and bool(_ANNOUNCES_LIST.search(text[b.start : b.end]))

        def content(end: int) -> tuple[int, ...]:
            return tuple(
                u
                for j in range(i + 1, end)
                if blocks[j].role in CONTENT_ROLES and (not wants_list or _listlike(blocks[j], units))
                for u in blocks[j].units
            )

        full, own = _scope_end(blocks, i, peers=peers), _scope_end(blocks, i, tight=True, peers=peers)
        out.append(LeadIn(b, content(full), content(own)))
    return out


def _step_numbers(m: re.Match[str]) -> set[int]:
    a = int(m.group("a"))
    b = int(m.group("b")) if m.group("b") else a
    if b < a or b - a > 20:
        b = a
    return set(range(a, b + 1))


def _defined_steps(units: Sequence[Unit], blocks: Sequence[Block]) -> set[int]:
    """The step numbers a text defines: its numbered list items, and "Step 4" opening a heading, an item,
    a line or a sentence."""
    found: set[int] = set()
    for b in blocks:
        for k in b.units:
            u = units[k]
            if u.kind == "code":
                continue
            if u.kind == "item" and b.ordered:
                m = _NUMBER_AT_START.match(u.marker)
                if m:
                    found.add(int(m.group(1)))
            m = _STEP_REF.match(u.content.lstrip(" \t*_#"))
            if m:
                found.update(_step_numbers(m))
    return found


def _listlike(b: Block, units: Sequence[Unit]) -> bool:
    """Whether a block is (part of) a list, code, a table, a quote, a section or a paragraph that opens
    with a label ("Determine your goal: ..."): what an announced list can be."""
    if b.role in ("item", "item-lead-in", "block", "heading", "rule"):
        return True
    return b.role == "text" and _labelled(units[b.units[0]].content)


def _after_colon(body: str, m: re.Match[str]) -> bool:
    """Whether the sentence carries on after a colon past the cue ("the following link: [url]")."""
    rest = body[m.end() :]
    k = min((rest.find(c) for c in COLONS if c in rest), default=-1)
    return k >= 0 and bool(rest[k + 1 :].strip(" \t*_"))


def coherence_defects(text: str, *, context: str = "") -> list[Defect]:
    """Everything in ``text`` that does not read as one answer (see the module's description), in the
    order of the text. ``context`` (the prompt, say) may number steps the text refers to ("In step 3 of
    your recipe...")."""
    units = split_units(text)
    blocks = outline(text, units)
    defects: list[Defect] = []

    def add(kind: str, u: Unit, detail: str) -> None:
        defects.append(Defect(kind, u.start, u.end, u.text, detail))

    for lead in lead_ins(text, units):
        if lead.content:
            continue
        u = units[lead.unit]
        where = "it ends the text" if lead.block is blocks[-1] else "no content under it"
        heading = lead.block.role == "heading" and not lead.block.colon
        add("empty-heading" if heading else "empty-lead-in", u, where)

    listlike = [_listlike(b, units) for b in blocks]
    for i, b in enumerate(blocks):
        if b.heading_like:
            continue  # a colon line is checked as a lead-in above
        for k in b.units:
            if units[k].kind not in PROSE_KINDS:
                continue  # code and tables say "the following" or "step 3" for their own reasons
            body = units[k].content
            announced = _ANNOUNCES_LIST.search(body)
            if announced and not _after_colon(body, announced) and not any(listlike[i + 1 :]):
                add("missing-list", units[k], "announces a list that does not follow")
            elif (
                (m := _ANNOUNCES.search(body))
                and not _after_colon(body, m)
                and (i, k) == (len(blocks) - 1, b.units[-1])
            ):
                add("missing-list", units[k], "announces what follows, and nothing does")
            elif _POINTS_BACK.search(body) and not any(listlike[:i]):
                add("missing-list", units[k], "refers to a list above that is not there")
            elif _POINTS_AT_LIST.search(body) and not any(listlike):
                add("missing-list", units[k], "refers to a list the text does not have")

    defined = _defined_steps(units, blocks)
    if context:
        defined |= {n for m in _STEP_REF.finditer(context) for n in _step_numbers(m)}
    for b in blocks:
        for k in b.units:
            if units[k].kind not in PROSE_KINDS:
                continue  # "# step 3: ..." in a code comment is the code's business, not a reference
            body = units[k].content
            opening = len(body) - len(body.lstrip(" \t*_#"))
            for m in _STEP_REF.finditer(body):
                if m.start() == opening:
                    continue  # "Step 4: ..." defines step 4
                missing = sorted(_step_numbers(m) - defined)
                if missing:
                    detail = f"refers to step {missing[0]}, which the text does not number"
                    add("dangling-step", units[k], detail)
                    break
    defects.sort(key=lambda d: (d.start, d.kind))
    return defects


def is_coherent(text: str, *, context: str = "") -> bool:
    """Whether :func:`coherence_defects` finds nothing."""
    return not coherence_defects(text, context=context)
