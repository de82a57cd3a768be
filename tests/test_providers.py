"""Which key a model needs and where it is found. Pure Python: no litellm, no server."""

from __future__ import annotations

import pytest

from fusion.errors import MissingKeyError
from fusion.providers import (
    PROVIDERS,
    check_keys,
    find_api_key,
    has_any_provider_key,
    is_local_base,
    provider_of,
    required_key_env,
)
from fusion.types import ModelSpec


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for provider in PROVIDERS:
        for name in provider.env:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("FUSION_KEY_BASES", raising=False)
    return monkeypatch


class RaisingSecrets(dict):
    """Like st.secrets without a secrets file: any access raises."""

    def get(self, key, default=None):  # type: ignore[override]
        raise FileNotFoundError("No secrets found")


@pytest.mark.parametrize(
    "model, expected",
    [
        ("openai/gpt-4o", ["OPENAI_API_KEY"]),
        ("anthropic/claude-3-5-sonnet-latest", ["ANTHROPIC_API_KEY"]),
        ("cohere/command-a-03-2025", ["COHERE_API_KEY", "CO_API_KEY"]),
        ("gemini/gemini-2.0-flash", ["GEMINI_API_KEY", "GOOGLE_API_KEY"]),
        ("mistral/mistral-small-latest", ["MISTRAL_API_KEY"]),
        ("groq/llama-3.1-8b-instant", ["GROQ_API_KEY"]),
        ("together_ai/meta-llama/Llama-3.3-70B", ["TOGETHERAI_API_KEY", "TOGETHER_API_KEY",
                                                  "TOGETHER_AI_API_KEY", "TOGETHER_AI_TOKEN"]),
        ("openrouter/openai/gpt-4o-mini", ["OPENROUTER_API_KEY", "OR_API_KEY"]),
        ("deepseek/deepseek-chat", ["DEEPSEEK_API_KEY"]),
        ("xai/grok-2-latest", ["XAI_API_KEY"]),
        ("fireworks_ai/accounts/fireworks/models/x", ["FIREWORKS_AI_API_KEY", "FIREWORKS_API_KEY",
                                                       "FIREWORKSAI_API_KEY", "FIREWORKS_AI_TOKEN"]),
        ("gpt-4o-mini", ["OPENAI_API_KEY"]),  # bare names litellm resolves itself
        ("claude-3-haiku-20240307", ["ANTHROPIC_API_KEY"]),
        ("ollama/llama3.2", []),
        ("ollama_chat/llama3.2", []),
        ("bedrock/anthropic.claude-v2", []),  # credentials found by litellm its own way
        ("mystery-model", []),
    ],
)
def test_required_key_env_by_provider(model: str, expected: list[str]) -> None:
    assert required_key_env(model) == expected


@pytest.mark.parametrize(
    "api_base, local",
    [
        ("http://127.0.0.1:8000/v1", True),
        ("http://localhost:11434", True),
        ("http://[::1]:8000/v1", True),
        ("http://192.168.1.20:8000/v1", True),
        ("http://gpu-box.local:8000/v1", True),
        ("127.0.0.1:9000", True),
        ("https://api.together.xyz/v1", False),
        ("https://8.8.8.8/v1", False),
        (None, False),
        ("", False),
    ],
)
def test_is_local_base(api_base: str | None, local: bool) -> None:
    assert is_local_base(api_base) is local


def test_local_api_base_needs_no_key(clean_env: pytest.MonkeyPatch) -> None:
    assert required_key_env("openai/my-local-model", "http://127.0.0.1:8000/v1") == []
    # A remote endpoint the operator did not list gets no operator key, so none is required for it ...
    assert required_key_env("openai/my-model", "https://api.example.com/v1") == []
    # ... and one the operator listed needs the prefix's key.
    assert required_key_env("openai/my-model", "https://api.example.com/v1",
                            allowed=["https://api.example.com/v1"]) == ["OPENAI_API_KEY"]
    clean_env.setenv("FUSION_KEY_BASES", "https://api.example.com/v1")
    assert required_key_env("openai/my-model", "https://api.example.com/v1") == ["OPENAI_API_KEY"]


def test_provider_of() -> None:
    assert provider_of("Anthropic/claude") == "anthropic"
    assert provider_of("openrouter/openai/gpt-4o") == "openrouter"
    assert provider_of("command-r-plus") == "cohere"
    assert provider_of("llama3") is None


def test_find_api_key_prefers_environment_over_secrets(clean_env: pytest.MonkeyPatch) -> None:
    secrets = {"OPENAI_API_KEY": "sk-from-secrets"}
    assert find_api_key("openai/gpt-4o", secrets=secrets) == "sk-from-secrets"
    clean_env.setenv("OPENAI_API_KEY", "sk-from-env")
    assert find_api_key("openai/gpt-4o", secrets=secrets) == "sk-from-env"


def test_find_api_key_second_env_name_and_blank_values(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("COHERE_API_KEY", "   ")
    clean_env.setenv("CO_API_KEY", "co-key")
    assert find_api_key("cohere/command-r") == "co-key"
    # An env var (any of the names) beats a secret under the preferred name.
    assert find_api_key("cohere/command-r", secrets={"COHERE_API_KEY": "secret"}) == "co-key"


def test_find_api_key_none_for_local_or_missing(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("OPENAI_API_KEY", "sk-real")
    # The real OpenAI key is not offered to a local server.
    assert find_api_key("openai/local", "http://127.0.0.1:8000/v1") is None
    assert find_api_key("anthropic/claude-x") is None
    assert find_api_key("anthropic/claude-x", secrets=RaisingSecrets()) is None


def test_check_keys_names_the_variable_to_set(clean_env: pytest.MonkeyPatch) -> None:
    pool = [ModelSpec("anthropic/claude-x"), ModelSpec("openai/gpt-4o", samples=2), ModelSpec("ollama/llama3")]
    with pytest.raises(MissingKeyError) as info:
        check_keys(pool)
    message = str(info.value)
    assert "ANTHROPIC_API_KEY" in message and "OPENAI_API_KEY" in message
    assert "ollama" not in message

    clean_env.setenv("ANTHROPIC_API_KEY", "a-key")
    with pytest.raises(MissingKeyError) as info:
        check_keys(pool, secrets={})
    assert "ANTHROPIC_API_KEY" not in str(info.value)
    check_keys(pool, secrets={"OPENAI_API_KEY": "sk-x"})  # complete now: no error


def test_check_keys_accepts_explicit_keys_and_local_servers(clean_env: pytest.MonkeyPatch) -> None:
    check_keys([ModelSpec("openai/gpt-4o", api_key="sk-explicit"),
                ModelSpec("openai/local", api_base="http://localhost:8000/v1")])


def test_has_any_provider_key(clean_env: pytest.MonkeyPatch) -> None:
    assert has_any_provider_key() is False
    assert has_any_provider_key({}) is False
    assert has_any_provider_key(RaisingSecrets()) is False
    assert has_any_provider_key({"GROQ_API_KEY": "gsk"}) is True
    clean_env.setenv("MISTRAL_API_KEY", "m-key")
    assert has_any_provider_key() is True


def test_well_known_providers_are_listed() -> None:
    prefixes = {p.prefix for p in PROVIDERS}
    for name in ("openai", "anthropic", "cohere", "gemini", "mistral", "groq", "together_ai", "openrouter",
                 "deepseek", "xai", "fireworks_ai", "ollama"):
        assert name in prefixes
    for p in PROVIDERS:
        assert p.example.startswith(p.prefix + "/")
