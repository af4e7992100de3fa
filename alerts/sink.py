"""The alerts stage as a batch sink: rules over the batch, faults into work orders.

The gateway thread calls `handle` per batch; the rules timer (`alerts.timer`) calls `tick` and
`checkpoint` from its own thread. One lock keeps the engine's state arrays to one writer.

Two kinds of failure, two answers (docs/rules.md, "When a rule fails"):
- a rule that raises is a bug in that rule: the engine quarantines it and the batch goes on
  (`alerts.quarantine`), shown by `prometheus()` and `health()`;
- the work-order database failing is transient and hits every rule: `handle` raises, so the
  gateway retries the batch without acking it. The faults already evaluated wait in
  `_unfiled` and are filed first on the next call (the retry's evaluation is empty: the engine
  ignores readings it has seen), and no checkpoint is written while any wait, so a crash
  meanwhile replays the unacked readings from the older checkpoint and finds them again.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from alerts.checkpoint_store import RuleCheckpointStore, SavedState
from alerts.device_state_writes import DeviceStateWrites
from alerts.engine import Evaluation, RuleEngine
from alerts.rule_checkpoint import checkpoint_bytes, read_checkpoint
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
        checkpoints: RuleCheckpointStore | None = None,
        clock_ms: Clock = now_ms,
        device_state_every_s: float = 1.0,
    ) -> None:
        """Checkpoints go to `checkpoints` (a shard's row in the database, for hot standby)
        when given, else to the file `checkpoint_path` (loaded here), else nowhere.
        `device_state_every_s`: while the gateway drains a backlog, the device_state rows are
        written at most this far apart (`alerts.device_state_writes`)."""
        self.site = site
        self.engine = engine
        self.store = store
        self.checkpoint_path = checkpoint_path
        self.checkpoints = checkpoints
        self.clock_ms = clock_ms
        """When a batch arrives: the engine counts how far readings lag it (a backlog)."""
        self._lock = threading.Lock()
        self._unfiled: list[Evaluation] = []
        """Evaluations whose faults are not in the database yet (it failed), oldest first."""
        self.device_states = DeviceStateWrites(
            site, store.update_device_state, every_s=device_state_every_s
        )
        if checkpoints is None and checkpoint_path is not None and engine.load(checkpoint_path):
            log.info("rules state restored from %s", checkpoint_path)

    def handle(self, batch: Batch) -> None:
        with self._lock:
            self._file_after(self.engine.evaluate(batch, arrived_ms=self.clock_ms()))
        self.device_states.add(batch)

    def behind(self) -> None:
        """The gateway is draining a backlog (its last take was full)."""
        self.device_states.behind()

    def caught_up(self, as_of_ms: int) -> None:
        """The gateway had handed over everything it had received by `as_of_ms`."""
        with self._lock:
            self.engine.caught_up(as_of_ms)
        self.device_states.caught_up()

    def tick(self, now_ms: int) -> Evaluation:
        """Silence on the timer: offline devices and the site incident, with no data."""
        with self._lock:
            evaluation = self.engine.tick(now_ms)
            self._file_after(evaluation)
        self.device_states.flush()
        return evaluation

    def checkpoint(self) -> None:
        self.device_states.flush()  # on the timer and at stop: nothing waits past them
        if self.checkpoint_path is None and self.checkpoints is None:
            return
        with self._lock:
            if self._unfiled:  # the state has faults the database has not: keep the old one
                log.warning("rules checkpoint skipped: faults wait to be filed")
                return
            if self.checkpoints is None:
                assert self.checkpoint_path is not None
                self.engine.save(self.checkpoint_path)
                return
            saved_ms = self.clock_ms()
            state = checkpoint_bytes(self.engine.checkpoint_arrays())
        if not self.checkpoints.save(state, saved_ms):  # outside the lock: the rules go on
            log.warning("rules checkpoint not written: the shard's lock is no longer ours")

    def restore(self, saved: SavedState) -> None:
        """Load a shard's checkpoint (a takeover, `alerts.takeover`)."""
        arrays = read_checkpoint(saved.state, f"of shard {getattr(self.checkpoints, 'shard', '?')}")
        with self._lock:
            self.engine.restore(arrays)

    def prometheus(self) -> list[Metric]:
        with self._lock:
            waiting = sum(len(e.opened) + len(e.cleared) for e in self._unfiled)
        return [
            *self.engine.quarantine.prometheus(),
            Metric.single(
                "facility_faults_unfiled", "gauge",
                "Fault openings and clears waiting for the work-order database.", waiting,
            ),
            Metric.single(
                "facility_device_state_waiting_batches", "gauge",
                "Batches whose device_state rows wait to be written together (the gateway is "
                "draining a backlog; written at least every second).",
                self.device_states.waiting,
            ),
            Metric.single(
                "facility_rules_arrival_lag_seconds", "gauge",
                "How far the newest reading lagged its arrival at the rules engine (a backlog "
                "being drained); silence and site incidents are judged by reading time.",
                self.engine.arrival_lag_ms / 1000,
            ),
            Metric.single(
                "facility_rules_silence_behind_seconds", "gauge",
                "How far behind the wall clock the timer last judged silence: the stream's own "
                "progress while the gateway is behind (a backlog, a stall, a full spool).",
                self.engine.silence.behind_ms / 1000,
            ),
        ]  # fmt: skip

    def health(self) -> dict[str, object]:
        """The rules' part of /health; `degraded` names each quarantined rule (the gateway
        still serves: readings are stored and acked, the other rules run)."""
        failures = self.engine.quarantine.failures()
        with self._lock:
            waiting = sum(len(e.opened) + len(e.cleared) for e in self._unfiled)
        return {
            "rules": len(self.engine.rules),
            "quarantined": [
                {"rule": f.rule_id, "error": f.error, "since_ms": f.since_ms} for f in failures
            ],
            "unfiled_faults": waiting,
            "degraded": [f"rule {f.rule_id} quarantined: {f.error}" for f in failures],
        }

    def _file_after(self, evaluation: Evaluation) -> None:
        """File the waiting evaluations, then this one, in order; each leaves the queue once
        filed, so a failure keeps it (and those after it) for the next call. Filing twice is
        harmless: an episode is filed once (a database constraint) and the first clear wins."""
        if evaluation.opened or evaluation.cleared or evaluation.observed:
            self._unfiled.append(evaluation)
        while self._unfiled:
            self._file(self._unfiled[0])
            self._unfiled.pop(0)

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
                # It cleared: that is why it is resolved, whatever the order's row says yet.
                self.store.transition(
                    order.id, "resolved", actor=AUTO_RESOLVE_ACTOR, note="fault cleared",
                    resolution_code="self_cleared", confirm_active=True,
                )  # fmt: skip
            except WorkOrderError as exc:  # someone moved it meanwhile: leave it to people
                log.info("work order %d not auto-resolved: %s", order.id, exc)
