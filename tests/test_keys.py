"""Where the operator's keys may go (fusion.keys): pure rules, no server. The end-to-end checks against a
header-recording server under a non-local host name are in tests/test_key_routing.py."""

from __future__ import annotations

import pytest

from fusion.errors import InputError, MissingKeyError
from fusion.keys import PLACEHOLDER_KEY, env_key_bases, is_listed_base, parse_base, parse_key_bases
from fusion.providers import key_for
from fusion.providers import PROVIDERS, check_keys, find_api_key
from fusion.types import ModelSpec

OPENAI = "sk-operator-openai-0123456789"
ENV = {"OPENAI_API_KEY": OPENAI, "ANTHROPIC_API_KEY": "sk-ant-operator-0123456789"}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for provider in PROVIDERS:
        for name in provider.env:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("FUSION_KEY_BASES", raising=False)
    return monkeypatch


def test_provider_endpoint_gets_the_operator_key() -> None:
    assert key_for("openai/gpt-4o-mini", None, env=ENV) == OPENAI
    assert key_for("anthropic/claude-3-5-haiku-latest", "", env=ENV) == ENV["ANTHROPIC_API_KEY"]
    # from secrets when the environment has none
    assert key_for("openai/gpt-4o-mini", None, env={}, secrets={"OPENAI_API_KEY": "sk-sec"}) == "sk-sec"
    # no key anywhere: None, and litellm looks for the provider's credentials for its own endpoint
    assert key_for("openai/gpt-4o-mini", None, env={}) is None


@pytest.mark.parametrize(
    "base",
    [
        "http://vm:8000/v1",  # a host name that is not in the local list
        "https://collector.example.net/v1",
        "http://localhost:11434/v1",  # local servers get no operator key either
        "http://127.0.0.1:8000/v1",
        "https://api.openai.com/v1",  # even the provider's real URL, typed instead of omitted
    ],
)
def test_unlisted_base_never_gets_the_operator_key(base: str) -> None:
    assert key_for("openai/gpt-4o-mini", base, env=ENV, secrets={"OPENAI_API_KEY": "sk-sec"}, allowed=()) \
        == PLACEHOLDER_KEY
    assert find_api_key("openai/gpt-4o-mini", base, {"OPENAI_API_KEY": "sk-sec"}, allowed=(), env=ENV) is None


def test_a_typed_key_goes_with_its_url() -> None:
    assert key_for("openai/m", "https://mine.example.org/v1", typed_key=" sk-mine ", env=ENV, allowed=()) == "sk-mine"
    # a blank typed key is no key
    assert key_for("openai/m", "https://mine.example.org/v1", typed_key="  ", env=ENV, allowed=()) == PLACEHOLDER_KEY


def test_listed_base_gets_the_operator_key() -> None:
    allowed = ["https://gateway.example.com/v1"]
    assert key_for("openai/m", "https://gateway.example.com/v1", env=ENV, allowed=allowed) == OPENAI
    assert key_for("openai/m", "https://GATEWAY.example.com:443/v1/", env=ENV, allowed=allowed) == OPENAI
    assert key_for("openai/m", "https://gateway.example.com/v1/deployments/x", env=ENV, allowed=allowed) == OPENAI
    # listed, but the operator has no key for this provider: the placeholder, not an error
    assert key_for("openai/m", "https://gateway.example.com/v1", env={}, allowed=allowed) == PLACEHOLDER_KEY


@pytest.mark.parametrize(
    "base",
    [
        "https://gateway.example.com/v1beta",  # a prefix of the string, not of the path
        "https://gateway.example.com/v1.evil.net",
        "https://gateway.example.com.evil.net/v1",
        "https://gateway.example.com@evil.net/v1",  # user info: the request goes to evil.net
        "http://gateway.example.com/v1",  # another scheme
        "https://gateway.example.com:8443/v1",  # another port
        "https://gateway.example.com/",  # above the listed path
        "https://gateway.example.com",
        "gateway.example.com/v1",  # no scheme: not a URL we can place
        "https://gateway.example.com:99999/v1",  # no valid port
    ],
)
def test_look_alikes_of_a_listed_base_are_not_listed(base: str) -> None:
    allowed = ["https://gateway.example.com/v1"]
    assert not is_listed_base(base, allowed)
    assert key_for("openai/m", base, env=ENV, allowed=allowed) == PLACEHOLDER_KEY


def test_a_root_listing_covers_every_path_of_that_host() -> None:
    assert is_listed_base("http://10.0.0.5:8000/v1", ["http://10.0.0.5:8000"])
    assert is_listed_base("http://10.0.0.5:8000/v1", ["http://10.0.0.5:8000/"])
    assert not is_listed_base("http://10.0.0.5:8001/v1", ["http://10.0.0.5:8000"])


def test_key_bases_from_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    assert env_key_bases() == ()
    clean_env.setenv("FUSION_KEY_BASES", " https://a.example.com/v1 , ,http://b.example.com:8000/v1")
    assert env_key_bases() == ("https://a.example.com/v1", "http://b.example.com:8000/v1")
    clean_env.setenv("OPENAI_API_KEY", OPENAI)
    # allowed=None reads the environment's list
    assert key_for("openai/m", "http://b.example.com:8000/v1") == OPENAI
    assert key_for("openai/m", "http://c.example.com:8000/v1") == PLACEHOLDER_KEY
    clean_env.setenv("FUSION_KEY_BASES", "https://a.example.com/v1, not a url")
    with pytest.raises(InputError, match="FUSION_KEY_BASES: 'not a url' is not an http"):
        env_key_bases()


def test_parse_key_bases_from_a_secrets_list() -> None:
    assert parse_key_bases(["https://a.example.com/v1", "", "https://a.example.com/v1"]) == ("https://a.example.com/v1",)
    assert parse_key_bases(None) == ()
    with pytest.raises(InputError, match=r"\[fusion\] key_bases: 'ftp://x' is not"):
        parse_key_bases(["ftp://x"], source="[fusion] key_bases")


def test_parse_base_normalises() -> None:
    base = parse_base("HTTPS://Api.Example.com./v1/")
    assert base is not None and (base.scheme, base.host, base.port, base.path) == ("https", "api.example.com", 443, "/v1")
    assert parse_base("") is None and parse_base("file:///etc/passwd") is None


def test_check_keys_asks_for_no_key_an_unlisted_base_cannot_receive(clean_env: pytest.MonkeyPatch) -> None:
    # The page cannot send the operator's key to a visitor's server, so it must not ask for one either.
    check_keys([ModelSpec("openai/m", api_base="https://collector.example.net/v1")])
    # A listed remote base does need it, and says which variable to set.
    with pytest.raises(MissingKeyError, match="OPENAI_API_KEY"):
        check_keys([ModelSpec("openai/m", api_base="https://gw.example.com/v1")], allowed=["https://gw.example.com"])
