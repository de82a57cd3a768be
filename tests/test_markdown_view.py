"""Markdown rendering of untrusted model text (components/markdown_view.py): every construct, hostile
payloads kept inert (checked on the parsed HTML), CJK, tables with code, and the tracing invariants of the
attributed and kept/dropped renderings on the scenarios, hand-written tricky Markdown and seeded random
Markdown."""

from __future__ import annotations

import bisect
import os
import random
import re
import textwrap
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

from components import palette
from components.attribution_view import tile
from components.markdown_view import (
    Mark,
    attributed_markdown_html,
    link_allowed,
    markdown_html,
    render_marked_markdown,
    unit_mark,
)
from fusion.attribution import attribute
from fusion.scenarios import load_scenarios
from fusion.types import Attribution, SourceRef, Span

# Elements the renderer may write; anything else in its output would be model markup let through.
ALLOWED_TAGS = {
    "div", "p", "h3", "h4", "h5", "h6", "ul", "ol", "li", "blockquote", "pre", "code", "em", "strong", "s",
    "a", "br", "hr", "table", "thead", "tbody", "tr", "th", "td", "span",
}  # fmt: skip
ALLOWED_ATTRS = {
    "class", "style", "dir", "title", "href", "target", "rel", "start", "data-lang", "data-kind",
    "data-sources", "data-tip", "data-hl", "data-highlight", "data-status",
}  # fmt: skip
VOID = {"br", "hr"}

HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '"><svg onload=alert(1)>',
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](java&#115;cript:alert(1))",
    "[click](<javascript:alert(1)>)",
    "[click](vbscript:msgbox(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[click][evil]\n\n[evil]: javascript:alert(1)",
    "<javascript:alert(1)>",
    "![x](javascript:alert(1))",
    "![x](https://tracker.example/pixel.gif)",
    '![x" onerror="alert(1)](x)',
    '[t](https://ok.example "x\\" onmouseover=\\"alert(1)")',
    "<div onclick=alert(1)>block html</div>",
    "<style>body{display:none}</style>",
    "<iframe src=https://evil.example></iframe>",
    "```html\n<script>alert(1)</script>\n```",
    "`<img src=x onerror=alert(1)>`",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "| a |\n|---|\n| <script>alert(1)</script> |",
]


# --- reading the produced HTML -------------------------------------------------------------------------------


@dataclass
class Char:
    """One shown character with the elements it sits in (outermost first)."""

    ch: str
    stack: list[tuple[str, dict[str, str | None]]]

    def spans(self, cls: str = "fx-span") -> list[dict[str, str | None]]:
        return [a for t, a in self.stack if t == "span" and cls in (a.get("class") or "").split()]

    def inside(self, tag: str) -> bool:
        return any(t == tag for t, _ in self.stack)


@dataclass
class Doc(HTMLParser):
    tags: list[tuple[str, dict[str, str | None]]] = field(default_factory=list)
    chars: list[Char] = field(default_factory=list)
    unbalanced: int = 0

    def __post_init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._stack: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag not in VOID:
            self._stack.append((tag, a))

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self._stack or self._stack[-1][0] != tag:
            self.unbalanced += 1
            return
        self._stack.pop()

    def handle_data(self, data: str) -> None:
        stack = list(self._stack)
        self.chars.extend(Char(ch, stack) for ch in data)

    @property
    def text(self) -> str:
        return "".join(c.ch for c in self.chars)


def parse(doc: str) -> Doc:
    d = Doc()
    d.feed(doc)
    d.close()
    assert d.unbalanced == 0 and not d._stack, "the produced HTML must be balanced"
    return d


def assert_inert(doc: str) -> Doc:
    """No element or attribute the renderer does not write itself; links only to http(s); nothing loads."""
    d = parse(doc)
    for tag, attrs in d.tags:
        assert tag in ALLOWED_TAGS, f"<{tag}> in the output"
        for name, value in attrs.items():
            assert name in ALLOWED_ATTRS, f"attribute {name} on <{tag}>"
            assert not name.startswith("on")
            if name == "href":
                assert tag == "a" and re.match(r"https?://", value or ""), value
            if name == "style":  # nothing fetched through CSS either (the report forbids it by CSP too)
                assert not re.search(r"url\(|@import|expression\(", value or "", re.I), value
        if tag == "a":
            assert attrs.get("target") == "_blank" and attrs.get("rel") == "noopener noreferrer"
    return d


# --- tracing: which source character each shown character came from ------------------------------------------


def trace(text: str) -> list[tuple[str, int]]:
    """(shown character, source offset) for every character of the marked rendering of ``text``, with one
    mark per source character naming its offset (the same mechanism as the attributed rendering, whose
    marks are attribution spans)."""
    marks = [Mark(i, i + 1, (("class", "fx-span"), ("data-sources", str(i)))) for i in range(len(text))]
    d = parse(render_marked_markdown(text, marks))
    out = []
    for c in d.chars:
        spans = c.spans()
        assert len(spans) == 1, f"{c.ch!r} sits in {len(spans)} spans"
        out.append((c.ch, int(spans[0]["data-sources"] or -1)))
    return out


def explained(ch: str, text: str, off: int) -> bool:
    """Whether a shown character that differs from its source character is one of the known cases."""
    src = text[off]
    return (
        ch == src
        or (ch.isspace() and src.isspace())  # a code span's line end, CRLF, an expanded tab
        or src == "&"  # an entity: "&amp;" shows "&"
        or (src in "![]" and ch in "[image: ]")  # an image's label: "[image: " and "]"
        or src == "%"  # an autolink shows its URL percent-decoded
        or (ch == "\ufffd" and src == "\x00")
        or (ch == "\n" and off == len(text.rstrip()) - 1)  # the last line end a code block adds
    )


def check_invariants(text: str) -> list[tuple[str, int]]:
    """The properties of the tracing, for one source text; returns the trace."""
    plain = parse(markdown_html(text))
    pairs = trace(text)
    # The attributed rendering shows exactly the text of the plain one.
    assert "".join(ch for ch, _ in pairs) == plain.text
    offsets = [off for _, off in pairs]
    assert all(0 <= off < len(text) for off in offsets)
    # In document order: no character is shown out of order...
    assert offsets == sorted(offsets)
    # ...none twice: characters copied verbatim come from distinct source characters.
    verbatim = [off for ch, off in pairs if text[off] == ch and not ch.isspace()]
    assert len(verbatim) == len(set(verbatim))
    for ch, off in pairs:
        assert explained(ch, text, off), (ch, off, text[max(0, off - 30) : off + 30])
    return pairs


def check_attribution(fused: str, attribution: Attribution, labels: list[str]) -> None:
    """Every non-whitespace shown character is in exactly one fx-span, naming the sources of the
    attribution at the source offset it came from."""
    pairs = check_invariants(fused)
    pieces = tile(fused, attribution.spans)
    starts = [s for s, _, _ in pieces]
    d = parse(attributed_markdown_html(fused, attribution, labels))
    assert len(d.chars) == len(pairs)
    for c, (ch, off) in zip(d.chars, pairs):
        assert c.ch == ch
        spans = c.spans()
        if ch.isspace() and not spans:
            continue
        assert len(spans) == 1
        _, _, sources = pieces[bisect.bisect_right(starts, off) - 1]
        assert spans[0]["data-sources"] == ",".join(map(str, sources)), (ch, off)


# --- inputs ---------------------------------------------------------------------------------------------------

TRICKY = [
    "",
    "plain text only",
    "# Title\n\nSome **bold** and *em* and ***both*** and ~~gone~~ text.",
    "Setext\n======\n\nAnd a second\n---\n\n### closed heading ###",
    "- one\n- two **bold\n  across** lines\n  - nested *item*\n\n1. first\n2. second\n\n10) ten\n11) eleven",
    "3. 3 apples\n4. 4 pears",  # a list item's text that starts like its marker
    "> quote line one\n> line **two**\nlazy continuation\n>\n> > nested",
    "| Day | Session |\n|:----|-------:|\n| Mon | `rest` |\n| Tue | 8 km *easy* |\n| a \\| b | `x \\| y` |",
    "```python\ndef f(x):\n    return x * 2\n\n\n    # blank lines above\n```\n\n~~~\nplain fence\n~~~",
    "    indented code\n    \tand a tab\n\ntext",
    "A [link](https://example.com/a_b \"the title repeats the text\") the title repeats the text.",
    "[ref link][r] and [r] and [collapsed][]\n\n[r]: https://example.com/r 'R'\n[collapsed]: https://example.com/c",
    "<https://example.com/%41%42> and <user@example.com> and <mailto:x@example.com>",
    "Escapes: \\*not em\\*, \\# not heading, \\\\ backslash, \\a stays, &amp; &copy; &#x41; &#65; &bogus;",
    "Hard break with spaces  \nand with backslash\\\nend",
    "Code `a` and ``b ` c`` and `` `d` `` and `multi\nline` span",
    "![alt **text**](https://example.com/i.png \"t\") and [![inner](i.png)](https://example.com)",
    "Text with trailing fence\n\n```\nnever closed",
    "* * *\n\n___\n\nText after rules",
    "東京は**日本**の首都です。\n\n- 第一に、*重要*な点\n- 第二に「**引用**」です\n\n| 項目 | 値 |\n|---|---|\n| `コード` | 東京 |",
    "😀 emoji 👩‍👩‍👧 and combining e\u0301 and RTL עברית **מודגש**",
    "Windows\r\nline\r\nends\r\n\r\n- item\r\n- item two\r\n",
    "tab\tinside and NUL \x00 char",
    "Unmatched ** and * and _ and ~~ and ` and [ and ]( and ![ stay as text",
    "1. item\n\n   ```js\n   const a = 1;\n     nested\n   ```\n\n   para in item\n2. next",
    "- [ ] not a task list here\n- [x] either",
    "Deep > > > not quote\n\n> > > > > very nested quote",
    "Line one\n\n\n\n\nLine after many blank lines",
]


def scenario_texts() -> list[str]:
    return [t for s in load_scenarios() for t in s.candidates]


_WORDS = ["run", "easy", "km", "東京", "日本語", "🎉", "naïve", "x", "*", "_", "a_b", "2*3", "`", "[", "]",
          "(", ")", "<b>", "&amp;", "&copy;", "&#x41;", "&bogus;", "\\*", "\\a", "\\\\", "|", "~", "#", ">",
          "!", "<", "http://e.x"]  # fmt: skip


def _inline(r: random.Random, depth: int = 0) -> str:
    parts = []
    for _ in range(r.randint(1, 6)):
        k = r.random()
        w = r.choice(_WORDS) if r.random() < 0.5 else r.choice(_WORDS[:7])
        if depth < 2 and k < 0.12:
            w = f"**{_inline(r, depth + 1)}**"
        elif depth < 2 and k < 0.2:
            w = f"*{_inline(r, depth + 1)}*"
        elif depth < 2 and k < 0.25:
            w = f"~~{_inline(r, depth + 1)}~~"
        elif k < 0.32:
            w = "`" + r.choice(["code", "a | b", "x`y", " s ", "<i>"]) + "`"
        elif depth < 2 and k < 0.38:
            url = r.choice(["https://ex.com/a", "javascript:alert(1)", "/rel", "http://x.y/p?q=1&r=2",
                            "<https://a b>", "data:text/html,x"])  # fmt: skip
            title = r.choice(["", ' "run easy"', " 'km'", " (x)"])
            w = f"[{_inline(r, depth + 1)}]({url}{title})"
        elif depth < 2 and k < 0.42:
            w = f"![{_inline(r, depth + 1)}]({r.choice(['i.png', 'javascript:x', 'https://i/x.png'])})"
        elif k < 0.46:
            w = "<" + r.choice(["https://auto.link/%41b", "mailto:a@b.c", "a@b.c", "javascript:alert(1)"]) + ">"
        elif k < 0.5:
            w = r.choice(["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", '"><svg onload=alert(1)>'])
        elif k < 0.53:
            w = "[ref]" if r.random() < 0.5 else "[x][ref]"
        parts.append(w)
    sep = r.choice([" ", " ", "  \n", "\n", "\\\n", "\t"]) if r.random() < 0.2 else " "
    return sep.join(parts)


def _block(r: random.Random, depth: int = 0) -> str:
    k = r.random()
    if k < 0.15:
        return "#" * r.randint(1, 7) + " " + _inline(r) + r.choice(["", " ##"])
    if k < 0.25 and depth < 3:
        marker = r.choice(["-", "*", "+", "1.", "3)", "10."])
        return "\n".join(f"{marker} " + _block(r, depth + 1).replace("\n", "\n   ") for _ in range(r.randint(1, 3)))
    if k < 0.33 and depth < 3:
        return "\n".join("> " + line for line in _block(r, depth + 1).split("\n"))
    if k < 0.43:
        cols = r.randint(1, 3)
        head = "| " + " | ".join(r.choice(["a", "b", "**h**", "`c`"]) for _ in range(cols)) + " |"
        sep = "|" + "|".join(r.choice(["---", ":--", "--:", ":-:"]) for _ in range(cols)) + "|"
        rows = [
            "| " + " | ".join(_inline(r).replace("\n", " ").replace("|", "\\|") for _ in range(cols)) + " |"
            for _ in range(r.randint(1, 3))
        ]
        return "\n".join([head, sep, *rows])
    if k < 0.53:
        fence = r.choice(["```", "~~~", "````"])
        lines = ["def f(x):", "    return x * 2", "\tindented", "", "<script>alert(1)</script>", "a | b", "**no**"]
        body = "\n".join(r.choice(lines) for _ in range(r.randint(0, 4)))
        return f"{fence}{r.choice(['', 'py', 'js extra', '<x>'])}\n{body}\n{fence}"
    if k < 0.57:
        return "    indented code\n    more\t<tab>"
    if k < 0.6:
        return r.choice(["---", "***", "___"])
    if k < 0.63:
        return _inline(r) + "\n" + r.choice(["===", "---"])
    if k < 0.66:
        return '[ref]: https://ex.com/ref "Ref title"'
    return _inline(r)


def random_markdown(seed: int) -> str:
    """A seeded random Markdown document mixing every construct, hostile HTML, CJK, CRLF and NUL."""
    r = random.Random(seed)
    text = "\n\n".join(_block(r) for _ in range(r.randint(1, 6)))
    if r.random() < 0.1:
        text = text.replace("\n", "\r\n")
    if r.random() < 0.05:
        text += "\x00x"
    return text


def mixed_fusion(candidates: list[str], seed: int) -> str:
    """A fused text built like a fusor writes one: blocks of different candidates, some cut mid-way, with
    new sentences between them, so attributed spans start and end inside Markdown constructs."""
    r = random.Random(seed)
    blocks = [(i, b) for i, c in enumerate(candidates) for b in re.split(r"\n{2,}", c) if b.strip()]
    picked = r.sample(blocks, min(len(blocks), 7))
    out = []
    for _, b in picked:
        if r.random() < 0.3:
            b = b[: max(1, int(len(b) * r.uniform(0.4, 0.9)))]
        if r.random() < 0.3:
            b += " A sentence that no candidate wrote, **with emphasis**."
        out.append(b)
    return "\n\n".join(out)


# --- constructs -----------------------------------------------------------------------------------------------


def test_each_construct_renders() -> None:
    text = (
        "# Plan\n\n## Weeks\n\nRun **easy**, *mostly* and ~~never~~ fast.\n\n"
        "- base\n- build\n\n3. three\n4. four\n\n> a quote\n\n"
        "| Day | Session |\n|:--|--:|\n| Tue | `8 km` |\n\n"
        "```py\nx = 1\n\n  y = 2\n```\n\n[docs](https://example.com/docs \"Docs\")\n\n---\n\nline  \nbreak"
    )
    doc = markdown_html(text)
    d = assert_inert(doc)
    tags = [t for t, _ in d.tags]
    for tag in ("h3", "h4", "strong", "em", "s", "ul", "ol", "li", "blockquote", "table", "thead", "tbody",
                "th", "td", "pre", "code", "a", "hr", "br"):  # fmt: skip
        assert tag in tags, tag
    by = {t: a for t, a in reversed(d.tags)}
    assert by["ol"]["start"] == "3"
    ths = [a for t, a in d.tags if t == "th"]
    assert "text-align:left" in ths[0]["style"] and "text-align:right" in ths[1]["style"]
    pre_code = [a for t, a in d.tags if t == "code" and a.get("data-lang")]
    assert pre_code and pre_code[0]["data-lang"] == "py"
    a = by["a"]
    assert a["href"] == "https://example.com/docs" and a["title"] == "Docs"
    # What is shown: the text without its markup; code keeps its lines and indentation.
    assert d.text.startswith("PlanWeeksRun easy, mostly and never fast.")
    assert "x = 1\n\n  y = 2\n" in d.text
    for markup in ("**", "~~", "# ", "```", "](", "|:--"):
        assert markup not in d.text
    code_chars = [c for c in d.chars if c.inside("pre")]
    assert "".join(c.ch for c in code_chars) == "x = 1\n\n  y = 2\n"
    strong = "".join(c.ch for c in d.chars if c.inside("strong"))
    assert strong == "easy"


def test_headings_are_smaller_than_the_page_and_shifted_below_its_own() -> None:
    d = parse(markdown_html("# One\n\n## Two\n\n###### Six"))
    heads = [(t, a) for t, a in d.tags if re.fullmatch(r"h\d", t)]
    assert [t for t, _ in heads] == ["h3", "h4", "h6"]
    assert [a["class"] for _, a in heads] == ["fx-md-h1", "fx-md-h2", "fx-md-h6"]
    sizes = [float(re.search(r"font-size:([\d.]+)em", a["style"]).group(1)) for _, a in heads]
    assert sizes == sorted(sizes, reverse=True) and max(sizes) <= 1.25


def test_output_has_no_raw_line_breaks_and_survives_st_html_cleaning() -> None:
    for text in TRICKY + scenario_texts():
        doc = markdown_html(text)
        assert "\n" not in doc and "\r" not in doc
        assert textwrap.dedent(doc).strip() == doc
    doc = markdown_html("```\na\n\n  b\n```")
    assert "a&#10;&#10;  b&#10;" in doc


def test_links_are_http_only_and_open_safely() -> None:
    d = assert_inert(markdown_html("[a](https://x.example/a) [b](http://y.example) <https://z.example>"))
    hrefs = [a["href"] for t, a in d.tags if t == "a"]
    assert hrefs == ["https://x.example/a", "http://y.example", "https://z.example"]
    # Anything else is shown exactly as it was typed, and is not a link.
    for typed in ("[m](mailto:a@b.example)", "[r](/relative/path)", "[h](#anchor)", "[f](file:///etc/passwd)",
                  "<mailto:a@b.example>", "[j](javascript:alert(1))"):  # fmt: skip
        d = assert_inert(markdown_html(typed))
        assert not any(t == "a" for t, _ in d.tags), typed
        assert d.text == typed
    assert link_allowed("HTTPS://EXAMPLE.COM") and not link_allowed("https:// x") and not link_allowed("//x")


def test_images_show_their_alt_text_and_never_load() -> None:
    doc = markdown_html("![A **cat** on a mat](https://tracker.example/cat.png \"t\") and ![](x.png)")
    d = assert_inert(doc)
    assert d.text == "[image: A cat on a mat] and [image]"
    assert "tracker.example" not in doc and "x.png" not in doc
    assert [a["class"] for t, a in d.tags if t == "span"] == ["fx-md-img", "fx-md-img"]


@pytest.mark.parametrize("payload", HOSTILE)
def test_hostile_payloads_stay_inert(payload: str) -> None:
    text = f"Intro\n\n{payload}\n\n- item {payload}\n\n> {payload}"
    attribution = attribute(text, [text[: len(text) // 2], "Intro"])
    units = [(0, len(text) // 3, "kept"), (len(text) // 3, len(text), "dropped")]
    for doc in (
        markdown_html(text),
        markdown_html(text, ranges=units),
        attributed_markdown_html(text, attribution, ['<b onmouseover="x">label</b>', "two"], highlight=0),
    ):
        d = assert_inert(doc)
        assert "<script" not in doc.lower() and "<img" not in doc.lower() and "<svg" not in doc.lower()
        assert "javascript:" not in " ".join(a.get("href") or "" for _, a in d.tags).lower()
    # Raw HTML is shown as the text that was typed.
    d = parse(markdown_html("<script>alert(1)</script> <img src=x onerror=alert(1)>"))
    assert d.text == "<script>alert(1)</script> <img src=x onerror=alert(1)>"


def test_cjk_renders_and_traces() -> None:
    text = TRICKY[19]
    d = assert_inert(markdown_html(text))
    assert "東京は日本の首都です。" in d.text and "第一に、重要な点" in d.text and "コード" in d.text
    assert "".join(c.ch for c in d.chars if c.inside("strong")).startswith("日本")
    assert "".join(c.ch for c in d.chars if c.inside("code")) == "コード"
    check_invariants(text)
    ja = next(s for s in load_scenarios() if s.id == "translate-ja-email")
    for cand in ja.candidates:
        check_invariants(cand)


def test_tables_with_code_and_escaped_pipes() -> None:
    text = TRICKY[7]
    d = assert_inert(markdown_html(text))
    cells = [a for t, a in d.tags if t in ("th", "td")]
    assert len(cells) == 8
    assert "a | b" in d.text and "x | y" in d.text and "\\|" not in d.text
    pairs = check_invariants(text)
    # The pipe shown in "a | b" is the typed pipe after its backslash, not the cell separator.
    a_pipe = next(off for (ch, off), (nxt, _) in zip(pairs, pairs[1:]) if ch == "|" and nxt == " ")
    assert text[a_pipe - 1] == "\\"


# --- tracing invariants ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", TRICKY, ids=range(len(TRICKY)))
def test_tracing_invariants_on_tricky_markdown(text: str) -> None:
    check_invariants(text)


def test_tracing_invariants_on_scenarios() -> None:
    for text in scenario_texts():
        pairs = check_invariants(text)
        # Scenario answers hold no entities, images or autolinks: every character traces to itself.
        assert all(text[off] == ch or ch.isspace() for ch, off in pairs)


def random_attribution(text: str, seed: int) -> Attribution:
    """Spans tiling ``text`` at random cuts (often inside markup), each from a random set of candidates."""
    r = random.Random(seed)
    cuts = sorted({0, len(text), *(r.randrange(len(text) + 1) for _ in range(len(text) // 15))})
    spans = []
    for start, end in zip(cuts, cuts[1:]):
        sources = sorted(r.sample(range(5), r.choice([0, 1, 1, 1, 2, 3])))
        spans.append(Span(start, end, tuple(SourceRef(c, 0, 1) for c in sources)))
    return Attribution(spans=spans, shares=[0.2] * 5, copied_fraction=0.8)


def test_tracing_invariants_on_random_markdown() -> None:
    for seed in range(300):
        text = random_markdown(seed)
        if seed % 6:
            check_invariants(text)
        else:
            check_attribution(text, random_attribution(text, seed), [f"model {i}" for i in range(5)])


def test_tracing_points_at_the_right_character() -> None:
    """Text that also appears in the markup before it (a link title, a list marker) is traced to its own
    place, not to the first match."""
    text = 'See [the docs](https://x.example "the docs") the docs.\n\n1. 1 apple\n2. 2 pears'
    pairs = check_invariants(text)
    shown = "".join(ch for ch, _ in pairs)
    assert shown.startswith("See the docs the docs.")
    shown_at, typed_at = shown.index(" the docs."), text.rindex(" the docs.")
    assert [off for _, off in pairs[shown_at : shown_at + 10]] == list(range(typed_at, typed_at + 10))
    assert pairs[shown.index("1 apple")][1] == text.index("1 apple")


def test_attribution_drawn_over_scenario_fusions() -> None:
    for s in load_scenarios():
        cands = list(s.candidates)
        for seed in range(3):
            fused = mixed_fusion(cands, seed)
            attribution = attribute(fused, cands)
            check_attribution(fused, attribution, list(s.candidate_labels))


def test_attribution_drawn_over_pipeline_fusion() -> None:
    from fusion.pipeline import run_supplied

    s = next(s for s in load_scenarios() if s.id == "first-marathon")
    run = run_supplied(s.prompt, list(s.candidates))
    assert run.fused and run.attribution
    check_attribution(run.fused.text, run.attribution, [c.label for c in run.candidates])


def test_span_crossing_constructs_is_split_not_dropped() -> None:
    text = "- first **bold** text\n- second *item*\n\n```\ncode line\n```\nafter"
    # One span from inside the first item's emphasis to inside the code block.
    start, end = text.index("old"), text.index("line")
    spans = [Span(0, start, ()), Span(start, end, (SourceRef(1, 0, 1),)), Span(end, len(text), ())]
    doc = attributed_markdown_html(text, Attribution(spans, [0.0, 0.5], 0.5), ["A", "B"])
    d = assert_inert(doc)
    from_b = [c for c in d.chars if any(s["data-sources"] == "1" for s in c.spans())]
    shown = "".join(c.ch for c in from_b)
    # Every shown character of the span's source range keeps the span; its markup ("- ", "```") does not show.
    assert shown == "old" + " text" + "second " + "item" + "code "
    # It is drawn in several pieces: in the first item's <strong>, in the second item, in the code block.
    pieces = [a for t, a in d.tags if t == "span" and a.get("data-sources") == "1"]
    assert len(pieces) >= 4
    assert any(c.inside("strong") for c in from_b) and any(c.inside("pre") for c in from_b)
    assert any(c.inside("li") and not c.inside("strong") for c in from_b)


@pytest.mark.parametrize("target", [0, 1, 2])
def test_highlight_marks_exactly_that_candidates_spans(target: int) -> None:
    s = next(s for s in load_scenarios() if s.id == "first-marathon")
    cands = list(s.candidates)
    fused = mixed_fusion(cands, 1)
    attribution = attribute(fused, cands)
    d = parse(attributed_markdown_html(fused, attribution, [], highlight=target))
    wrapper = d.tags[0][1]
    assert wrapper["data-highlight"] == str(target) and "fx-attr" in wrapper["class"]
    spans = [a for t, a in d.tags if t == "span" and "fx-span" in (a.get("class") or "")]
    assert spans
    for a in spans:
        mine = str(target) in (a["data-sources"] or "").split(",")
        assert (a.get("data-hl") == "1") == mine
        assert ("font-weight:700" in a["style"]) == mine
        assert ("opacity:" in a["style"]) == (not mine)
    # Without highlight nothing is lit or faded; the colours and tooltips are attribution_view's.
    plain = parse(attributed_markdown_html(fused, attribution, []))
    spans = [a for t, a in plain.tags if t == "span" and "fx-span" in (a.get("class") or "")]
    assert not any("data-hl" in a or "opacity:" in a["style"] for a in spans)
    single = next(a for a in spans if a["data-kind"] == "single")
    i = int(single["data-sources"])
    assert palette.candidate_color(i) in single["style"] and single["title"] == f"from Candidate {i + 1}"
    assert single["title"] == single["data-tip"]


def test_attributed_wrapper_keeps_the_selectors_of_the_plain_view() -> None:
    text = "**Keep most runs easy.**"
    doc = attributed_markdown_html(text, Attribution([Span(0, len(text), (SourceRef(0, 0, 24),))], [1.0], 1.0), ["C1"])
    d = parse(doc)
    assert "fx-attr" in d.tags[0][1]["class"].split()
    assert {"fx-attr-text", "fx-md"} <= set(d.tags[1][1]["class"].split())
    assert d.text == "Keep most runs easy."
    assert all(c.inside("strong") and len(c.spans()) == 1 for c in d.chars)


def test_windows_line_ends_keep_original_offsets() -> None:
    text = "first **line**\r\n\r\n- item one\r\n- item two"
    pairs = trace(text)
    assert [(ch, off) for ch, off in pairs if not ch.isspace()] == [
        (ch, i) for i, ch in enumerate(text) if ch not in " \r\n*-"
    ]


# --- kept / edited / dropped ------------------------------------------------------------------------------------


def test_units_mark_kept_edited_and_dropped_text() -> None:
    text = "- **Keep most runs easy.** Relax.\n- Run every day.\n\n```\nstretch()\n```"
    drop_from = text.index("Run every")
    units = [
        (0, text.index(" Relax"), "kept"),
        (text.index(" Relax"), drop_from, "edited"),
        (drop_from, len(text), "dropped"),
    ]
    doc = markdown_html(text, ranges=units)
    d = assert_inert(doc)
    assert d.text == parse(markdown_html(text)).text

    def status_of(c: Char) -> str | None:
        spans = c.spans("fx-unit")
        assert len(spans) <= 1
        return spans[0]["data-status"] if spans else None

    by_status: dict[str | None, str] = {}
    for c in d.chars:
        by_status[status_of(c)] = by_status.get(status_of(c), "") + c.ch
    assert by_status["kept"] == "Keep most runs easy."
    assert by_status["edited"] == " Relax."
    assert by_status["dropped"].replace("\n", "") == "Run every day.stretch()"
    dropped = [a for t, a in d.tags if t == "span" and a.get("data-status") == "dropped"]
    assert len(dropped) >= 2  # split at the list item / code block boundary
    assert all("line-through" in a["style"] and a["title"] == "dropped from the fused answer" for a in dropped)
    kept = next(a for t, a in d.tags if t == "span" and a.get("data-status") == "kept")
    assert kept["class"] == "fx-unit fx-unit-kept" and kept["title"] == "kept in the fused answer"


def test_units_accept_objects_and_leave_gaps_plain() -> None:
    @dataclass
    class Unit:
        start: int
        end: int
        status: str

    text = "alpha beta gamma"
    d = parse(markdown_html(text, ranges=[Unit(6, 10, "dropped")]))
    marked = "".join(c.ch for c in d.chars if c.spans("fx-unit"))
    assert marked == "beta" and d.text == text
    with pytest.raises(ValueError):
        markdown_html(text, ranges=[(0, 3, "lost")])


def test_marks_cannot_smuggle_attributes() -> None:
    with pytest.raises(ValueError):
        render_marked_markdown("x", [Mark(0, 1, (("onclick", "alert(1)"),))])
    with pytest.raises(ValueError):
        render_marked_markdown("x", [Mark(0, 1, (('class" onclick="x', "y"),))])
    doc = render_marked_markdown("x", [Mark(0, 1, (("title", '"><script>alert(1)</script>'),))])
    d = parse(doc)
    assert d.tags[-1] == ("span", {"title": '"><script>alert(1)</script>'})
    assert "<script" not in doc
    assert unit_mark(0, 1, "kept").attrs[0] == ("class", "fx-unit fx-unit-kept")


def test_empty_and_whitespace_text() -> None:
    for text in ("", "   ", "\n\n"):
        d = parse(markdown_html(text))
        assert d.text.strip() == ""
        assert parse(attributed_markdown_html(text, Attribution([], [], 0.0), [])).text.strip() == ""


# --- real multi-model answers (only where the shared data is present; the suite does not need it) ---------------

# ../shared/data beside the project root (where CI puts it); FUSION_SHARED_DATA points elsewhere.
_DATA = Path(os.environ.get("FUSION_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


@pytest.mark.skipif(not (_DATA / "alpaca_eval_judged8.jsonl").exists(), reason="shared data absent")
def test_tracing_invariants_on_real_answers_with_tables_and_code() -> None:
    import json

    lines = (_DATA / "alpaca_eval_judged8.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    answers = [t for r in rows for t in r["outputs"].values()]
    rich = [t for t in answers if "```" in t or "|---" in t or "| ---" in t]
    assert len(rich) >= 20
    for text in rich:
        check_invariants(text)
    # A fused text from three models' answers to one instruction, attributed by the engine.
    row = next(r for r in rows if sum("```" in t or "|" in t for t in r["outputs"].values()) >= 3)
    cands = list(row["outputs"].values())
    fused = mixed_fusion(cands, 0)
    check_attribution(fused, attribute(fused, cands), list(row["outputs"]))
