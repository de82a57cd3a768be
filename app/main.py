"""Streamlit entry: ``streamlit run app/main.py``. Sets up the page and routes to one file per page."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # streamlit puts app/ on the path, the engine lives next to it
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")

import streamlit as st  # noqa: E402

st.set_page_config(page_title="Fusion Explorer", page_icon=":material/merge:", layout="wide")

HERE = Path(__file__).resolve().parent
PAGES = [
    ("explore.py", "Explore", ":material/science:"),
    ("annotate.py", "Annotate", ":material/how_to_vote:"),
    ("history.py", "History", ":material/history:"),
    ("results.py", "Results", ":material/monitoring:"),
]

pages = [
    st.Page(HERE / file, title=title, icon=icon, default=(i == 0))
    for i, (file, title, icon) in enumerate(PAGES)
    if (HERE / file).exists()
]
st.navigation(pages).run()
