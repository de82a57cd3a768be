"""Which key a model call may carry, decided by where the call goes.

The operator's keys (the environment, or the app's Streamlit secrets) go only where the operator said:
a provider's own endpoint (no ``api_base``: litellm's default base for that provider) or a base URL the
operator listed (env ``FUSION_KEY_BASES``, comma-separated URL prefixes; ``[fusion] key_bases = [...]``
in ``.streamlit/secrets.toml`` for the app). Any other base URL (typed in the page, passed on a command
line) gets only the key given with it, or a placeholder: OpenAI-compatible clients refuse to run without
some value, and local servers ignore it. A visitor who points the app at a server of theirs therefore
never collects the operator's key.

Pure Python: no litellm, no Streamlit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Mapping
from urllib.parse import urlsplit

from fusion.errors import InputError

# Sent to a base URL that gets no key: the openai SDK refuses an empty key, and it must not fall back
# on OPENAI_API_KEY from the environment (which it would with no key at all).
PLACEHOLDER_KEY = "no-key"

KEY_BASES_ENV = "FUSION_KEY_BASES"

_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Base:
    """A base URL reduced to what decides where a request lands: scheme, host, port and path."""

    scheme: str
    host: str
    port: int
    path: str  # without a trailing slash; "" for the root

    def covers(self, other: Base) -> bool:
        """True when ``other`` is this base or lies under its path (on a segment boundary: a listed
        ``/v1`` covers ``/v1/chat`` but not ``/v1beta`` or ``/v1.evil``)."""
        if (self.scheme, self.host, self.port) != (other.scheme, other.host, other.port):
            return False
        return other.path == self.path or other.path.startswith(self.path + "/")


def parse_base(url: str) -> Base | None:
    """``url`` as a :class:`Base`, or None when it is not an http(s) URL with a host."""
    text = (url or "").strip()
    if not text:
        return None
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:  # a bad port or a malformed IPv6 literal
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".").lower()
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    return Base(scheme, host, port or _DEFAULT_PORTS[scheme], parts.path.rstrip("/"))


def parse_key_bases(values: str | Iterable[str] | None, *, source: str = KEY_BASES_ENV) -> tuple[str, ...]:
    """The listed base URLs from a comma-separated string or a list, blanks dropped.

    An entry that is not an http(s) URL raises :class:`InputError` naming ``source``: a typo in this
    list must not silently send the key nowhere (or, worse, be read as something broader).
    """
    if values is None:
        return ()
    items = values.split(",") if isinstance(values, str) else list(values)
    out: list[str] = []
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        if parse_base(text) is None:
            raise InputError(f"{source}: {text!r} is not an http:// or https:// URL with a host.")
        out.append(text)
    return tuple(dict.fromkeys(out))


def env_key_bases(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The base URLs listed in ``FUSION_KEY_BASES`` (of ``env``, default the process environment)."""
    env = os.environ if env is None else env
    return parse_key_bases(env.get(KEY_BASES_ENV), source=KEY_BASES_ENV)


def is_listed_base(api_base: str | None, allowed: Iterable[str]) -> bool:
    """True when ``api_base`` lies under one of the ``allowed`` base URLs (same scheme, host, port, and a
    path at or below the listed one). Unparseable URLs are never listed."""
    target = parse_base(api_base or "")
    if target is None:
        return False
    return any(base is not None and base.covers(target) for base in map(parse_base, allowed))


def may_use_operator_key(api_base: str | None, allowed: Iterable[str] | None = None) -> bool:
    """Whether the operator's key for a model may travel with a call to ``api_base``: always for the
    provider's own endpoint (no base), otherwise only for a listed base. ``allowed=None`` reads
    ``FUSION_KEY_BASES``."""
    if not api_base or not api_base.strip():
        return True
    return is_listed_base(api_base, env_key_bases() if allowed is None else allowed)
