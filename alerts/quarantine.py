"""Rules whose evaluation raised, set aside so one rule's bug cannot stop the others.

A rule that raises on some input would raise again on the same input, so retrying the batch
(what the gateway does for a failing stage) would stop ingestion and acks for good. Instead
the engine quarantines it: the rule is skipped from then on, until the process restarts
(with a fixed rule file), and everything else goes on. The rule's state is left as it was, so
its open faults stay open: nothing clears them while nobody evaluates the rule.

Read from the status server's thread while the rules thread adds to it, hence the lock.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from facility.clock import Clock, now_ms
from facility.prometheus import Metric

log = logging.getLogger(__name__)
ERROR_CHARS = 300
"""An exception's message is cut to this in /health (the log has the whole traceback)."""


@dataclass(frozen=True, slots=True)
class RuleFailure:
    rule_id: str
    error: str
    """The exception's type and message, e.g. "ValueError: bad input" (truncated)."""
    since_ms: int
    """When the rule was quarantined (wall clock)."""


class Quarantine:
    def __init__(self, *, clock_ms: Clock = now_ms) -> None:
        self.clock_ms = clock_ms
        self._failures: dict[str, RuleFailure] = {}
        self._lock = threading.Lock()

    def __contains__(self, rule_id: object) -> bool:
        return rule_id in self._failures  # a dict read: no lock needed on the hot path

    def add(self, rule_id: str, exc: Exception) -> None:
        """Quarantine `rule_id` for raising `exc`; logged once, with the traceback."""
        error = f"{type(exc).__name__}: {exc}"[:ERROR_CHARS]
        with self._lock:
            if rule_id in self._failures:
                return
            self._failures[rule_id] = RuleFailure(rule_id, error, self.clock_ms())
        log.error(
            "rule %s raised and is quarantined (skipped until restart; its open faults stay "
            "open): %s",
            rule_id,
            error,
            exc_info=exc,
        )

    def failures(self) -> list[RuleFailure]:
        with self._lock:
            return sorted(self._failures.values(), key=lambda f: f.rule_id)

    def prometheus(self) -> list[Metric]:
        failures = self.failures()
        return [
            Metric(
                "facility_rule_failures_total", "counter",
                "Rule evaluations that raised, by rule (the rule is then quarantined).",
                {(("rule", f.rule_id),): 1 for f in failures},
            ),
            Metric.single(
                "facility_rules_quarantined", "gauge",
                "Rules skipped because their evaluation raised (until the gateway restarts).",
                len(failures),
            ),
        ]  # fmt: skip
