"""Which API key a model needs, and where to find it (the environment first, then a secrets mapping).
Where a key may be sent at all is decided in :mod:`fusion.keys`: the operator's keys go only to a
provider's own endpoint or to a base URL the operator listed.

Pure Python, no litellm import: the app calls this on every rerun to decide between live and offline mode.
The environment-variable names are the ones litellm itself reads for each provider prefix.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence
from urllib.parse import urlparse

from fusion.errors import MissingKeyError
from fusion.keys import PLACEHOLDER_KEY, may_use_operator_key
from fusion.types import ModelSpec


@dataclass(frozen=True)
class Provider:
    prefix: str  # litellm's provider prefix, as in "anthropic/claude-..."
    title: str
    env: tuple[str, ...]  # env vars litellm accepts for the key, preferred first; empty = no key needed
    example: str  # a model string to show as a hint


PROVIDERS: tuple[Provider, ...] = (
    Provider("openai", "OpenAI", ("OPENAI_API_KEY",), "openai/gpt-4o-mini"),
    Provider("anthropic", "Anthropic", ("ANTHROPIC_API_KEY",), "anthropic/claude-3-5-haiku-latest"),
    Provider("cohere", "Cohere", ("COHERE_API_KEY", "CO_API_KEY"), "cohere/command-a-03-2025"),
    Provider("cohere_chat", "Cohere (chat)", ("COHERE_API_KEY", "CO_API_KEY"), "cohere_chat/command-r-plus"),
    Provider("gemini", "Google Gemini", ("GEMINI_API_KEY", "GOOGLE_API_KEY"), "gemini/gemini-2.0-flash"),
    Provider("mistral", "Mistral", ("MISTRAL_API_KEY",), "mistral/mistral-small-latest"),
    Provider("groq", "Groq", ("GROQ_API_KEY",), "groq/llama-3.1-8b-instant"),
    Provider("together_ai", "Together AI",
             ("TOGETHERAI_API_KEY", "TOGETHER_API_KEY", "TOGETHER_AI_API_KEY", "TOGETHER_AI_TOKEN"),
             "together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo"),
    Provider("openrouter", "OpenRouter", ("OPENROUTER_API_KEY", "OR_API_KEY"), "openrouter/openai/gpt-4o-mini"),
    Provider("deepseek", "DeepSeek", ("DEEPSEEK_API_KEY",), "deepseek/deepseek-chat"),
    Provider("xai", "xAI", ("XAI_API_KEY",), "xai/grok-2-latest"),
    Provider("fireworks_ai", "Fireworks AI",
             ("FIREWORKS_AI_API_KEY", "FIREWORKS_API_KEY", "FIREWORKSAI_API_KEY", "FIREWORKS_AI_TOKEN"),
             "fireworks_ai/accounts/fireworks/models/llama-v3p1-8b-instruct"),
    Provider("perplexity", "Perplexity", ("PERPLEXITYAI_API_KEY", "PERPLEXITY_API_KEY"), "perplexity/sonar"),
    Provider("deepinfra", "DeepInfra", ("DEEPINFRA_API_KEY",), "deepinfra/meta-llama/Meta-Llama-3.1-8B-Instruct"),
    Provider("cerebras", "Cerebras", ("CEREBRAS_API_KEY",), "cerebras/llama3.1-8b"),
    Provider("sambanova", "SambaNova", ("SAMBANOVA_API_KEY",), "sambanova/Meta-Llama-3.1-8B-Instruct"),
    Provider("nvidia_nim", "NVIDIA NIM", ("NVIDIA_NIM_API_KEY",), "nvidia_nim/meta/llama3-8b-instruct"),
    Provider("huggingface", "Hugging Face", ("HF_TOKEN", "HUGGINGFACE_API_KEY"),
             "huggingface/meta-llama/Llama-3.1-8B-Instruct"),
    Provider("ai21", "AI21", ("AI21_API_KEY",), "ai21/jamba-1.5-mini"),
    Provider("azure", "Azure OpenAI", ("AZURE_API_KEY", "AZURE_OPENAI_API_KEY"), "azure/<deployment>"),
    Provider("ollama", "Ollama (local)", (), "ollama/llama3.2"),
    Provider("ollama_chat", "Ollama chat (local)", (), "ollama_chat/llama3.2"),
    Provider("hosted_vllm", "vLLM server", (), "hosted_vllm/<model>"),
    Provider("lm_studio", "LM Studio (local)", (), "lm_studio/<model>"),
)

_BY_PREFIX = {p.prefix: p for p in PROVIDERS}

# Bare model names litellm resolves without a prefix (its model map); only the common families matter here.
_BARE_FAMILIES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("gpt-", "o1", "o3", "o4", "chatgpt-", "text-davinci", "davinci", "babbage"), "openai"),
    (("claude",), "anthropic"),
    (("command",), "cohere"),
)


def provider_of(model: str) -> str | None:
    """The provider prefix of a litellm model string, or None when it cannot be told offline."""
    model = model.strip()
    if "/" in model:
        return model.split("/", 1)[0].strip().lower() or None
    low = model.lower()
    for starts, provider in _BARE_FAMILIES:
        if low.startswith(starts):
            return provider
    return None


def is_local_base(api_base: str | None) -> bool:
    """True for servers on this machine or a private network (a local vLLM, Ollama, a test server): a
    missing key is no error there. Whether a key may be sent there is :mod:`fusion.keys`' question."""
    if not api_base:
        return False
    host = urlparse(api_base if "://" in api_base else "http://" + api_base).hostname or ""
    if host in ("localhost", "host.docker.internal") or host.endswith((".local", ".localhost", ".internal")):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_private or ip.is_unspecified or ip.is_link_local


def required_key_env(
    model: str, api_base: str | None = None, *, allowed: Iterable[str] | None = None
) -> list[str]:
    """Env vars that must hold the key for ``model`` called at ``api_base`` (preferred first).

    Empty when no operator key may or need go there: a base URL the operator did not list (it gets only
    a key typed with it, see :mod:`fusion.keys`), a local server, or a provider this table does not know
    (litellm then finds credentials its own way). ``allowed=None`` reads ``FUSION_KEY_BASES``.
    """
    if api_base and (is_local_base(api_base) or not may_use_operator_key(api_base, allowed)):
        return []
    return _provider_env(model)


def _provider_env(model: str) -> list[str]:
    provider = provider_of(model)
    if provider is None or provider not in _BY_PREFIX:
        return []
    return list(_BY_PREFIX[provider].env)


def _from_env(name: str, env: Mapping[str, str] | None = None) -> str | None:
    value = (os.environ if env is None else env).get(name)
    return value.strip() if value and value.strip() else None


def _from_secrets(name: str, secrets: Mapping[str, object] | None) -> str | None:
    if secrets is None:
        return None
    try:
        found = secrets.get(name)
    except Exception:  # a Streamlit secrets object raises when no secrets file exists
        return None
    return found.strip() if isinstance(found, str) and found.strip() else None


def find_api_key(
    model: str,
    api_base: str | None = None,
    secrets: Mapping[str, object] | None = None,
    *,
    allowed: Iterable[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> str | None:
    """The operator's key for ``model``: the first of its env vars set in ``env`` (default the process
    environment), then in ``secrets``; None when there is none, and always None for a base URL the
    operator did not list (``allowed``; None reads ``FUSION_KEY_BASES``)."""
    if not may_use_operator_key(api_base, allowed):
        return None
    names = _provider_env(model)
    for name in names:
        if value := _from_env(name, env):
            return value
    for name in names:
        if value := _from_secrets(name, secrets):
            return value
    return None


def check_keys(
    pool: Sequence[ModelSpec], secrets: Mapping[str, object] | None = None, *, allowed: Iterable[str] | None = None
) -> None:
    """Raise ``MissingKeyError`` naming the env var to set for every model of the pool that lacks a key."""
    missing: list[str] = []
    for spec in pool:
        if spec.api_key:
            continue
        names = required_key_env(spec.model, spec.api_base, allowed=allowed)
        if names and find_api_key(spec.model, spec.api_base, secrets, allowed=allowed) is None:
            line = f"{spec.model}: set {names[0]}"
            if line not in missing:
                missing.append(line)
    if missing:
        raise MissingKeyError(
            "No API key found for "
            + "; ".join(missing)
            + " (in the environment or in .streamlit/secrets.toml)."
        )


def has_any_provider_key(secrets: Mapping[str, str] | None = None) -> bool:
    """True when any hosted provider's key is available; the app runs in offline mode otherwise."""
    return any(_from_env(name) or _from_secrets(name, secrets) for p in PROVIDERS for name in p.env)


def providers_with_keys(secrets: Mapping[str, str] | None = None) -> list[str]:
    """Titles of the hosted providers that have a key available, in table order, each once."""
    titles: list[str] = []
    seen_env: set[tuple[str, ...]] = set()
    for p in PROVIDERS:
        if p.env and p.env not in seen_env and any(_from_env(n) or _from_secrets(n, secrets) for n in p.env):
            seen_env.add(p.env)
            titles.append(p.title)
    return titles

def key_for(
    model: str,
    api_base: str | None,
    *,
    typed_key: str | None = None,
    env: Mapping[str, str] | None = None,
    secrets: Mapping[str, object] | None = None,
    allowed: Iterable[str] | None = None,
) -> str | None:
    """The key to send with a call of ``model`` to ``api_base``.

    * ``typed_key`` (given together with this base by the person who chose it) wins: it is theirs.
    * No base: the provider's key from ``env`` (default the process environment), then ``secrets``; None
      when there is none (litellm then looks for the provider's credentials itself, for its own endpoint).
    * A listed base (``allowed``; None reads ``FUSION_KEY_BASES``): the same, else the placeholder.
    * Any other base: :data:`PLACEHOLDER_KEY`, never the operator's key.
    """
    if typed_key and typed_key.strip():
        return typed_key.strip()
    if may_use_operator_key(api_base, allowed):
        found = find_api_key(model, api_base, secrets, allowed=allowed, env=env)
        if found is not None or not api_base:
            return found
    return PLACEHOLDER_KEY
