"""A clock that tests set and advance."""

from __future__ import annotations

from datetime import datetime, timedelta

__all__ = ["FixedClock"]


class FixedClock:
    """Callable returning a fixed time until advanced."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)
