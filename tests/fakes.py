"""Fakes at the seams, shared by the tests."""

from __future__ import annotations


class FakeClock:
    """A clock the test sets: `clock.now` ms since the epoch."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now
