"""Who is at the keyboard: login, and the role every page checks before a guarded action.

Three ways in, chosen by what the operator configured:

* Streamlit's own login (``st.login``, an OIDC provider in ``.streamlit/secrets.toml`` under ``[auth]``):
  the name is the provider's e-mail; admins are listed in ``[fusion] admins``.
* The built-in login: a users file (``fusion users add``) with a role and a password hash per person.
* Neither: a visitor on this machine (127.0.0.1) is the single local user with every right and types a
  name when voting, as before. A visitor from the network gets the annotator's rights only, so a shared
  server never lets a stranger delete, export or spend the operator's keys.

Streamlit reports no IP address (``None``) for a visitor on localhost. Behind a reverse proxy every
visitor looks local, which is why a users file or an OIDC provider is the way to share the app.
"""

from __future__ import annotations

import ipaddress
import logging
import math
from dataclasses import dataclass
from typing import Any

import streamlit as st

from storage.users import LoginThrottle, User, allowed, users_file, verify
from storage.users import load as load_users

log = logging.getLogger("fusion.app")
_SESSION_KEY = "auth.user"


@dataclass(frozen=True)
class Visitor:
    """The person using this session. ``name`` is ``None`` in local single-user mode (the vote panel's
    name field is used); otherwise it is who logged in, and the vote is cast under that name."""

    name: str | None
    role: str
    mode: str  # local | open | password | oidc

    def may(self, action: str) -> bool:
        return allowed(self.role, action)


def _secret(section: str) -> Any:
    try:
        return st.secrets.get(section)
    except Exception:  # noqa: BLE001 - no secrets file at all is the normal local case
        return None


def client_ip() -> str | None:
    """The visitor's address; ``None`` on localhost (Streamlit's convention) and outside a server (AppTest
    reports a stand-in object there, not an address)."""
    ip = st.context.ip_address
    return ip if isinstance(ip, str) else None


def _is_local(ip: str | None) -> bool:
    if ip is None:
        return True
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def _oidc_visitor() -> Visitor:
    user = st.user
    if not user.get("is_logged_in", False):
        st.title("Fusion Explorer")
        st.write("This Fusion Explorer is shared by a team. Log in to continue.")
        st.button("Log in", on_click=st.login, type="primary")
        st.stop()
    name = str(user.get("email") or user.get("name") or "")
    fusion = _secret("fusion") or {}
    admins = {str(a).strip().lower() for a in (fusion.get("admins") or [])}
    return Visitor(name, "admin" if name.lower() in admins else "annotator", "oidc")


@st.cache_resource(show_spinner=False)
def login_throttle() -> LoginThrottle:
    """The server's one throttle of wrong passwords (shared by every session)."""
    return LoginThrottle()


def _password_visitor(team: dict[str, dict[str, Any]]) -> Visitor:
    kept = st.session_state.get(_SESSION_KEY)
    if kept:
        entry = team.get(kept["name"])
        if entry is not None:  # read afresh: a removed user or a changed role takes effect at once
            return Visitor(kept["name"], entry.get("role", "annotator"), "password")
        st.session_state.pop(_SESSION_KEY, None)
    st.title("Fusion Explorer")
    st.write("This Fusion Explorer is shared by a team. Log in with the name and password you were given.")
    with st.form("login"):
        name = st.text_input("Name", key="login.name")
        password = st.text_input("Password", type="password", key="login.password")
        submitted = st.form_submit_button("Log in", type="primary")
    if submitted:
        throttle = login_throttle()
        wait = throttle.wait(name)
        if wait > 0:
            st.error(f"Too many wrong passwords for this name: try again in {math.ceil(wait)} s.")
            st.stop()
        user: User | None = verify(users_file(), name, password)
        if user is None:
            throttle.failed(name)
            st.error("That name and password do not match. Ask whoever runs this server if you forgot them.")
        else:
            throttle.succeeded(name)
            st.session_state[_SESSION_KEY] = {"name": user.name, "role": user.role}
            st.rerun()
    st.stop()
    raise AssertionError("st.stop() returned")  # for type checkers


def visitor() -> Visitor:
    """Resolve this session's visitor, showing a login screen (and stopping the page) when one is needed."""
    if _secret("auth"):
        return _oidc_visitor()
    path = users_file()
    try:
        team = load_users(path)
    except Exception as exc:  # noqa: BLE001 - a damaged users file locks the app, with the reason
        st.error(str(exc))
        st.stop()
    if team:
        return _password_visitor(team)
    if _is_local(client_ip()):
        return Visitor(None, "admin", "local")
    return Visitor(None, "annotator", "open")


def sidebar(who: Visitor) -> None:
    """Who is logged in, and the way out."""
    if who.mode == "local":
        return
    if who.mode == "open":
        st.sidebar.caption(
            "Visiting from the network without a login: you can vote, but deleting, exporting and live "
            "generation are for admins. The operator can set up logins with `fusion users add`."
        )
        return
    from components.text import md_escape

    st.sidebar.caption(f"Logged in as **{md_escape(who.name or '')}** ({who.role})")  # a name is typed by people
    if who.mode == "oidc":
        st.sidebar.button("Log out", on_click=st.logout, key="auth.logout")
    elif st.sidebar.button("Log out", key="auth.logout"):
        st.session_state.pop(_SESSION_KEY, None)
        st.rerun()


def current() -> Visitor:
    """The visitor resolved by ``app/main.py`` for this run (local admin when a page runs on its own)."""
    who = st.session_state.get("auth.visitor")
    return who if isinstance(who, Visitor) else Visitor(None, "admin", "local")


def refuse(action: str) -> str:
    """The caption shown beside a control this visitor may not use."""
    what = {
        "delete": "Deleting runs",
        "export": "Exporting",
        "live": "Live generation",
        "settings": "Changing settings",
    }.get(action, action)
    return f"{what} is for admins of this server."
