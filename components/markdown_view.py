"""Model answers rendered as Markdown, safely, with character ranges of the source drawn over the result.

Render-only. LLM answers are Markdown; showing ``**Keep most runs easy.**`` as typed is hard to read, so
this module renders it with markdown-it-py (CommonMark, plus GitHub-style tables and strikethrough) into
plain HTML for ``st.html`` and the standalone report.

Model text is untrusted:

- raw HTML is never passed through (markdown-it's ``html`` option is off, so ``<script>`` is text) and every
  piece of text and every attribute value is escaped here (``esc``), whatever markdown-it would do;
- links are kept only for absolute ``http``/``https`` URLs, open in a new tab with
  ``rel="noopener noreferrer"``; any other link (``javascript:``, ``data:``, ``vbscript:``, ``mailto:``,
  relative paths) is left as the text that was typed;
- images are never loaded: an image shows as ``[image: alt text]``.

Character ranges ("marks") of the *source* are drawn over the rendered text: every rendered character is
traced back to the source character it came from, and each run of rendered text is wrapped in the
``<span>`` of the mark covering that source character. A mark that crosses a Markdown construct (a list
item boundary, emphasis, a code fence) is split there, so every shown character of a marked range keeps its
span; markup that is not shown (``**``, ``- ``, ``#``, fences, link targets) simply has nothing to draw.
The same machinery serves the fused answer coloured by attribution (:func:`attributed_markdown_html`) and a
candidate with the ranges the fusion kept, edited or dropped (:func:`markdown_html` with ``ranges``).

How the tracing works: markdown-it gives blocks their line ranges but no character offsets for inline
content, so the writer walks the tokens in document order with a cursor into the source that only moves
forward. Unshown markup is stepped over where it must be (list markers, ``#``, ``>``, emphasis delimiters,
backticks, link and image targets and titles, parsed with markdown-it's own helpers), so the next shown
text must start at the cursor, after indentation, ``>`` or ``|`` at most; it is found there by exact search.
Escapes (``\\*``) and entities (``&amp;``) stay their own tokens (markdown-it's ``text_join`` rule is
disabled) so their typed spelling is known; a code span's content is matched inside its own backticks
(line ends show as spaces). Where shown text is not a verbatim copy of its source (a table's escaped pipe,
a percent-decoded autolink, a tab expanded into spaces) its characters are matched one by one close to the
cursor; one that matches nothing takes the cursor's position (an image's ``[image: `` and ``]`` are traced
to the typed ``![`` and ``]``). The shown text never depends on the tracing: it is the same, marked or not.

Newlines are written as ``&#10;`` and no raw line break is emitted (see ``attribution_view``: ``st.html``
dedents and strips its input). Styles are inline, so the markup looks the same in ``st.html``, in the
report and anywhere else; headings are scaled down (an answer's ``#`` is a little larger than its text,
never as large as the page title) and shifted two levels down (``#`` is ``<h3>``) so an answer cannot
outrank the page's own headings.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from components import palette
from components.attribution_view import TEXT_CLASS, _span_style, esc, span_tooltip, tile
from fusion.types import Attribution

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token

MARKDOWN_CLASS = "fx-md"
UNIT_STATUSES = ("kept", "edited", "dropped")

# What a reader is told about each unit of a candidate in the "what the fusion kept and dropped" view.
UNIT_TOOLTIPS = {
    "kept": "kept in the fused answer",
    "edited": "kept in the fused answer, with edits",
    "dropped": "dropped from the fused answer",
}
UNIT_STYLES = {
    "kept": "",
    "edited": "text-decoration:underline dashed;text-decoration-color:#b45309;text-underline-offset:3px;",
    "dropped": f"opacity:{palette.FADED_OPACITY + 0.15};text-decoration:line-through;",
}

_SAFE_HREF = re.compile(r"https?://", re.IGNORECASE)
_ATTR_NAME = re.compile(r"[a-z][a-z0-9-]*\Z")
_TEXT_ALIGN = re.compile(r"text-align:(left|right|center)\Z")
# Characters that may stand unshown between the cursor and the next shown text (indentation, blockquote
# ">", table "|"), and how far past them the characters of text that is not a verbatim copy of its source
# (a table's escaped pipe, a decoded autolink, a tab expanded into spaces) are looked for.
_LOOKAHEAD = 12
_FREE = frozenset(" \t>|")

_MONO = "ui-monospace,SFMono-Regular,Menlo,Consolas,'Liberation Mono',monospace"
_RULE = "rgba(128,128,128,0.45)"
_WRAPPER_STYLE = "white-space:normal;overflow-wrap:break-word;word-break:normal;line-height:1.6;"
_STYLES = {
    "p": "margin:0 0 0.6em 0;",
    "blockquote": f"margin:0 0 0.6em 0;padding:0.1em 0 0.1em 0.8em;border-left:3px solid {_RULE};",
    "ul": "margin:0 0 0.6em 0;padding-left:1.5em;",
    "ol": "margin:0 0 0.6em 0;padding-left:1.7em;",
    "li": "margin:0.1em 0;",
    "pre": (
        "margin:0 0 0.6em 0;padding:0.5em 0.7em;border-radius:6px;background:rgba(128,128,128,0.12);"
        f"overflow-x:auto;white-space:pre;overflow-wrap:normal;font-family:{_MONO};font-size:0.85em;"
        "line-height:1.45;"
    ),
    "code": (
        f"font-family:{_MONO};font-size:0.88em;background:rgba(128,128,128,0.15);border-radius:3px;"
        "padding:0 0.2em;"
    ),
    "pre code": "font-family:inherit;font-size:inherit;background:none;padding:0;",
    "table": (
        "border-collapse:collapse;display:block;width:max-content;max-width:100%;overflow-x:auto;"
        "margin:0 0 0.6em 0;font-size:0.92em;"
    ),
    "th": (
        f"border:1px solid {_RULE};padding:0.2em 0.5em;font-weight:600;background:rgba(128,128,128,0.1);"
        "text-align:start;"
    ),
    "td": f"border:1px solid {_RULE};padding:0.2em 0.5em;",
    "hr": f"border:none;border-top:1px solid {_RULE};margin:0.8em 0;",
    "a": "text-decoration:underline;",
    "img": "font-style:italic;opacity:0.8;",
}
_HEADING_SIZES = {1: "1.2em", 2: "1.1em", 3: "1em", 4: "0.95em", 5: "0.95em", 6: "0.95em"}
_HEADING_STYLE = "font-weight:700;line-height:1.3;margin:0.8em 0 0.35em 0;padding:0;"
# Markdown heading level L becomes <h(L+2)>, capped at <h6>: the host page keeps <h1> and <h2> to itself.
_HEADING_SHIFT = 2

# Block tags that may carry dir="auto": each paragraph of a mixed-language answer finds its own direction.
_DIR_AUTO = {"p", "li", "blockquote", "th", "td", "h3", "h4", "h5", "h6"}
_SIMPLE_INLINE = {
    "em_open": "<em>", "em_close": "</em>", "strong_open": "<strong>", "strong_close": "</strong>",
    "s_open": "<s>", "s_close": "</s>",
}  # fmt: skip


@dataclass(frozen=True)
class Mark:
    """HTML attributes for the rendered text of the source characters ``start`` to ``end``.

    ``attrs`` are (name, value) pairs put on a ``<span>`` around that text; values are escaped here, names
    must be plain lowercase attribute names and never event handlers.
    """

    start: int
    end: int
    attrs: tuple[tuple[str, str], ...]


# --- public rendering functions -------------------------------------------------------------------------


def render_marked_markdown(text: str, marks: Sequence[Mark] = ()) -> str:
    """``text`` rendered as Markdown inside ``<div class="fx-md" dir="auto">``, ``marks`` drawn over it.

    Marks are source character ranges (offsets into ``text``); overlapping marks are cut so the one that
    starts first wins, out-of-range offsets are clamped. Every rendered character whose source offset lies
    in a mark sits in exactly one ``<span>`` carrying that mark's attributes; the rest is plain. The shown
    text is the same with or without marks.
    """
    return _render(text, _compile_marks(marks, len(text)))


def markdown_html(text: str, *, ranges: Iterable[Any] | None = None) -> str:
    """Untrusted Markdown as safe HTML: ``<div class="fx-md" dir="auto">`` with the rendered blocks.

    ``ranges`` marks what the fusion did with parts of a candidate: (start, end, status) triples, or
    objects with ``start``, ``end`` and ``status`` attributes, with character offsets into ``text`` and
    status ``kept``, ``edited`` or ``dropped``. Each marked run of rendered text is wrapped in
    ``<span class="fx-unit fx-unit-STATUS" data-status="STATUS" title="...">``: dropped text is faded and
    struck through, edited text has a dashed underline, kept text looks as usual. Unmarked text is plain.
    """
    marks = [] if ranges is None else [unit_mark(*_unit_fields(u)) for u in ranges]
    return render_marked_markdown(text, marks)


def attributed_markdown_html(
    fused: str,
    attribution: Attribution,
    labels: Sequence[str],
    *,
    highlight: int | None = None,
) -> str:
    """The fused text rendered as Markdown, every attributed span drawn over it.

    The counterpart of ``attribution_html`` (same wrapper classes ``fx-attr`` / ``fx-attr-text`` and
    ``data-highlight``, same ``<span class="fx-span fx-KIND">`` with ``data-kind``, ``data-sources``,
    ``title`` = ``data-tip``, ``data-hl`` and colours), except that a span is split wherever the rendering
    breaks it up, and markup characters that are not shown have no span. With ``highlight`` set to a
    candidate index, that candidate's spans get ``data-hl="1"`` and bold text; all others fade.
    """
    marks = [
        attribution_mark(start, end, sources, labels, highlight=highlight)
        for start, end, sources in tile(fused, attribution.spans)
    ]
    hl_attr = f' data-highlight="{int(highlight)}"' if highlight is not None else ""
    # The inner div is the text container that attribution_html also has (tests and pages select it).
    body = _render(fused, _compile_marks(marks, len(fused)), extra_class=TEXT_CLASS)
    return (
        f'<div class="fx-attr fx-attr-md"{hl_attr} style="line-height:1.75;font-size:0.95rem;">{body}</div>'
    )


def attribution_mark(
    start: int, end: int, sources: Sequence[int], labels: Sequence[str], *, highlight: int | None = None
) -> Mark:
    """The mark of one attribution piece: the attributes ``attribution_html`` gives its ``<span>``."""
    sources = list(sources)
    kind = "novel" if not sources else ("single" if len(sources) == 1 else "shared")
    lit = highlight is not None and highlight in sources
    dim = highlight is not None and not lit
    tip = span_tooltip(sources, labels)
    attrs: list[tuple[str, str]] = [
        ("class", f"fx-span fx-{kind}"),
        ("data-kind", kind),
        ("data-sources", ",".join(map(str, sources))),
        ("title", tip),
        ("data-tip", tip),
    ]
    if lit:
        attrs.append(("data-hl", "1"))
    attrs.append(("style", _span_style(sources, dim=dim, strong=lit)))
    return Mark(start, end, tuple(attrs))


def unit_mark(start: int, end: int, status: str) -> Mark:
    """The mark of one unit of a candidate that the fusion ``kept``, ``edited`` or ``dropped``."""
    if status not in UNIT_STATUSES:
        raise ValueError(f"unit status must be one of {', '.join(UNIT_STATUSES)}; got {status!r}")
    attrs: list[tuple[str, str]] = [
        ("class", f"fx-unit fx-unit-{status}"),
        ("data-status", status),
        ("title", UNIT_TOOLTIPS[status]),
    ]
    if UNIT_STYLES[status]:
        attrs.append(("style", UNIT_STYLES[status]))
    return Mark(int(start), int(end), tuple(attrs))


def link_allowed(url: str) -> bool:
    """Whether a (normalised) link target may become a clickable link: absolute http(s) URLs only."""
    return bool(_SAFE_HREF.match(url)) and not any(c in url for c in "\"'<> \t\r\n\\")


# --- marks --------------------------------------------------------------------------------------------


def _unit_fields(unit: Any) -> tuple[int, int, str]:
    if hasattr(unit, "status"):
        return int(unit.start), int(unit.end), str(unit.status)
    start, end, status = unit
    return int(start), int(end), str(status)


class _Marks:
    """Non-overlapping marks sorted by start, with their ``<span ...>`` start tags ready."""

    __slots__ = ("starts", "ends", "tags")

    def __init__(self, starts: list[int], ends: list[int], tags: list[str]) -> None:
        self.starts, self.ends, self.tags = starts, ends, tags

    def tag_at(self, offset: int) -> tuple[int, str | None, int]:
        """(index, start tag or None, offset where that changes) for a source offset."""
        i = bisect_right(self.starts, offset) - 1
        if i >= 0 and offset < self.ends[i]:
            return i, self.tags[i], self.ends[i]
        nxt = self.starts[i + 1] if i + 1 < len(self.starts) else 1 << 62
        return i, None, nxt


def _start_tag(attrs: tuple[tuple[str, str], ...]) -> str:
    parts = []
    for name, value in attrs:
        if not _ATTR_NAME.match(name) or name.startswith("on"):
            raise ValueError(f"not an allowed attribute name for a mark: {name!r}")
        parts.append(f' {name}="{esc(value)}"')
    return "<span" + "".join(parts) + ">"


def _compile_marks(marks: Sequence[Mark], n: int) -> _Marks | None:
    if not marks:
        return None
    starts: list[int] = []
    ends: list[int] = []
    tags: list[str] = []
    pos = 0
    for m in sorted(marks, key=lambda m: (m.start, m.end)):
        start, end = max(m.start, pos, 0), min(m.end, n)
        if end <= start:
            continue
        starts.append(start)
        ends.append(end)
        tags.append(_start_tag(m.attrs))
        pos = end
    return _Marks(starts, ends, tags)


# --- the parser -------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    # Imported here: the component module stays cheap to import for pages that never render Markdown.
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    # Keep escapes and entities as their own tokens: their markup is the typed spelling, needed to trace them.
    md.disable("text_join")
    # Every target is accepted while parsing, so that an image is always recognised (and shown as its alt
    # text) whatever its URL; the writer turns only http(s) targets into links and shows others as typed.
    md.validateLink = lambda url: True  # type: ignore[method-assign]
    md.parse("")  # build the rule caches now, not concurrently in two sessions' first renders
    return md


def _normalise(text: str) -> tuple[str, list[int] | None]:
    """markdown-it's own input normalisation (CRLF and CR to LF, NUL to U+FFFD), keeping offsets.

    Returns the normalised text and, when its offsets differ from the original's, the original offset of
    each normalised character (a CRLF's LF maps to its CR).
    """
    text = text.replace("\x00", "\ufffd")
    if "\r" not in text:
        return text, None
    out: list[str] = []
    back: list[int] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\r":
            out.append("\n")
            back.append(i)
            i += 2 if i + 1 < n and text[i + 1] == "\n" else 1
            continue
        out.append(ch)
        back.append(i)
        i += 1
    return "".join(out), back


# --- the renderer -----------------------------------------------------------------------------------------

Offsets = int | list[int]  # the source offset of the first of contiguous characters, or one per character


class _Writer:
    """Walks markdown-it's tokens, tracing shown text to source offsets and writing HTML."""

    def __init__(self, src: str, back: list[int] | None, marks: _Marks | None) -> None:
        self.src = src
        self.back = back
        self.marks = marks
        self.out: list[str] = []
        self.cursor = 0
        self.limit = len(src)
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", src)]
        if self.line_starts[-1] != len(src):
            self.line_starts.append(len(src))

    # -- tracing

    def line_start(self, line: int) -> int:
        return self.line_starts[min(line, len(self.line_starts) - 1)]

    def enter(self, token: Token) -> None:
        """Start of a block with a line map: the cursor moves to its first line (never backwards)."""
        if token.map:
            self.cursor = max(self.cursor, self.line_start(token.map[0]))
            self.limit = max(self.cursor, self.line_start(token.map[1]))

    def skip(self, markup: str) -> int:
        """Step over ``markup`` at or after the cursor; its position (the cursor when it is not found)."""
        if not markup:
            return self.cursor
        p = self.src.find(markup, self.cursor, self.limit)
        if p < 0:
            return self.cursor
        self.cursor = p + len(markup)
        return p

    def past_free(self, pos: int) -> int:
        """The first position from ``pos`` that is not indentation, a blockquote ``>`` or a table ``|``."""
        src, limit = self.src, self.limit
        while pos < limit and src[pos] in _FREE:
            pos += 1
        return pos

    def near(self, pos: int) -> int:
        """Where the search for the next character of non-verbatim text ends: a little past ``pos``'s free
        characters (room for an escape's backslash or a tab expanded into spaces), never past the line end."""
        pos = self.past_free(pos)
        end = min(self.limit, pos + _LOOKAHEAD)
        eol = self.src.find("\n", pos, end)
        return eol + 1 if eol >= 0 else end

    def locate(self, shown: str) -> Offsets:
        """Source offsets of ``shown``, which comes next in the source; the cursor moves past it.

        Everything unshown before it (emphasis, brackets, link targets, line ends) has been stepped over,
        so a verbatim copy must start right at the cursor, after free characters at most. Otherwise the
        characters are matched one by one near the cursor; if most of that fails and a verbatim copy exists
        further on, the cursor had lagged behind and that copy is taken.
        """
        if not shown:
            return self.cursor
        src = self.src
        p = src.find(shown, self.cursor, self.limit)
        if 0 <= p <= self.past_free(self.cursor):
            self.cursor = p + len(shown)
            return p
        offs: list[int] = []
        pos = self.cursor
        missed = 0
        for ch in shown:
            q = src.find(ch, pos, self.near(pos))
            if q < 0:
                missed += 1
                offs.append(min(pos, max(len(src) - 1, 0)))
            else:
                offs.append(q)
                pos = q + 1
        if missed * 2 > len(shown) and p >= 0:
            self.cursor = p + len(shown)
            return p
        self.cursor = pos
        return offs

    # -- writing

    def write(self, html: str) -> None:
        self.out.append(html)

    def text(self, shown: str, offs: Offsets) -> None:
        """Write shown text, each run inside the span of the mark covering its source offsets."""
        if not shown:
            return
        marks = self.marks
        if marks is None:
            self.out.append(esc(shown))
            return
        if self.back is not None:
            offs = self._original(shown, offs)
        out = self.out
        if isinstance(offs, int):
            pos, n = 0, len(shown)
            while pos < n:
                _, tag, change = marks.tag_at(offs + pos)
                take = min(n - pos, change - (offs + pos))
                piece = esc(shown[pos : pos + take])
                out.append(f"{tag}{piece}</span>" if tag else piece)
                pos += take
            return
        run_start, run_key, run_tag = 0, 0, None
        for k, off in enumerate(offs):
            key, tag, _ = marks.tag_at(off)
            key = key if tag else -2 - key  # a gap between marks is a run of its own
            if k == 0:
                run_key, run_tag = key, tag
            elif key != run_key:
                self._run(shown[run_start:k], run_tag)
                run_start, run_key, run_tag = k, key, tag
        self._run(shown[run_start:], run_tag)

    def _run(self, piece: str, tag: str | None) -> None:
        self.out.append(f"{tag}{esc(piece)}</span>" if tag else esc(piece))

    def _original(self, shown: str, offs: Offsets) -> list[int]:
        """Offsets into the text as given (before CRLF became LF)."""
        back = self.back
        assert back is not None
        last = len(back) - 1
        if isinstance(offs, int):
            return [back[min(offs + k, last)] for k in range(len(shown))]
        return [back[min(o, last)] for o in offs]

    # -- blocks

    def document(self, tokens: list[Token]) -> None:
        top = [i for i, t in enumerate(tokens) if t.level == 0 and t.nesting >= 0 and t.type != "inline"]
        first, last = (top[0], top[-1]) if top else (-1, -1)
        for i, token in enumerate(tokens):
            # No outer margin above the first block or below the last one: the host sets the spacing.
            extra = ("margin-top:0;" if i == first else "") + ("margin-bottom:0;" if i == last else "")
            self.block(token, extra)

    def block(self, token: Token, extra: str) -> None:
        t = token.type
        if token.map:
            self.enter(token)
        if t == "inline":
            self.inline(token.children or [])
        elif t in ("fence", "code_block"):
            if t == "fence":
                # The content starts on the line after the opening fence.
                self.cursor = max(self.cursor, self.line_start((token.map or [0])[0] + 1))
            info = token.info.strip()
            lang = info.split(maxsplit=1)[0] if info else ""
            lang_attr = f' data-lang="{esc(lang[:40])}"' if lang else ""
            self.write(
                f'<pre style="{_STYLES["pre"]}{extra}"><code{lang_attr} style="{_STYLES["pre code"]}">'
            )
            for line in token.content.splitlines(keepends=True):
                self.text(line, self.locate(line))
            self.write("</code></pre>")
        elif t == "hr":
            self.write(f'<hr style="{_STYLES["hr"]}{extra}">')
        elif t == "html_block":  # unreachable with html off; never pass markup through if it appears
            self.text(token.content, self.locate(token.content))
        elif token.hidden:  # the <p> of a tight list item
            return
        elif token.nesting == 1:
            self.open_block(token, extra)
        elif token.nesting == -1:
            self.write(f"</{_tag_of(token)}>")

    def open_block(self, token: Token, extra: str) -> None:
        t = token.type
        tag = _tag_of(token)
        if t == "heading_open":
            level = _heading_level(token)
            if token.markup.startswith("#"):
                self.skip(token.markup)
            style = f"font-size:{_HEADING_SIZES[level]};{_HEADING_STYLE}"
            self.write(f'<{tag} class="fx-md-h{level}" dir="auto" style="{style}{extra}">')
            return
        if t == "list_item_open":
            self.skip(token.info + token.markup)  # "-", "*", "+", or "3." / "10)"
        elif t == "blockquote_open":
            self.skip(">")
        attrs = ""
        style = _STYLES.get(tag, "")
        if t == "ordered_list_open":
            start = token.attrs.get("start")
            if isinstance(start, int) or (isinstance(start, str) and start.isdigit()):
                attrs += f' start="{int(start)}"'
        if tag in ("th", "td"):
            align = str(token.attrs.get("style", ""))
            if _TEXT_ALIGN.match(align):
                style += align + ";"
        if tag in _DIR_AUTO:
            attrs += ' dir="auto"'
        if tag not in ("thead", "tbody", "tr"):
            attrs += f' style="{style}{extra}"'
        self.write(f"<{tag}{attrs}>")

    # -- inline content

    def inline(self, children: list[Token], *, alt: bool = False) -> None:
        """Inline tokens in order. ``alt``: an image's alt text (text only, no tags)."""
        i, n = 0, len(children)
        while i < n:
            tok = children[i]
            t = tok.type
            if t == "text":
                self.text(tok.content, self.locate(tok.content))
            elif t == "text_special":
                self.special(tok)
            elif t == "softbreak":
                p = self.skip("\n")
                self.text("\n", p)
            elif t == "hardbreak":
                self.skip("\n")
                if alt:
                    self.text(" ", self.cursor - 1)
                else:
                    self.write("<br>")
            elif t == "code_inline":
                offs = self.code_span(tok)
                if not alt:
                    self.write(f'<code style="{_STYLES["code"]}">')
                self.text(tok.content, offs)
                if not alt:
                    self.write("</code>")
            elif t in _SIMPLE_INLINE:
                self.skip(tok.markup)
                if not alt:
                    self.write(_SIMPLE_INLINE[t])
            elif t == "link_open":
                close = _matching_close(children, i)
                self.link(tok, children[i + 1 : close], alt=alt)
                i = close
            elif t == "image":
                self.image(tok)
            elif t == "html_inline":  # unreachable with html off; shown as text if it ever appears
                self.text(tok.content, self.locate(tok.content))
            elif tok.content:  # a token type added by a future markdown-it: its content, as text
                self.text(tok.content, self.locate(tok.content))
            i += 1

    def code_span(self, tok: Token) -> Offsets:
        """Offsets of a code span's content; the cursor moves past its closing backticks.

        The content is the typed text between the backtick runs with line ends shown as spaces and one
        space stripped from each end when both ends have one; a span over several lines also lost the
        lines' indentation or ``>``. Its characters are matched in order within the span's own source.
        """
        src, ticks = self.src, tok.markup
        self.skip(ticks)
        start = self.cursor
        close = _closing_run(src, start, ticks, self.limit)
        if close < 0:
            return self.locate(tok.content)
        self.cursor = close + len(ticks)
        content = tok.content
        if src.startswith(content, start) and start + len(content) == close:
            return start
        if src.startswith(content, start + 1) and start + 1 + len(content) == close - 1:
            return start + 1
        offs: list[int] = []
        pos = start
        for ch in content:
            q = pos
            while q < close and not (src[q] == ch or (ch == " " and src[q] == "\n")):
                q += 1
            if q < close:
                offs.append(q)
                pos = q + 1
            else:
                offs.append(max(start, close - 1))
        return offs

    def special(self, tok: Token) -> None:
        """An escape (``\\*`` shows ``*``) or an entity (``&amp;`` shows ``&``)."""
        p = self.skip(tok.markup)
        if tok.info == "escape" and tok.content != tok.markup:
            self.text(tok.content, p + 1)  # the escaped character itself
        elif tok.content == tok.markup:
            self.text(tok.content, p)
        else:
            self.text(tok.content, [p] * len(tok.content))

    def link(self, tok: Token, inner: list[Token], *, alt: bool) -> None:
        """A link: an ``<a>`` for an http(s) target, else exactly the text that was typed."""
        auto = tok.markup == "autolink"
        start = self.skip("<" if auto else "[")
        href = str(tok.attrs.get("href", ""))
        if alt or link_allowed(href):
            if not alt:
                title = tok.attrs.get("title")
                title_attr = f' title="{esc(title)}"' if title else ""
                self.write(
                    f'<a href="{esc(href)}" target="_blank" rel="noopener noreferrer"{title_attr} '
                    f'style="{_STYLES["a"]}">'
                )
            self.link_body(inner, auto=auto, alt=alt)
            if not alt:
                self.write("</a>")
            return
        # Not a link we allow: trace its parts without writing them, then show its source as typed.
        shown, self.out = self.out, []
        self.link_body(inner, auto=auto, alt=True)
        self.out = shown
        typed = self.src[start : self.cursor]
        self.text(typed, start)

    def link_body(self, inner: list[Token], *, auto: bool, alt: bool) -> None:
        if not auto:
            self.inline(inner, alt=alt)
            self.close_brackets()
            return
        # An autolink's shown URL is normalised (percent-decoded): trace it inside the brackets only.
        limit = self.limit
        close = self.src.find(">", self.cursor, limit)
        if close >= 0:
            self.limit = close
        self.inline(inner, alt=alt)
        self.limit = limit
        self.skip(">")

    def image(self, tok: Token) -> None:
        """Never loaded: shown as ``[image: alt text]``, the brackets traced to the typed ``![`` and ``]``."""
        p = self.skip("![")
        self.write(f'<span class="fx-md-img" title="image not shown" style="{_STYLES["img"]}">')
        self.text("[image", [p] * 6)
        if tok.children:
            self.text(": ", [p + 1, p + 1])
            self.inline(tok.children, alt=True)
        self.text("]", [self.close_brackets()])
        self.write("</span>")

    def close_brackets(self) -> int:
        """Step over the ``]`` ending a link or image label and its target (``(url "title")``, ``[ref]``).

        Returns the position of that ``]`` (the cursor if there is none).
        """
        from markdown_it.helpers import parseLinkDestination, parseLinkTitle

        src, limit = self.src, self.limit
        q = src.find("]", self.cursor, limit)
        if q < 0:
            return self.cursor
        end = q + 1
        pos = end
        if pos < limit and src[pos] == "(":
            pos = _skip_space(src, pos + 1, limit)
            dest = parseLinkDestination(src, pos, limit)
            if dest.ok:
                pos = _skip_space(src, dest.pos, limit)
                title = parseLinkTitle(src, pos, limit)
                if title.ok:
                    pos = _skip_space(src, title.pos, limit)
            if pos < limit and src[pos] == ")":
                end = pos + 1
                pos = -1
        if pos >= 0 and end < limit and src[end] == "[":
            close = src.find("]", end + 1, limit)
            if close >= 0:
                end = close + 1
        self.cursor = end
        return q


def _heading_level(token: Token) -> int:
    return int(token.tag[1]) if token.tag[1:].isdigit() and 1 <= int(token.tag[1:]) <= 6 else 1


def _tag_of(token: Token) -> str:
    if token.type.startswith("heading"):
        return f"h{min(6, _heading_level(token) + _HEADING_SHIFT)}"
    return token.tag


def _matching_close(children: list[Token], i: int) -> int:
    """Index of the ``link_close`` that ends the link opened at ``children[i]``."""
    depth = 0
    for j in range(i, len(children)):
        depth += children[j].nesting if children[j].type in ("link_open", "link_close") else 0
        if depth == 0:
            return j
    return len(children) - 1


def _closing_run(src: str, pos: int, ticks: str, limit: int) -> int:
    """Start of the next backtick run exactly as long as ``ticks`` (the end of a code span), or -1."""
    n = len(ticks)
    while True:
        q = src.find(ticks, pos, limit)
        if q < 0:
            return -1
        end = q + n
        while end < limit and src[end] == "`":
            end += 1
        if end - q == n and (q == 0 or src[q - 1] != "`"):
            return q
        pos = end


def _skip_space(src: str, pos: int, limit: int) -> int:
    while pos < limit and src[pos] in " \t\n":
        pos += 1
    return pos


def _render(text: str, marks: _Marks | None, *, extra_class: str = "") -> str:
    src, back = _normalise(str(text))
    tokens = _parser().parse(src, {})
    writer = _Writer(src, back, marks)
    writer.document(tokens)
    classes = f"{extra_class} {MARKDOWN_CLASS}" if extra_class else MARKDOWN_CLASS
    return f'<div class="{classes}" dir="auto" style="{_WRAPPER_STYLE}">' + "".join(writer.out) + "</div>"
