"""The built-in login's users file: salted hashes, roles as data, damaged files refused."""

from __future__ import annotations

import json
import stat

import pytest

from fusion.errors import InputError
from storage.users import PERMISSIONS, User, add_user, allowed, list_users, load, remove_user, verify


def test_a_user_logs_in_with_their_password_only(tmp_path) -> None:
    path = tmp_path / "users.json"
    add_user(path, "ana", "admin", "correct horse")
    add_user(path, "ben", "annotator", "battery staple")
    assert verify(path, "ana", "correct horse") == User("ana", "admin")
    assert verify(path, " ben ", "battery staple") == User("ben", "annotator")
    assert verify(path, "ana", "battery staple") is None
    assert verify(path, "carl", "correct horse") is None
    assert verify(path, "ana", "") is None
    text = path.read_text()
    assert "correct horse" not in text and "battery staple" not in text  # hashes, never passwords
    entries = json.loads(text)["users"]
    assert entries["ana"]["salt"] != entries["ben"]["salt"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_same_password_hashes_differently_per_user(tmp_path) -> None:
    path = tmp_path / "users.json"
    add_user(path, "a1", "annotator", "same password")
    add_user(path, "a2", "annotator", "same password")
    users = load(path)
    assert users["a1"]["hash"] != users["a2"]["hash"]


def test_replacing_and_removing_users(tmp_path) -> None:
    path = tmp_path / "users.json"
    add_user(path, "ana", "annotator", "first password")
    add_user(path, "ana", "admin", "second password")
    assert verify(path, "ana", "first password") is None
    assert verify(path, "ana", "second password").role == "admin"
    assert list_users(path) == [User("ana", "admin")]
    assert remove_user(path, "ana") is True and remove_user(path, "ana") is False
    assert verify(path, "ana", "second password") is None


@pytest.mark.parametrize(
    ("name", "role", "password"),
    [("", "admin", "long enough"), ("ana", "owner", "long enough"), ("ana", "admin", "short"),
     ("judge:gpt", "admin", "long enough"), ("x" * 101, "admin", "long enough")],
)
def test_bad_users_are_refused(tmp_path, name: str, role: str, password: str) -> None:
    with pytest.raises(InputError):
        add_user(tmp_path / "users.json", name, role, password)
    assert not (tmp_path / "users.json").exists()


def test_a_damaged_file_is_an_error_not_an_empty_team(tmp_path) -> None:
    path = tmp_path / "users.json"
    path.write_text("{not json")
    with pytest.raises(InputError, match="cannot be read"):
        load(path)
    path.write_text('{"users": []}')
    with pytest.raises(InputError):
        load(path)
    assert load(tmp_path / "absent.json") == {}


def test_roles_are_declared_as_data() -> None:
    assert allowed("admin", "delete") and allowed("admin", "export") and allowed("admin", "live")
    assert allowed("annotator", "vote")
    assert not any(allowed("annotator", a) for a in ("delete", "export", "live", "settings"))
    assert not allowed("stranger", "vote")
    assert PERMISSIONS["annotator"] < PERMISSIONS["admin"]
    with pytest.raises(ValueError):
        allowed("admin", "fly")


def test_wrong_passwords_are_throttled_per_name() -> None:
    from storage.users import LoginThrottle

    now = [1000.0]
    throttle = LoginThrottle(limit=3, window=600, lockout=60, clock=lambda: now[0])
    for _ in range(3):
        assert throttle.wait("ben") == 0.0
        throttle.failed("ben")
        now[0] += 1
    assert throttle.wait(" BEN ") == pytest.approx(59.0)  # the same name, however typed
    assert throttle.wait("ana") == 0.0  # other names are not held up
    now[0] += 59
    assert throttle.wait("ben") == 0.0
    throttle.failed("ben")  # one more wrong: locked again at once, the last three are within the window
    assert throttle.wait("ben") == pytest.approx(60.0)
    throttle.succeeded("ben")
    assert throttle.wait("ben") == 0.0
    # Failures older than the window are forgotten.
    for _ in range(2):
        throttle.failed("cy")
    now[0] += 601
    throttle.failed("cy")
    assert throttle.wait("cy") == 0.0
