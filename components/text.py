"""Text that a user or a model typed, made safe for the places Streamlit renders as Markdown.

``st.caption``, ``st.info``, ``st.success`` and friends interpret Markdown and Streamlit's own directives
(``:red[...]``, ``:material/...:``, ``$...$`` for LaTeX). A tag ``**boldtag**``, an annotator called
``[x](javascript:...)`` or a model name must show as typed, so every ASCII punctuation character of such text
is backslash-escaped (CommonMark lets any of them be escaped, and Streamlit's directives then see a plain
character) and line breaks become spaces (one-line contexts).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_PUNCT = re.compile(r"([!-/:-@\[-`{-~])")
_BREAKS = re.compile(r"[\r\n]+")


def md_escape(text: object) -> str:
    """``text`` as literal Markdown: shown exactly as written, on one line."""
    return _PUNCT.sub(r"\\\1", _BREAKS.sub(" ", str(text)))


def md_list(items: Iterable[object], sep: str = ", ") -> str:
    """Several literal items joined by ``sep`` (the separator itself is Markdown)."""
    return sep.join(md_escape(i) for i in items)
