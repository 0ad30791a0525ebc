"""A clock the test sets by hand, for code that takes a ``clock: Callable[[], float]``."""

from __future__ import annotations


class Clock:
    """Reads ``now`` (seconds), which starts at 1000.0 and moves only when the test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now
