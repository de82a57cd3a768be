"""Who may use a shared Fusion Explorer, and as what: the built-in login's users file and the roles.

Team mode needs names that come from a login, not from a text field anyone can fill in, and actions that
only some people may take. Where no identity provider is configured for Streamlit's own login
(``st.login``), the operator keeps a users file, written by ``fusion users add``: one entry per person
with a role and a salted scrypt hash of their password (never the password). The file is JSON, beside
the database by default (``<repo>/data/users.json``, or ``FUSION_USERS_FILE``), and is written whole
through a temporary file so that a crash never leaves half of it.

Roles are declared as data (:data:`PERMISSIONS`), so a page asks ``allowed(role, "delete")`` rather than
comparing role names itself.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fusion.errors import InputError

ROLES = ("annotator", "admin")
# What each role may do. Annotators vote and see their queue; admins also delete runs, export data, run
# live generation on the operator's keys and change settings.
PERMISSIONS: dict[str, frozenset[str]] = {
    "annotator": frozenset({"vote", "read"}),
    "admin": frozenset({"vote", "read", "delete", "export", "live", "settings"}),
}
ACTIONS = ("vote", "read", "delete", "export", "live", "settings")

# scrypt's cost: n = 2**14, r = 8 takes about 16 MB and tens of milliseconds, fine for a login form and
# slow enough to make guessing from a stolen file expensive. Stored per user so it can be raised later.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
MIN_PASSWORD_CHARS = 8
MAX_NAME_CHARS = 100


@dataclass(frozen=True)
class User:
    name: str
    role: str

    def may(self, action: str) -> bool:
        return allowed(self.role, action)


def allowed(role: str, action: str) -> bool:
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    return action in PERMISSIONS.get(role, frozenset())


def users_file() -> Path:
    """``FUSION_USERS_FILE`` if set, otherwise ``users.json`` in the database's default folder."""
    raw = os.environ.get("FUSION_USERS_FILE", "").strip()
    if raw:
        return Path(raw).expanduser()
    return Path(__file__).resolve().parent.parent / "data" / "users.json"


def _hash(password: str, salt: bytes, params: dict[str, int]) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, dklen=32, maxmem=64 * 1024 * 1024, **params)


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InputError("A user needs a name.")
    name = name.strip()
    if len(name) > MAX_NAME_CHARS:
        raise InputError(f"A user name has at most {MAX_NAME_CHARS} characters.")
    from storage.votes import check_person_name

    return check_person_name(name)  # a login's name is its votes' annotator


def load(path: Path) -> dict[str, dict[str, Any]]:
    """The users in ``path`` (``{}`` when the file does not exist); a damaged file is an error, never
    an empty team, since that would silently let nobody (or, worse, everybody) in."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        users = data["users"]
        if not isinstance(users, dict):
            raise TypeError("users is not an object")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"The users file {path} cannot be read ({exc}); fix or remove it.") from None
    return users


def _save(path: Path, users: dict[str, dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".users-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"users": users}, out, indent=2, sort_keys=True)
        os.chmod(tmp, 0o600)  # hashes only, but nobody else needs to read them
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def add_user(path: Path, name: str, role: str, password: str) -> User:
    """Add a user, or replace an existing user's role and password."""
    name = _check_name(name)
    if role not in ROLES:
        raise InputError(f"The role must be one of {', '.join(ROLES)}; got {role!r}.")
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_CHARS:
        raise InputError(f"A password needs at least {MIN_PASSWORD_CHARS} characters.")
    users = load(path)
    salt = secrets.token_bytes(16)
    users[name] = {
        "role": role,
        "salt": salt.hex(),
        "hash": _hash(password, salt, _SCRYPT).hex(),
        "scrypt": dict(_SCRYPT),
    }
    _save(path, users)
    return User(name, role)


def remove_user(path: Path, name: str) -> bool:
    users = load(path)
    if users.pop(name.strip(), None) is None:
        return False
    _save(path, users)
    return True


def list_users(path: Path) -> list[User]:
    return [User(name, entry.get("role", "annotator")) for name, entry in sorted(load(path).items())]


def verify(path: Path, name: str, password: str) -> User | None:
    """The user when the password is theirs; ``None`` otherwise (an unknown name costs the same time as a
    wrong password, so the form does not tell which names exist)."""
    users = load(path)
    entry = users.get((name or "").strip())
    if entry is None:
        _hash(password or "", b"\0" * 16, _SCRYPT)
        return None
    try:
        salt = bytes.fromhex(entry["salt"])
        expected = bytes.fromhex(entry["hash"])
        params = {k: int(v) for k, v in entry.get("scrypt", _SCRYPT).items()}
    except (KeyError, ValueError, TypeError, AttributeError):
        return None
    if not hmac.compare_digest(_hash(password or "", salt, params), expected):
        return None
    role = entry.get("role")
    return User(name.strip(), role if role in ROLES else "annotator")


class LoginThrottle:
    """Wrong passwords per name: after ``limit`` of them within ``window`` seconds, that name must wait
    ``lockout`` seconds before the next attempt, so a guesser gets a few tries a minute, not thousands.

    Keyed by the name typed (case-folded), known or not, so the wait does not tell which names exist. One
    instance per server process; thread-safe.
    """

    def __init__(self, limit: int = 5, window: float = 600.0, lockout: float = 60.0,
                 clock: Any = time.monotonic) -> None:
        self.limit, self.window, self.lockout, self.clock = limit, window, lockout, clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(name: str) -> str:
        return (name or "").strip().casefold()

    def wait(self, name: str) -> float:
        """Seconds until ``name`` may try again (0.0: now)."""
        with self._lock:
            times = self._recent(self._key(name))
            if len(times) < self.limit:
                return 0.0
            return max(0.0, times[-1] + self.lockout - self.clock())

    def failed(self, name: str) -> None:
        with self._lock:
            key = self._key(name)
            self._recent(key).append(self.clock())

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._failures.pop(self._key(name), None)

    def _recent(self, key: str) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        now = self.clock()
        while times and now - times[0] > self.window:
            times.popleft()
        while len(times) > self.limit:  # only the last few matter
            times.popleft()
        return times
