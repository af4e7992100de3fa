"""A sliding-window rate limiter per key (a client address), in memory, with a clock seam."""

from __future__ import annotations

import threading
from collections import OrderedDict, deque

from facility.clock import Clock


class SlidingWindowLimiter:
    """At most `limit` hits per key within any `window_s`; the least recently seen keys are
    forgotten beyond `max_keys`, so memory stays bounded whoever knocks."""

    def __init__(
        self, *, limit: int, window_s: float, clock_ms: Clock, max_keys: int = 100_000
    ) -> None:
        self.limit = limit
        self.window_ms = int(window_s * 1000)
        self._clock_ms = clock_ms
        self._max_keys = max_keys
        self._hits: OrderedDict[str, deque[int]] = OrderedDict()
        self._lock = threading.Lock()

    def hit(self, key: str) -> float | None:
        """Count a hit; None if allowed, else seconds until the next one would be."""
        now = self._clock_ms()
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                hits = self._hits[key] = deque()
                while len(self._hits) > self._max_keys:
                    self._hits.popitem(last=False)
            else:
                self._hits.move_to_end(key)
            while hits and hits[0] <= now - self.window_ms:
                hits.popleft()
            if len(hits) >= self.limit:
                return (hits[0] + self.window_ms - now) / 1000
            hits.append(now)
            return None
