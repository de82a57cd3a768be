"""Errors the engine raises on purpose. Each carries a message meant for the person at the screen."""

from __future__ import annotations


class FusionError(Exception):
    """Base class: anything raised deliberately by the engine, with a user-facing message."""


class InputError(FusionError, ValueError):
    """The request itself is unusable: empty or huge prompt, N out of range, malformed candidates."""


class MissingKeyError(FusionError):
    """A hosted model was asked for but no key is available for its provider."""


class SetupError(FusionError):
    """What the program needs around it is missing or unreachable (the database, a driver): not the
    request's fault, and nothing a retry of the same command fixes until the set-up is."""


class ProviderError(FusionError):
    """A model call failed after retries (rate limit, server error, timeout, bad response, unknown model)."""

    def __init__(self, message: str, *, kind: str = "error", status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind  # "rate_limit", "server", "timeout", "auth", "not_found", "bad_request", "malformed", "error"
        self.status = status


class NotEnoughCandidates(FusionError):
    """Fewer than two usable candidates: there is nothing to choose between or fuse."""
