"""The time handlers go by, injected so that a test (or a replay) can choose it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]
"""Returns the current moment, timezone-aware."""


def utc_now() -> datetime:
    """The real clock, in UTC: what every service runs with."""
    return datetime.now(UTC)
