"""Where the pages get their dependencies: the database engine, the response cache, the model client and
provider keys. Built once per server process (``st.cache_resource``) and shared by all sessions, so each of
them is thread-safe. Tests point them elsewhere with environment variables (DATABASE_URL, FUSION_DB_PATH,
FUSION_CACHE_DIR) before the app starts."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import streamlit as st


@st.cache_resource(show_spinner=False)
def get_engine() -> Any:
    from storage.migrations import init_db

    return init_db()


@st.cache_resource(show_spinner=False)
def get_cache() -> Any:
    from storage.cache import DiskResponseCache, default_cache_dir

    return DiskResponseCache(default_cache_dir())


@st.cache_resource(show_spinner=False)
def get_client() -> Any:
    # Imported here, not at the top: litellm costs seconds to import and offline sessions never need it.
    from fusion.llm import LiteLLMClient

    return LiteLLMClient()


def secrets() -> Mapping[str, str]:
    """Provider keys from .streamlit/secrets.toml, if there is one (flat string values only)."""
    try:
        items = dict(st.secrets)
    except Exception:  # no secrets file: Streamlit raises rather than returning an empty mapping
        return {}
    return {k: v for k, v in items.items() if isinstance(v, str)}


def fusion_defaults() -> Mapping[str, Any]:
    try:
        section = st.secrets.get("fusion", {})
    except Exception:
        return {}
    return dict(section) if isinstance(section, Mapping) else {}


def has_live_key() -> bool:
    from fusion.providers import has_any_provider_key

    return has_any_provider_key(secrets())


def provider_key_names() -> list[str]:
    """Titles of the providers whose key is set (never the keys themselves), e.g. ["OpenAI"]."""
    from fusion.providers import providers_with_keys

    return providers_with_keys(secrets())


def default_api_base() -> str:
    return os.environ.get("FUSION_API_BASE") or str(fusion_defaults().get("api_base") or "")
