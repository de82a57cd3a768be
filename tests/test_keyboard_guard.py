"""The keyboard guard's script (components.keyboard_guard) and that every shortcut of the app goes through it.

What the script does in a browser (held keys, bursts, typing that lost its box) is tested in
tests/test_browser_pages.py; here, what can be checked without one.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from components.keyboard_guard import GAP_MS, TYPING_MS, keyboard_guard_html
from components.vote_panel import CONTINUE_KEY, SHORTCUTS, SKIP_KEY, UNDO_KEY

ROOT = Path(__file__).resolve().parent.parent
# The names a ``shortcut=`` may use: the guard is handed exactly these keys (app/main.py).
SHORTCUT_NAMES = {"SKIP_KEY", "UNDO_KEY", "CONTINUE_KEY"}


def guarded_keys(script: str) -> list[str]:
    match = re.search(r"const KEYS = new Set\((\[.*?\])\)", script)
    assert match, script
    return json.loads(match.group(1))


def test_the_script_carries_its_keys_lowercased_and_its_timings() -> None:
    script = keyboard_guard_html(["S", "1", "u", "S", "Enter"])
    assert guarded_keys(script) == ["1", "s", "u"]  # Enter is not a one-key shortcut; duplicates go
    assert f"GAP = {GAP_MS}," in script and f"TYPING = {TYPING_MS};" in script
    assert script.strip().startswith("<script>") and script.strip().endswith("</script>")
    assert TYPING_MS > GAP_MS > 0


def test_every_shortcut_in_the_app_is_one_the_guard_is_given() -> None:
    """A shortcut written as a literal, or from a constant the guard is not handed, would fire unguarded."""
    found = []
    for path in sorted([*ROOT.glob("app/*.py"), *ROOT.glob("components/*.py")]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.keyword) or node.arg != "shortcut":
                continue
            value = node.value
            named = isinstance(value, ast.Name) and value.id in SHORTCUT_NAMES
            from_votes = (
                isinstance(value, ast.Subscript) and isinstance(value.value, ast.Name) and value.value.id == "SHORTCUTS"
            )
            assert named or from_votes, f"{path.name}:{node.lineno}: shortcut={ast.unparse(value)}"
            found.append(path.name)
    assert {"annotate.py", "vote_panel.py"} <= set(found)
    main = (ROOT / "app" / "main.py").read_text(encoding="utf-8")
    assert "keyboard_guard_html([*SHORTCUTS.values(), SKIP_KEY, UNDO_KEY, CONTINUE_KEY])" in main
    assert "unsafe_allow_javascript=True" in main
    keys = guarded_keys(keyboard_guard_html([*SHORTCUTS.values(), SKIP_KEY, UNDO_KEY, CONTINUE_KEY]))
    assert keys == ["1", "2", "3", "4", "n", "s", "u"]
