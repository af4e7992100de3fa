"""Gateway counters. Plain integers under a lock: updated once per batch, never per reading."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

from facility.prometheus import Metric


@dataclass
class GatewayMetrics:
    messages_received: int = 0
    readings_accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    sequence_gaps: int = 0
    batches_handled: int = 0
    sink_failures: int = 0
    backpressure_retries: int = 0
    rules_evaluations: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record_batch(
        self, *, messages: int, accepted: int, rejected: Counter[str], gaps: int
    ) -> None:
        with self._lock:
            self.messages_received += messages
            self.readings_accepted += accepted
            self.rejected.update(rejected)
            self.sequence_gaps += gaps
            self.batches_handled += 1

    def record_sink_failure(self) -> None:
        with self._lock:
            self.sink_failures += 1

    def record_rules_evaluation(self) -> None:
        with self._lock:
            self.rules_evaluations += 1

    def record_backpressure(self) -> None:
        with self._lock:
            self.backpressure_retries += 1

    def prometheus(self) -> list[Metric]:
        with self._lock:
            return [
                Metric.single(
                    "facility_messages_received_total", "counter",
                    "MQTT messages the gateway took in.", self.messages_received,
                ),
                Metric.single(
                    "facility_readings_accepted_total", "counter",
                    "Readings that passed validation.", self.readings_accepted,
                ),
                Metric.single(
                    "facility_batches_total", "counter",
                    "Batches taken from MQTT and decoded (messages / batches = batch size).",
                    self.batches_handled,
                ),
                Metric(
                    "facility_rejected_total", "counter",
                    "Rejected messages or readings, by reason (all are dead-lettered).",
                    {(("reason", r),): n for r, n in sorted(self.rejected.items())},
                ),
                Metric.single(
                    "facility_sequence_gaps_total", "counter",
                    "Readings missing by the devices' sequence numbers.", self.sequence_gaps,
                ),
                Metric.single(
                    "facility_sink_failures_total", "counter",
                    "Times a stage after decode failed and the batch was retried.",
                    self.sink_failures,
                ),
                Metric.single(
                    "facility_rules_evaluations_total", "counter",
                    "Evaluations of decoded batches by the rules; fewer than batches when the "
                    "rules stage caught up by taking the batches queued for it at once.",
                    self.rules_evaluations,
                ),
                Metric.single(
                    "facility_backpressure_retries_total", "counter",
                    "Times a batch was held unacked because the durable sink was full.",
                    self.backpressure_retries,
                ),
            ]  # fmt: skip

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            return {
                "messages_received": self.messages_received,
                "readings_accepted": self.readings_accepted,
                "rejected": dict(self.rejected),
                "rejected_total": sum(self.rejected.values()),
                "sequence_gaps": self.sequence_gaps,
                "batches_handled": self.batches_handled,
                "sink_failures": self.sink_failures,
                "backpressure_retries": self.backpressure_retries,
                "rules_evaluations": self.rules_evaluations,
            }
