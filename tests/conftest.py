"""Shared fixtures. Every test runs offline: litellm must not try to reach the network."""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
