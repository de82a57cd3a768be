"""The Streamlit entry of bench/browser_speed.py's timed server: ``app/main.py`` run by bench/app_timing.py,
which records where each script run spends its time (see that module).

Streamlit executes this file afresh on every rerun, so it holds no state: the timers and their per-thread
stacks live in the imported module, installed once per process.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import app_timing  # noqa: E402

app_timing.run_app()
