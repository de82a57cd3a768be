"""The keyboard guard's script (components.keyboard_guard): its rules, on a bare page in Chromium with
buttons and a box drawn as Streamlit draws them, and that every shortcut of the app goes through it.

How it holds up in the app itself (held keys, bursts against the server, the run drawn over the box while
typing) is tested in tests/test_browser_pages.py.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browser_support import browser  # noqa: F401  (a pytest fixture)
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


# ------------------------------------------------------------------ the script itself, in Chromium

# Buttons and a form drawn the way Streamlit draws them (a shortcut's hint carries ``aria-label="Shortcut
# 1"``; a form is ``data-testid="stForm"``), and a listener on the document standing for Streamlit's
# shortcut handler: the keys it records are the ones that would have acted.
_PAGE = """<!doctype html><html><body>
<button id="vote" disabled><span>A is better</span><span aria-label="Shortcut 1">1</span></button>
<button id="undo"><span>Undo</span><span aria-label="Shortcut U">U</span></button>
<div data-testid="stForm"><textarea aria-label="Comment (optional)"></textarea></div>
<script>
window.acted = [];
document.addEventListener("keydown", (ev) => { if (ev.target === document.body) window.acted.push(ev.key); });
</script>
%s
</body></html>"""


@pytest.fixture
def bare_page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    pg = context.new_page()
    pg.set_content(_PAGE % keyboard_guard_html(["1", "U", "S"]))  # S: a shortcut whose button is not on this page
    yield pg
    context.close()


def acted(page: Any) -> list[str]:
    return page.evaluate("() => window.acted")


def turn_on_votes(page: Any) -> None:
    """What the server does QUICK_VOTE_S after it drew a run: its vote buttons, drawn grey, turn on."""
    page.evaluate("() => { document.querySelector('#vote').disabled = false; }")


def redraw_box(page: Any) -> None:
    """What a rerun does to a run's comment box: a new element in the old one's place, without the focus."""
    page.evaluate(
        """() => { const old = document.querySelector("textarea"); const box = document.createElement("textarea");
        box.setAttribute("aria-label", old.getAttribute("aria-label")); old.replaceWith(box); }"""
    )


@pytest.mark.browser
def test_a_press_on_greyed_buttons_does_not_hold_back_the_next(bare_page: Any) -> None:
    """Pressed while the run's buttons are still grey, a key does nothing; the press right after they turn on
    must act, not be dropped as the second of a double press."""
    page = bare_page
    page.keyboard.press("1")  # the buttons are grey: nothing acts, nothing is remembered
    # ... and the grey button flashes, so the press is seen to have come too early.
    assert page.evaluate("() => document.querySelector('#vote').classList.contains('fx-not-yet')")
    assert page.evaluate("() => window.__fxKeyGuard.notYet") == 1
    page.wait_for_function("() => !document.querySelector('#vote').classList.contains('fx-not-yet')", timeout=2000)
    turn_on_votes(page)
    page.keyboard.press("1")
    page.keyboard.press("1")  # a bounce: dropped
    assert acted(page) == ["1", "1"]  # the grey press went through to nothing, then one vote
    assert page.evaluate("() => window.__fxKeyGuard.dropped") == 1
    page.wait_for_timeout(GAP_MS + 50)
    page.keyboard.press("1")
    assert acted(page) == ["1", "1", "1"]


@pytest.mark.browser
def test_a_held_key_acts_once_and_other_keys_are_left_alone(bare_page: Any) -> None:
    page = bare_page
    turn_on_votes(page)
    page.keyboard.down("1")
    for _ in range(5):
        page.keyboard.down("1")  # the keyboard's repeats
    page.keyboard.up("1")
    assert acted(page) == ["1"]
    page.keyboard.press("x")  # not a shortcut
    page.keyboard.press("Enter")
    assert acted(page) == ["1", "x", "Enter"]


@pytest.mark.browser
def test_typing_goes_on_in_the_redrawn_box_with_what_was_typed_before(bare_page: Any) -> None:
    page = bare_page
    turn_on_votes(page)
    page.locator("textarea").click()
    page.keyboard.type("clear and ", delay=30)
    redraw_box(page)  # the next run drawn over the box mid-word
    page.keyboard.type("su1u", delay=30)
    assert page.locator("textarea").input_value() == "clear and su1u"
    assert acted(page) == []
    assert page.evaluate("() => document.activeElement.tagName") == "TEXTAREA"
    # A click ends the typing: the next key is a shortcut.
    page.mouse.click(5, 200)
    page.keyboard.press("u")
    assert acted(page) == ["u"]


@pytest.mark.browser
def test_focus_leaving_a_box_still_there_leaves_it_on_purpose(bare_page: Any) -> None:
    """Explore's vote: a comment, the focus moved away (the box stays), then 1 at once: a vote, not more text."""
    page = bare_page
    turn_on_votes(page)
    page.locator("textarea").click()
    page.keyboard.type("fine", delay=30)
    page.evaluate("() => document.activeElement.blur()")
    page.keyboard.press("1")
    assert acted(page) == ["1"]
    assert page.locator("textarea").input_value() == "fine"


@pytest.mark.browser
def test_after_a_pause_or_tab_the_keys_are_shortcuts_again(bare_page: Any) -> None:
    page = bare_page
    page.locator("textarea").click()
    page.keyboard.type("ok", delay=30)
    redraw_box(page)
    page.wait_for_timeout(TYPING_MS + 100)  # stopped typing: the next key is a shortcut
    page.keyboard.press("u")
    assert acted(page) == ["u"]
    page.locator("textarea").click()
    page.keyboard.type("ok", delay=30)
    page.keyboard.press("Tab")  # left the box on purpose, before it was redrawn
    redraw_box(page)
    page.evaluate("() => document.activeElement.blur()")
    page.wait_for_timeout(GAP_MS + 50)
    page.keyboard.press("u")
    assert acted(page) == ["u", "u"]


@pytest.mark.browser
def test_escape_leaves_the_box_and_the_next_key_is_a_shortcut(bare_page: Any) -> None:
    """The audit: Escape kept the focus in the comment box, so the next 3 was typed as text."""
    page = bare_page
    page.locator("textarea").click()
    page.keyboard.type("first part", delay=30)
    page.keyboard.press("Escape")
    page.keyboard.press("u")
    assert page.locator("textarea").input_value() == "first part"
    assert acted(page) == ["u"]
    # A shortcut whose button is not found is not "too early" (no flash) but still held to the gap: right
    # after u it is dropped, a moment later it is passed on.
    page.keyboard.press("s")
    assert acted(page) == ["u"]
    assert page.evaluate("() => window.__fxKeyGuard.notYet") == 0
    page.wait_for_timeout(GAP_MS + 50)
    page.keyboard.press("s")
    assert acted(page) == ["u", "s"]
