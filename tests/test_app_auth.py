"""Team mode through the real app: who logs in, what each role may do, and whose name a vote carries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from annotate_support import looked_at

from storage.users import add_user

ROOT = Path(__file__).resolve().parents[1]
MAIN = str(ROOT / "app" / "main.py")
BASIL = [
    "Water basil when the top inch of soil is dry. Give it six hours of sun. Pinch off flower buds.",
    "Basil needs lots of sun, at least six hours. Water when the soil surface is dry. Use a pot with drainage holes.",
    "Keep basil warm, above 10 C. Pinch off flower buds so it keeps making leaves. Water when the soil surface is dry.",
]


@pytest.fixture
def team(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "users.json"
    add_user(path, "ana", "admin", "ana's password")
    add_user(path, "ben", "annotator", "ben's password")
    monkeypatch.setenv("FUSION_USERS_FILE", str(path))
    return path


def saved_run(engine: Any, run_id: str = "team-1") -> Any:
    from fusion.pipeline import run_supplied
    from storage.runs import save_run

    run = run_supplied("How do I keep basil alive?", BASIL, run_id=run_id)
    save_run(engine, run)
    return run


def login(name: str, password: str) -> Any:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(MAIN, default_timeout=60).run()
    assert not at.exception
    assert [b.label for b in at.button] == ["Log in"]  # the login form, and nothing of the app
    at.text_input(key="login.name").input(name)
    at.text_input(key="login.password").input(password)
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_without_a_login_nothing_of_the_app_is_shown(engine: Any, team: Path) -> None:
    saved_run(engine)
    at = login("ben", "wrong password")
    assert any("do not match" in e.value for e in at.error)
    assert not at.get("html") or all("Best-of-N" not in h.proto.body for h in at.get("html"))
    at = login("nobody", "ben's password")
    assert any("do not match" in e.value for e in at.error)


def test_wrong_passwords_for_a_name_are_throttled(engine: Any, team: Path) -> None:
    for _ in range(5):
        at = login("ben", "a guess")
        assert any("do not match" in e.value for e in at.error)
    at = login("ben", "ben's password")  # even the right one waits now: a guesser cannot tell
    assert any("Too many wrong passwords for this name: try again in" in e.value for e in at.error)
    assert not any("Logged in as" in c.value for c in at.sidebar.caption)
    at = login("ana", "ana's password")  # another name is not held up
    assert any("Logged in as **ana** (admin)" in c.value for c in at.sidebar.caption)


def test_an_annotator_votes_under_their_login_and_cannot_delete_or_export(engine: Any, team: Path) -> None:
    from storage.runs import load_run
    from storage.votes import get_vote

    saved_run(engine)
    at = login("ben", "ben's password")
    assert any("Logged in as **ben** (annotator)" in c.value for c in at.sidebar.caption)
    at.switch_page("history.py")
    at.query_params["run"] = "team-1"
    at.run()
    delete = next(b for b in at.button if b.label == "Delete this run")
    assert delete.disabled
    (report,) = at.get("download_button")
    assert report.proto.disabled
    at.switch_page("results.py").run()
    assert not at.get("download_button")
    assert any("Exporting is for admins" in i.value for i in at.info)
    at.switch_page("explore.py").run()
    assert not any(w.label == "OpenAI-compatible server URL (optional)" for w in at.sidebar.text_input)

    at.switch_page("annotate.py").run()
    name = at.text_input(key="annotate_name")
    assert name.value == "ben" and name.disabled
    looked_at(at)
    next(b for b in at.button if b.label.startswith("Fusion") or b.label.startswith("A")).click().run()
    assert not at.exception
    assert get_vote(engine, "team-1", "ben") is not None
    assert load_run(engine, "team-1") is not None


def test_results_tell_an_annotator_of_no_file_they_cannot_have(engine: Any, team: Path) -> None:
    saved_run(engine)
    at = login("ben", "ben's password")
    at.switch_page("results.py").run()
    assert not at.exception
    said = [e.value for e in [*at.info, *at.markdown, *at.caption]]
    mentions = [t for t in said if "export" in t.lower()]
    assert mentions and all("Exporting is for admins" in t for t in mentions), mentions
    admin = login("ana", "ana's password")
    admin.switch_page("results.py").run()
    assert any("SFT export below" in i.value for i in admin.info)


def test_an_admin_may_delete_and_export(engine: Any, team: Path) -> None:
    from storage.runs import load_run

    saved_run(engine)
    at = login("ana", "ana's password")
    at.switch_page("results.py").run()
    assert at.get("download_button")
    at.switch_page("history.py")
    at.query_params["run"] = "team-1"
    at.run()
    next(b for b in at.button if b.label == "Delete this run").click().run()
    next(b for b in at.button if b.label == "Yes, delete it").click().run()
    assert not at.exception
    assert load_run(engine, "team-1") is None


def test_a_removed_user_is_logged_out_at_once(engine: Any, team: Path) -> None:
    from storage.users import remove_user

    at = login("ben", "ben's password")
    remove_user(team, "ben")
    at.run()
    assert [b.label for b in at.button] == ["Log in"]


def test_local_single_user_needs_no_login(engine: Any) -> None:
    from streamlit.testing.v1 import AppTest

    saved_run(engine)
    at = AppTest.from_file(MAIN, default_timeout=60).run()
    assert not at.exception
    assert "Log in" not in [b.label for b in at.button]
    at.switch_page("history.py")
    at.query_params["run"] = "team-1"
    at.run()
    assert not next(b for b in at.button if b.label == "Delete this run").disabled


def test_a_network_visitor_without_logins_gets_annotator_rights(engine: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.testing.v1 import AppTest

    import app.auth

    saved_run(engine)
    monkeypatch.setattr(app.auth, "client_ip", lambda: "192.0.2.7")
    at = AppTest.from_file(MAIN, default_timeout=60).run()
    assert not at.exception
    assert any("without a login" in c.value for c in at.sidebar.caption)
    at.switch_page("history.py")
    at.query_params["run"] = "team-1"
    at.run()
    assert next(b for b in at.button if b.label == "Delete this run").disabled
    at.switch_page("explore.py").run()
    assert not any(w.label == "OpenAI-compatible server URL (optional)" for w in at.sidebar.text_input)


@pytest.mark.parametrize(("ip", "local"), [(None, True), ("127.0.0.1", True), ("::1", True), ("10.0.0.5", False),
                                          ("192.0.2.7", False), ("not an address", False)])
def test_which_visitors_count_as_local(ip: str | None, local: bool) -> None:
    from app.auth import _is_local

    assert _is_local(ip) is local


def test_an_oidc_provider_in_the_secrets_puts_streamlits_login_first(engine: Any) -> None:
    from streamlit.testing.v1 import AppTest

    saved_run(engine)
    at = AppTest.from_file(MAIN, default_timeout=60)
    at.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32,
                          "client_id": "id", "client_secret": "secret",
                          "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration"}
    at.run()
    assert not at.exception
    assert [b.label for b in at.button] == ["Log in"]
    assert not any("Best-of-N" in h.proto.body for h in at.get("html"))


def test_a_users_name_is_shown_as_text(engine: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "users.json"
    add_user(path, "[click](http://evil.example) *x*", "annotator", "long password")
    monkeypatch.setenv("FUSION_USERS_FILE", str(path))
    at = login("[click](http://evil.example) *x*", "long password")
    (caption,) = [c.value for c in at.sidebar.caption if "Logged in as" in c.value]
    assert "](http" not in caption.replace("\\](http", "") and "\\[click\\]" in caption
