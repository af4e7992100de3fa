"""The one reconnect policy of every MQTT client here: exponential backoff with jitter."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """Wait `min_s`, doubling per failed attempt up to `max_s`, each wait spread over
    0.5-1.5 times that (jitter: gateways and a fleet of simulators that lost the same broker
    do not all come back in the same instant)."""

    min_s: float
    max_s: float

    def delay_s(self, failures: int, rng: random.Random) -> float:
        """The wait before the next attempt, after `failures` attempts (0 after a connection
        that was up: the first wait is about `min_s`)."""
        base = min(self.min_s * 2.0 ** min(failures, 64), self.max_s)
        return base * (0.5 + rng.random())
