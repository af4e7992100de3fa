"""The alerts stage as a batch sink: rules over the batch, faults into work orders.

The gateway thread calls `handle` per batch; the rules timer (`alerts.timer`) calls `tick` and
`checkpoint` from its own thread. One lock keeps the engine's state arrays to one writer.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from alerts.engine import Evaluation, RuleEngine
from alerts.store import WorkOrderStore
from facility.batch import Batch
from facility.clock import Clock, now_ms
from facility.prometheus import Metric
from facility.site import Site

log = logging.getLogger(__name__)
AUTO_RESOLVE_ACTOR = "rules-engine"


class AlertsSink:
    def __init__(
        self,
        site: Site,
        engine: RuleEngine,
        store: WorkOrderStore,
        *,
        checkpoint_path: Path | None = None,
        clock_ms: Clock = now_ms,
    ) -> None:
        self.site = site
        self.engine = engine
        self.store = store
        self.checkpoint_path = checkpoint_path
        self.clock_ms = clock_ms
        """When a batch arrives: the engine counts how far readings lag it (a backlog)."""
        self._lock = threading.Lock()
        if checkpoint_path is not None and engine.load(checkpoint_path):
            log.info("rules state restored from %s", checkpoint_path)

    def handle(self, batch: Batch) -> None:
        with self._lock:
            evaluation = self.engine.evaluate(batch, arrived_ms=self.clock_ms())
            self._file(evaluation)
        self.store.update_device_state(self.site, batch)

    def metrics(self) -> list[Metric]:
        """For the gateway's /metrics: how far the newest reading lags its arrival."""
        return [
            Metric.single(
                "facility_rules_arrival_lag_seconds",
                "gauge",
                "How far the newest reading lagged its arrival at the rules engine (a backlog "
                "being drained); silence and site incidents are judged by reading time.",
                self.engine.arrival_lag_ms / 1000,
            )
        ]

    def tick(self, now_ms: int) -> Evaluation:
        """Silence on the timer: offline devices and the site incident, with no data."""
        with self._lock:
            evaluation = self.engine.tick(now_ms)
            self._file(evaluation)
        return evaluation

    def checkpoint(self) -> None:
        if self.checkpoint_path is None:
            return
        with self._lock:
            self.engine.save(self.checkpoint_path)

    def _file(self, evaluation: Evaluation) -> None:
        self.store.open_for_faults(self.site.id, evaluation.opened)
        self.store.record_observers(evaluation.observed)
        self.store.record_clears(evaluation.cleared)
        for fault in evaluation.opened:
            log.info("fault %s on %s since %d", fault.rule_id, fault.device_id, fault.started_ms)
        for clear in evaluation.cleared:
            if clear.auto_resolve:
                self._resolve(clear.device_id, clear.rule_id)

    def _resolve(self, device_id: str, rule_id: str) -> None:
        from alerts.workorders import WorkOrderError  # noqa: PLC0415

        for order in self.store.list_work_orders(
            statuses=("open", "acknowledged", "in_progress", "on_hold"), device_id=device_id
        ):
            if order.rule_id != rule_id or order.source != "fault":
                continue
            try:
                self.store.transition(
                    order.id, "resolved", actor=AUTO_RESOLVE_ACTOR, note="fault cleared"
                )
            except WorkOrderError as exc:  # someone moved it meanwhile: leave it to people
                log.info("work order %d not auto-resolved: %s", order.id, exc)
