"""A throw-away Streamlit page for the browser test of components/markdown_view.py (not part of the app).

It shows, through ``st.html`` as the app's pages will: a scenario's answers fused block by block and
attributed by the engine, rendered as Markdown with the attribution drawn over it (plain and with a
candidate highlighted); a candidate with the ranges the fusion kept and dropped; CJK; and hostile payloads.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # streamlit puts tests/ on the path; the packages live next to it
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from components.attribution_view import legend_html  # noqa: E402
from components.markdown_view import attributed_markdown_html, markdown_html  # noqa: E402
from fusion.attribution import attribute, partition  # noqa: E402
from fusion.scenarios import get_scenario  # noqa: E402

st.set_page_config(page_title="Markdown view check", page_icon="🧪", layout="wide")
st.title("Markdown view check")

marathon = get_scenario("first-marathon")
cands = list(marathon.candidates)
blocks = [b for c in cands for b in c.split("\n\n")]
# Blocks of several candidates (a paragraph, a bullet list, the table) plus text no candidate wrote.
fused = "\n\n".join(
    ["## A plan for your first marathon", blocks[0], blocks[7], blocks[9], blocks[10], blocks[16]]
    + ["**Also:** do the last long run *two weeks* before race day, `not later`."]
)
attribution = attribute(fused, cands)
labels = [f"Candidate {i + 1}" for i in range(len(cands))]

bug = get_scenario("escape-html-bug")
bug_cands = list(bug.candidates)
bug_fused = "\n\n".join(bug_cands[1].split("\n\n")[:3] + bug_cands[0].split("\n\n")[-2:])
bug_attribution = attribute(bug_fused, bug_cands)

left, right = st.columns(2)
with left:
    st.subheader("Fused answer, attributed")
    st.html(legend_html(labels, partition(fused, attribution, len(labels)), shares=attribution.shares))
    st.html(f'<div id="md-attributed">{attributed_markdown_html(fused, attribution, labels)}</div>')
    st.subheader("With code")
    st.html(f'<div id="md-code">{attributed_markdown_html(bug_fused, bug_attribution, labels)}</div>')
with right:
    st.subheader("Highlight: candidate 2")
    st.html(f'<div id="md-highlighted">{attributed_markdown_html(fused, attribution, labels, highlight=1)}</div>')

card = cands[1]
drop_from = card.index("- **Do strength work")
edit_at = card.index("Increase your weekly")
units = [(0, edit_at, "kept"), (edit_at, edit_at + 40, "edited"), (edit_at + 40, drop_from, "kept"),
         (drop_from, len(card), "dropped")]  # fmt: skip
ja = get_scenario("translate-ja-email").candidates[0]
hostile = (
    "Payloads: <script>window.__pwned = 1</script> <img src=x onerror=\"window.__pwned=2\"> "
    "\"><svg onload=\"window.__pwned=3\"> [click](javascript:window.__pwned=4) "
    "![pixel](https://tracker.invalid/pixel.gif) [safe](https://example.com/page)"
)
a, b, c = st.columns(3)
with a:
    st.subheader("Candidate 2: kept and dropped")
    st.html(f'<div id="md-units">{markdown_html(card, ranges=units)}</div>')
with b:
    st.subheader("CJK")
    st.html(f'<div id="md-cjk">{markdown_html(ja)}</div>')
with c:
    st.subheader("Hostile")
    st.html(f'<div id="md-hostile">{markdown_html(hostile)}</div>')
