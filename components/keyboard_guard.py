"""A small script that stands between the keyboard and Streamlit's button shortcuts (1-4, S, U, N).

Streamlit fires a button's shortcut on every key press it sees, and every press it fires reruns the page on
the server. Three things a person does with a keyboard then go wrong, all seen in an audit of Annotate:

- A held key (auto-repeat, about 30 presses a second) or a burst of presses kept a server core busy for
  seconds, and another annotator's vote waited 13-30 s for it.
- A key pressed twice (U, S, a vote key) acted twice.
- Typing a comment just as the next run was drawn: the comment box was replaced, the focus went with it,
  and the rest of the typing was read as shortcuts (``u`` undid a vote, ``s`` skipped, ``4`` voted).

So, before Streamlit sees a key: a shortcut key that repeats (held down), or comes within ``GAP_MS`` of
the shortcut before it that could act (a key pressed while its buttons are greyed out does nothing and
does not count), is dropped. A key typed while the person was typing in a form's text field a moment
ago, when that field has just been redrawn (gone from the page, focus with it), is not a shortcut: it goes
on in the form's field of the same label (the redrawn comment box), with what was typed before the redraw,
or nowhere. Clicking, Tab and Escape end the typing (Escape also leaves the box); so does focus leaving a
field that is still there. A shortcut pressed while its buttons are greyed out makes them flash.
Only the browser can tell a held key or a typing person from a shortcut; the server keeps its own checks
(greyed-out buttons, time since the run was drawn, which run a press was for) for presses that get
through, so this is the first line, not the only.

The script is the same on every run and carries no model text; it installs itself once per page load.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

# Apart, a person's presses of these keys are at least about 250 ms (a quick double tap); a held key
# repeats every 33-50 ms.
GAP_MS = 400
# Between two keys of a typist: a pause longer than this means they stopped typing.
TYPING_MS = 1500

_SCRIPT = """
<script>
(() => {
  if (window.__fxKeyGuard) return;
  window.__fxKeyGuard = {dropped: 0, redirected: 0, notYet: 0};
  const style = document.createElement("style");
  style.textContent = `@keyframes fx-not-yet { 25%% { transform: translateX(-3px); } 75%% { transform: translateX(3px); } }
    .fx-not-yet { animation: fx-not-yet 0.2s ease-in-out 2; outline: 2px solid rgba(255, 75, 75, 0.6); }
    @media (prefers-reduced-motion: reduce) { .fx-not-yet { animation: none; } }`;
  document.head.appendChild(style);
  const KEYS = new Set(%(keys)s), GAP = %(gap)d, TYPING = %(typing)d;
  let lastShortcut = -1e9, lastTyped = -1e9, typedIn = null;
  const textual = (el) => !!el && (el.isContentEditable || el.tagName === "TEXTAREA"
    || (el.tagName === "INPUT" && !["button", "checkbox", "radio", "submit", "range", "file"].includes(el.type)));
  const drop = (ev) => { ev.stopImmediatePropagation(); ev.preventDefault(); window.__fxKeyGuard.dropped++; };
  window.addEventListener("keydown", (ev) => {
    const now = performance.now();
    if (textual(ev.target)) {
      // Tab, Escape and a submit (Ctrl+Enter) leave the field on purpose: shortcuts work at once after them.
      const leaving = ev.key === "Tab" || ev.key === "Escape" || (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey));
      lastTyped = leaving ? -1e9 : now;
      // Escape leaves a text box (the browser would keep the focus there, and the next key would be text);
      // in a select box's search field it only closes the list.
      if (ev.key === "Escape" && ev.target.getAttribute("role") !== "combobox") setTimeout(() => ev.target.blur(), 0);
      // What was typed in, to find its redrawn copy: a field of a form, by its tag and its label.
      typedIn = ev.target.closest('[data-testid="stForm"]')
        ? {el: ev.target, tag: ev.target.tagName.toLowerCase(), label: ev.target.getAttribute("aria-label")} : null;
      return;
    }
    if (ev.ctrlKey || ev.metaKey || ev.altKey || typeof ev.key !== "string") return;
    // Only a field that is gone (redrawn) or switched off lost its typist; focus that left a field still
    // on screen left it on purpose (a shortcut right after works).
    if (now - lastTyped < TYPING && typedIn && (!typedIn.el.isConnected || typedIn.el.disabled)) {
      if (ev.key.length !== 1) return;
      // The field typed in was redrawn under the typist: keep the typing out of the shortcuts.
      lastTyped = now;
      ev.stopImmediatePropagation();
      const boxes = [...document.querySelectorAll(`[data-testid="stForm"] ${typedIn.tag}:not([disabled])`)];
      const box = boxes.find((b) => b.getAttribute("aria-label") === typedIn.label) || boxes[0];
      if (!box) { drop(ev); return; }
      // What was typed into the field before it was redrawn comes along rather than vanishing unseen.
      const before = typedIn.el.isConnected ? "" : typedIn.el.value;
      if (before && !box.value) {
        const setter = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(box), "value").set;
        setter.call(box, before);
        box.dispatchEvent(new Event("input", {bubbles: true}));
      }
      typedIn.el = box;
      box.focus();
      window.__fxKeyGuard.redirected++;
      return;
    }
    if (!KEYS.has(ev.key.toLowerCase())) return;
    if (ev.repeat) { drop(ev); return; }
    // A key whose buttons are all greyed out does nothing, so it is not the shortcut before the next one:
    // the press right after the buttons turn on acts, however often the key was pressed while they were grey.
    // The grey buttons flash, so a press that came too early is seen to have done nothing, not lost.
    const buttons = [...document.querySelectorAll(`[aria-label="Shortcut ${ev.key.toUpperCase()}"]`)]
      .map((el) => el.closest("button")).filter(Boolean);
    // A key whose button was not found (no hint drawn) is held to the gap below like any other.
    if (buttons.length && !buttons.some((b) => !b.disabled)) {
      for (const b of buttons) {
        b.classList.remove("fx-not-yet");
        void b.offsetWidth;  // restarts the animation on a press that comes while it still plays
        b.classList.add("fx-not-yet");
        setTimeout(() => b.classList.remove("fx-not-yet"), 600);
      }
      window.__fxKeyGuard.notYet++;
      return;
    }
    if (now - lastShortcut < GAP) { drop(ev); return; }
    lastShortcut = now;
  }, true);
  window.addEventListener("pointerdown", () => { lastTyped = -1e9; }, true);
})();
</script>
"""


def keyboard_guard_html(keys: Iterable[str]) -> str:
    """The script, for ``st.html(..., unsafe_allow_javascript=True)``; ``keys`` are the pages' shortcut keys."""
    wanted = sorted({k.lower() for k in keys if len(k) == 1})
    return _SCRIPT % {"keys": json.dumps(wanted), "gap": GAP_MS, "typing": TYPING_MS}
